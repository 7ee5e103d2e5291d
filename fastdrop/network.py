"""The MLP engine under the estimators: layers, buffers, forward and backward passes.

Layout: ``sizes = [n_features, h_1, ..., h_H, n_outputs]``; layer ``l`` maps ``sizes[l]`` to
``sizes[l + 1]``. Each layer is a :class:`fastdrop._layers.Layer`: weights stored unit-major,
as PyTorch's Linear does (C-contiguous (fan_out, fan_in), one row per unit, so a batch-mode
unit mask keeps whole rows: row copies, and row-contiguous optimizer steps), its bias, its
hidden activation, the dropout site at its input and the noise on its weights. ``coefs[l]``
is the transpose, the (fan_in, fan_out) view scikit-learn users know. ReLU is fused into the
dropout kernels; identity, logistic, tanh and SELU take a pass of their own before dropout.
The output layer is fused with its loss: softmax or independent sigmoids with the
cross-entropy, identity with the squared error, exp with the Poisson deviance.

Dropout sites (:mod:`fastdrop._sites`) are the inputs of every layer: site 0 is the network
input (``input_dropout``), site ``l`` the output of hidden layer ``l``. Each site is an
object of its kind (none, Bernoulli, Gaussian, alpha) with its own seed; a training batch
uses the optimizer's step counter as the draw's step, so a fit is reproducible from its
seeds. DropConnect is a :class:`~fastdrop._sites.WeightMask` on a layer's weights. The
engine calls the same methods on every site and never asks for its kind.

* ``element`` mode: fresh noise per example and unit.
* ``batch`` mode (Graham et al. 2015, "Efficient batchwise dropout training using submatrices"):
  one unit mask per mini-batch and site; the GEMMs run on the kept rows/columns only, so an epoch
  gets cheaper as p grows. It computes exactly what element mode would with that unit mask
  shared by all examples (tested against a numpy reference). Unit masks only (Bernoulli).

The GEMMs are numpy ``matmul`` with ``out=`` into buffers allocated once per batch size
(:class:`Workspace`), with their inner dimension split where OpenBLAS would cut it
differently on one thread and on several (:func:`gemm_into`); everything element-wise is a
fused Cython kernel.
"""
import threading

import numpy as np
from scipy import sparse

from . import _nn_kernels
from ._layers import Layer, initial_weights, make_activation
from ._sites import SITE_KINDS, make_site, make_weight_noise
from .optim import SubmatrixCopy, SubmatrixGradient

__all__ = ["MLP", "Workspace"]

DROPOUT_KINDS = tuple(SITE_KINDS)
_PREDICT_CHUNK = 2048  # rows per prediction pass (a multiple of 64 keeps mask words aligned;
# larger chunks gained nothing measurable and double the scratch each thread keeps)
# output layer -> its fused activation + loss kernel (targets: class indices for softmax, a
# (rows, outputs) float matrix otherwise)
_OUTPUT_LOSSES = {"softmax": _nn_kernels.softmax_xent, "sigmoid": _nn_kernels.sigmoid_xent,
                  "identity": _nn_kernels.squared_error, "exp": _nn_kernels.poisson_deviance,
                  "gaussian": _nn_kernels.gaussian_nll}


# Inner dimensions up to this go to BLAS whole; longer ones are split at a multiple of
# K_ALIGN (see gemm_into).
K_WHOLE, K_ALIGN = 256, 64
_tails = threading.local()  # per thread: a scratch array for the short part of a split


def gemm_into(a, b, out):
    """out = a @ b (dense 2-d arrays), with the same bits for any BLAS thread count.

    OpenBLAS blocks the inner dimension K in panels of at most GEMM_Q (256 to 512 on x86),
    and when K lies between GEMM_Q and twice that, its one-thread and multithreaded drivers
    cut it in two at different places (half rounded up to the kernel's unroll, against half
    rounded up to 1): float32 products with K = 784 differed in the last bits between 1
    and 2 threads, and so did whole fits. A K of at most K_WHOLE, or a multiple of
    K_ALIGN, is cut alike by both (tested over random shapes and 1-4 threads); any other K
    is computed as that multiple plus a short product of the rest, added after.
    """
    k = a.shape[1]
    if k <= K_WHOLE or k % K_ALIGN == 0:
        return np.matmul(a, b, out=out)
    k0 = k - k % K_ALIGN
    np.matmul(a[:, :k0], b[:k0], out=out)
    np.add(out, np.matmul(a[:, k0:], b[k0:], out=_tail(out)), out=out)
    return out


