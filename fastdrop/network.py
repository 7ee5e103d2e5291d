"""The MLP engine under the estimator: parameters, buffers, forward and backward passes.

Layout: ``sizes = [n_features, h_1, ..., h_H, n_outputs]``; layer ``l`` maps ``sizes[l]`` to
``sizes[l + 1]`` with ``intercepts[l]`` and weights stored unit-major, as PyTorch's Linear does:
``weights[l]`` is C-contiguous (fan_out, fan_in), one row per unit, so a batch-mode unit mask
keeps whole rows (row copies, and row-contiguous optimizer steps). ``coefs[l]`` is its
transpose, the (fan_in, fan_out) view scikit-learn users know. Hidden units are ReLU (fused
into the dropout kernels), or identity, logistic or tanh (a pass of their own before dropout;
their backward applies the recomputed mask, then the derivative from the output); the
output layer is fused with its loss: softmax or independent sigmoids with the cross-entropy,
identity with the squared error, exp with the Poisson deviance.

Dropout sites are the inputs of every layer: site 0 is the network input (``input_dropout``),
site ``l`` the output of hidden layer ``l``. Each site has its own seed, and a training batch
uses the optimizer's step counter as the draw's step, so a fit is reproducible from its seeds.

* ``element`` mode: a fresh Philox mask per example and unit, fused with bias + ReLU.
* ``batch`` mode (Graham et al. 2015, "Efficient batchwise dropout training using submatrices"):
  one unit mask per mini-batch and site; the GEMMs run on the kept rows/columns only, so an epoch
  gets cheaper as p grows. It computes exactly what element mode would with that unit mask
  shared by all examples (tested against a numpy reference).

* ``dropout_kind`` "gaussian" or "alpha" (element mode only): the site's noise is a pass of
  its own after the activation, into a buffer of its own (``Workspace.noisy``), so the backward
  pass has the activation's output for its derivative and recomputes the noise from
  (seed, step). Inference is the identity for both.
* ``dropconnect``: each layer's weights get a fresh mask per training batch (draw
  ``2**62 + step`` of the layer's input site's seed), copied masked and scaled into
  ``Workspace.masked_weights``; the weight gradient gets the same mask, the bias none.

The GEMMs are numpy ``matmul`` with ``out=`` into buffers allocated once per batch size
(:class:`Workspace`); everything element-wise is a fused Cython kernel.
"""
import threading

import numpy as np

from . import _kernels, _nn_kernels
from ._plumbing import (EMPTY_BITS, NO_BIAS, alpha_dropout_params, alpha_into, gaussian_table,
                        keep_threshold, packed_words, train_scale, unpack)
from .optim import SubmatrixCopy, SubmatrixGradient

__all__ = ["MLP", "Workspace"]

ONE = _kernels.THRESHOLD_ONE
_MC_STEP_BASE = 2**63  # Monte-Carlo prediction draws live far from the training steps
_DROPCONNECT_STEP_BASE = 2**62  # and DropConnect's weight masks from the units' masks
DROPOUT_KINDS = ("bernoulli", "gaussian", "alpha")
_PREDICT_CHUNK = 2048  # rows per prediction pass (a multiple of 64 keeps mask words aligned;
# larger chunks gained nothing measurable and double the scratch each thread keeps)
# output layer -> its fused activation + loss kernel (targets: class indices for softmax, a
# (rows, outputs) float matrix otherwise)
_OUTPUT_LOSSES = {"softmax": _nn_kernels.softmax_xent, "sigmoid": _nn_kernels.sigmoid_xent,
                  "identity": _nn_kernels.squared_error, "exp": _nn_kernels.poisson_deviance}


def _view(flat, rows, cols):
    """A C-contiguous (rows, cols) view on the front of a flat buffer."""
    return flat[: rows * cols].reshape(rows, cols)


