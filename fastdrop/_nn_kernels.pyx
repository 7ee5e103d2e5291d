"""Fused element-wise kernels of the MLP: optimizer steps, output layers, submatrix moves.

Each loop makes one pass over memory; the optimizer steps fold the L2 and L1 penalty gradients
into the update and return the penalty sums of the same pass (see _optim.h for how they are
kept vectorizable).
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from libc.math cimport exp, expm1, log, log1p, sqrt, fabs, copysign, tanh
from libc.stdint cimport int64_t


cdef extern from "_optim.h" nogil:
    void fd_sgd_f32(float *w, const float *g, float *v, int64_t n, float lr, float mom,
                    int nesterov, float l2, float l1, double *sums)
    void fd_sgd_f64(double *w, const double *g, double *v, int64_t n, double lr, double mom,
                    int nesterov, double l2, double l1, double *sums)
    void fd_adam_f32(float *w, const float *g, float *m, float *s, int64_t n, float lr_t,
                     float b1, float b2, float eps, float l2, float l1, double *sums)
    void fd_adam_f64(double *w, const double *g, double *m, double *s, int64_t n, double lr_t,
                     double b1, double b2, double eps, double l2, double l1, double *sums)

include "_simd.pxi"

# Parameters per parallel chunk, and about how many a submatrix step takes per block of rows.
cdef enum:
    CHUNK = 16384
    ROW_BLOCK = 2048
    DIRECT_ROW = 256  # narrower rows are copied into the block buffer: one call per block

# Optimizer kinds.
cdef enum:
    KIND_SGD = 0
    KIND_ADAM = 1

SGD, ADAM = KIND_SGD, KIND_ADAM

# One step's settings by name: a record of optim.STEP_PARAMS (same fields, same order), which
# the drivers take as its float64 words (a plain buffer is quicker to acquire than a record's).
cdef packed struct fd_step_params:
    double lr        # SGD's rate; Adam's lr_t (bias correction folded in)
    double momentum  # SGD
    double nesterov  # SGD: 1 for Nesterov's momentum
    double beta_1    # Adam
    double beta_2    # Adam
    double epsilon   # Adam
    double l2        # penalties, already divided by the batch size
    double l1

# Hidden activations other than ReLU (which the dropout kernels fuse themselves).
cdef enum:
    ACT_IDENTITY = 1
    ACT_LOGISTIC = 2
    ACT_TANH = 3
    ACT_SELU = 4

ACTIVATIONS = {"identity": ACT_IDENTITY, "logistic": ACT_LOGISTIC, "tanh": ACT_TANH,
               "selu": ACT_SELU}
# SELU's constants (Klambauer et al. 2017), as PyTorch and Keras write them.
cdef double SELU_ALPHA = 1.6732632423543772848170429916717
cdef double SELU_LAMBDA = 1.0507009873554804934193349852946
SELU_CONSTANTS = (SELU_ALPHA, SELU_LAMBDA)


cdef inline void _step_block(int kind, floating *w, const floating *g, floating *s1,
                             floating *s2, int64_t n, const fd_step_params *hp,
                             double *sums) noexcept nogil:
    """One optimizer step over a contiguous block; sums += (sum w^2, sum |w|) before it."""
    if kind == KIND_SGD:
        if floating is float:
            fd_sgd_f32(w, g, s1, n, hp.lr, hp.momentum, hp.nesterov != 0, hp.l2, hp.l1, sums)
        else:
            fd_sgd_f64(w, g, s1, n, hp.lr, hp.momentum, hp.nesterov != 0, hp.l2, hp.l1, sums)
    else:
        if floating is float:
            fd_adam_f32(w, g, s1, s2, n, hp.lr, hp.beta_1, hp.beta_2, hp.epsilon, hp.l2, hp.l1,
                        sums)
        else:
            fd_adam_f64(w, g, s1, s2, n, hp.lr, hp.beta_1, hp.beta_2, hp.epsilon, hp.l2, hp.l1,
                        sums)


cdef const fd_step_params *_step_params(const double[::1] hp) except NULL:
    """The record behind a STEP_PARAMS record's float64 words."""
    if hp.shape[0] * sizeof(double) != sizeof(fd_step_params):
        raise ValueError(f"hp must be one optim.STEP_PARAMS record "
                         f"({sizeof(fd_step_params) // sizeof(double)} float64 words), "
                         f"got {hp.shape[0]} words")
    return <const fd_step_params *>&hp[0]


