"""The MLP's layers and hidden activations, as objects the engine holds (``network.MLP``)."""
from dataclasses import dataclass

import numpy as np

from . import _kernels, _nn_kernels

__all__ = ["ACTIVATIONS", "Layer", "make_activation", "initial_weights"]


class ReLU:
    """ReLU, fused into the dropout site's pass: it adds the bias and clips, so an activation
    costs no pass of its own."""

    name = "relu"
    gate_in_output = True  # output > 0 exactly where a unit was kept and active

    def activate(self, z, bias, n_threads):
        """What is left to the site's pass: ``(bias, relu)``."""
        return bias, True

    def backward(self, grad, out, scale, grad_bias, n_threads):
        """grad *= scale * f'(z), read from the output ``out``, in place; column sums into
        ``grad_bias``."""
        _kernels.gate_colsum(grad, out, grad, scale, grad_bias, n_threads)
        return grad


class Smooth:
    """identity, logistic, tanh or SELU: a pass of its own (bias included) before dropout;
    the derivative comes from the output, so a dropped unit needs its mask applied again."""

    gate_in_output = False

    def __init__(self, name):
        self.name, self._code = name, _nn_kernels.ACTIVATIONS[name]

    def activate(self, z, bias, n_threads):
        _nn_kernels.activate(z, bias, self._code, n_threads)
        return None, False

    def backward(self, grad, out, scale, grad_bias, n_threads):
        _nn_kernels.derivative_colsum(grad, out, scale, self._code, grad_bias, n_threads)
        return grad


ACTIVATIONS = ("relu", *sorted(_nn_kernels.ACTIVATIONS))


def make_activation(name):
    if name == "relu":
        return ReLU()
    if name not in _nn_kernels.ACTIVATIONS:
        raise ValueError(f"activation must be 'relu' or one of "
                         f"{sorted(_nn_kernels.ACTIVATIONS)}, got {name!r}")
    return Smooth(name)


def initial_weights(fan_in, fan_out, init, activation, rs, logistic=False):
    """(coefs (fan_in, fan_out), bias) as ``init`` draws them from ``rs``."""
    if init in ("he", "lecun"):
        gain = 2.0 if init == "he" else 1.0
        return rs.normal(0.0, np.sqrt(gain / fan_in), (fan_in, fan_out)), np.zeros(fan_out)
    # scikit-learn's Glorot uniform: factor 2 for logistic hidden units (every layer, as
    # scikit-learn draws them) and for a sigmoid output, 6 otherwise
    factor = 2.0 if (activation == "sigmoid" or logistic) else 6.0
    bound = np.sqrt(factor / (fan_in + fan_out))
    return rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)


@dataclass(eq=False)
class Layer:
    """One affine layer: its parameters, the dropout site at its input, the noise on its
    weights, and its activation (None for the output layer, fused with the loss)."""

    weights: np.ndarray  # (fan_out, fan_in), C-contiguous: one row per unit, as torch's Linear
    bias: np.ndarray     # (fan_out,)
    site: object         # a _sites class: the noise on this layer's input
    weight_noise: object  # _sites.WeightMask (DropConnect) or NoWeightNoise
    activation: object = None

    @property
    def coefs(self):
        """(fan_in, fan_out): the layout scikit-learn users know, a view on the weights."""
        return self.weights.T

    def __repr__(self):
        fan_out, fan_in = self.weights.shape
        act = "output" if self.activation is None else self.activation.name
        return f"Layer({fan_in} -> {fan_out}, {act}, input {self.site!r})"
