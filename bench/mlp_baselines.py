"""One training epoch of the same MLP in each library, plus the GEMM-only floor and the GEMM
floor with an SGD step's unavoidable memory traffic.

Every class takes (X, y, hidden, dropout, batch_size, n_threads) and exposes ``epoch()``:
SGD with Nesterov momentum 0.9, learning rate 0.01, ReLU hidden layers, softmax output,
float32, shuffled mini-batches. ``dropout`` (drop probability on every hidden layer) is 0 or
0.5; fastdrop also runs its batch mode (``FastdropBatchEpoch``).
"""
import contextlib
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import fastdrop
from fastdrop import _nn_kernels
from fastdrop._threading import OpenMPBlasPool, thread_budget

LR, MOMENTUM = 0.01, 0.9


@contextlib.contextmanager
def numpy_own_threads(n_threads):
    """numpy's BLAS threaded as in a program without fastdrop: fastdrop's first fit leaves its
    shared pool installed for the process, and the baselines must not run on it. (Switching
    is safe here: the benchmark runs one thing at a time.)"""
    OpenMPBlasPool.uninstall()
    with threadpool_limits(n_threads, user_api="blas"):
        yield


class FastdropEpoch:
    name = "fastdrop"
    mode = "element"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        self.X, self.y, self.classes = X, y, np.unique(y)
        self.est = fastdrop.MLPClassifier(
            hidden, solver="sgd", learning_rate_init=LR, momentum=MOMENTUM, batch_size=batch_size,
            dropout=dropout, dropout_mode=self.mode, n_threads=n_threads, random_state=0)

    def epoch(self):
        self.est.partial_fit(self.X, self.y, classes=self.classes)


class FastdropBatchEpoch(FastdropEpoch):
    name = "fastdrop-batch"
    mode = "batch"


class FastdropRegressorEpoch(FastdropEpoch):
    """fastdrop.MLPRegressor on a regression set (squared error, identity output)."""
    name = "fastdrop-regressor"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        self.X, self.y = X, y
        self.est = fastdrop.MLPRegressor(
            hidden, solver="sgd", learning_rate_init=LR, momentum=MOMENTUM, batch_size=batch_size,
            dropout=dropout, n_threads=n_threads, random_state=0)

    def epoch(self):
        self.est.partial_fit(self.X, self.y)


class SklearnEpoch:
    """sklearn.neural_network.MLPClassifier; partial_fit is one epoch. No dropout exists."""
    name = "sklearn"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        if dropout:
            raise NotImplementedError("scikit-learn's MLP has no dropout")
        from sklearn.neural_network import MLPClassifier

        self.X, self.y, self.classes, self.n_threads = X, y, np.unique(y), n_threads
        self.est = MLPClassifier(hidden, solver="sgd", learning_rate_init=LR, momentum=MOMENTUM,
                                 batch_size=batch_size, random_state=0)

    def epoch(self):
        with numpy_own_threads(self.n_threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.est.partial_fit(self.X, self.y, classes=self.classes)


class SklearnRegressorEpoch:
    """sklearn.neural_network.MLPRegressor; partial_fit is one epoch."""
    name = "sklearn-regressor"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        if dropout:
            raise NotImplementedError("scikit-learn's MLP has no dropout")
        from sklearn.neural_network import MLPRegressor

        self.X, self.y, self.n_threads = X, y, n_threads
        self.est = MLPRegressor(hidden_layer_sizes=hidden, solver="sgd", learning_rate_init=LR,
                                momentum=MOMENTUM, batch_size=batch_size, random_state=0)

    def epoch(self):
        with numpy_own_threads(self.n_threads):
            self.est.partial_fit(self.X, self.y)


class TorchEpoch:
    name = "torch"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        import torch
        from torch import nn

        torch.set_num_threads(n_threads)
        torch.manual_seed(0)
        self.torch, self.batch = torch, batch_size
        sizes, layers = [X.shape[1], *hidden], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
        layers.append(nn.Linear(sizes[-1], int(y.max()) + 1))
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM,
                                   nesterov=True)
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y.astype(np.int64))

    def epoch(self):
        torch, n = self.torch, self.X.shape[0]
        perm = torch.randperm(n)
        for start in range(0, n, self.batch):
            idx = perm[start:start + self.batch]
            self.opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.model(self.X[idx]), self.y[idx])
            loss.backward()
            self.opt.step()


class TorchFastdropEpoch(TorchEpoch):
    """The same torch model with its ``nn.Dropout`` layers swapped for fastdrop's
    (``fastdrop.torch.replace_dropout``): what a torch user gets from one import."""
    name = "torch+fastdrop"
    options = {}

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        super().__init__(X, y, hidden, dropout, batch_size, n_threads)
        from fastdrop.torch import replace_dropout

        replace_dropout(self.model, **self.options)


class TorchFastdropRecomputeEpoch(TorchFastdropEpoch):
    """fastdrop's dropout recomputing its mask in the backward pass instead of storing it."""
    name = "torch+fastdrop-recompute"
    options = {"store_mask": False}


class TorchFastdropOneThreadEpoch(TorchFastdropEpoch):
    """fastdrop's dropout kernels on one thread, torch's own operations on all: whether the
    two OpenMP pools fight."""
    name = "torch+fastdrop-1thread"
    options = {"n_threads": 1}


