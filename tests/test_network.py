"""The MLP engine: gradients, regularizers, dropout variants, reproducibility."""
import numpy as np
import pytest

from fastdrop import MLP
from fastdrop._nn_kernels import max_norm
from fastdrop.network import Workspace
from fastdrop.optim import SGD, Adam, Penalty


def make_net(sizes=(6, 5, 4, 3), dropout=None, mode="element", scale="inverted",
             output="softmax", dtype=np.float64, seed=0, activation="relu", **kwargs):
    return MLP(list(sizes), dropout=dropout, dropout_mode=mode, dropout_scale=scale,
               output=output, dtype=dtype, activation=activation,
               random_state=np.random.RandomState(seed), **kwargs)


def batch_loss(net, X, target, step, alpha=0.0, l1=0.0):
    """Mean data loss + penalties, as the training loop computes it for one batch."""
    ws = Workspace(net, X.shape[0])
    ws.x[:] = X
    loss = net.forward_backward(ws, X.shape[0], target, step, 1) / X.shape[0]
    m = X.shape[0]
    penalty = sum(0.5 * alpha * np.sum(w * w) + l1 * np.sum(np.abs(w)) for w in net.coefs) / m
    return loss + penalty, ws


@pytest.mark.parametrize("output, activation", [
    ("softmax", "relu"), ("sigmoid", "relu"), ("identity", "relu"), ("exp", "relu"),
    ("softmax", "tanh"), ("softmax", "logistic"), ("identity", "identity"),
    ("softmax", "selu")])
@pytest.mark.parametrize("mode", ["element", "batch"])
def test_gradients_match_central_differences(output, activation, mode):
    """Whole network, L1 + L2, a fixed dropout draw: analytic vs numerical gradients."""
    check_gradients(make_net(dropout=[0.2, 0.5, 0.3], mode=mode, output=output,
                             activation=activation), output)


@pytest.mark.parametrize("mode", ["element", "batch"])
def test_gaussian_likelihood_gradients_match_central_differences(mode):
    """The heteroscedastic output (issue 29): 2 targets, a mean and a log variance each."""
    check_gradients(make_net(sizes=(6, 5, 4, 4), dropout=[0.2, 0.5, 0.3], mode=mode,
                             output="gaussian"), "gaussian")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_nll_kernel_matches_numpy(dtype):
    from fastdrop._nn_kernels import gaussian_nll
    rng = np.random.default_rng(3)
    n, k = 9, 2
    z = rng.standard_normal((n, 2 * k)).astype(dtype)
    bias = rng.standard_normal(2 * k).astype(dtype)
    t = rng.standard_normal((n, k)).astype(dtype)
    w = rng.uniform(0, 2, n).astype(dtype)
    mu, s = np.split(z.astype(np.float64) + bias, 2, axis=1)
    r = t - mu
    rows = 0.5 * np.sum(s + r * r * np.exp(-s) + np.log(2 * np.pi), axis=1)
    grad = np.concatenate([-r * np.exp(-s), 0.5 * (1 - r * r * np.exp(-s))], axis=1)
    grad *= (w / w.sum())[:, None]
    out, gb = z.copy(), np.empty(2 * k, dtype)
    loss = gaussian_nll(out, bias, t, True, gb, w)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(float(np.sum(w * rows)), rel=tol)
    np.testing.assert_allclose(out, grad, rtol=tol, atol=tol)
    np.testing.assert_allclose(gb, grad.sum(axis=0), rtol=10 * tol, atol=10 * tol)
    pred = z.copy()
    gaussian_nll(pred, bias, np.empty((0, k), dtype), False)
    np.testing.assert_allclose(pred, np.concatenate([mu, s], axis=1), rtol=tol)


@pytest.mark.parametrize("kind, activation, dropconnect", [
    ("gaussian", "relu", 0.0), ("gaussian", "tanh", 0.0), ("alpha", "selu", 0.0),
    ("alpha", "relu", 0.0), ("bernoulli", "relu", 0.4), ("gaussian", "selu", 0.3),
    ("bernoulli", "logistic", 0.3)])
def test_gradients_of_the_dropout_family_match_central_differences(kind, activation,
                                                                   dropconnect):
    net = make_net(dropout=[0.2, 0.5, 0.3], activation=activation, dropout_kind=kind,
                   dropconnect=dropconnect, init="lecun")
    for b in net.intercepts:  # LeCun's zero biases put rows whose inputs are all 0 (a unit
        b[:] = np.random.default_rng(1).uniform(-0.5, 0.5, b.shape)  # kink) exactly at 0
    check_gradients(net, "softmax")


