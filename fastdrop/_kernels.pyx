"""Fused dropout kernels over flat C-contiguous arrays.

The Python wrappers in ``fastdrop._dropout`` (``fastdrop.dropout`` and its kin) validate and resolve everything; these functions
trust their arguments. Work is split into chunks of whole 64-element mask words, so a chunk's
mask bits are written by exactly one thread, and every decision is a pure function of
(seed, step, element index): the results do not depend on the thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport uint64_t, int64_t, uint32_t

cdef extern from "_dropout_kernels.h" nogil:
    ctypedef struct fd_draw:
        uint32_t k0
        uint32_t k1
        uint32_t s0
        uint32_t s1
        uint32_t threshold
    void fd_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
    void fd_words(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d)
    void fd_fwd_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0,
                    const fd_draw *d, float scale, const float *bias, int64_t ncols,
                    int64_t col0, int relu)
    void fd_fwd_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0,
                    const fd_draw *d, double scale, const double *bias, int64_t ncols,
                    int64_t col0, int relu)
    void fd_apply_f32(const float *dy, const uint64_t *bits, float *dx, int64_t n, float scale)
    void fd_apply_f64(const double *dy, const uint64_t *bits, double *dx, int64_t n, double scale)
    void fd_gate_f32(const float *dy, const float *y, float *dx, int64_t n, float scale)
    void fd_gate_f64(const double *dy, const double *y, double *dx, int64_t n, double scale)
    void fd_gate_colsum_f32(const float *dy, const float *y, float *dx, float *colsum,
                            int64_t m, int64_t ld, int64_t nb, float scale)
    void fd_gate_colsum_f64(const double *dy, const double *y, double *dx, double *colsum,
                            int64_t m, int64_t ld, int64_t nb, double scale)
    int FD_COLSUM_BLOCK
    void fd_apply_shared_f32(const float *x, float *y, int64_t rows, int64_t cols,
                             const int64_t *idx, const uint64_t *bits, int per_row, float scale)
    void fd_apply_shared_f64(const double *x, double *y, int64_t rows, int64_t cols,
                             const int64_t *idx, const uint64_t *bits, int per_row, double scale)

cdef extern from "_noise_kernels.h" nogil:
    void fd_gauss_f32(const float *x, float *y, int64_t n, uint64_t g0, const fd_draw *d,
                      const float *table)
    void fd_gauss_f64(const double *x, double *y, int64_t n, uint64_t g0, const fd_draw *d,
                      const double *table)
    void fd_alpha_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0,
                      const fd_draw *d, float a, float b, float c)
    void fd_alpha_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0,
                      const fd_draw *d, double a, double b, double c)

include "_simd.pxi"

# Elements per parallel chunk: 256 mask words (64 KiB of float32), large enough to amortize
# scheduling, small enough that 2^16 elements still split across 2 threads.
cdef enum:
    CHUNK_WORDS = 256
    CHUNK = 64 * CHUNK_WORDS

THRESHOLD_ONE = 65536
RNG_NAME = "Philox4x32-10 (Random123; Salmon et al., SC 2011)"


cdef inline fd_draw _draw(uint64_t seed, uint64_t step, uint32_t threshold) noexcept:
    cdef fd_draw d
    d.k0 = <uint32_t>seed
    d.k1 = <uint32_t>(seed >> 32)
    d.s0 = <uint32_t>step
    d.s1 = <uint32_t>(step >> 32)
    d.threshold = threshold
    return d


cdef inline int _threads_for(int64_t n_chunks, int n_threads) noexcept nogil:
    # One chunk of work does not pay for waking a team.
    return 1 if n_chunks < 2 else n_threads


def philox4x32_10(ctr, key):
    """One Philox4x32-10 block (for the known-answer test): 4 counter words, 2 key words."""
    cdef uint32_t c[4]
    cdef uint32_t k[2]
    cdef uint32_t out[4]
    for i in range(4):
        c[i] = ctr[i]
    k[0] = key[0]
    k[1] = key[1]
    fd_philox4x32_10(c, k, out)
    return tuple(out[i] for i in range(4))


cdef inline void _words_chunk(uint64_t *out, uint64_t g0, int64_t n_words, int64_t c,
                              const fd_draw *d) noexcept nogil:
    cdef int64_t w0 = c * CHUNK_WORDS
    cdef int64_t m = min(<int64_t>CHUNK_WORDS, n_words - w0)
    fd_words(out + w0, g0 + <uint64_t>w0, m, d)


def mask_words(uint64_t[::1] out,                # OUT
               uint64_t first_word, uint64_t seed, uint64_t step, uint32_t threshold,
               int n_threads):
    """Mask words first_word .. first_word + len(out) - 1 of draw (seed, step)."""
    cdef int64_t n_words = out.shape[0]
    if n_words == 0:
        return
    cdef fd_draw d = _draw(seed, step, threshold)
    cdef int64_t n_chunks = (n_words + CHUNK_WORDS - 1) // CHUNK_WORDS
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _words_chunk(&out[0], first_word, n_words, c, &d)


cdef inline void _forward_chunk(const floating *x, floating *y, uint64_t *bits, int64_t n,
                                int64_t c, uint64_t first_word, const fd_draw *d, double scale,
                                const floating *bias, int64_t ncols, bint relu) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    cdef uint64_t *b = bits + start // 64 if bits != NULL else NULL
    cdef int64_t col0 = start % ncols if bias != NULL else 0
    cdef uint64_t g0 = first_word + <uint64_t>(start // 64)
    if floating is float:
        fd_fwd_f32(x + start, y + start, b, m, g0, d, <float>scale, bias, ncols, col0, relu)
    else:
        fd_fwd_f64(x + start, y + start, b, m, g0, d, scale, bias, ncols, col0, relu)


def forward(const floating[::1] x,               # IN
            floating[::1] y,                     # OUT (may be x itself)
            uint64_t[::1] bits,                  # OUT, ceil(n / 64) words, or empty: not stored
            uint64_t seed, uint64_t step, uint32_t threshold, double scale,
            const floating[::1] bias,            # IN, (ncols,) or empty: no bias
            bint relu, int n_threads, uint64_t first_word=0):
    """y = keep ? f(x) * scale : 0, with f = (+ bias) then ReLU as asked; keep bits to `bits`.

    threshold == 65536 keeps everything and draws no random numbers (bias + ReLU only).
    Element j of x is element 64 * first_word + j of the draw (chunked passes over one draw).
    """
    cdef int64_t n = x.shape[0]
    if n == 0:
        return
    cdef fd_draw d = _draw(seed, step, threshold)
    cdef uint64_t *bits_p = &bits[0] if bits.shape[0] > 0 else NULL
    cdef const floating *bias_p = &bias[0] if bias.shape[0] > 0 else NULL
    cdef int64_t ncols = bias.shape[0] if bias.shape[0] > 0 else 1
    cdef int64_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _forward_chunk(&x[0], &y[0], bits_p, n, c, first_word, &d, scale, bias_p, ncols, relu)


cdef inline void _apply_chunk(const floating *dy, const uint64_t *bits, floating *dx, int64_t n,
                              int64_t c, double scale) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    if floating is float:
        fd_apply_f32(dy + start, bits + start // 64, dx + start, m, <float>scale)
    else:
        fd_apply_f64(dy + start, bits + start // 64, dx + start, m, scale)


def apply_bits(const floating[::1] dy,           # IN
               const uint64_t[::1] bits,         # IN, ceil(n / 64) words
               floating[::1] dx,                 # OUT (may be dy itself)
               double scale, int n_threads):
    """dx = bit ? dy * scale : 0 (the backward of dropout from stored bits)."""
    cdef int64_t n = dy.shape[0]
    if n == 0:
        return
    cdef int64_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _apply_chunk(&dy[0], &bits[0], &dx[0], n, c, scale)


cdef inline void _shared_chunk(const floating *x, floating *y, int64_t rows, int64_t cols,
                               int64_t rows_per_chunk, int64_t c, const int64_t *idx,
                               const uint64_t *bits, bint per_row, double scale) noexcept nogil:
    cdef int64_t r0 = c * rows_per_chunk
    cdef int64_t m = min(rows_per_chunk, rows - r0)
    if floating is float:
        fd_apply_shared_f32(x + r0 * cols, y + r0 * cols, m, cols, idx + r0, bits, per_row,
                            <float>scale)
    else:
        fd_apply_shared_f64(x + r0 * cols, y + r0 * cols, m, cols, idx + r0, bits, per_row, scale)


def apply_shared(const floating[::1] x,          # IN, rows * cols elements
                 floating[::1] y,                # OUT (may be x itself)
                 int64_t cols,
                 const int64_t[::1] idx,         # IN (rows,): each row's first mask element
                 const uint64_t[::1] bits,       # IN, the packed mask
                 bint per_row, double scale, int n_threads):
    """y = bit ? x * scale : 0 with decisions shared along axes: row r of x (cols elements)
    reads bit idx[r] for all its elements (per_row) or bits idx[r] * cols + k."""
    cdef int64_t rows = idx.shape[0]
    if rows == 0 or cols == 0:
        return
    cdef int64_t rows_per_chunk = max(<int64_t>1, <int64_t>CHUNK // cols)
    cdef int64_t n_chunks = (rows + rows_per_chunk - 1) // rows_per_chunk
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _shared_chunk(&x[0], &y[0], rows, cols, rows_per_chunk, c, &idx[0], &bits[0], per_row,
                      scale)


cdef inline void _gate_chunk(const floating *dy, const floating *y, floating *dx, int64_t n,
                             int64_t c, double scale) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    if floating is float:
        fd_gate_f32(dy + start, y + start, dx + start, m, <float>scale)
    else:
        fd_gate_f64(dy + start, y + start, dx + start, m, scale)


def gate(const floating[::1] dy,                 # IN
         const floating[::1] y,                  # IN, the forward output
         floating[::1] dx,                       # OUT (may be dy itself)
         double scale, int n_threads):
    """dx = y > 0 ? dy * scale : 0 (the backward of ReLU + dropout from its output)."""
    cdef int64_t n = dy.shape[0]
    if n == 0:
        return
    cdef int64_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _gate_chunk(&dy[0], &y[0], &dx[0], n, c, scale)


def gate_colsum(const floating[:, ::1] dy,       # IN (m, k)
                const floating[:, ::1] y,        # IN (m, k), the forward output
                floating[:, ::1] dx,             # OUT (m, k), may be dy itself
                double scale,
                floating[::1] colsum,            # OUT (k,): dx summed over rows
                int n_threads):
    """gate() on a matrix, and dx's column sums in the same pass: the gradient at a ReLU
    layer's pre-activation and that layer's bias gradient. Threads split the columns and
    every column is summed row by row, so the sums do not depend on the thread count."""
    cdef int64_t m = dy.shape[0], k = dy.shape[1], b, j0
    cdef int64_t n_blocks = (k + FD_COLSUM_BLOCK - 1) // FD_COLSUM_BLOCK
    if k == 0:
        return
    if m == 0:
        colsum[:] = 0
        return
    for b in prange(n_blocks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_blocks if m * k >= CHUNK else 1, n_threads)):
        j0 = b * FD_COLSUM_BLOCK
        if floating is float:
            fd_gate_colsum_f32(&dy[0, j0], &y[0, j0], &dx[0, j0], &colsum[j0], m, k,
                               min(<int64_t>FD_COLSUM_BLOCK, k - j0), <float>scale)
        else:
            fd_gate_colsum_f64(&dy[0, j0], &y[0, j0], &dx[0, j0], &colsum[j0], m, k,
                               min(<int64_t>FD_COLSUM_BLOCK, k - j0), scale)


cdef inline void _gaussian_chunk(const floating *x, floating *y, int64_t n, int64_t c,
                                 uint64_t first_word, const fd_draw *d,
                                 const floating *table) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    cdef uint64_t g0 = first_word + <uint64_t>(start // 64)
    if floating is float:
        fd_gauss_f32(x + start, y + start, m, g0, d, table)
    else:
        fd_gauss_f64(x + start, y + start, m, g0, d, table)


def gaussian(const floating[::1] x,              # IN
             floating[::1] y,                    # OUT (may be x itself)
             uint64_t seed, uint64_t step,
             const floating[::1] table,          # IN (65536,): the noise of each 16-bit uniform
             int n_threads, uint64_t first_word=0):
    """y = x * table[u], u the element's 16-bit uniform of draw (seed, step) (Gaussian
    dropout, forward and backward alike). Element j of x is element 64 * first_word + j of
    the draw."""
    cdef int64_t n = x.shape[0]
    if n == 0:
        return
    cdef fd_draw d = _draw(seed, step, THRESHOLD_ONE)
    cdef int64_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _gaussian_chunk(&x[0], &y[0], n, c, first_word, &d, &table[0])


cdef inline void _alpha_chunk(const floating *x, floating *y, uint64_t *bits, int64_t n,
                              int64_t c, uint64_t first_word, const fd_draw *d, double a,
                              double b, double fill) noexcept nogil:
    cdef int64_t start = c * CHUNK
    cdef int64_t m = min(<int64_t>CHUNK, n - start)
    cdef uint64_t *bc = bits + start // 64 if bits != NULL else NULL
    cdef uint64_t g0 = first_word + <uint64_t>(start // 64)
    if floating is float:
        fd_alpha_f32(x + start, y + start, bc, m, g0, d, <float>a, <float>b, <float>fill)
    else:
        fd_alpha_f64(x + start, y + start, bc, m, g0, d, a, b, fill)


def alpha(const floating[::1] x,                 # IN
          floating[::1] y,                       # OUT (may be x itself)
          uint64_t[::1] bits,                    # OUT, ceil(n / 64) words, or empty: not stored
          uint64_t seed, uint64_t step, uint32_t threshold, double a, double b, double fill,
          int n_threads, uint64_t first_word=0):
    """y = keep ? x * a + b : fill (alpha dropout; fill = alpha' * a + b), keep bits to
    ``bits``; the decisions are dropout's for the same (seed, step, threshold)."""
    cdef int64_t n = x.shape[0]
    if n == 0:
        return
    cdef fd_draw d = _draw(seed, step, threshold)
    cdef uint64_t *bits_p = &bits[0] if bits.shape[0] > 0 else NULL
    cdef int64_t n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int64_t c
    for c in prange(n_chunks, schedule='static', nogil=True,
                    num_threads=_threads_for(n_chunks, n_threads)):
        _alpha_chunk(&x[0], &y[0], bits_p, n, c, first_word, &d, a, b, fill)
