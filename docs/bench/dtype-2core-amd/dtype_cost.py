import numpy as np, warnings, json
warnings.simplefilter("ignore")
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler
from fastdrop import MLPClassifier
from fastdrop._timing import interleaved
from fastdrop.suite.stats import median_ci, round_ratios
Xd, yd = load_digits(return_X_y=True); Xd = Xd / 16
Xs, ys = make_classification(10000, 784, n_informative=50, n_classes=10, random_state=0)
Xs = StandardScaler().fit_transform(Xs)
for name, X, y, kw, nt in [("digits (256,256) 1t", Xd, yd, dict(hidden_layer_sizes=(256, 256)), 1),
                           ("10000x784 (512,512) batch 128, 2t", Xs, ys, dict(hidden_layer_sizes=(512, 512), batch_size=128, solver="sgd", learning_rate_init=0.01), 2)]:
    ests = {}
    for dt in ("float32", "float64"):
        e = MLPClassifier(random_state=0, n_threads=nt, dtype=dt, **kw)
        e.partial_fit(X, y, classes=np.unique(y)); ests[dt] = e
    t = interleaved({dt: (lambda e=e: e.partial_fit(X, y)) for dt, e in ests.items()}, 11)
    r = round_ratios(t["float64"], t["float32"]); lo, hi, cov = median_ci(r)
    print(f"{name}: float64 epoch / float32 epoch = {np.median(r):.2f} [{lo:.2f}, {hi:.2f}] (coverage {cov:.3f}, 11 rounds); float32 {np.median(t['float32'])*1e3:.1f} ms")