def test_a_new_noise_kind_is_one_class(monkeypatch):
    """The engine never asks a site's kind: a kind registered in _sites.SITE_KINDS (here a toy
    noise that scales each unit by a fixed factor drawn per column) trains, predicts and
    differentiates with no other change, and its forward pass is the numpy reference's."""
    from fastdrop import _sites

    factor = np.linspace(0.5, 1.5, 5)

    class ColumnScale(_sites._NoiseAfterActivation):
        def noise(self, src, dst, step, n_threads, first_word=0):
            np.multiply(src, factor[:src.shape[-1]], out=dst)

        def noise_backward(self, grad, step, n_threads):
            grad *= factor[:grad.shape[-1]]

    monkeypatch.setitem(_sites.SITE_KINDS, "column-scale", ColumnScale)
    net = make_net(sizes=(6, 5, 5, 3), dropout=[0.0, 0.5, 0.5], dropout_kind="column-scale")
    assert [type(s).__name__ for s in net.sites] == ["NoDropout", "ColumnScale", "ColumnScale"]
    X = np.random.default_rng(2).standard_normal((4, 6))
    a = X
    for l in range(2):
        a = np.maximum(a @ net.coefs[l] + net.intercepts[l], 0) * factor
    z = a @ net.coefs[2] + net.intercepts[2]
    proba = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(net.predict_output(X, 1, mc_step=0),
                               proba / proba.sum(1, keepdims=True), rtol=1e-12)
    check_gradients(net, "softmax")


def check_gradients(net, output):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 6))
    y = rng.integers(0, 3, 7)
    target = y if output == "softmax" else np.eye(3)[y]
    if output == "gaussian":  # means and log variances of k = width / 2 real targets
        target = rng.standard_normal((7, net.sizes[-1] // 2))
    alpha, l1, step = 0.3, 0.05, 5
    _, ws = batch_loss(net, X, target, step)
    m = X.shape[0]
    # the optimizer adds the penalty gradients; reproduce that here
    # (in the weights' own layout, so that reshape(-1) below is a view)
    grads = [g.T + (alpha * w + l1 * np.sign(w)) / m
             for g, w in zip(ws.dense_grad_coefs(), net.weights)]
    grads += [g.copy() for g in ws.grad_intercepts]
    eps = 1e-6
    for param, grad in zip(net.weights + net.intercepts, grads):
        flat = param.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 7)):
            old = flat[i]
            flat[i] = old + eps
            up = batch_loss(net, X, target, step, alpha, l1)[0]
            flat[i] = old - eps
            down = batch_loss(net, X, target, step, alpha, l1)[0]
            flat[i] = old
            assert (up - down) / (2 * eps) == pytest.approx(grad.reshape(-1)[i], rel=1e-5,
                                                            abs=1e-8)


def numpy_forward(net, X, unit_masks):
    """Reference: the network with one unit mask per site shared by every example."""
    a = X * unit_masks[0] * net.sites[0].train_scale
    for l in range(net.n_layers - 1):
        a = np.maximum(a @ net.coefs[l] + net.intercepts[l], 0) * unit_masks[l + 1] \
            * net.sites[l + 1].train_scale
    z = a @ net.coefs[-1] + net.intercepts[-1]
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def test_batch_mode_equals_element_mode_with_a_shared_unit_mask():
    rng = np.random.default_rng(1)
    net = make_net(sizes=(9, 16, 12, 4), dropout=[0.3, 0.5, 0.5], mode="batch")
    X = rng.standard_normal((10, 9))
    y = rng.integers(0, 4, 10)
    step = 3
    _, ws = batch_loss(net, X, y, step)
    kept = net.kept_units(step)
    masks = [np.isin(np.arange(w), k).astype(float) for w, k in zip(net.sizes[:-1], kept[:-1])]
    proba = numpy_forward(net, X, masks)
    # gradient of the mean cross-entropy through the reference, by autodiff-free backprop
    delta = (proba - np.eye(4)[y]) / len(y)
    acts = [X * masks[0] * net.sites[0].train_scale]
    for l in range(net.n_layers - 1):
        acts.append(np.maximum(acts[-1] @ net.coefs[l] + net.intercepts[l], 0) * masks[l + 1]
                    * net.sites[l + 1].train_scale)
    grads = ws.dense_grad_coefs()
    for l in range(net.n_layers - 1, -1, -1):
        np.testing.assert_allclose(grads[l], acts[l].T @ delta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ws.grad_intercepts[l], delta.sum(0), rtol=1e-10, atol=1e-12)
        if l:
            delta = (delta @ net.coefs[l].T) * (acts[l] > 0) * net.sites[l].train_scale