def _tail(out):
    buf = getattr(_tails, "buf", None)
    if buf is None or buf.dtype != out.dtype or buf.size < out.size:
        buf = _tails.buf = np.empty(out.size, dtype=out.dtype)
    return buf[: out.size].reshape(out.shape)


def _product_into(a, w, out):
    """out = a @ w.T; ``a`` dense, or a sparse batch of inputs (CSR: scipy's sparse x dense
    product, the first layer only)."""
    if sparse.issparse(a):
        np.copyto(out, a @ w.T)
    else:
        gemm_into(a, w.T, out)
    return out


def _weight_gradient_into(dz, a, out):
    """out = dz.T @ a, the weight gradient of a layer with input a (dense or sparse)."""
    if sparse.issparse(a):
        np.copyto(out, (a.T @ dz).T)
    else:
        gemm_into(dz.T, a, out)
    return out


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


def _site_buffer(site, rows, width, dtype):
    size = site.buffer_size(rows, width)
    return np.empty(size, dtype=dtype) if size else None


class Workspace:
    """Every buffer one training batch needs, allocated once for a maximum batch size.
    ``prefetch``: see :class:`BatchPlan` (batch mode only). With ``sparse_input`` the batch
    is a CSR matrix the caller puts in ``sparse_x``, and no dense input buffer is kept."""

    def __init__(self, net, batch_size, prefetch=False, sparse_input=False):
        dt, sizes = net.dtype, net.sizes
        self.x = None if sparse_input else np.empty((batch_size, sizes[0]), dtype=dt)
        self.sparse_x = None
        # hidden activations and their gradients, flat so batch mode can view (m, n_kept)
        self.acts = [np.empty(batch_size * w, dtype=dt) for w in sizes[1:-1]]
        self.dacts = [np.empty(batch_size * w, dtype=dt) for w in sizes[1:-1]]
        self.logits = np.empty((batch_size, sizes[-1]), dtype=dt)
        self.grad_weight_buffers = [np.empty_like(w) for w in net.weights]
        # what the last pass produced, per layer, in the weights' layout: an array, or in
        # batch mode the kept submatrix (SubmatrixGradient: the optimizer expands it by row)
        self.grad_weights = list(self.grad_weight_buffers)
        self.grad_intercepts = [np.empty_like(b) for b in net.intercepts]
        # each hidden site's output where its noise is a pass of its own (None: in place)
        self.site_out = [_site_buffer(net.layers[l + 1].site, batch_size, w, dt)
                         for l, w in enumerate(sizes[1:-1])]
        # each layer's DropConnect-masked weights (None: the weights as they are)
        self.masked_weights = [layer.weight_noise.buffer(layer.weights) for layer in net.layers]
        # the weights the last training pass used, and each layer's input in it
        self.used_weights = [None] * net.n_layers
        self.inputs = [None] * net.n_layers
        self.batch_mode = net.dropout_mode == "batch" and net.has_dropout
        if self.batch_mode:
            self.x_kept = np.empty(batch_size * sizes[0], dtype=dt)
            self.sub_weights = [np.empty(w.size, dtype=dt) for w in net.weights]
            self.sub_grads = [np.empty(w.size, dtype=dt) for w in net.weights]
            self.sub_bias = [np.empty(b.size, dtype=dt) for b in net.intercepts]
            self.sub_dbias = [np.empty(b.size, dtype=dt) for b in net.intercepts]
            self.plan = BatchPlan(net, self.sub_weights, prefetch)

    def batch_input(self, m):
        """The batch's m rows of input: the dense buffer's, or the sparse batch."""
        return self.x[:m] if self.sparse_x is None else self.sparse_x

    def dense_grad_coefs(self):
        """The weight gradients of the last pass as full arrays in the ``coefs`` layout."""
        return [(g.to_dense(d.shape) if isinstance(g, SubmatrixGradient) else g).T
                for g, d in zip(self.grad_weights, self.grad_weight_buffers)]


def _per_layer(attribute, doc):
    """A read-only list of one attribute of every layer."""
    return property(lambda net: [getattr(layer, attribute) for layer in net.layers], doc=doc)