class BatchPlan:
    """Batch mode's kept units, step by step, and the one piece of state that crosses steps.

    With ``prefetch`` the training loop promises that nothing but the layer-wise optimizer
    step changes the weights between two steps. Each step then draws the next step's masks
    (:meth:`plan_next`) and names, per layer, where the optimizer leaves the next step's kept
    submatrix while each updated row is in cache (:meth:`copy_target`, then :meth:`left`);
    the next forward pass uses it instead of gathering it again (:meth:`gathered`)."""

    def __init__(self, net, sub_weights, prefetch):
        self.net, self.sub_weights, self.prefetch = net, sub_weights, prefetch
        widths = net.sizes[1:]
        # position of each layer's output unit among the kept ones (-1: dropped), for this
        # step and for the next one
        self.positions = [np.empty(w, dtype=np.int64) for w in widths]
        self._next_positions = [np.empty(w, dtype=np.int64) for w in widths]
        self._next_kept, self._next_step = None, -1
        # the step whose kept submatrix sub_weights[l] holds, already in place (-1: none)
        self._ready_step = [-1] * net.n_layers
        self._copy_next = [None] * net.n_layers

    def kept(self, step):
        """Per site, the kept unit indices of ``step`` (drawn ahead by the previous step, or
        now); ``positions`` is set to match."""
        if self._next_step == step:
            kept = self._next_kept
            self.positions, self._next_positions = self._next_positions, self.positions
        else:
            kept = self.net.kept_units(step)
            _fill_positions(self.positions, kept)
        self._next_step = -1
        return kept

    def gathered(self, l, step):
        """Whether layer ``l``'s kept submatrix for ``step`` is already in sub_weights[l]
        (then it is used up: the next step needs its own)."""
        ready = self._ready_step[l] == step
        self._ready_step[l] = -1
        return ready

    def plan_next(self, step, stepping):
        """Draw step + 1's masks and where each layer's update leaves its kept submatrix;
        nothing when prefetching is off or no layer-wise step (``stepping``) follows."""
        net = self.net
        if not (self.prefetch and stepping):
            self._copy_next = [None] * net.n_layers
            return
        nxt = net.kept_units(step + 1)
        _fill_positions(self._next_positions, nxt)
        self._next_kept, self._next_step = nxt, step + 1
        self._copy_next = [SubmatrixCopy(self._next_positions[l], nxt[l],
                                         _view(self.sub_weights[l], nxt[l + 1].size,
                                               nxt[l].size))
                           for l in range(net.n_layers)]

    def copy_target(self, l):
        """Where layer ``l``'s optimizer update copies the next step's kept submatrix (a
        SubmatrixCopy), or None."""
        return self._copy_next[l]

    def left(self, l):
        """The optimizer has left layer ``l``'s next kept submatrix in place."""
        self._ready_step[l] = self._next_step


def _fill_positions(positions, kept):
    for pos, k in zip(positions, kept[1:]):
        pos.fill(-1)
        pos[k] = np.arange(k.size)


class Workspace:
    """Every buffer one training batch needs, allocated once for a maximum batch size.
    ``prefetch``: see :class:`BatchPlan` (batch mode only)."""

    def __init__(self, net, batch_size, prefetch=False):
        dt, sizes = net.dtype, net.sizes
        self.x = np.empty((batch_size, sizes[0]), dtype=dt)
        # hidden activations and their gradients, flat so batch mode can view (m, n_kept)
        self.acts = [np.empty(batch_size * w, dtype=dt) for w in sizes[1:-1]]
        self.dacts = [np.empty(batch_size * w, dtype=dt) for w in sizes[1:-1]]
        self.logits = np.empty((batch_size, sizes[-1]), dtype=dt)
        self.grad_weight_buffers = [np.empty_like(w) for w in net.weights]
        # what the last pass produced, per layer, in the weights' layout: an array, or in
        # batch mode the kept submatrix (SubmatrixGradient: the optimizer expands it by row)
        self.grad_weights = list(self.grad_weight_buffers)
        self.grad_intercepts = [np.empty_like(b) for b in net.intercepts]
        # a noisy copy of each hidden layer's output (Gaussian or alpha dropout at its site)
        self.noisy = [np.empty(batch_size * w, dtype=dt) if net.noise_at(l + 1) else None
                      for l, w in enumerate(sizes[1:-1])]
        self.masked_weights = ([np.empty_like(w) for w in net.weights]
                               if net.dropconnect_threshold < ONE else None)
        self.batch_mode = net.dropout_mode == "batch"
        if self.batch_mode:
            self.x_kept = np.empty(batch_size * sizes[0], dtype=dt)
            self.sub_weights = [np.empty(w.size, dtype=dt) for w in net.weights]
            self.sub_grads = [np.empty(w.size, dtype=dt) for w in net.weights]
            self.sub_bias = [np.empty(b.size, dtype=dt) for b in net.intercepts]
            self.sub_dbias = [np.empty(b.size, dtype=dt) for b in net.intercepts]
            self.plan = BatchPlan(net, self.sub_weights, prefetch)

    def dense_grad_coefs(self):
        """The weight gradients of the last pass as full arrays in the ``coefs`` layout."""
        return [(g.to_dense(d.shape) if isinstance(g, SubmatrixGradient) else g).T
                for g, d in zip(self.grad_weights, self.grad_weight_buffers)]