def test_batch_mode_skips_dropped_units_in_the_products():
    net = make_net(sizes=(50, 64, 64, 5), dropout=[0.0, 0.5, 0.5], mode="batch")
    kept = net.kept_units(0)
    assert kept[0].size == 50 and 16 < kept[1].size < 48 and kept[-1].size == 5
    assert not np.array_equal(kept[1], net.kept_units(1)[1])


@pytest.mark.parametrize("mode", ["element", "batch"])
def test_same_seed_same_bits(mode):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    results = []
    for _ in range(2):
        net = make_net(dropout=[0.1, 0.5, 0.5], mode=mode, dtype=np.float32, seed=7)
        opt = SGD(net.weights + net.intercepts, 0.1, 0.9, True)
        ws = Workspace(net, 40)
        for step in range(5):
            ws.x[:] = X
            net.forward_backward(ws, 40, y, step, 1)
            opt.step(net.weights, net.intercepts, ws.grad_weights, ws.grad_intercepts, 40, 1e-3,
                     1e-4, 1)
        results.append([p.copy() for p in net.coefs + net.intercepts])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("cls", [SGD, Adam])
@pytest.mark.parametrize("mode", ["element", "batch"])
def test_stepping_layer_by_layer_during_the_pass_gives_the_same_bits(mode, cls):
    """The training loop steps each layer as soon as backprop is done with it."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 6)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    results = []
    for layerwise in (False, True):
        net = make_net(dropout=[0.2, 0.5, 0.5], mode=mode, dtype=np.float32, seed=3)
        opt = cls(net.weights + net.intercepts, 0.05)
        ws = Workspace(net, 30)
        penalties = []
        for step in range(4):
            ws.x[:] = X
            if layerwise:
                opt.start_step()
                acc = []
                net.forward_backward(ws, 30, y, step, 1, lambda l: acc.append(opt.update_layer(
                    l, net.n_layers, (net.weights[l], net.intercepts[l]),
                    (ws.grad_weights[l], ws.grad_intercepts[l]), Penalty(1e-2, 1e-3, 30), 1)))
                penalties.append(sum(acc))
            else:
                net.forward_backward(ws, 30, y, step, 1)
                penalties.append(opt.step(net.weights, net.intercepts, ws.grad_weights,
                                          ws.grad_intercepts, 30, 1e-2, 1e-3, 1))
        results.append(([p.copy() for p in net.weights + net.intercepts], penalties))
    for a, b in zip(results[0][0], results[1][0]):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


@pytest.mark.parametrize("scale", ["inverted", "classic"])
def test_classic_and_inverted_agree_in_expectation(scale):
    """Mean of many stochastic passes = the deterministic (weight-scaled) pass, per layer."""
    net = make_net(sizes=(5, 400), dropout=[0.4], scale=scale)  # one linear layer: exact
    X = np.random.default_rng(3).standard_normal((3, 5))
    site = net.sites[0]
    deterministic = X * site.test_scale
    draws = []
    for t in range(3000):
        out = X.copy()
        site.forward(out, None, None, False, 10_000 + t, 1)
        draws.append(out)
    mean = np.mean(draws, axis=0)
    keep = site.threshold / 65536
    sd = np.abs(X) * site.train_scale * np.sqrt(keep * (1 - keep) / 3000)
    assert np.all(np.abs(mean - deterministic) <= 5 * sd + 1e-12)


def test_inverted_and_classic_predictions_relate_by_scaling():
    """Same weights: classic's test pass scales activations by keep, inverted's does not."""
    inv = make_net(sizes=(4, 8, 3), dropout=[0.0, 0.5], scale="inverted")
    cla = make_net(sizes=(4, 8, 3), dropout=[0.0, 0.5], scale="classic")
    X = np.random.default_rng(4).standard_normal((6, 4))
    cla.coefs[-1][...] = inv.coefs[-1] / (cla.sites[1].threshold / 65536)  # undo classic's test-time scaling
    np.testing.assert_allclose(cla.predict_output(X, 1), inv.predict_output(X, 1), rtol=1e-12)


def test_max_norm_projects_each_units_weights():
    w = np.array([[3.0, 4.0], [0.1, 0.1]])  # unit-major: row j holds unit j's inputs
    assert max_norm(w, 2.0) == 1  # units clipped
    assert max_norm(w, 2.0 * (1 + 1e-9)) == 0
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), [2.0, np.sqrt(0.02)])
    np.testing.assert_allclose(w[0], [1.2, 1.6])
    np.testing.assert_array_equal(w[1], [0.1, 0.1])  # inside the ball: untouched


def test_coefs_are_views_of_the_unit_major_weights():
    net = make_net(sizes=(6, 5, 3))
    for c, w in zip(net.coefs, net.weights):
        assert c.shape == w.shape[::-1] and np.shares_memory(c, w)
        assert w.flags.c_contiguous


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_l2_and_l1_follow_their_definitions(cls):
    """With a zero data gradient, one step moves w along -(alpha w + l1 sign w) / batch."""
    w = np.array([[0.5, -2.0, 0.0]])
    b = np.zeros(1)
    opt = cls([w, b], 0.1) if cls is SGD else cls([w, b], 0.1)
    before = w.copy()
    penalty = opt.step([w], [b], [np.zeros_like(w)], [np.zeros(1)], 4, alpha=0.8, l1=0.2,
                       n_threads=1)
    assert penalty == pytest.approx(0.5 * 0.8 * np.sum(before ** 2) / 4
                                    + 0.2 * np.sum(np.abs(before)) / 4)
    direction = -(0.8 * before + 0.2 * np.sign(before)) / 4
    moved = w - before
    assert np.all(np.sign(moved) == np.sign(direction))
    if cls is SGD:  # Nesterov: w += mu * v - lr * g with v = -lr * g
        np.testing.assert_allclose(moved, 0.1 * direction * (1 + 0.9))


def predict_in_chunks_of_64(net, X, mc_step):
    import fastdrop.network as network
    old = network._PREDICT_CHUNK
    try:
        network._PREDICT_CHUNK = 64
        return net.predict_output(X, 1, mc_step=mc_step)
    finally:
        network._PREDICT_CHUNK = old


def test_monte_carlo_prediction_is_chunk_invariant():
    net = make_net(sizes=(7, 33, 3), dropout=[0.2, 0.5], dtype=np.float32)
    X = np.random.default_rng(5).standard_normal((5000, 7)).astype(np.float32)
    full = net.predict_output(X, 1, mc_step=3)
    chunked = predict_in_chunks_of_64(net, X, mc_step=3)
    # The masks are the same bits; the products may round differently, since a BLAS may
    # take another kernel for a 64-row block (OpenBLAS's SkylakeX small-matrix GEMM does).
    np.testing.assert_allclose(full, chunked, rtol=1e-5, atol=1e-6)
    other_draw = net.predict_output(X, 1, mc_step=4)
    assert np.abs(full - other_draw).max() > 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_losses_match_reference_and_survive_extreme_logits(dtype):
    from fastdrop._nn_kernels import sigmoid_xent, softmax_xent
    z = np.array([[0.0, 1.0, 2.0], [300.0, -300.0, 0.0], [-1e4, 5.0, 1e4]], dtype=dtype)
    b = np.array([0.1, -0.2, 0.3], dtype=dtype)
    y = np.array([2, 1, 0])
    a = z.astype(np.float64) + b
    lse = np.log(np.exp(a - a.max(1, keepdims=True)).sum(1)) + a.max(1)
    expected = np.sum(lse - a[np.arange(3), y])
    g = z.copy()
    loss = softmax_xent(g, b, y, True)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-6)
    p = np.exp(a - lse[:, None])
    np.testing.assert_allclose(g, (p - np.eye(3)[y]) / 3, atol=1e-7)
    t = np.eye(3, dtype=dtype)[y]
    g = z.copy()
    loss = sigmoid_xent(g, b, t, True)
    ref = np.sum(np.logaddexp(0, a) - t * a)
    assert np.isfinite(loss) and loss == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squared_error_matches_reference(dtype):
    from fastdrop._nn_kernels import squared_error
    rng = np.random.default_rng(4)
    z, t = rng.standard_normal((9, 3)).astype(dtype), rng.standard_normal((9, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    g = z.copy()
    loss = squared_error(g, b, t, True)
    assert loss == pytest.approx(np.sum((z + b - t).astype(np.float64) ** 2) / 2, rel=1e-6)
    np.testing.assert_allclose(g, (z + b - t) / 9, rtol=1e-6)
    out = z.copy()
    assert squared_error(out, b, np.empty((0, 3), dtype), False) == 0
    np.testing.assert_allclose(out, z + b, rtol=1e-6)


def assert_row_sum(got, values):
    """got is values' column sums within recursive summation's bound (m - 1) u sum|x|."""
    m = values.shape[0]
    exact = values.astype(np.float64).sum(0)
    bound = max(m - 1, 1) * np.finfo(values.dtype).eps * np.abs(values).sum(0)
    assert np.all(np.abs(got - exact) <= bound), np.max(np.abs(got - exact) - bound)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_output_kernels_sum_the_gradient_columns(dtype, output):
    """grad_bias is the column sum of the gradient the kernel leaves in z (row by row)."""
    from fastdrop.network import _OUTPUT_LOSSES
    rng = np.random.default_rng(3)
    z = rng.standard_normal((37, 5)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    y = rng.integers(0, 5, 37)
    target = y if output == "softmax" else np.eye(5, dtype=dtype)[y]
    kernel = _OUTPUT_LOSSES[output]
    plain, fused = z.copy(), z.copy()
    grad_bias = np.full(5, np.nan, dtype=dtype)
    assert kernel(fused, b, target, True, grad_bias) == kernel(plain, b, target, True)
    np.testing.assert_array_equal(fused, plain)
    assert_row_sum(grad_bias, plain)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(128, 512), (7, 130), (1, 3), (0, 5), (300, 64)])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_gate_colsum_is_the_gate_and_its_column_sums(dtype, shape, n_threads, simd):
    """dx bitwise as _kernels.gate; column sums as numpy's, and bitwise the same for every
    thread count (each column summed row by row); in place too."""
    from fastdrop import _kernels
    rng = np.random.default_rng(11)
    dy = rng.standard_normal(shape).astype(dtype)
    y = np.maximum(rng.standard_normal(shape), 0).astype(dtype)
    expected_dx = np.empty_like(dy)
    _kernels.gate(dy.reshape(-1), y.reshape(-1), expected_dx.reshape(-1), 2.0, 1)
    dx, colsum = np.empty_like(dy), np.full(shape[1], np.nan, dtype=dtype)
    _kernels.gate_colsum(dy, y, dx, 2.0, colsum, n_threads)
    np.testing.assert_array_equal(dx, expected_dx)
    assert_row_sum(colsum, expected_dx)
    serial = np.empty_like(colsum)
    inplace = dy.copy()
    _kernels.gate_colsum(inplace, y, inplace, 2.0, serial, 1)
    np.testing.assert_array_equal(inplace, expected_dx)
    np.testing.assert_array_equal(colsum, serial)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_take_rows_copies_the_indexed_rows(dtype, n_threads):
    from fastdrop._nn_kernels import take_rows
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 33)).astype(dtype)
    for rows in (rng.permutation(500)[:128], np.array([3, 3, 499, 0]), np.empty(0, np.int64)):
        out = np.full((rows.size, 33), np.nan, dtype=dtype)
        take_rows(X, rows.astype(np.int64), out, n_threads)
        np.testing.assert_array_equal(out, X[rows])


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity", "exp"])
def test_output_kernels_weigh_rows_as_sample_weight(output):
    """Row weights: the loss is sum_i w_i loss_i, the gradient of row i is w_i times the
    unweighted one times n / sum(w); integer weights equal repeated rows."""
    from fastdrop.network import _OUTPUT_LOSSES
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 3))
    b = rng.standard_normal(3)
    y = rng.integers(0, 3, 6)
    target = y if output == "softmax" else np.eye(3)[y]
    if output == "gaussian":  # means and log variances of k = width / 2 real targets
        target = rng.standard_normal((7, net.sizes[-1] // 2))
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0])
    kernel = _OUTPUT_LOSSES[output]
    weighted = z.copy()
    loss = kernel(weighted, b, target, True, None, w)
    rep = np.repeat(np.arange(6), w.astype(int))
    repeated = z[rep].copy()
    assert loss == pytest.approx(kernel(repeated, b, target[rep], True))
    summed = np.zeros_like(z)
    np.add.at(summed, rep, repeated)
    np.testing.assert_allclose(weighted, summed, atol=1e-15)


FAMILY = [dict(dropout_kind="gaussian"), dict(dropout_kind="alpha", activation="selu"),
          dict(dropconnect=0.3)]


@pytest.mark.parametrize("kwargs", FAMILY)
def test_dropout_family_predicts_with_the_mean_network_and_is_chunk_invariant(kwargs):
    sizes, rates = (7, 65, 33, 3), [0.2, 0.5, 0.3]
    net = make_net(sizes, dropout=rates, dtype=np.float32, **kwargs)
    plain = make_net(sizes, dtype=np.float32, activation=kwargs.get("activation", "relu"))
    X = np.random.default_rng(5).standard_normal((3000, 7)).astype(np.float32)
    # the identity at inference (inverted DropConnect: the weights are the masks' mean)
    np.testing.assert_array_equal(net.predict_output(X, 1), plain.predict_output(X, 1))
    full = net.predict_output(X, 2, mc_step=3)
    chunked = predict_in_chunks_of_64(net, X, mc_step=3)
    np.testing.assert_allclose(full, chunked, rtol=1e-5, atol=1e-6)
    assert np.abs(full - net.predict_output(X, 1, mc_step=4)).max() > 1e-2


@pytest.mark.parametrize("kwargs", FAMILY)
def test_dropout_family_gradients_do_not_depend_on_threads(kwargs):
    sizes = (50, 300, 200, 4)
    X = np.random.default_rng(1).standard_normal((256, 50))
    y = np.random.default_rng(2).integers(0, 4, 256)
    grads = []
    for n_threads in (1, 3):
        net = make_net(sizes, dropout=[0.2, 0.5, 0.3], dtype=np.float32, **kwargs)
        ws = Workspace(net, 256)
        ws.x[:] = X
        net.forward_backward(ws, 256, y, 7, n_threads)
        grads.append([g.copy() for g in ws.grad_weights + ws.grad_intercepts])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_dropconnect_masks_the_weights_with_the_documented_draw():
    from fastdrop import bernoulli_mask
    from fastdrop._dropout import keep_threshold
    from fastdrop._sites import DROPCONNECT_STEP_BASE as _DROPCONNECT_STEP_BASE
    net = make_net((6, 5, 3), dropconnect=0.4)
    ws = Workspace(net, 4)
    ws.x[:] = np.random.default_rng(0).standard_normal((4, 6))
    net.forward_backward(ws, 4, np.array([0, 1, 2, 0]), 9, 1)
    for l, w in enumerate(net.weights):
        keep = bernoulli_mask(w.shape, 0.6, seed=net.seeds[l],
                              step=_DROPCONNECT_STEP_BASE + 9).to_bool()
        scale = 65536 / keep_threshold(0.6)
        np.testing.assert_array_equal(ws.masked_weights[l], np.where(keep, w * scale, 0))
        assert np.all(ws.grad_weights[l][~keep] == 0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dropout_kind="gaussian", mode="batch"), "dropout_mode='batch' does not combine"),
    (dict(dropconnect=0.5, mode="batch"), "DropConnect masks single weights"),
    (dict(dropout_kind="alpha", scale="classic"), "dropout_scale='classic' does not combine"),
    (dict(dropout_kind="poisson"), "dropout_kind must be one of"),
])
def test_dropout_family_refuses_what_it_cannot_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_net(dropout=[0.2, 0.5, 0.3], **kwargs)


def test_lecun_init_has_variance_one_over_fan_in():
    net = make_net((400, 300, 3), init="lecun")
    w = net.weights[0]
    assert w.std() == pytest.approx(np.sqrt(1 / 400), rel=0.01)
    assert np.all(net.intercepts[0] == 0)


def test_predict_output_returns_a_new_array_unless_asked_to_reuse_one():
    net = make_net((7, 33, 3), dropout=[0.2, 0.5], dtype=np.float32)
    X = np.random.default_rng(5).standard_normal((100, 7)).astype(np.float32)
    first = net.predict_output(X, 1, mc_step=1)
    kept = first.copy()
    second = net.predict_output(X, 1, mc_step=2)  # same size: must not touch `first`
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, second)
    reused = net.predict_output(X, 1, mc_step=1, reuse_output=True)
    assert net.predict_output(X, 1, mc_step=2, reuse_output=True) is reused