cdef inline (double, double) _ordered_sum(const double *part, int64_t n) noexcept nogil:
    """Sum per-block partials in block order: the same result whatever the thread count."""
    cdef double sq = 0, ab = 0
    cdef int64_t i
    for i in range(n):
        sq += part[2 * i]
        ab += part[2 * i + 1]
    return sq, ab


def optimizer_step(int kind,
                   floating[::1] w,              # IN/OUT parameters
                   const floating[::1] g,        # IN data gradient (batch mean)
                   floating[::1] s1,             # IN/OUT SGD velocity / Adam first moment
                   floating[::1] s2,             # IN/OUT Adam second moment (SGD: unused)
                   const double[::1] hp,         # IN a STEP_PARAMS record's words
                   int n_threads):
    """One step of scikit-learn's SGD or Adam over a flat parameter array, in one pass.

    SGD: v = momentum v - lr G; w += v (Nesterov: w += momentum v - lr G). Adam: sklearn's,
    bias correction folded into lr_t. G = g + l2 w + l1 sign(w). Returns (sum w^2, sum |w|)
    of the weights before the step (the penalty loss), summed in a fixed order.
    """
    cdef int64_t n = w.shape[0], n_chunks = (n + CHUNK - 1) // CHUNK, c, start
    cdef double *part
    cdef floating *s2p = &s2[0] if s2.shape[0] else NULL
    cdef const fd_step_params *params = _step_params(hp)
    if n == 0:
        return 0.0, 0.0
    part = <double *>calloc(2 * n_chunks, sizeof(double))
    if part == NULL:
        raise MemoryError()
    try:
        for c in prange(n_chunks, schedule='static', nogil=True,
                        num_threads=1 if n_chunks < 2 else n_threads):
            start = c * CHUNK
            _step_block(kind, &w[start], &g[start], &s1[start],
                        s2p + start if s2p != NULL else NULL,
                        min(<int64_t>CHUNK, n - start), params, part + 2 * c)
        return _ordered_sum(part, n_chunks)
    finally:
        free(part)


cdef inline void _step_rows(int kind, floating *w, floating *s1, floating *s2, int64_t r0,
                            int64_t r1, int64_t nc, const floating *g, int64_t kc,
                            const int64_t *row_pos, const int64_t *cols, floating *buf,
                            const floating *zeros, const fd_step_params *hp,
                            double *sums) noexcept nogil:
    """Rows r0..r1 of a submatrix step (see optimizer_step_submatrix), in few calls: with
    every column kept and rows of at least DIRECT_ROW elements, a run of consecutive kept rows
    reads its gradient rows from g as they are and a run of dropped rows reads zeros (one call
    per run); otherwise the rows' gradients are expanded into buf (zeroed by the caller once
    per call, so writing the kept columns of each row, gradient or zero, is enough) and
    stepped as one block."""
    cdef int64_t r = r0, run, pr, j
    cdef const floating *src
    cdef floating *row
    if kc == nc and nc >= DIRECT_ROW:
        while r < r1:
            pr = row_pos[r]
            run = 1
            if pr < 0:
                while r + run < r1 and row_pos[r + run] < 0:
                    run = run + 1
                src = zeros
            else:
                while r + run < r1 and row_pos[r + run] == pr + run:
                    run = run + 1
                src = g + pr * kc
            _step_block(kind, w + r * nc, src, s1 + r * nc,
                        s2 + r * nc if s2 != NULL else NULL, run * nc, hp, sums)
            r = r + run
        return
    for r in range(r0, r1):  # buf starts zeroed and only the kept columns are ever written
        row = buf + (r - r0) * nc
        pr = row_pos[r]
        if kc == nc:
            if pr >= 0:
                memcpy(row, g + pr * kc, nc * sizeof(floating))
            else:
                memset(row, 0, nc * sizeof(floating))
        elif pr >= 0:
            for j in range(kc):
                row[cols[j]] = g[pr * kc + j]
        else:
            for j in range(kc):
                row[cols[j]] = 0
    _step_block(kind, w + r0 * nc, buf, s1 + r0 * nc, s2 + r0 * nc if s2 != NULL else NULL,
                (r1 - r0) * nc, hp, sums)