class MLP:
    """A multilayer perceptron with fused dropout at every layer input; the engine under
    MLPClassifier and MLPRegressor.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_features, hidden..., n_outputs]``.
    output : {"softmax", "sigmoid", "identity", "exp", "gaussian"}
        The output layer and its loss: softmax + cross-entropy, independent sigmoids +
        binary cross-entropy, identity + squared error, exp + half Poisson deviance, or
        means and log variances (twice the targets' columns) + the Gaussian negative
        log-likelihood.
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

    Attributes
    ----------
    layers : list of :class:`fastdrop._layers.Layer`
        Each with its weights, bias, activation, input site and weight noise.
    sites : list
        The dropout site at each layer's input (``layers[l].site``).
    """

    def __init__(self, sizes, *, output="softmax", dropout=None, dropout_mode="element",
                 dropout_scale="inverted", dtype=np.float32, init="glorot", activation="relu",
                 dropout_kind="bernoulli", dropconnect=0.0, random_state):
        self.sizes = [int(s) for s in sizes]
        n_sites = len(self.sizes) - 1
        rates = [0.0] * n_sites if dropout is None else [float(p) for p in dropout]
        if len(rates) != n_sites:
            raise ValueError(f"dropout must have one rate per site ({n_sites}), got {len(rates)}")
        hidden_activation = make_activation(activation)
        self.output, self.activation, self.dtype = output, activation, np.dtype(dtype)
        self.dropout_mode, self.dropout_scale = dropout_mode, dropout_scale
        self.dropout_kind, self.rates, self.dropconnect = dropout_kind, rates, float(dropconnect)
        self._check_combinations()
        params = []
        for fan_in, fan_out, is_output in zip(self.sizes[:-1], self.sizes[1:],
                                               [False] * (n_sites - 1) + [True]):
            c, b = initial_weights(fan_in, fan_out, init, output if is_output else activation,
                                   random_state, logistic=activation == "logistic")
            params.append((np.ascontiguousarray(c.T, dtype=self.dtype), b.astype(self.dtype)))
        seeds = random_state.randint(0, 2**63, size=n_sites, dtype=np.int64)
        self.layers = []
        for l, ((w, b), p, seed) in enumerate(zip(params, rates, seeds)):
            site = make_site(dropout_kind, p, int(seed), dropout_scale, self.dtype)
            self.layers.append(Layer(w, b, site, make_weight_noise(self.dropconnect, site),
                                     hidden_activation if l < n_sites - 1 else None))

    # Combinations that cannot work: (parameter, its value, the clash in use, why). A clash
    # reads what the site kind is (SITE_KINDS), never branches on its name.
    _CLASHES = (
        ("dropout_mode", "batch",
         lambda net: any(net.rates) and not SITE_KINDS[net.dropout_kind].unit_mask,
         "batch mode drops whole units, and this noise is not a unit mask"),
        ("dropout_mode", "batch", lambda net: net.dropconnect > 0,
         "DropConnect masks single weights: no submatrix to skip to"),
        ("dropout_scale", "classic",
         lambda net: any(net.rates) and SITE_KINDS[net.dropout_kind].keeps_mean,
         "Gaussian and alpha noise keep the mean themselves"),
    )

    def _check_combinations(self):
        if self.dropout_kind not in SITE_KINDS:
            raise ValueError(f"dropout_kind must be one of {DROPOUT_KINDS}, got "
                             f"{self.dropout_kind!r}")
        for name, value, clash, why in self._CLASHES:
            if getattr(self, name) == value and clash(self):
                what = (f"dropconnect={self.dropconnect:.4g}" if "DropConnect" in why
                        else f"dropout_kind={self.dropout_kind!r}")
                raise ValueError(f"{name}={value!r} does not combine with {what}: {why}")

    # ------------------------------------------------------------------ shapes
    weights = _per_layer("weights", "Per layer, the (fan_out, fan_in) weights (the arrays).")
    intercepts = _per_layer("bias", "Per layer, the bias vector (the array).")
    coefs = _per_layer("coefs", "Per layer, the (fan_in, fan_out) view ``weights[l].T``.")
    sites = _per_layer("site", "The dropout site at each layer's input.")

    @property
    def seeds(self):
        """Each site's seed (DropConnect's masks use their layer's input site's)."""
        return [site.seed for site in self.sites]

    @seeds.setter
    def seeds(self, seeds):
        for site, seed in zip(self.sites, seeds, strict=True):
            site.seed = int(seed)

    @property
    def n_layers(self):
        return len(self.layers)

    @property
    def has_dropout(self):
        """Whether any site draws noise (DropConnect aside)."""
        return any(site.drops for site in self.sites)

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
        ``weights`` (m,), optional, weighs the rows as scikit-learn's sample_weight: the
        loss returned is then sum_i w_i loss_i and the gradients are of it over sum_i w_i.

        Parameters
        ----------
        ws : Workspace
            The fit's buffers; the batch's rows are in ``ws.x[:m]``.
        m : int
            Rows of the batch.
        target : ndarray
            The class index per row (softmax) or a (rows, outputs) matrix.
        step : int
            The training step: the draw of every dropout site's mask.
        n_threads : int
            Threads of the element-wise kernels.
        on_layer, on_forward : callable, optional
        weights : ndarray of shape (m,), optional

        Returns
        -------
        loss : float
            The batch's loss, summed over its rows (weighted by ``weights`` when given).
        """
        if ws.batch_mode:
            return self._forward_backward_batch(ws, m, target, step, n_threads, on_layer,
                                                on_forward, weights)
        loss = self._forward_element(ws, m, target, step, n_threads, weights)
        if on_forward is not None:
            on_forward()
        self._backward_element(ws, m, step, n_threads, on_layer)
        return loss

    def _forward_element(self, ws, m, target, step, n_threads, weights):
        """The loss; each layer's input and weights as used go to ws.inputs, ws.used_weights
        (the backward half reads them), the output gradient to ws.logits."""
        layers, last = self.layers, self.n_layers - 1
        a = layers[0].site.forward(ws.batch_input(m), None, None, False, step, n_threads)
        for l, layer in enumerate(layers):
            ws.inputs[l] = a
            w = ws.used_weights[l] = layer.weight_noise.training_weights(
                layer.weights, ws.masked_weights[l], step, n_threads)
            if l == last:
                logits = _product_into(a, w, ws.logits[:m])
                return self._output_loss(logits, layer.bias, target, want_grad=True,
                                         grad_bias=ws.grad_intercepts[-1], weights=weights)
            width = self.sizes[l + 1]
            z = _product_into(a, w, _view(ws.acts[l], m, width))  # (m, width)
            bias, relu = layer.activation.activate(z, layer.bias, n_threads)
            out = ws.site_out[l]
            a = layers[l + 1].site.forward(z, None if out is None else _view(out, m, width),
                                           bias, relu, step, n_threads)

    def _backward_element(self, ws, m, step, n_threads, on_layer):
        # d(mean loss)/d(logits) is in ws.logits after _output_loss, and the output bias's
        # gradient (its column sums) in ws.grad_intercepts[-1]; each hidden layer's bias
        # gradient comes out of the site's backward that makes its dz
        dz = ws.logits[:m]
        for l in range(self.n_layers - 1, -1, -1):
            layer = self.layers[l]
            grad = _weight_gradient_into(dz, ws.inputs[l], ws.grad_weight_buffers[l])
            ws.grad_weights[l] = layer.weight_noise.mask_gradient(grad, step, n_threads)
            da = None
            if l > 0:
                da = _view(ws.dacts[l - 1], m, self.sizes[l])
                gemm_into(dz, ws.used_weights[l], da)
                layer.site.backward(da, ws.inputs[l], _view(ws.acts[l - 1], m, self.sizes[l]),
                                    step, self.layers[l - 1].activation,
                                    ws.grad_intercepts[l - 1], n_threads)
            if on_layer is not None:
                on_layer(l)
            dz = da

    def _output_loss(self, logits, bias, target, want_grad, grad_bias=None, weights=None):
        return _OUTPUT_LOSSES[self.output](logits, bias, target, want_grad, grad_bias, weights)

    # ------------------------------------------------------------------ batch mode
    def kept_units(self, step):
        """Batch mode: the kept unit indices of every site for this step.

        Parameters
        ----------
        step : int
            The training step.

        Returns
        -------
        kept : list of ndarray of int64
            Per layer input (the input's site, then each hidden layer's), the kept units in
            increasing order; last, every output unit.
        """
        kept = [site.kept(width, step) for site, width in zip(self.sites, self.sizes[:-1])]
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
        for l, layer in enumerate(self.layers):
            k_in, k_out = kept[l].size, kept[l + 1].size
            w = _view(ws.sub_weights[l], k_out, k_in)  # kept units' rows, kept inputs' columns
            if not ws.plan.gathered(l, step):  # not left there by the previous step
                _nn_kernels.gather(layer.weights, kept[l + 1], kept[l], w, n_threads)
            b = ws.sub_bias[l][:k_out]
            np.take(layer.bias, kept[l + 1], out=b)
            if l == self.n_layers - 1:
                logits = _product_into(a, w, ws.logits[:m])
                return self._output_loss(logits, b, target, want_grad=True,
                                         grad_bias=ws.sub_dbias[l][:k_out],
                                         weights=weights), inputs
            z = _product_into(a, w, _view(ws.acts[l], m, k_out))
            bias, relu = layer.activation.activate(z, b, n_threads)
            a = self.layers[l + 1].site.forward_kept(z, bias, relu, n_threads)
            inputs.append(a)

    def _kept_input(self, ws, m, kept_inputs, n_threads):
        """The batch's kept input columns, scaled for training (the batch itself, uncopied,
        when no input is dropped)."""
        site, a = self.layers[0].site, ws.batch_input(m)
        if site.drops:
            a = _view(ws.x_kept, m, kept_inputs.size)
            np.take(ws.x[:m], kept_inputs, axis=1, out=a)
        return site.forward_kept(a, None, False, n_threads)

    def _backward_batch(self, ws, m, kept, inputs, n_threads, on_layer):
        dz = ws.logits[:m]
        for l in range(self.n_layers - 1, -1, -1):
            k_in, k_out = kept[l].size, kept[l + 1].size
            gw = _weight_gradient_into(dz, inputs[l], _view(ws.sub_grads[l], k_out, k_in))
            ws.grad_weights[l] = SubmatrixGradient(gw, ws.plan.positions[l], kept[l])
            ws.grad_intercepts[l].fill(0)  # sub_dbias[l]: from the output loss or the gate
            ws.grad_intercepts[l][kept[l + 1]] = ws.sub_dbias[l][:k_out]
            da = None
            if l > 0:
                da = _view(ws.dacts[l - 1], m, k_in)
                gemm_into(dz, _view(ws.sub_weights[l], k_out, k_in), da)
                self.layers[l].site.backward_kept(da, inputs[l], self.layers[l - 1].activation,
                                                  ws.sub_dbias[l - 1][:k_in], n_threads)
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

        Parameters
        ----------
        X : ndarray or CSR matrix of shape (n_samples, n_features)
        n_threads : int
            Threads of the element-wise kernels (BLAS has its own limits).
        mc_step : int, optional
            A stochastic pass's index; None: weight scaling.
        reuse_output : bool, default False

        Returns
        -------
        output : ndarray of shape (n_samples, n_outputs)
        """
        if not sparse.issparse(X):  # (a sparse X: CSR of our dtype, the caller's check)
            X = np.ascontiguousarray(X, dtype=self.dtype)  # no copy when it is already
        n = X.shape[0]
        chunk = min(n, _PREDICT_CHUNK) or 1
        # the input as it is (C-contiguous, of our dtype) unless the pass changes it
        input_site = self.layers[0].site
        copy_input = input_site.changes_input(mc_step)
        out, bufs = self._predict_buffers(n, chunk, copy_input)
        if not reuse_output:
            out = np.empty_like(out)
        weights = [layer.weight_noise.predict_weights(layer.weights, mc_step, n_threads)
                   for layer in self.layers]
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            a = X[start:start + rows]
            if copy_input:
                a = _view(bufs[0], rows, self.sizes[0])
                np.copyto(a, X[start:start + rows])
                a = input_site.predict(a, a, None, False, self._first_word(start, 0), mc_step,
                                       n_threads)
            for l, layer in enumerate(self.layers[:-1]):
                z = _product_into(a, weights[l], _view(bufs[l + 1], rows, self.sizes[l + 1]))
                bias, relu = layer.activation.activate(z, layer.bias, n_threads)
                a = self.layers[l + 1].site.predict(z, z, bias, relu,
                                                    self._first_word(start, l + 1), mc_step,
                                                    n_threads)
            logits = _product_into(a, weights[-1], out[start:start + rows])
            self._output_loss(logits, self.layers[-1].bias, bufs[-1], want_grad=False)
        return out

    def _first_word(self, row0, site):
        """The mask word of site ``site`` where row ``row0`` starts (row0 is a multiple of
        64: chunks of rows keep words aligned, so a pass is the same whatever the chunking)."""
        return row0 * self.sizes[site] // 64

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

    def __repr__(self):
        return (f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
                f"output={self.output!r}, dropout={self.rates}, kind={self.dropout_kind!r}, "
                f"dropconnect={self.dropconnect}, "
                f"mode={self.dropout_mode!r}, scale={self.dropout_scale!r}, "
                f"dtype={self.dtype.name})")