class JaxEpoch:
    """A jitted epoch: ``lax.scan`` over the mini-batches (the fastest peer measured)."""
    name = "jax"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        import jax
        import jax.numpy as jnp

        self.jax = jax
        n_batches = X.shape[0] // batch_size  # whole batches only: scan needs one shape
        sizes = [X.shape[1], *hidden, int(y.max()) + 1]
        rs = np.random.RandomState(0)
        params = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(6 / (a + b))
            params.append((jnp.asarray(rs.uniform(-bound, bound, (a, b)), jnp.float32),
                           jnp.zeros(b, jnp.float32)))
        keep = 1.0 - dropout

        def loss_fn(params, xb, yb, key):
            a = xb
            for w, b in params[:-1]:
                a = jax.nn.relu(a @ w + b)
                if dropout:
                    key, sub = jax.random.split(key)
                    a = jnp.where(jax.random.bernoulli(sub, keep, a.shape), a / keep, 0.0)
            logits = a @ params[-1][0] + params[-1][1]
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], 1))

        grad = jax.grad(loss_fn)

        @jax.jit
        def epoch(params, vel, X, Y, key):
            key, sub = jax.random.split(key)
            perm = jax.random.permutation(sub, X.shape[0])[: n_batches * batch_size]
            xs = X[perm].reshape(n_batches, batch_size, -1)
            ys = Y[perm].reshape(n_batches, batch_size)

            def step(carry, batch):
                params, vel, key = carry
                key, sub = jax.random.split(key)
                g = grad(params, batch[0], batch[1], sub)
                vel = jax.tree_util.tree_map(lambda v, gi: MOMENTUM * v - LR * gi, vel, g)
                params = jax.tree_util.tree_map(lambda p, v, gi: p + MOMENTUM * v - LR * gi,
                                                params, vel, g)
                return (params, vel, key), None

            (params, vel, key), _ = jax.lax.scan(step, (params, vel, key), (xs, ys))
            return params, vel, key

        self.state = (params, jax.tree_util.tree_map(jnp.zeros_like, params),
                      jax.random.PRNGKey(0))
        self.X, self.Y = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
        self._epoch = epoch

    def epoch(self):
        params, vel, key = self._epoch(*self.state[:2], self.X, self.Y, self.state[2])
        self.jax.block_until_ready(params)
        self.state = (params, vel, key)


class GemmFloor:
    """Only the matrix products of one epoch (forward and backward), same shapes: the floor."""
    name = "gemm-floor"

    def __init__(self, X, y, hidden, dropout, batch_size, n_threads):
        if dropout:
            raise NotImplementedError("the floor has no dropout")
        rs = np.random.RandomState(0)
        self.X, self.batch, self.n_threads = X, batch_size, n_threads
        sizes = [X.shape[1], *hidden, int(y.max()) + 1]
        f = X.dtype
        self.W = [rs.standard_normal((a, b)).astype(f) * 0.01 for a, b in zip(sizes[:-1], sizes[1:])]
        self.G = [np.empty_like(w) for w in self.W]
        self.A = [np.empty((batch_size, s), f) for s in sizes[1:]]
        self.D = [np.empty((batch_size, s), f) for s in sizes[1:]]

    def update(self, l):
        """The optimizer's part of the floor: nothing (see GemmUpdateFloor)."""

    def threads(self):
        """numpy's own BLAS threading, as any numpy program gets it."""
        return numpy_own_threads(self.n_threads)

    def epoch(self):
        with self.threads():
            n = self.X.shape[0] // self.batch * self.batch
            for start in range(0, n, self.batch):
                a = self.X[start:start + self.batch]
                inputs = [a]
                for w, out in zip(self.W, self.A):
                    np.matmul(a, w, out=out)
                    inputs.append(out)
                    a = out
                d = self.A[-1]
                for l in range(len(self.W) - 1, -1, -1):
                    np.matmul(inputs[l].T, d, out=self.G[l])
                    if l:
                        np.matmul(d, self.W[l].T, out=self.D[l - 1])
                        d = self.D[l - 1]
                    self.update(l)


class GemmUpdateFloor(GemmFloor):
    """The GEMM floor plus the memory traffic an SGD-momentum step cannot avoid.

    A fused step reads each weight, its velocity and its gradient and writes back the weight
    and the velocity: 20 bytes per float32 parameter. Here one pass moves exactly those bytes
    layer by layer, right after the layer's backward products (as fastdrop steps), threaded
    as fastdrop's step is and on the same thread pool (``fastdrop._threading.thread_budget``):
    ``W = copysign(W, G)``, ``V = -V`` (``_nn_kernels.step_traffic``; magnitudes unchanged, so
    the products stay finite). No arithmetic of an update: a floor for any exact optimizer
    step on this machine's memory system.
    """
    name = "gemm+update-floor"

    def __init__(self, *args):
        super().__init__(*args)
        self.V = [np.zeros_like(w) for w in self.W]
        self.kernel_threads = 1

    @contextlib.contextmanager
    def threads(self):
        with thread_budget(self.n_threads) as self.kernel_threads:
            yield

    def update(self, l):
        _nn_kernels.step_traffic(self.W[l].reshape(-1), self.G[l].reshape(-1),
                                 self.V[l].reshape(-1), self.kernel_threads)


EPOCH_IMPLEMENTATIONS = {cls.name: cls for cls in (
    FastdropEpoch, FastdropBatchEpoch, FastdropRegressorEpoch, SklearnEpoch,
    SklearnRegressorEpoch, TorchEpoch, TorchFastdropEpoch,
    TorchFastdropRecomputeEpoch, TorchFastdropOneThreadEpoch, JaxEpoch, GemmFloor,
    GemmUpdateFloor)}