def optimizer_step_submatrix(int kind,
                             floating[:, ::1] w,           # IN/OUT (n_rows, n_cols)
                             const floating[:, ::1] g,     # IN gradient of the kept submatrix
                             const int64_t[::1] row_pos,   # IN row of g for each row of w, or -1
                             const int64_t[::1] cols,      # IN the column of w of each g column
                             floating[:, ::1] s1,          # IN/OUT optimizer state, like w
                             floating[:, ::1] s2,          # IN/OUT (SGD: shape (0, 0))
                             const double[::1] hp,         # IN as in optimizer_step
                             int n_threads,
                             const int64_t[::1] next_pos,  # IN row of next_w per row of w, or -1
                             const int64_t[::1] next_cols,  # IN columns of w kept in next_w
                             floating[:, ::1] next_w):     # OUT kept submatrix, updated weights
    """optimizer_step with the full gradient given as its kept submatrix (zero elsewhere).

    Batch-mode dropout's update: every parameter takes its step (dropped units' weights
    still see momentum and the penalties), bit for bit the step the full gradient would give,
    but that gradient is never written out. Rows go in blocks of about ROW_BLOCK elements,
    one block per task: a kept row's gradient is expanded into a per-thread buffer that stays
    in L1 while it is used (or read as it is when every column is kept), a dropped row reads
    zeros, and consecutive rows of one kind take one call (see _step_rows). ``cols`` must be
    increasing when it has all columns. The penalty sums are summed per block in block order:
    the same value whatever the thread count.

    With a non-empty ``next_pos``, each updated row ``r`` with ``next_pos[r] >= 0`` is also
    copied, while it is in cache, to ``next_w[next_pos[r]] = w[r, next_cols]``: the submatrix
    the next step's forward pass needs (its masks are known in advance), with no second trip
    through memory. ``next_cols`` must be increasing when it has all columns.
    """
    cdef int64_t nr = w.shape[0], nc = w.shape[1], kc = cols.shape[0], r, j, pn, b
    cdef int64_t nkc = next_cols.shape[0]
    cdef int64_t rows_per_block = max(1, ROW_BLOCK // nc), n_blocks, r0, r1
    cdef bint copy_next = next_pos.shape[0] > 0
    cdef double *part
    cdef floating *bufs
    cdef const floating *gp = &g[0, 0] if g.shape[0] and g.shape[1] else NULL
    cdef floating *s2p = &s2[0, 0] if s2.shape[0] else NULL
    cdef const fd_step_params *params = _step_params(hp)
    if nr == 0 or nc == 0:
        return 0.0, 0.0
    n_threads = max(1, n_threads)
    n_blocks = (nr + rows_per_block - 1) // rows_per_block
    part = <double *>calloc(2 * n_blocks, sizeof(double))
    # one staging block per thread, then one block of zeros (dropped rows' gradient)
    bufs = <floating *>calloc((n_threads + 1) * rows_per_block * nc, sizeof(floating))
    if part == NULL or bufs == NULL:
        free(part)
        free(bufs)
        raise MemoryError()
    try:
        for b in prange(n_blocks, schedule='static', nogil=True,
                        num_threads=1 if n_blocks < 2 else n_threads):
            r0 = b * rows_per_block
            r1 = min(nr, r0 + rows_per_block)
            _step_rows(kind, &w[0, 0], &s1[0, 0], s2p, r0, r1, nc, gp, kc, &row_pos[0],
                       &cols[0] if kc else NULL, bufs + threadid() * rows_per_block * nc,
                       bufs + n_threads * rows_per_block * nc, params, part + 2 * b)
            if copy_next:
                for r in range(r0, r1):
                    pn = next_pos[r]
                    if pn >= 0:
                        if nkc == nc:
                            memcpy(&next_w[pn, 0], &w[r, 0], nc * sizeof(floating))
                        else:
                            for j in range(nkc):
                                next_w[pn, j] = w[r, next_cols[j]]
        return _ordered_sum(part, n_blocks)
    finally:
        free(part)
        free(bufs)


cdef inline double _row_scale(const floating[::1] w, bint weighted, Py_ssize_t n) noexcept:
    """The gradient's factor: 1 / (sum of the row weights), or 1 / n without weights; 0 when
    that sum is 0 (nothing to learn from)."""
    cdef Py_ssize_t i
    cdef double total = n
    if weighted:
        total = 0
        for i in range(n):
            total += w[i]
    return 1.0 / total if total > 0 else 0.0


# Every output layer below is fused with its loss. z holds the layer's pre-bias outputs and is
# overwritten with the gradient of the mean loss with respect to them when want_grad, else
# with the layer's outputs; grad_bias (with want_grad) receives the gradient's column sums, the
# output bias's gradient, summed row by row. w: one weight per row (empty: all 1), as
# scikit-learn weighs samples: the loss returned is sum_i w_i loss_i, the mean is over the
# weights' sum, and the gradient of row i is w_i (output - target) / sum(w).

def softmax_xent(floating[:, ::1] z,             # IN logits without bias; OUT gradient or proba
                 const floating[::1] bias,       # IN (n_classes,)
                 const int64_t[::1] y,           # IN class index per row, or empty: no labels
                 bint want_grad,
                 floating[::1] grad_bias=None,   # OUT (n_classes,)
                 const floating[::1] w=None):    # IN (n,) row weights, or None / empty
    """Softmax + cross-entropy, fused and numerically stable (see the notes above)."""
    cdef Py_ssize_t n = z.shape[0]
    cdef bint weighted = w is not None and w.shape[0] > 0
    cdef double inv = _row_scale(w, weighted, n), loss
    with nogil:
        loss = _softmax_rows(&z[0, 0] if n else NULL, n, z.shape[1], &bias[0],
                             &y[0] if y.shape[0] else NULL, want_grad,
                             &grad_bias[0] if want_grad and grad_bias is not None else NULL,
                             &w[0] if weighted else NULL, inv)
    return loss


cdef double _softmax_rows(floating *z, Py_ssize_t n, Py_ssize_t k, const floating *bias,
                          const int64_t *y, bint want_grad, floating *grad_bias,
                          const floating *w, double inv) noexcept nogil:
    """softmax_xent on n rows of k logits at z (row-major); y, grad_bias, w may be NULL (no
    labels, no column sums, no row weights); inv scales each row's gradient."""
    cdef Py_ssize_t i, j
    cdef double mx, total, loss = 0, row, v, g
    if grad_bias != NULL:
        for j in range(k):
            grad_bias[j] = 0
    for i in range(n):
        g = inv * (w[i] if w != NULL else 1.0)
        mx = z[i * k] + bias[0]
        for j in range(1, k):
            v = z[i * k + j] + bias[j]
            if v > mx:
                mx = v
        row = 0
        if y != NULL:  # -log p_y = log sum exp(z - max) - (z_y - max), never log(0)
            row = -(z[i * k + y[i]] + bias[y[i]] - mx)
        total = 0
        for j in range(k):
            v = exp(z[i * k + j] + bias[j] - mx)
            z[i * k + j] = <floating>v
            total += v
        if y != NULL:
            row += log(total)
            loss += row * (w[i] if w != NULL else 1.0)
        for j in range(k):
            v = z[i * k + j] / total
            if want_grad:
                v = (v - (j == y[i])) * g
            z[i * k + j] = <floating>v
            if grad_bias != NULL:
                grad_bias[j] += z[i * k + j]
    return loss


# Output layers whose loss is a sum over elements (one kind each below).
cdef enum:
    OUT_SIGMOID = 0
    OUT_IDENTITY = 1
    OUT_EXP = 2


cdef inline double _output_element(int kind, double v, double t, bint labelled, double wi,
                                   double *loss) noexcept nogil:
    """The output for pre-activation v (bias added); adds the element's loss for target t,
    times its row's weight wi, to ``loss`` when labelled. The loss's gradient with respect to
    v is output - t."""
    cdef double out
    if kind == OUT_SIGMOID:  # binary cross-entropy, stable: log(1 + e^-|v|) + max(v, 0) - t v
        out = 1 / (1 + exp(-v)) if v >= 0 else exp(v) / (1 + exp(v))
        if labelled:
            loss[0] += wi * (log1p(exp(-fabs(v))) + (v if v > 0 else 0) - t * v)
    elif kind == OUT_IDENTITY:  # half the squared error
        out = v
        if labelled:
            loss[0] += wi * (0.5 * (v - t) * (v - t))
    else:  # exp and half the Poisson deviance, t log(t / mu) - t + mu
        out = exp(v)
        if labelled:
            loss[0] += wi * (out - t + (t * (log(t) - v) if t > 0 else 0))
    return out


cdef double _elementwise_loss(int kind, floating[:, ::1] z, const floating[::1] bias,
                              const floating[:, ::1] t, bint want_grad,
                              floating[::1] grad_bias, const floating[::1] w):
    """The driver of the element-wise output layers (see the notes above softmax_xent)."""
    cdef Py_ssize_t n = z.shape[0]
    cdef bint weighted = w is not None and w.shape[0] > 0
    cdef double inv = _row_scale(w, weighted, n), loss
    with nogil:
        loss = _elementwise_rows(kind, &z[0, 0] if n else NULL, n, z.shape[1], &bias[0],
                                 &t[0, 0] if t.shape[0] else NULL, want_grad,
                                 &grad_bias[0] if want_grad and grad_bias is not None
                                 else NULL, &w[0] if weighted else NULL, inv)
    return loss


cdef double _elementwise_rows(int kind, floating *z, Py_ssize_t n, Py_ssize_t k,
                              const floating *bias, const floating *t, bint want_grad,
                              floating *grad_bias, const floating *w,
                              double inv) noexcept nogil:
    """An element-wise output layer on n rows of k outputs at z; t (row-major targets),
    grad_bias and w may be NULL, as in _softmax_rows."""
    cdef Py_ssize_t i, j
    cdef double loss = 0, out, g, wi
    if grad_bias != NULL:
        for j in range(k):
            grad_bias[j] = 0
    for i in range(n):
        wi = w[i] if w != NULL else 1.0
        g = inv * wi
        for j in range(k):
            out = _output_element(kind, z[i * k + j] + bias[j],
                                  t[i * k + j] if t != NULL else 0, t != NULL, wi, &loss)
            if want_grad:
                out = (out - t[i * k + j]) * g
            z[i * k + j] = <floating>out
            if grad_bias != NULL:
                grad_bias[j] += z[i * k + j]
    return loss


def sigmoid_xent(floating[:, ::1] z,             # IN logits without bias; OUT gradient or proba
                 const floating[::1] bias,       # IN (n_outputs,)
                 const floating[:, ::1] t,       # IN 0/1 targets (n, n_outputs), or empty
                 bint want_grad,
                 floating[::1] grad_bias=None,   # OUT (n_outputs,)
                 const floating[::1] w=None):    # IN (n,) row weights, or None / empty
    """Independent sigmoids + binary cross-entropy summed over outputs (stable log1p form)."""
    return _elementwise_loss(OUT_SIGMOID, z, bias, t, want_grad, grad_bias, w)


def squared_error(floating[:, ::1] z,            # IN outputs without bias; OUT gradient or output
                  const floating[::1] bias,      # IN (n_outputs,)
                  const floating[:, ::1] t,      # IN targets (n, n_outputs), or empty
                  bint want_grad,
                  floating[::1] grad_bias=None,  # OUT (n_outputs,)
                  const floating[::1] w=None):   # IN (n,) row weights, or None / empty
    """Identity output + squared error, as scikit-learn's MLPRegressor has them.

    The loss is half each row's sum of squared errors: the loss whose gradient that is.
    scikit-learn steps along the same gradient but reports the mean over outputs,
    ``((t - y) ** 2).mean() / 2``: the same number for one output, n_outputs times less for
    several.
    """
    return _elementwise_loss(OUT_IDENTITY, z, bias, t, want_grad, grad_bias, w)


def poisson_deviance(floating[:, ::1] z,         # IN outputs without bias; OUT gradient or mean
                     const floating[::1] bias,   # IN (n_outputs,)
                     const floating[:, ::1] t,   # IN targets >= 0 (n, n_outputs), or empty
                     bint want_grad,
                     floating[::1] grad_bias=None,   # OUT (n_outputs,)
                     const floating[::1] w=None):    # IN (n,) row weights, or None / empty
    """Exponential output + half Poisson deviance, scikit-learn's ``loss="poisson"``: the
    output is mu = exp(z + bias), a row's loss the sum over outputs of t log(t / mu) - t + mu
    (scikit-learn's ``poisson_loss`` summed over outputs)."""
    return _elementwise_loss(OUT_EXP, z, bias, t, want_grad, grad_bias, w)


# A log variance below this reads as this in exp(-s): the precision stays finite (e^40)
# while a row whose error is 0 pulls its variance down; the loss and gradient use s itself.
cdef double LOGVAR_FLOOR = -40.0
cdef double LOG_2PI = 1.8378770664093453


def gaussian_nll(floating[:, ::1] z,             # IN (n, 2k) without bias; OUT gradient or (mean, log var)
                 const floating[::1] bias,       # IN (2k,)
                 const floating[:, ::1] t,       # IN targets (n, k), or empty
                 bint want_grad,
                 floating[::1] grad_bias=None,   # OUT (2k,)
                 const floating[::1] w=None):    # IN (n,) row weights, or None / empty
    """Mean and log-variance outputs + the Gaussian negative log-likelihood (Kendall & Gal
    2017, heteroscedastic regression): columns [0, k) are the means mu, [k, 2k) the log
    variances s of k targets; a row's loss is sum_j (s_j + (t_j - mu_j)^2 e^(-s_j) +
    log 2 pi) / 2. Gradients: -(t - mu) e^(-s) for mu, (1 - (t - mu)^2 e^(-s)) / 2 for s.
    Without want_grad, z receives mu and s. Identity outputs for both: a log variance is
    unbounded, so no activation is needed to keep the variance positive."""
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1] // 2
    cdef double loss
    cdef bint labelled = t.shape[0] > 0
    cdef bint weighted = w is not None and w.shape[0] > 0
    cdef double inv = _row_scale(w, weighted, n)
    if z.shape[1] != 2 * k or (labelled and t.shape[1] != k):
        raise ValueError(f"gaussian_nll needs 2k output columns and k target columns, got "
                         f"{z.shape[1]} and {t.shape[1]}")
    with nogil:
        loss = _gaussian_rows(&z[0, 0] if n and k else NULL, n, k, &bias[0] if k else NULL,
                              &t[0, 0] if labelled and k else NULL, want_grad,
                              &grad_bias[0] if want_grad and grad_bias is not None and k
                              else NULL, &w[0] if weighted else NULL, inv)
    return loss


