"""Fused element-wise kernels of the MLP: optimizer steps, output layers, submatrix moves.

Each loop makes one pass over memory; the optimizer steps fold the L2 and L1 penalty gradients
into the update (see _optim.h for how they are kept vectorizable).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, log1p, sqrt, fabs
from libc.stdint cimport int64_t


cdef extern from "_optim.h" nogil:
    void fd_sgd_f32(float *w, const float *g, float *v, int64_t n, float lr, float mom,
                    int nesterov, float l2, float l1)
    void fd_sgd_f64(double *w, const double *g, double *v, int64_t n, double lr, double mom,
                    int nesterov, double l2, double l1)
    void fd_adam_f32(float *w, const float *g, float *m, float *s, int64_t n, float lr_t,
                     float b1, float b2, float eps, float l2, float l1)
    void fd_adam_f64(double *w, const double *g, double *m, double *s, int64_t n, double lr_t,
                     double b1, double b2, double eps, double l2, double l1)

# Parameters per parallel chunk.
cdef enum:
    CHUNK = 16384


cdef inline void _sgd_chunk(floating *w, const floating *g, floating *v, int64_t n, int64_t c,
                            double lr, double mom, bint nesterov, double l2,
                            double l1) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    if floating is float:
        fd_sgd_f32(w + start, g + start, v + start, m, lr, mom, nesterov, l2, l1)
    else:
        fd_sgd_f64(w + start, g + start, v + start, m, lr, mom, nesterov, l2, l1)


def sgd_step(floating[::1] w,                    # IN/OUT parameters
             const floating[::1] g,              # IN data gradient (batch mean)
             floating[::1] v,                    # IN/OUT velocity
             double lr, double momentum, bint nesterov, double l2, double l1, int n_threads):
    """scikit-learn's SGD: v = momentum * v - lr * G; w += v (Nesterov: w += momentum * v - lr * G),
    with G = g + l2 * w + l1 * sign(w)."""
    cdef int64_t n = w.shape[0], n_chunks = (n + CHUNK - 1) // CHUNK, c
    if n == 0:
        return
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=1 if n_chunks < 2 else n_threads):
        _sgd_chunk(&w[0], &g[0], &v[0], n, c, lr, momentum, nesterov, l2, l1)


cdef inline void _adam_chunk(floating *w, const floating *g, floating *m, floating *s,
                             int64_t n, int64_t c, double lr_t, double b1, double b2, double eps,
                             double l2, double l1) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t k = min(<int64_t>CHUNK, n - start)
    if floating is float:
        fd_adam_f32(w + start, g + start, m + start, s + start, k, lr_t, b1, b2, eps, l2, l1)
    else:
        fd_adam_f64(w + start, g + start, m + start, s + start, k, lr_t, b1, b2, eps, l2, l1)


def adam_step(floating[::1] w,                   # IN/OUT parameters
              const floating[::1] g,             # IN data gradient (batch mean)
              floating[::1] m,                   # IN/OUT first moment
              floating[::1] s,                   # IN/OUT second moment
              double lr_t, double beta1, double beta2, double eps, double l2, double l1,
              int n_threads):
    """scikit-learn's Adam with the bias correction folded into lr_t."""
    cdef int64_t n = w.shape[0], n_chunks = (n + CHUNK - 1) // CHUNK, c
    if n == 0:
        return
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=1 if n_chunks < 2 else n_threads):
        _adam_chunk(&w[0], &g[0], &m[0], &s[0], n, c, lr_t, beta1, beta2, eps, l2, l1)


def abs_sum(const floating[::1] w):
    """sum |w| with 8 independent lanes (vectorizable, fixed order)."""
    cdef double lanes[8]
    cdef Py_ssize_t i, k, n = w.shape[0]
    for k in range(8):
        lanes[k] = 0
    with nogil:
        i = 0
        while i + 8 <= n:
            for k in range(8):
                lanes[k] += fabs(w[i + k])
            i += 8
        while i < n:
            lanes[0] += fabs(w[i])
            i += 1
    return sum(lanes[k] for k in range(8))


