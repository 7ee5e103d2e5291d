"""
fastdrop's dropout inside a PyTorch model
=========================================

:func:`fastdrop.torch.replace_dropout` swaps every ``torch.nn.Dropout`` (and
``Dropout1d/2d/3d``) of a model for fastdrop's, with the same ``p`` and training flag; the
model trains as before, autograd included, on fastdrop's kernels (a ``torch.library`` custom
op). Needs a CPU build of torch >= 2.4 (``pip install 'fastdrop[torch]'``).
"""
import matplotlib.pyplot as plt

try:
    import torch
    from torch import nn
except ImportError:  # torch is a baseline, never a dependency
    torch = None
    print("torch is not installed: pip install 'fastdrop[torch]' (a CPU build) to run this")

if torch is not None:
    from fastdrop.torch import replace_dropout

    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(256, 1))

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(4096, 20, generator=gen)
    y = (X[:, :5].sum(dim=1, keepdim=True) + 0.5 * torch.randn(4096, 1, generator=gen))
    models = {"torch.nn.Dropout": make_model(), "fastdrop (replace_dropout)":
              replace_dropout(make_model())}
    print(models["fastdrop (replace_dropout)"])
    print("its dropout modules:", [f"{type(m).__module__}.{type(m).__name__}"
                                   for m in models["fastdrop (replace_dropout)"]
                                   if isinstance(m, nn.Dropout)])

# %%
# Both models start from the same weights and train the same way; only the dropout kernels
# (and so the masks drawn) differ. In eval mode dropout is the identity in both.
if torch is not None:
    curves = {}
    for name, model in models.items():
        torch.manual_seed(1)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for epoch in range(15):
            model.train()
            for i in range(0, len(X), 128):
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(X[i:i + 128]), y[i:i + 128])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                losses.append(nn.functional.mse_loss(model(X), y).item())
        curves[name] = losses
        print(f"{name}: training-set MSE in eval mode after 15 epochs {losses[-1]:.3f}")
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    for name, losses in curves.items():
        ax.plot(range(1, 16), losses, "o-", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (eval mode)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    plt.show()