cdef double _gaussian_rows(floating *z, Py_ssize_t n, Py_ssize_t k, const floating *bias,
                           const floating *t, bint want_grad, floating *grad_bias,
                           const floating *w, double inv) noexcept nogil:
    """gaussian_nll on n rows of 2k outputs at z (row-major); t (n, k), grad_bias and w may
    be NULL, as in _softmax_rows."""
    cdef Py_ssize_t i, j
    cdef double loss = 0, g, wi, mu, lv, prec, r
    if grad_bias != NULL:
        for j in range(2 * k):
            grad_bias[j] = 0
    for i in range(n):
        wi = w[i] if w != NULL else 1.0
        g = inv * wi
        for j in range(k):
            mu = z[i * 2 * k + j] + bias[j]
            lv = z[i * 2 * k + k + j] + bias[k + j]
            prec = exp(-(lv if lv > LOGVAR_FLOOR else LOGVAR_FLOOR))
            r = (t[i * k + j] - mu) if t != NULL else 0.0
            if t != NULL:
                loss += wi * 0.5 * (lv + r * r * prec + LOG_2PI)
            if want_grad:
                z[i * 2 * k + j] = <floating>(-r * prec * g)
                z[i * 2 * k + k + j] = <floating>(0.5 * (1.0 - r * r * prec) * g)
                if grad_bias != NULL:
                    grad_bias[j] += z[i * 2 * k + j]
                    grad_bias[k + j] += z[i * 2 * k + k + j]
            else:
                z[i * 2 * k + j] = <floating>mu
                z[i * 2 * k + k + j] = <floating>lv
    return loss


