"""Optimizers: scikit-learn's SGD (momentum, Nesterov) and Adam as fused one-pass kernels.

Penalties are added to the weights' gradients inside the same pass (biases are not penalized):
the L2 term ``alpha * w / batch_size`` exactly as scikit-learn's MLP scales it, and the L1 term
``l1 * sign(w) / batch_size`` on the same footing. ``step`` returns the penalty part of the
batch loss, computed from the weights before the update (``dot`` for L2, a lane sum for L1).
"""
import math

import numpy as np

from . import _nn_kernels

__all__ = ["SGD", "Adam"]


class _Optimizer:
    def __init__(self, learning_rate):
        self.learning_rate_init = float(learning_rate)
        self.learning_rate = float(learning_rate)

    def step(self, coefs, intercepts, grad_coefs, grad_intercepts, batch_size, alpha, l1,
             n_threads):
        """Update all parameters in place; return the batch's penalty loss (weights before)."""
        penalty = 0.0
        for i, (w, g) in enumerate(zip(coefs, grad_coefs)):
            flat = w.reshape(-1)
            if alpha:
                penalty += 0.5 * alpha * float(np.dot(flat, flat)) / batch_size
            if l1:
                penalty += l1 * _nn_kernels.abs_sum(flat) / batch_size
            self._update(i, flat, g.reshape(-1), alpha / batch_size, l1 / batch_size, n_threads)
        for j, (b, g) in enumerate(zip(intercepts, grad_intercepts)):
            self._update(len(coefs) + j, b, g, 0.0, 0.0, n_threads)
        return penalty

    def trigger_stopping(self, message, verbose):
        """scikit-learn's rule: stop (True), or for an adaptive rate divide it by 5 first."""
        if verbose:
            print(message + " Stopping.")
        return True

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate:g})"


class SGD(_Optimizer):
    """SGD with momentum (``v = mu v - lr g; w += v``) or Nesterov's variant."""

    def __init__(self, params, learning_rate=0.1, momentum=0.9, nesterov=True,
                 schedule="constant"):
        super().__init__(learning_rate)
        self.momentum, self.nesterov, self.schedule = float(momentum), bool(nesterov), schedule
        self.velocities = [np.zeros(p.size, dtype=p.dtype) for p in params]

    def _update(self, i, w, g, l2, l1, n_threads):
        return _nn_kernels.sgd_step(w, g, self.velocities[i], self.learning_rate, self.momentum,
                                    self.nesterov, l2, l1, n_threads)

    def trigger_stopping(self, message, verbose):
        if self.schedule != "adaptive":
            return super().trigger_stopping(message, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self.learning_rate:f}")
        return False


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with scikit-learn's bias correction folded into the step size."""

    def __init__(self, params, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.t = 0
        self.ms = [np.zeros(p.size, dtype=p.dtype) for p in params]
        self.vs = [np.zeros(p.size, dtype=p.dtype) for p in params]

    def step(self, *args, **kwargs):
        self.t += 1
        self._lr_t = (self.learning_rate_init * math.sqrt(1 - self.beta_2 ** self.t)
                      / (1 - self.beta_1 ** self.t))
        return super().step(*args, **kwargs)

    def _update(self, i, w, g, l2, l1, n_threads):
        return _nn_kernels.adam_step(w, g, self.ms[i], self.vs[i], self._lr_t, self.beta_1,
                                     self.beta_2, self.epsilon, l2, l1, n_threads)
