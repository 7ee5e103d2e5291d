"""
Dropout on numpy arrays
=======================

:func:`fastdrop.dropout` drops each element with probability ``p`` and scales the kept ones
by 1 / (1 - p) (inverted dropout). Its mask is a pure function of ``(seed, step)`` and the
element's index (Philox4x32-10), so the same call gives the same bits on any number of
threads, and the backward pass can store the mask at 1 bit per element or recompute it.
"""
import matplotlib.pyplot as plt
import numpy as np

import fastdrop

x = np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32)
y, mask = fastdrop.dropout(x, 0.5, seed=0, step=0)
print(f"kept {mask.to_bool().mean():.4f} of the elements; the mask takes {mask.nbytes} "
      f"bytes for {x.size} elements (1 bit each)")

# %%
# The backward pass multiplies the incoming gradient by the same scaled mask; with
# ``store_mask=False`` nothing is stored and the mask is recomputed from (seed, step).
grad = np.ones_like(x)
stored = fastdrop.dropout_backward(grad, mask)
_, lazy = fastdrop.dropout(x, 0.5, seed=0, step=0, store_mask=False)
recomputed = fastdrop.dropout_backward(grad, lazy)
print("recomputed backward equals the stored one:", np.array_equal(stored, recomputed))

# %%
# The same bits for any thread count: the thread count only decides who computes which
# elements, never what they are.
outputs = [fastdrop.dropout(x, 0.3, seed=7, step=3, n_threads=n)[0] for n in (1, 2, 4)]
print("1, 2 and 4 threads agree bit for bit:",
      all(np.array_equal(outputs[0], o) for o in outputs[1:]))

# %%
# The kept fraction follows 1 - p at every rate, and the inverted scaling keeps the mean.
rates = np.linspace(0.0, 0.9, 10)
kept = [fastdrop.dropout(x, p, seed=1, step=0)[1].to_bool().mean() for p in rates]
means = [fastdrop.dropout(x + 1.0, p, seed=1, step=0)[0].mean() for p in rates]
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
left.imshow(mask.to_bool()[:64, :128], cmap="gray", interpolation="nearest")
left.set_title("a corner of the p = 0.5 mask (white: kept)", fontsize=9)
left.axis("off")
right.plot(rates, kept, "o-", label="kept fraction")
right.plot(rates, 1 - rates, "k:", label="1 - p")
right.plot(rates, means, "s-", label="mean of dropout(x + 1)")
right.set_xlabel("drop rate p")
right.legend(fontsize=8)
right.grid(alpha=0.3)
plt.show()