cdef inline double _activated(double v, int kind) noexcept nogil:
    if kind == ACT_TANH:
        return tanh(v)
    if kind == ACT_LOGISTIC:  # exp of a non-positive number only: no overflow
        return 1 / (1 + exp(-v)) if v >= 0 else exp(v) / (1 + exp(v))
    if kind == ACT_SELU:
        return SELU_LAMBDA * v if v > 0 else SELU_LAMBDA * SELU_ALPHA * expm1(v)
    return v


def activate(floating[:, ::1] z,                 # IN pre-activations; OUT f(z + bias)
             const floating[::1] bias,           # IN (k,), or empty: no bias
             int kind, int n_threads):
    """z = f(z + bias) for a hidden activation f other than ReLU (ACTIVATIONS), rows in
    parallel; each element's value does not depend on the thread count."""
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1], i
    cdef const floating *b = &bias[0] if bias.shape[0] > 0 else NULL
    if n == 0 or k == 0:
        return
    for i in prange(n, schedule='static', nogil=True,
                    num_threads=n_threads if n * k >= CHUNK else 1):
        _activate_row(&z[i, 0], k, b, kind)


cdef inline void _activate_row(floating *z, Py_ssize_t k, const floating *bias,
                               int kind) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(k):
        z[j] = <floating>_activated(z[j] + (bias[j] if bias != NULL else 0), kind)