class MLP:
    """A ReLU multilayer perceptron with fused dropout; the engine under MLPClassifier.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_features, hidden..., n_outputs]``.
    output : {"softmax", "sigmoid", "identity", "exp"}
        The output layer and its loss: softmax + cross-entropy, independent sigmoids +
        binary cross-entropy, identity + squared error, or exp + half Poisson deviance.
    dropout : sequence of float
        Drop probability per site: ``[input, hidden_1, ..., hidden_H]``.
    dropout_mode : {"element", "batch"}
    dropout_scale : {"inverted", "classic"}
    dtype : float32 or float64
    init : {"glorot", "he", "lecun"}
        Glorot-uniform as scikit-learn draws it, He-normal, or LeCun-normal (SELU's).
    activation : {"relu", "identity", "logistic", "tanh", "selu"}
        The hidden units' activation.
    dropout_kind : {"bernoulli", "gaussian", "alpha"}
        The noise at every site with a rate > 0: Bernoulli masks, multiplicative Gaussian noise
        of variance p / (1 - p), or alpha dropout (for SELU networks).
    dropconnect : float in [0, 1)
        Drop rate of every layer's weights, one mask per training batch.
    random_state : numpy.random.RandomState
        Draws the initial weights and the per-site seeds.
    """

    def __init__(self, sizes, *, output="softmax", dropout=None, dropout_mode="element",
                 dropout_scale="inverted", dtype=np.float32, init="glorot", activation="relu",
                 dropout_kind="bernoulli", dropconnect=0.0, random_state):
        self.sizes = [int(s) for s in sizes]
        self.output = output
        if activation != "relu" and activation not in _nn_kernels.ACTIVATIONS:
            raise ValueError(f"activation must be 'relu' or one of "
                             f"{sorted(_nn_kernels.ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.dtype = np.dtype(dtype)
        self.dropout_mode = dropout_mode
        self.dropout_scale = dropout_scale
        n_sites = len(self.sizes) - 1
        rates = [0.0] * n_sites if dropout is None else [float(p) for p in dropout]
        if len(rates) != n_sites:
            raise ValueError(f"dropout must have one rate per site ({n_sites}), got {len(rates)}")
        self.rates = rates
        self.thresholds = [keep_threshold(1.0 - p) for p in rates]
        self.dropout_kind = dropout_kind
        self.dropconnect_threshold = keep_threshold(1.0 - float(dropconnect))
        self._check_noise()
        self.weights, self.intercepts = [], []
        for fan_in, fan_out, is_output in zip(self.sizes[:-1], self.sizes[1:],
                                               [False] * (n_sites - 1) + [True]):
            c, b = self._init_layer(fan_in, fan_out, init, output if is_output else activation,
                                    random_state, logistic=activation == "logistic")
            self.weights.append(np.ascontiguousarray(c.T, dtype=self.dtype))
            self.intercepts.append(b.astype(self.dtype))
        self.seeds = [int(s) for s in random_state.randint(0, 2**63, size=n_sites,
                                                            dtype=np.int64)]

    def _check_noise(self):
        if self.dropout_kind not in DROPOUT_KINDS:
            raise ValueError(f"dropout_kind must be one of {DROPOUT_KINDS}, got "
                             f"{self.dropout_kind!r}")
        kind = f"dropout_kind={self.dropout_kind!r}"
        noisy = self.dropout_kind != "bernoulli" and self.has_dropout
        dropconnect = f"dropconnect={1 - self.dropconnect_threshold / ONE:.4g}"
        for name, value, what, clash, why in (
                ("dropout_mode", "batch", kind, noisy,
                 "batch mode drops whole units, and this noise is not a unit mask"),
                ("dropout_mode", "batch", dropconnect, self.dropconnect_threshold < ONE,
                 "DropConnect masks single weights: no submatrix to skip to"),
                ("dropout_scale", "classic", kind, noisy,
                 "Gaussian and alpha noise keep the mean themselves")):
            if clash and getattr(self, name) == value:
                raise ValueError(f"{name}={value!r} does not combine with {what}: {why}")

    @staticmethod
    def _init_layer(fan_in, fan_out, init, activation, rs, logistic=False):
        if init in ("he", "lecun"):
            gain = 2.0 if init == "he" else 1.0
            return (rs.normal(0.0, np.sqrt(gain / fan_in), (fan_in, fan_out)),
                    np.zeros(fan_out))
        # scikit-learn's Glorot uniform: factor 2 for logistic hidden units (every layer, as
        # scikit-learn draws them) and for a sigmoid output, 6 otherwise
        factor = 2.0 if (activation == "sigmoid" or logistic) else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        return rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)

    # ------------------------------------------------------------------ shapes
    @property
    def coefs(self):
        """Per layer, the (fan_in, fan_out) weight matrix: a view on ``weights[l].T``."""
        return [w.T for w in self.weights]

    @property
    def n_layers(self):
        return len(self.weights)

    @property
    def has_dropout(self):
        return any(t < ONE for t in self.thresholds)

    def noise_at(self, site):
        """Whether site ``site`` takes Gaussian or alpha noise (a pass of its own)."""
        return self.dropout_kind != "bernoulli" and self.thresholds[site] < ONE

    # ------------------------------------------------------------------ dropout scales
    def keep_prob(self, site):
        return self.thresholds[site] / ONE

    def train_scale(self, site):
        return train_scale(self.thresholds[site], self.dropout_scale)

    def test_scale(self, site):
        return self.keep_prob(site) if self.dropout_scale == "classic" else 1.0

    # ------------------------------------------------------------------ training pass
    def forward_backward(self, ws, m, target, step, n_threads, on_layer=None,
                         on_forward=None, weights=None):
        """Loss (summed over the batch's m rows in ws.x) and gradients of the mean loss.

        Gradients land in ``ws.grad_weights`` (arrays like ``weights``, or SubmatrixGradient
        in batch mode; ``ws.dense_grad_coefs()`` expands them) and ``ws.grad_intercepts``,
        with no penalty terms: the optimizer adds those. ``on_layer(l)``, when given, is called
        as soon as layer ``l``'s gradients are complete and its weights are no longer needed
        by the pass, so the optimizer can step it while its gradient is still in cache;
        ``on_forward()`` between the forward and the backward half (a timer's lap).
        ``target`` is the class index per row (softmax) or a (rows, outputs) matrix.
        ``weights`` (m,), optional, weighs the rows as scikit-learn's sample_weight: the
        loss returned is then sum_i w_i loss_i and the gradients are of it over sum_i w_i.
        """
        if ws.batch_mode and self.has_dropout:
            return self._forward_backward_batch(ws, m, target, step, n_threads, on_layer,
                                                on_forward, weights)
        loss = self._forward_element(ws, m, target, step, n_threads, weights)
        if on_forward is not None:
            on_forward()
        self._backward_element(ws, m, step, n_threads, on_layer)
        return loss

    def _forward_element(self, ws, m, target, step, n_threads, weights):
        x = ws.x[:m]
        if self.noise_at(0):  # input noise, in place on the batch copy
            self._noise(x, x, 0, step, n_threads)
        elif self.thresholds[0] < ONE:
            self._drop(x, x, 0, step, None, False, n_threads)
        a = x
        for l in range(self.n_layers - 1):
            z = _view(ws.acts[l], m, self.sizes[l + 1])
            np.matmul(a, self._train_weights(ws, l, step, n_threads).T, out=z)
            bias, relu = self._activate(z, self.intercepts[l], n_threads)
            if self.noise_at(l + 1):  # the activation here, the noise into a buffer of its own
                if relu or bias is not None:
                    self._scale_bias_relu(z, z, 1.0, bias, relu, n_threads)
                a = _view(ws.noisy[l], m, self.sizes[l + 1])
                self._noise(z, a, l + 1, step, n_threads)
                continue
            if relu or bias is not None or self.thresholds[l + 1] < ONE:
                self._drop(z, z, l + 1, step, bias, relu, n_threads)
            a = z
        logits = ws.logits[:m]
        np.matmul(a, self._train_weights(ws, self.n_layers - 1, step, n_threads).T, out=logits)
        return self._output_loss(logits, self.intercepts[-1], target, want_grad=True,
                                 grad_bias=ws.grad_intercepts[-1], weights=weights)

    def _drop(self, src, dst, site, step, bias, relu, n_threads, first_word=0, scale=None):
        """dst = dropout_site((src + bias), relu), scaled by ``scale`` (default: the training
        scale); no mask is stored."""
        _kernels.forward(src.reshape(-1), dst.reshape(-1), EMPTY_BITS, seed=self.seeds[site],
                         step=step, threshold=self.thresholds[site],
                         scale=self.train_scale(site) if scale is None else scale,
                         bias=self._bias(bias), relu=relu, n_threads=n_threads,
                         first_word=first_word)

    def _bias(self, bias):
        return bias if bias is not None else NO_BIAS[self.dtype]

    def _noise(self, src, dst, site, step, n_threads, first_word=0):
        """dst = the site's Gaussian or alpha noise applied to src."""
        seed, threshold = self.seeds[site], self.thresholds[site]
        if self.dropout_kind == "gaussian":
            _kernels.gaussian(src.reshape(-1), dst.reshape(-1), seed, step,
                              gaussian_table(self.rates[site], self.dtype), n_threads,
                              first_word=first_word)
        else:
            alpha_into(src, dst, EMPTY_BITS, threshold, seed, step, n_threads, first_word)

    def _noise_backward(self, grad, site, step, n_threads):
        """grad (at the noise's output) becomes the gradient at its input, in place."""
        if self.dropout_kind == "gaussian":
            self._noise(grad, grad, site, step, n_threads)
        else:  # keep ? grad * a : 0, a the mask's scale
            a = alpha_dropout_params(self.thresholds[site] / ONE)[0]
            self._drop(grad, grad, site, step, None, False, n_threads, scale=a)

    def _mask_weights(self, src, dst, l, step, n_threads):
        """dst = DropConnect's mask of layer l's weights (draw ``step``) applied to src."""
        t = self.dropconnect_threshold
        _kernels.forward(src.reshape(-1), dst.reshape(-1), EMPTY_BITS, seed=self.seeds[l],
                         step=step, threshold=t, scale=ONE / t, bias=NO_BIAS[self.dtype],
                         relu=False, n_threads=n_threads)
        return dst

    def _train_weights(self, ws, l, step, n_threads):
        """Layer l's weights for this training batch: masked under DropConnect."""
        if ws.masked_weights is None:
            return self.weights[l]
        self._mask_weights(self.weights[l], ws.masked_weights[l], l,
                           _DROPCONNECT_STEP_BASE + step, n_threads)
        return ws.masked_weights[l]

    def _activate(self, z, bias, n_threads):
        """The hidden activation's share of the pass after a layer's product: ReLU is left
        to the dropout kernel, fused with the bias (returns ``(bias, True)``); any other is
        applied here with the bias, in place, before dropout (returns ``(None, False)``)."""
        if self.activation == "relu":
            return bias, True
        _nn_kernels.activate(z, self._bias(bias), _nn_kernels.ACTIVATIONS[self.activation],
                             n_threads)
        return None, False

    def _scale_bias_relu(self, src, dst, scale, bias, relu, n_threads):
        """dst = relu(src (+ bias)) * scale: the kernel's pass with nothing dropped."""
        _kernels.forward(src.reshape(-1), dst.reshape(-1), EMPTY_BITS, seed=0, step=0,
                         threshold=ONE, scale=scale, bias=self._bias(bias), relu=relu,
                         n_threads=n_threads)

    def _backward_element(self, ws, m, step, n_threads, on_layer):
        # d(mean loss)/d(logits) is in ws.logits after _output_loss, and the output bias's
        # gradient (its column sums) in ws.grad_intercepts[-1]; each hidden layer's bias
        # gradient comes out of the gate that makes its dz
        dz = ws.logits[:m]
        for l in range(self.n_layers - 1, -1, -1):
            h = None if l == 0 else _view(ws.acts[l - 1], m, self.sizes[l])
            a = ws.x[:m] if l == 0 else (_view(ws.noisy[l - 1], m, self.sizes[l])
                                         if self.noise_at(l) else h)
            grad = ws.grad_weight_buffers[l]
            np.matmul(dz.T, a, out=grad)
            w = self.weights[l]
            if ws.masked_weights is not None:  # the weights' mask on their gradient
                self._mask_weights(grad, grad, l, _DROPCONNECT_STEP_BASE + step, n_threads)
                w = ws.masked_weights[l]
            ws.grad_weights[l] = grad
            da = (self._input_gradient(dz, w, a, l, n_threads,
                                       out=_view(ws.dacts[l - 1], m, self.sizes[l]),
                                       grad_bias=ws.grad_intercepts[l - 1], mask_step=step,
                                       h=h)
                  if l > 0 else None)
            if on_layer is not None:
                on_layer(l)
            dz = da

    def _input_gradient(self, dz, w, a, l, n_threads, out, grad_bias, mask_step=None, h=None):
        """The gradient at layer l's input a (through its activation and dropout), into out,
        and its column sums (the bias gradient of the layer that made a) into grad_bias.
        ``mask_step``: the element-mode draw, whose mask other activations than ReLU apply
        again (None in batch mode: its submatrices hold kept units only); under Gaussian or
        alpha noise, the draw recomputed, and ``h`` the activation's output before it."""
        np.matmul(dz, w, out=out)
        if mask_step is not None and self.noise_at(l):
            self._noise_backward(out, l, mask_step, n_threads)
            return self._activation_backward(out, h, 1.0, grad_bias, n_threads)
        if self.activation != "relu" and mask_step is not None and self.thresholds[l] < ONE:
            self._drop(out, out, l, mask_step, None, False, n_threads, scale=1.0)  # dropped: 0
        return self._activation_backward(out, a, self.train_scale(l), grad_bias, n_threads)

    def _activation_backward(self, grad, a, scale, grad_bias, n_threads):
        """grad *= scale * f'(z) from the output a = f(z) * scale (or 0 where dropped), in
        place, and its column sums into grad_bias."""
        if self.activation == "relu":
            # a > 0 exactly where the unit was kept and active: a is the whole gate
            _kernels.gate_colsum(grad, a, grad, scale, grad_bias, n_threads)
        else:
            _nn_kernels.derivative_colsum(grad, a, scale,
                                          _nn_kernels.ACTIVATIONS[self.activation], grad_bias,
                                          n_threads)
        return grad

    def _output_loss(self, logits, bias, target, want_grad, grad_bias=None, weights=None):
        return _OUTPUT_LOSSES[self.output](logits, bias, target, want_grad, grad_bias, weights)

    # ------------------------------------------------------------------ batch mode
    def kept_units(self, step):
        """Batch mode: the kept unit indices of every site for this step (output: all)."""
        kept = []
        for site, width in enumerate(self.sizes[:-1]):
            t = self.thresholds[site]
            if t >= ONE:
                kept.append(np.arange(width, dtype=np.int64))
                continue
            words = packed_words(width, t, self.seeds[site], step, 0, 1)
            kept.append(np.flatnonzero(unpack(words, width)).astype(np.int64))
        kept.append(np.arange(self.sizes[-1], dtype=np.int64))
        return kept

    def _forward_backward_batch(self, ws, m, target, step, n_threads, on_layer, on_forward,
                                weights):
        """Batch mode: the pass runs on the kept units' submatrices only."""
        kept = ws.plan.kept(step)
        loss, inputs = self._forward_batch(ws, m, target, step, kept, n_threads, weights)
        if on_forward is not None:
            on_forward()
        ws.plan.plan_next(step, on_layer is not None)
        self._backward_batch(ws, m, kept, inputs, n_threads, on_layer)
        return loss

    def _forward_batch(self, ws, m, target, step, kept, n_threads, weights):
        """The loss, and each layer's input on the kept units (the backward half needs
        them); the kept output gradient is left in ws.logits."""
        a = self._kept_input(ws, m, kept[0], n_threads)
        inputs = [a]
        for l in range(self.n_layers):
            k_in, k_out = kept[l].size, kept[l + 1].size
            w = _view(ws.sub_weights[l], k_out, k_in)  # kept units' rows, kept inputs' columns
            if not ws.plan.gathered(l, step):  # not left there by the previous step
                _nn_kernels.gather(self.weights[l], kept[l + 1], kept[l], w, n_threads)
            b = ws.sub_bias[l][:k_out]
            np.take(self.intercepts[l], kept[l + 1], out=b)
            if l == self.n_layers - 1:
                logits = ws.logits[:m]
                np.matmul(a, w.T, out=logits)
                return self._output_loss(logits, b, target, want_grad=True,
                                         grad_bias=ws.sub_dbias[l][:k_out],
                                         weights=weights), inputs
            z = _view(ws.acts[l], m, k_out)
            np.matmul(a, w.T, out=z)
            bias, relu = self._activate(z, b, n_threads)
            if relu or bias is not None or self.train_scale(l + 1) != 1.0:
                self._scale_bias_relu(z, z, self.train_scale(l + 1), bias, relu, n_threads)
            inputs.append(z)
            a = z

    def _kept_input(self, ws, m, kept_inputs, n_threads):
        """The batch's kept input columns, scaled for training (the batch itself, uncopied,
        without input dropout)."""
        if self.thresholds[0] >= ONE:
            a = ws.x[:m]
        else:
            a = _view(ws.x_kept, m, kept_inputs.size)
            np.take(ws.x[:m], kept_inputs, axis=1, out=a)
        if self.train_scale(0) != 1.0:
            self._scale_bias_relu(a, a, self.train_scale(0), None, False, n_threads)
        return a

    def _backward_batch(self, ws, m, kept, inputs, n_threads, on_layer):
        dz = ws.logits[:m]
        for l in range(self.n_layers - 1, -1, -1):
            k_in, k_out = kept[l].size, kept[l + 1].size
            a = inputs[l]
            gw = _view(ws.sub_grads[l], k_out, k_in)
            np.matmul(dz.T, a, out=gw)
            ws.grad_weights[l] = SubmatrixGradient(gw, ws.plan.positions[l], kept[l])
            ws.grad_intercepts[l].fill(0)  # sub_dbias[l]: from the output loss or the gate
            ws.grad_intercepts[l][kept[l + 1]] = ws.sub_dbias[l][:k_out]
            da = (self._input_gradient(dz, _view(ws.sub_weights[l], k_out, k_in), a, l,
                                       n_threads, out=_view(ws.dacts[l - 1], m, k_in),
                                       grad_bias=ws.sub_dbias[l - 1][:k_in])
                  if l > 0 else None)
            if on_layer is not None:
                on_layer(l)
            dz = da

    # ------------------------------------------------------------------ prediction
    def predict_output(self, X, n_threads, mc_step=None, reuse_output=False):
        """Output-layer activations (softmax or sigmoid) for X, in chunks of rows.

        Deterministic (weight scaling) by default; with ``mc_step`` a stochastic pass with
        element-wise masks of draw ``2**63 + mc_step`` (Monte-Carlo dropout), identical
        whatever the chunking. A new array, or with ``reuse_output`` the calling thread's
        output buffer, which its next call of the same size overwrites (for callers that
        copy it at once, as the estimators' float64 conversion does).
        """
        X = np.ascontiguousarray(X, dtype=self.dtype)  # no copy when it is already
        n = X.shape[0]
        chunk = min(n, _PREDICT_CHUNK) or 1
        # the input as it is (C-contiguous, of our dtype) unless the pass changes it
        copy_input = self._changes_input(mc_step)
        out, bufs = self._predict_buffers(n, chunk, copy_input)
        if not reuse_output:
            out = np.empty_like(out)
        weights = self._predict_weights(mc_step, n_threads)
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            a = X[start:start + rows]
            if copy_input:
                a = _view(bufs[0], rows, self.sizes[0])
                np.copyto(a, X[start:start + rows])
                a = self._predict_layer(a, a, 0, None, False, start, mc_step, n_threads)
            for l in range(self.n_layers - 1):
                z = _view(bufs[l + 1], rows, self.sizes[l + 1])
                np.matmul(a, weights[l].T, out=z)
                bias, relu = self._activate(z, self.intercepts[l], n_threads)
                a = self._predict_layer(z, z, l + 1, bias, relu, start, mc_step, n_threads)
            logits = out[start:start + rows]
            np.matmul(a, weights[-1].T, out=logits)
            self._output_loss(logits, self.intercepts[-1], bufs[-1], want_grad=False)
        return out

    def _changes_input(self, mc_step):
        """Whether a prediction pass scales or draws noise on the input (site 0)."""
        if self.thresholds[0] >= ONE:
            return False
        return mc_step is not None or (not self.noise_at(0) and self.test_scale(0) != 1.0)

    def _predict_buffers(self, n, chunk, copy_input):
        """The output (n rows) and per-layer scratch (chunk rows; the input's only when the
        pass copies it) of a prediction pass, kept per thread between calls: a repeated call
        of one batch size allocates nothing, and predictions on several Python threads never
        share scratch. The output is handed out only to callers that copy it at once
        (``reuse_output``). The last entry is the output kernel's empty target."""
        local = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        cached = getattr(local, "predict", None)
        if cached is None or cached[0] != (n, chunk, copy_input):
            no_target = (np.empty(0, dtype=np.int64) if self.output == "softmax"
                         else np.empty((0, self.sizes[-1]), dtype=self.dtype))
            bufs = [np.empty(chunk * w, dtype=self.dtype) if l or copy_input else None
                    for l, w in enumerate(self.sizes[:-1])]
            cached = local.predict = ((n, chunk, copy_input),
                                      np.empty((n, self.sizes[-1]), self.dtype),
                                      bufs + [no_target])
        return cached[1], cached[2]

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_local", None)  # per-thread scratch: neither picklable nor worth keeping
        return state

    def _predict_weights(self, mc_step, n_threads):
        """The weights of a prediction pass: as they are (DropConnect's inverted scaling
        makes them the masks' mean), or masked once for a whole Monte-Carlo pass."""
        if mc_step is None or self.dropconnect_threshold >= ONE:
            return self.weights
        step = _MC_STEP_BASE + _DROPCONNECT_STEP_BASE + mc_step
        return [self._mask_weights(w, np.empty_like(w), l, step, n_threads)
                for l, w in enumerate(self.weights)]

    def _predict_layer(self, src, dst, site, bias, relu, row0, mc_step, n_threads):
        first_word = row0 * self.sizes[site] // 64  # row0 is a multiple of 64
        if self.noise_at(site):  # inference is the identity; Monte-Carlo draws the noise
            if bias is not None or relu:
                self._scale_bias_relu(src, dst, 1.0, bias, relu, n_threads)
            if mc_step is not None:
                self._noise(dst, dst, site, _MC_STEP_BASE + mc_step, n_threads, first_word)
            return dst
        if mc_step is not None and self.thresholds[site] < ONE:
            self._drop(src, dst, site, _MC_STEP_BASE + mc_step, bias, relu, n_threads,
                       first_word)
        elif bias is not None or relu or self.test_scale(site) != 1.0:
            self._scale_bias_relu(src, dst, self.test_scale(site), bias, relu, n_threads)
        return dst

    def __repr__(self):
        rates = [round(1 - t / ONE, 4) for t in self.thresholds]
        dc = round(1 - self.dropconnect_threshold / ONE, 4)
        return (f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
                f"output={self.output!r}, dropout={rates}, kind={self.dropout_kind!r}, "
                f"dropconnect={dc}, "
                f"mode={self.dropout_mode!r}, scale={self.dropout_scale!r}, "
                f"dtype={self.dtype.name})")

