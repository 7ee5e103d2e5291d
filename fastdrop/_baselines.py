"""The implementations fastdrop is measured against, one small class per library.

Each exposes the same eight operations on a flat or 2-D float32 array, with the buffers allocated
in ``__init__`` so that only the operation itself is timed. ``bias`` (added before the ReLU) is
None for flat arrays and of shape (n_columns,) for 2-D ones. ``channel_dropout`` sees the array
as channels of CHANNEL elements (rows of 2-D arrays wider than that) and drops whole channels.
"""
import math

import numpy as np

import fastdrop
from fastdrop._noise import alpha_dropout_params

P = 0.5          # drop probability used throughout the kernel benchmarks
SEED = 1234
CHANNEL = 1024   # elements per channel in channel_dropout (a 32x32 feature map)
SIGMA = math.sqrt(P / (1 - P))  # Gaussian dropout's noise at the same rate
A, B, FILL = alpha_dropout_params(1 - P)


def channels(x):
    """x as (channels, elements per channel), a view."""
    return x.reshape(-1, max(CHANNEL, x.shape[-1]) if x.ndim > 1 else CHANNEL)


class FastdropKernels:
    name = "fastdrop"

    def __init__(self, x, bias, n_threads):
        self.x, self.bias, self.n_threads = x, bias, n_threads
        self.y = np.empty_like(x)
        self.dx = np.empty_like(x)
        self.dy = np.ones_like(x)
        _, self.mask = fastdrop.dropout(x, P, seed=SEED, out=self.y, n_threads=n_threads)
        self.relu_y, self.relu_mask = fastdrop.relu_dropout(x, P, seed=SEED, bias=bias,
                                                            store_mask=False)

    def mask_only(self):
        return fastdrop.bernoulli_mask(self.x.shape, 1 - P, seed=SEED, n_threads=self.n_threads)

    def forward(self):
        return fastdrop.dropout(self.x, P, seed=SEED, out=self.y, n_threads=self.n_threads)

    def backward(self):
        return fastdrop.dropout_backward(self.dy, self.mask, out=self.dx, n_threads=self.n_threads)

    def relu_dropout(self):
        return fastdrop.relu_dropout(self.x, P, seed=SEED, bias=self.bias, out=self.y,
                                     n_threads=self.n_threads, store_mask=False)

    def relu_backward(self):
        return fastdrop.relu_dropout_backward(self.dy, self.relu_y, self.relu_mask, out=self.dx,
                                              n_threads=self.n_threads)

    def channel_dropout(self):
        x = channels(self.x)
        return fastdrop.dropout(x, P, seed=SEED, noise_shape=(x.shape[0], 1),
                                out=self.y.reshape(x.shape), n_threads=self.n_threads)

    def gaussian_dropout(self):
        return fastdrop.gaussian_dropout(self.x, P, seed=SEED, out=self.y,
                                         n_threads=self.n_threads)

    def alpha_dropout(self):
        return fastdrop.alpha_dropout(self.x, P, seed=SEED, out=self.y, n_threads=self.n_threads,
                                      store_mask=False)


class NumpyKernels:
    """The fastest pure-numpy dropout found for general p (16-bit integer draws; see bench/README)."""
    name = "numpy"

    def __init__(self, x, bias, n_threads):
        self.x, self.bias = x, bias
        self.rng = np.random.default_rng(SEED)
        self.threshold = round((1 - P) * 65536)
        self.scale = x.dtype.type(1 / (1 - P))
        self.y = np.empty_like(x)
        self.dx = np.empty_like(x)
        self.dy = np.ones_like(x)
        self.keep = self.mask_only()

    def mask_only(self):
        return self.rng.integers(0, 65536, size=self.x.shape, dtype=np.uint16) < self.threshold

    def forward(self):
        np.multiply(self.x, self.mask_only(), out=self.y)
        return np.multiply(self.y, self.scale, out=self.y)

    def backward(self):
        np.multiply(self.dy, self.keep, out=self.dx)
        return np.multiply(self.dx, self.scale, out=self.dx)

    def relu_dropout(self):
        if self.bias is None:
            np.maximum(self.x, 0, out=self.y)
        else:
            np.add(self.x, self.bias, out=self.y)
            np.maximum(self.y, 0, out=self.y)
        np.multiply(self.y, self.mask_only(), out=self.y)
        return np.multiply(self.y, self.scale, out=self.y)

    def relu_backward(self):
        np.multiply(self.dy, self.y > 0, out=self.dx)
        return np.multiply(self.dx, self.scale, out=self.dx)

    def channel_dropout(self):
        x = channels(self.x)
        keep = self.rng.integers(0, 65536, size=(x.shape[0], 1), dtype=np.uint16) < self.threshold
        return np.multiply(x, keep * self.scale, out=self.y.reshape(x.shape))

    def gaussian_dropout(self):
        # float32 ziggurat normals into a preallocated buffer: the fastest numpy found
        self.rng.standard_normal(out=self.dx, dtype=np.float32)
        np.multiply(self.dx, np.float32(SIGMA), out=self.dx)
        np.add(self.dx, np.float32(1), out=self.dx)
        return np.multiply(self.x, self.dx, out=self.y)

    def alpha_dropout(self):
        dropped = self.rng.integers(0, 65536, size=self.x.shape, dtype=np.uint16) >= self.threshold
        np.multiply(self.x, np.float32(A), out=self.y)
        np.add(self.y, np.float32(B), out=self.y)
        np.putmask(self.y, dropped, np.float32(FILL))
        return self.y


class TorchKernels:
    """torch.nn.functional.dropout and the ATen backward autograd calls (CPU)."""
    name = "torch"

    def __init__(self, x, bias, n_threads):
        import torch

        self.torch = torch
        torch.set_num_threads(n_threads)
        self.x = torch.from_numpy(x)
        self.bias = None if bias is None else torch.from_numpy(bias)
        self.dy = torch.ones_like(self.x)
        self.y, self.keep = torch.ops.aten.native_dropout(self.x, P, True)
        self.scale = 1 / (1 - P)

    def mask_only(self):
        return self.torch.empty(self.x.shape, dtype=self.torch.bool).bernoulli_(1 - P)

    def forward(self):
        return self.torch.nn.functional.dropout(self.x, P, training=True)

    def backward(self):
        return self.torch.ops.aten.native_dropout_backward(self.dy, self.keep, self.scale)

    def relu_dropout(self):
        v = self.x if self.bias is None else self.x + self.bias
        return self.torch.nn.functional.dropout(self.torch.relu(v), P, training=True)

    def relu_backward(self):
        return self.torch.where(self.y > 0, self.dy * self.scale, 0.0)

    def channel_dropout(self):
        return self.torch.nn.functional.dropout1d(self.torch.from_numpy(channels(self.x.numpy())),
                                                  P, training=True)

    def gaussian_dropout(self):  # torch has none: normal_ noise times x
        return self.x * self.torch.empty_like(self.x).normal_(1.0, SIGMA)

    def alpha_dropout(self):
        return self.torch.nn.functional.alpha_dropout(self.x, P, training=True)


IMPLEMENTATIONS = {cls.name: cls for cls in (FastdropKernels, NumpyKernels, TorchKernels)}