cdef inline double _derivative(double h, int kind) noexcept nogil:
    """f'(z) from h = f(z)."""
    if kind == ACT_TANH:
        return 1 - h * h
    if kind == ACT_LOGISTIC:
        return h * (1 - h)
    if kind == ACT_SELU:  # h = lambda alpha (e^z - 1) for z <= 0, so f'(z) = h + lambda alpha
        return SELU_LAMBDA if h > 0 else h + SELU_LAMBDA * SELU_ALPHA
    return 1.0


def derivative_colsum(floating[:, ::1] dx,       # IN dL/da (dropout's mask applied); OUT dL/dz
                      const floating[:, ::1] a,  # IN the layer's output a = f(z) * scale, or 0
                      double scale, int kind,
                      floating[::1] colsum,      # OUT (k,) column sums of the new dx
                      int n_threads):
    """dx *= scale * f'(a / scale) for a hidden activation f other than ReLU, and dx's
    column sums (the bias gradient) row by row. Threads split the columns in blocks of 64,
    as gate_colsum does, so the sums do not depend on the thread count; each block walks the
    rows in order, its columns contiguous."""
    cdef Py_ssize_t m = dx.shape[0], k = dx.shape[1], j, b
    cdef Py_ssize_t n_blocks = (k + 63) // 64
    cdef double *acc
    if k == 0:
        return
    acc = <double *> calloc(k, sizeof(double))
    if acc == NULL:
        raise MemoryError()
    try:
        for b in prange(n_blocks, schedule='static', nogil=True,
                        num_threads=n_threads if m * k >= CHUNK else 1):
            _derivative_block(&dx[0, 0] if m else NULL, &a[0, 0] if m else NULL, m, k,
                              b * 64, min(b * 64 + 64, k), scale, kind, acc)
        for j in range(k):
            colsum[j] = <floating>acc[j]
    finally:
        free(acc)