def softmax_xent(floating[:, ::1] z,             # IN logits without bias; OUT gradient or proba
                 const floating[::1] bias,       # IN (n_classes,)
                 const int64_t[::1] y,           # IN class index per row, or empty: no labels
                 bint want_grad):
    """Softmax + cross-entropy, fused and numerically stable.

    z is overwritten with the gradient of the mean loss w.r.t. the logits ((p - onehot) / n)
    when want_grad, else with the probabilities. Returns the summed loss (0 without labels).
    """
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1], i, j
    cdef double mx, total, loss = 0, inv_n = 1.0 / n if n else 0.0, v
    with nogil:
        for i in range(n):
            mx = z[i, 0] + bias[0]
            for j in range(1, k):
                v = z[i, j] + bias[j]
                if v > mx:
                    mx = v
            if y.shape[0]:  # -log p_y = log sum exp(z - max) - (z_y - max), never log(0)
                loss -= z[i, y[i]] + bias[y[i]] - mx
            total = 0
            for j in range(k):
                v = exp(z[i, j] + bias[j] - mx)
                z[i, j] = <floating>v
                total += v
            if y.shape[0]:
                loss += log(total)
            for j in range(k):
                v = z[i, j] / total
                if want_grad:
                    v = (v - (j == y[i])) * inv_n
                z[i, j] = <floating>v
    return loss


def sigmoid_xent(floating[:, ::1] z,             # IN logits without bias; OUT gradient or proba
                 const floating[::1] bias,       # IN (n_outputs,)
                 const floating[:, ::1] t,       # IN 0/1 targets (n, n_outputs), or empty
                 bint want_grad):
    """Independent sigmoids + binary cross-entropy summed over outputs (stable log1p form).

    z becomes (sigmoid - t) / n when want_grad, else the sigmoids. Returns the summed loss.
    """
    cdef Py_ssize_t n = z.shape[0], k = z.shape[1], i, j
    cdef double loss = 0, inv_n = 1.0 / n if n else 0.0, a, p
    cdef bint labelled = t.shape[0] > 0
    with nogil:
        for i in range(n):
            for j in range(k):
                a = z[i, j] + bias[j]
                if a >= 0:
                    p = 1 / (1 + exp(-a))
                else:
                    p = exp(a) / (1 + exp(a))
                if labelled:
                    # -[t log p + (1 - t) log(1 - p)] = log(1 + e^-|a|) + max(a, 0) - t a
                    loss += log1p(exp(-fabs(a))) + (a if a > 0 else 0) - t[i, j] * a
                if want_grad:
                    p = (p - t[i, j]) * inv_n
                z[i, j] = <floating>p
    return loss


def gather(const floating[:, ::1] src,           # IN (n_rows, n_cols)
           const int64_t[::1] rows,              # IN kept row indices
           const int64_t[::1] cols,              # IN kept column indices
           floating[:, ::1] dst,                 # OUT (len(rows), len(cols))
           int n_threads):
    """dst = src[rows][:, cols] in one pass (batch-mode dropout's submatrix)."""
    cdef Py_ssize_t a, b, nr = rows.shape[0], nc = cols.shape[0]
    for a in prange(nr, schedule='static', nogil=True, num_threads=n_threads):
        for b in range(nc):
            dst[a, b] = src[rows[a], cols[b]]


def scatter(const floating[:, ::1] src,          # IN (len(rows), len(cols))
            const int64_t[::1] row_pos,          # IN position of each dst row in src, or -1
            const int64_t[::1] cols,             # IN the dst column of each src column
            floating[:, ::1] dst,                # OUT every element written
            int n_threads):
    """dst = 0 except dst[r, cols[j]] = src[row_pos[r], j] for kept rows (one pass).

    Each row is zero-filled (vectorized) and only its kept columns are stored: half the
    indirect stores of a per-element lookup at p = 0.5, and no branch per element.
    """
    cdef Py_ssize_t r, c, j, nr = dst.shape[0], nc = dst.shape[1], kc = cols.shape[0]
    cdef int64_t pr
    for r in prange(nr, schedule='static', nogil=True, num_threads=n_threads):
        for c in range(nc):
            dst[r, c] = 0
        pr = row_pos[r]
        if pr >= 0:
            for j in range(kc):
                dst[r, cols[j]] = src[pr, j]


def max_norm(floating[:, ::1] w,                 # IN/OUT (fan_in, fan_out): column j feeds unit j
             double c,
             floating[::1] norms):               # scratch (fan_out,)
    """Project each unit's incoming weight vector onto the ball of radius c (Srivastava et al.)."""
    cdef Py_ssize_t i, j, n_in = w.shape[0], n_out = w.shape[1]
    with nogil:
        for j in range(n_out):
            norms[j] = 0
        for i in range(n_in):
            for j in range(n_out):
                norms[j] += w[i, j] * w[i, j]
        for j in range(n_out):
            norms[j] = <floating>(c / sqrt(norms[j])) if norms[j] > c * c else 1
        for i in range(n_in):
            for j in range(n_out):
                w[i, j] *= norms[j]