cdef inline void _derivative_block(floating *dx, const floating *a, Py_ssize_t m,
                                   Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1, double scale,
                                   int kind, double *acc) noexcept nogil:
    """Columns j0..j1 of derivative_colsum over the (m, k) row-major dx and a; their sums
    added to acc (zeroed by the caller)."""
    cdef Py_ssize_t i, j
    cdef double inv = 1.0 / scale, v
    for i in range(m):
        for j in range(j0, j1):
            v = dx[i * k + j] * scale * _derivative(a[i * k + j] * inv, kind)
            dx[i * k + j] = <floating>v
            acc[j] += dx[i * k + j]


def take_rows(const floating[:, ::1] src,        # IN (n, n_cols)
              const int64_t[::1] rows,            # IN row indices, each in [0, n)
              floating[:, ::1] dst,               # OUT (len(rows), n_cols)
              int n_threads):
    """dst = src[rows], a row copy each (a mini-batch of shuffled rows). Scattered rows of a
    large X are latency-bound reads from memory: two threads have twice the misses in flight."""
    cdef Py_ssize_t i, nr = rows.shape[0], nc = src.shape[1]
    if nc == 0:
        return
    for i in prange(nr, schedule='static', nogil=True,
                    num_threads=1 if nr < 16 else n_threads):
        memcpy(&dst[i, 0], &src[rows[i], 0], nc * sizeof(floating))


def gather(const floating[:, ::1] src,           # IN (n_rows, n_cols)
           const int64_t[::1] rows,              # IN kept row indices
           const int64_t[::1] cols,              # IN kept column indices (increasing)
           floating[:, ::1] dst,                 # OUT (len(rows), len(cols))
           int n_threads):
    """dst = src[rows][:, cols] in one pass (batch-mode dropout's submatrix); a row copy
    each when every column is kept."""
    cdef Py_ssize_t a, nr = rows.shape[0], nc = cols.shape[0]
    if nr == 0 or nc == 0:
        return
    for a in prange(nr, schedule='static', nogil=True, num_threads=n_threads):
        _gather_row(&src[rows[a], 0], &cols[0], nc, src.shape[1], &dst[a, 0])


cdef inline void _gather_row(const floating *src, const int64_t *cols, Py_ssize_t nc,
                             Py_ssize_t n_cols, floating *dst) noexcept nogil:
    """dst = src[cols] for one row of n_cols values: a row copy when every column is kept."""
    cdef Py_ssize_t b
    if nc == n_cols:
        memcpy(dst, src, nc * sizeof(floating))
        return
    for b in range(nc):
        dst[b] = src[cols[b]]


def max_norm(floating[:, ::1] w,                 # IN/OUT (fan_out, fan_in): row j feeds unit j
             double c):
    """Project each unit's incoming weight vector onto the ball of radius c (Srivastava et al.);
    return how many units it clipped."""
    cdef Py_ssize_t clipped
    with nogil:
        clipped = _max_norm_rows(&w[0, 0] if w.shape[0] and w.shape[1] else NULL, w.shape[0],
                                 w.shape[1], c)
    return clipped


cdef Py_ssize_t _max_norm_rows(floating *w, Py_ssize_t n_out, Py_ssize_t n_in,
                               double c) noexcept nogil:
    """max_norm on the n_out rows of n_in weights at w (row-major)."""
    cdef Py_ssize_t i, j, clipped = 0
    cdef double sq
    cdef floating scale
    if w == NULL:
        return 0
    for j in range(n_out):
        sq = 0
        for i in range(n_in):
            sq += w[j * n_in + i] * w[j * n_in + i]
        if sq > c * c:
            clipped += 1
            scale = <floating>(c / sqrt(sq))
            for i in range(n_in):
                w[j * n_in + i] *= scale
    return clipped


cdef inline void _traffic_block(floating *w, const floating *g, floating *v,
                                int64_t n) noexcept nogil:
    cdef int64_t i
    for i in range(n):
        w[i] = <floating>copysign(w[i], g[i])
        v[i] = -v[i]


def step_traffic(floating[::1] w,                # IN/OUT: w = copysign(w, g)
                 const floating[::1] g,          # IN
                 floating[::1] v,                # IN/OUT: v = -v
                 int n_threads):
    """The bytes one fused SGD-momentum step moves (read w, g, v; write w, v), without its
    arithmetic, chunked over threads as optimizer_step is: the benchmark's update floor.
    Magnitudes never change, so repeated calls keep the arrays finite."""
    cdef int64_t n = w.shape[0], n_chunks = (n + CHUNK - 1) // CHUNK, c, start
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=1 if n_chunks < 2 else n_threads):
        start = c * CHUNK
        _traffic_block(&w[start], &g[start], &v[start], min(<int64_t>CHUNK, n - start))


include "_step_loop.pxi"
