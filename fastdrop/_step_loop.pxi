# The compiled mini-batch step loop (included by _nn_kernels.pyx): an epoch's mini-batch steps
# (batch gather, forward, backward, layer-wise optimizer step, max-norm) in C, on the threads
# the fit's policy gives each run of steps, with Python only between runs. It computes
# what the Python loop (fastdrop._trainer) computes for the fits fastdrop._compiled_epoch
# lets through (every site kind, DropConnect, element or batch mode, any activation and
# output, sample weights; dense X), call for call: the same kernels cut into the same
# chunks, the same products through numpy's own BLAS (_step_loop.h), the same order of sums;
# tests/test_step_loop.py compares the two bit for bit. On more than one thread every chunk
# loop the drivers run in parallel runs in parallel here too (prange over the same chunks);
# a loop of one chunk stays on the calling thread, as the drivers' _threads_for keeps it, and
# an activation's backward blocks share the region of the update above (_layer_update).
from libc.math cimport pow
from libc.stdint cimport uint32_t, uint64_t

cdef extern from "_dropout_kernels.h" nogil:
    ctypedef struct fd_draw:
        uint32_t k0
        uint32_t k1
        uint32_t s0
        uint32_t s1
        uint32_t threshold
    void fd_fwd_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0,
                    const fd_draw *d, float scale, const float *bias, int64_t ncols,
                    int64_t col0, int relu)
    void fd_fwd_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0,
                    const fd_draw *d, double scale, const double *bias, int64_t ncols,
                    int64_t col0, int relu)
    void fd_gate_colsum_f32(const float *dy, const float *y, float *dx, float *colsum,
                            int64_t m, int64_t ld, int64_t nb, float scale)
    void fd_gate_colsum_f64(const double *dy, const double *y, double *dx, double *colsum,
                            int64_t m, int64_t ld, int64_t nb, double scale)
    int FD_COLSUM_BLOCK
    void fd_words(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d)

cdef extern from "_noise_kernels.h" nogil:
    void fd_gauss_f32(const float *x, float *y, int64_t n, uint64_t g0, const fd_draw *d,
                      const float *table)
    void fd_gauss_f64(const double *x, double *y, int64_t n, uint64_t g0, const fd_draw *d,
                      const double *table)
    void fd_alpha_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0,
                      const fd_draw *d, float a, float b, float c)
    void fd_alpha_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0,
                      const fd_draw *d, double a, double b, double c)

cdef extern from "_step_loop.h" nogil:
    ctypedef struct fd_blas:
        pass
    double fd_now()
    int fd_matmul_kind(int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t o0,
                       int64_t o1, int64_t dm, int64_t dn, int64_t dp)
    int fd_matmul_f32(const fd_blas *blas, const float *a, int64_t a0, int64_t a1,
                      const float *b, int64_t b0, int64_t b1, float *out, int64_t o0,
                      int64_t o1, int64_t dm, int64_t dn, int64_t dp)
    int fd_matmul_f64(const fd_blas *blas, const double *a, int64_t a0, int64_t a1,
                      const double *b, int64_t b0, int64_t b1, double *out, int64_t o0,
                      int64_t o1, int64_t dm, int64_t dn, int64_t dp)

cdef enum:
    MASK_CHUNK = 16384   # _kernels.CHUNK: the dropout kernels' chunks (first words follow)
    THRESHOLD_ONE = 65536
    OUT_SOFTMAX = -1     # with OUT_SIGMOID, OUT_IDENTITY, OUT_EXP: the output layer
    OUT_GAUSSIAN = 3
    NOISE_MASK = 0       # a site's kind: Bernoulli (or nothing dropped), Gaussian, alpha
    NOISE_GAUSSIAN = 1
    NOISE_ALPHA = 2
    LOOP_OK = 0
    LOOP_DIVERGED = 1
    LOOP_BAD_PRODUCT = -1
    LOOP_WINDOW = 8      # the longest window of step times the drift test takes

# What fastdrop._compiled_epoch writes into the records, named here once.
OUTPUT_CODES = {"softmax": OUT_SOFTMAX, "sigmoid": OUT_SIGMOID, "identity": OUT_IDENTITY,
                "exp": OUT_EXP, "gaussian": OUT_GAUSSIAN}
NOISE_CODES = {"mask": NOISE_MASK, "gaussian": NOISE_GAUSSIAN, "alpha": NOISE_ALPHA}
LOOP_STATUS = {"ok": LOOP_OK, "diverged": LOOP_DIVERGED, "bad product": LOOP_BAD_PRODUCT}
STEP_CHUNK, STEP_ROW_BLOCK = CHUNK, ROW_BLOCK  # the optimizer's chunks and row blocks
STEP_WINDOW = LOOP_WINDOW

# One layer as the loop reads it: a record of _compiled_epoch.LAYER_RECORD (same fields, same
# order); addresses of arrays the Python side keeps alive for the call.
cdef packed struct fd_loop_layer:
    uint64_t weights        # (fan_out, fan_in), C-contiguous
    uint64_t bias           # (fan_out,)
    uint64_t grad_weights   # (fan_out, fan_in)
    uint64_t grad_bias      # (fan_out,)
    uint64_t state1_w       # SGD's velocity / Adam's first moment, of the weights
    uint64_t state1_b       # ... of the bias
    uint64_t state2_w       # Adam's second moments (0 for SGD)
    uint64_t state2_b
    uint64_t output         # hidden layers: the (batch, fan_out) activations; 0: the logits
    uint64_t output_grad    # hidden layers: their gradient buffer
    int64_t fan_in
    int64_t fan_out
    int64_t activation      # hidden layers: 0 ReLU (fused into the site's pass), else ACT_*
    uint64_t seed           # the dropout site at this layer's input
    uint64_t threshold      # its keep threshold (THRESHOLD_ONE: keeps everything)
    double scale            # its training scale
    # batch mode (network.Workspace's buffers; 0 in element mode)
    uint64_t kept           # (fan_in,) int64: this step's kept inputs, in increasing order
    int64_t n_kept          # scratch: how many
    uint64_t positions      # (fan_out,) int64: each output unit's row in the submatrix, or -1
    uint64_t sub_weights    # the kept submatrix of the weights, and its gradient
    uint64_t sub_grads
    uint64_t sub_bias       # the kept units' bias, and its gradient
    uint64_t sub_dbias
    # noise that is not a unit mask (sites._NoiseAfterActivation), and DropConnect
    int64_t noise           # NOISE_MASK, NOISE_GAUSSIAN, NOISE_ALPHA
    uint64_t table          # Gaussian: the 65536 multipliers
    double alpha_a          # alpha: kept a x + b, dropped fill
    double alpha_b
    double alpha_fill
    uint64_t site_out       # hidden noise sites: the site's output buffer (the layer's input)
    int64_t dropconnect     # 1: the layer's weights are masked each step
    uint64_t dc_threshold   # their keep threshold
    uint64_t masked_weights # (fan_out, fan_in): this step's masked weights

# One epoch's settings and results: a record of _compiled_epoch.EPOCH_RECORD.
cdef packed struct fd_loop_epoch:
    uint64_t sgemm          # numpy's CBLAS functions: first, so the record starts with an fd_blas
    uint64_t dgemm
    uint64_t sgemv
    uint64_t dgemv
    uint64_t sdot
    uint64_t ddot
    uint64_t X              # (n, x_cols) training inputs, C-contiguous
    uint64_t target         # (n,) int64 class indices, or (n, target_cols) of the dtype
    uint64_t order          # (n_rows,) int64: the epoch's rows of X, in order
    uint64_t batch_x        # (batch_size, x_cols)
    uint64_t batch_target   # like target, batch_size rows
    uint64_t logits         # (batch_size, n_outputs)
    uint64_t tail           # scratch of the largest product (the split inner dimension)
    uint64_t part           # 2 * chunks doubles: the optimizer's partial sums
    uint64_t colsums        # doubles, the widest layer's: derivative_colsum's sums
    uint64_t x_kept         # batch mode: (batch_size, x_cols) for the kept inputs
    uint64_t words          # batch mode: uint64 mask words of the widest site
    uint64_t row_scratch    # batch mode: two blocks of the submatrix step's rows
    uint64_t weights        # (n,) row weights of the dtype (sample_weight), or 0
    uint64_t batch_weights  # (batch_size,) the batch's
    double step_weight      # scratch: this step's rows, or their summed weights
    int64_t batch_mode
    int64_t x_cols
    int64_t target_cols     # 0: class indices
    int64_t n_rows
    int64_t batch_size
    int64_t n_layers
    int64_t output_kind     # OUT_SOFTMAX, OUT_GAUSSIAN or an _output_element kind
    int64_t optimizer       # KIND_SGD, KIND_ADAM
    int64_t step            # IN/OUT the optimizer steps so far: each batch's draw
    int64_t adam_t          # IN/OUT Adam's time step
    int64_t k_whole         # network.K_WHOLE, K_ALIGN: where gemm_into splits
    int64_t k_align
    double lr               # SGD's rate (Adam: lr_init below)
    double lr_init
    double momentum
    double nesterov
    double beta_1
    double beta_2
    double epsilon
    double alpha            # L2 and L1, scaled by the batch size at each step
    double l1
    double loss_limit
    double max_norm         # the radius of every hidden unit's incoming weights (0: none)
    double total            # OUT the summed loss of the steps taken (loss * rows)
    double loss             # OUT the last step's loss
    double t_forward        # OUT seconds, as trainer.EpochClock counts them
    double t_passes
    double t_update
    int64_t steps_done      # OUT
    int64_t norm_clipped    # OUT max-norm's projections of the epoch: units clipped,
    int64_t norm_checked    #     units checked
    int64_t status          # OUT LOOP_OK, LOOP_DIVERGED, LOOP_BAD_PRODUCT
    # one call's run of steps (the thread policy's unit: _threading.StepThreads.plan)
    int64_t threads         # IN the element-wise kernels' threads (BLAS is set by the caller)
    int64_t batch_from      # IN the first batch of the run
    int64_t batch_to        # IN the batch the run stops before (at most the epoch's count)
    double stop_above       # IN end the run once the mean of the latest `window` times per
    double stop_below       #    row (recent's, then the run's) is above stop_above (0: no
    #                         bound) or below stop_below: the policy's drift test
    int64_t window          # IN how many latest times the mean takes (at most LOOP_WINDOW);
    #                         no test with fewer than half of them
    int64_t recent_len      # IN/scratch
    double recent[8]        # IN/scratch the policy's latest times per row, oldest first
    uint64_t step_times     # OUT (batch_to - batch_from) doubles: each step's seconds (-1:
    #                         a batch of zero weight, skipped), or 0: not recorded
    int64_t batch_next      # OUT the batch the next run starts from


cdef inline fd_draw _loop_draw(uint64_t seed, uint64_t step, uint32_t threshold) noexcept nogil:
    cdef fd_draw d
    d.k0 = <uint32_t>seed
    d.k1 = <uint32_t>(seed >> 32)
    d.s0 = <uint32_t>step
    d.s1 = <uint32_t>(step >> 32)
    d.threshold = threshold
    return d


cdef inline bint _fan_out(int64_t n_tasks, int nt) noexcept nogil:
    """Whether a loop of n_tasks chunks runs on a team of nt threads: not for one chunk
    (_kernels._threads_for: it does not pay for waking a team), nor on one thread."""
    return nt > 1 and n_tasks > 1


cdef void _site_pass(floating *x, int64_t n, uint64_t seed, uint64_t step, uint32_t threshold,
                     double scale, const floating *bias, int64_t ncols, bint relu,
                     int nt) noexcept nogil:
    """_kernels.forward in place, chunk by chunk as its driver cuts it."""
    _site_pass_into(x, x, n, seed, step, threshold, scale, bias, ncols, relu, nt)


cdef void _site_pass_into(const floating *x, floating *y, int64_t n, uint64_t seed,
                          uint64_t step, uint32_t threshold, double scale,
                          const floating *bias, int64_t ncols, bint relu,
                          int nt) noexcept nogil:
    cdef fd_draw d = _loop_draw(seed, step, threshold)
    cdef int64_t c, n_chunks = (n + MASK_CHUNK - 1) // MASK_CHUNK
    if _fan_out(n_chunks, nt):
        for c in prange(n_chunks, schedule='static', num_threads=nt):
            _site_chunk(x, y, n, c, &d, scale, bias, ncols, relu)
    else:
        for c in range(n_chunks):
            _site_chunk(x, y, n, c, &d, scale, bias, ncols, relu)


cdef inline void _site_chunk(const floating *x, floating *y, int64_t n, int64_t c,
                             const fd_draw *d, double scale, const floating *bias,
                             int64_t ncols, bint relu) noexcept nogil:
    cdef int64_t start = c * MASK_CHUNK, m = min(<int64_t>MASK_CHUNK, n - c * MASK_CHUNK)
    if floating is float:
        fd_fwd_f32(x + start, y + start, NULL, m, <uint64_t>(start // 64), d, <float>scale,
                   bias, ncols, start % ncols if bias != NULL else 0, relu)
    else:
        fd_fwd_f64(x + start, y + start, NULL, m, <uint64_t>(start // 64), d, scale, bias,
                   ncols, start % ncols if bias != NULL else 0, relu)


cdef void _noise_pass(const fd_loop_layer *site, const floating *x, floating *y, int64_t n,
                      uint64_t step, int nt) noexcept nogil:
    """GaussianDropout.noise / AlphaDropout.noise (_kernels.gaussian, _kernels.alpha), chunk
    by chunk as their drivers cut them."""
    cdef fd_draw d = _loop_draw(site.seed, step, THRESHOLD_ONE if site.noise == NOISE_GAUSSIAN
                                else <uint32_t>site.threshold)
    cdef int64_t c, n_chunks = (n + MASK_CHUNK - 1) // MASK_CHUNK
    if _fan_out(n_chunks, nt):
        for c in prange(n_chunks, schedule='static', num_threads=nt):
            _noise_chunk(site, x, y, n, c, &d)
    else:
        for c in range(n_chunks):
            _noise_chunk(site, x, y, n, c, &d)


cdef inline void _noise_chunk(const fd_loop_layer *site, const floating *x, floating *y,
                              int64_t n, int64_t c, const fd_draw *d) noexcept nogil:
    cdef int64_t start = c * MASK_CHUNK, m = min(<int64_t>MASK_CHUNK, n - c * MASK_CHUNK)
    if site.noise == NOISE_GAUSSIAN:
        if floating is float:
            fd_gauss_f32(x + start, y + start, m, <uint64_t>(start // 64), d,
                         <const float *>site.table)
        else:
            fd_gauss_f64(x + start, y + start, m, <uint64_t>(start // 64), d,
                         <const double *>site.table)
    elif floating is float:
        fd_alpha_f32(x + start, y + start, NULL, m, <uint64_t>(start // 64), d,
                     <float>site.alpha_a, <float>site.alpha_b, <float>site.alpha_fill)
    else:
        fd_alpha_f64(x + start, y + start, NULL, m, <uint64_t>(start // 64), d, site.alpha_a,
                     site.alpha_b, site.alpha_fill)


cdef void _noise_backward(const fd_loop_layer *site, floating *grad, int64_t n,
                          uint64_t step, int nt) noexcept nogil:
    """noise_backward: Gaussian's same draw on the gradient; alpha's mask with scale a."""
    if site.noise == NOISE_GAUSSIAN:
        _noise_pass(site, grad, grad, n, step, nt)
    else:
        _site_pass(grad, n, site.seed, step, <uint32_t>site.threshold, site.alpha_a,
                   <const floating *>NULL, 1, False, nt)


cdef inline uint64_t _dropconnect_step(uint64_t step) noexcept nogil:
    return (<uint64_t>1 << 62) + step  # sites.DROPCONNECT_STEP_BASE + step


cdef const floating *_used_weights(const fd_loop_layer *layer, floating *dummy,
                                   uint64_t step, int nt) noexcept nogil:
    """WeightMask.training_weights: this step's masked copy (scaled by 1 / keep), or the
    weights as they are."""
    if not layer.dropconnect:
        return <const floating *>layer.weights
    _site_pass_into(<const floating *>layer.weights, <floating *>layer.masked_weights,
                    layer.fan_in * layer.fan_out, layer.seed, _dropconnect_step(step),
                    <uint32_t>layer.dc_threshold, <double>THRESHOLD_ONE / layer.dc_threshold,
                    <const floating *>NULL, 1, False, nt)
    return <const floating *>layer.masked_weights


cdef inline void _gate_block(floating *dx, const floating *y, int64_t m, int64_t k, int64_t b,
                             double scale, floating *colsum) noexcept nogil:
    """Block b of _kernels.gate_colsum in place, as its driver cuts it."""
    cdef int64_t j0 = b * FD_COLSUM_BLOCK
    if floating is float:
        fd_gate_colsum_f32(dx + j0, y + j0, dx + j0, colsum + j0, m, k,
                           min(<int64_t>FD_COLSUM_BLOCK, k - j0), <float>scale)
    else:
        fd_gate_colsum_f64(dx + j0, y + j0, dx + j0, colsum + j0, m, k,
                           min(<int64_t>FD_COLSUM_BLOCK, k - j0), scale)


cdef inline int _matmul(const fd_loop_epoch *e, const floating *a, int64_t a0, int64_t a1,
                        const floating *b, int64_t b0, int64_t b1, floating *out,
                        int64_t dm, int64_t dn, int64_t dp) noexcept nogil:
    """out (dm, dp), C-contiguous, = a (dm, dn) @ b (dn, dp), strides in elements."""
    if floating is float:
        return fd_matmul_f32(<const fd_blas *>e, a, a0, a1, b, b0, b1, out, dp, 1, dm,
                             dn, dp)
    else:
        return fd_matmul_f64(<const fd_blas *>e, a, a0, a1, b, b0, b1, out, dp, 1, dm,
                             dn, dp)


cdef int _gemm_into(const fd_loop_epoch *e, const floating *a, int64_t a0, int64_t a1,
                    const floating *b, int64_t b0, int64_t b1, floating *out, int64_t dm,
                    int64_t dn, int64_t dp) noexcept nogil:
    """network.gemm_into: a long inner dimension as its multiple of k_align, then the rest
    into the tail scratch, added after."""
    cdef int64_t k0, i
    cdef floating *tail = <floating *>e.tail
    if dn <= e.k_whole or dn % e.k_align == 0:
        return _matmul(e, a, a0, a1, b, b0, b1, out, dm, dn, dp)
    k0 = dn - dn % e.k_align
    if (_matmul(e, a, a0, a1, b, b0, b1, out, dm, k0, dp)
            or _matmul(e, a + k0 * a1, a0, a1, b + k0 * b0, b0, b1, tail, dm, dn - k0, dp)):
        return LOOP_BAD_PRODUCT
    for i in range(dm * dp):
        out[i] = out[i] + tail[i]
    return LOOP_OK


cdef bint _gemm_ok(const fd_loop_epoch *e, int64_t a0, int64_t a1, int64_t b0, int64_t b1,
                   int64_t dm, int64_t dn, int64_t dp) noexcept nogil:
    """Whether _gemm_into of these shapes and strides makes only products the loop computes
    as numpy's matmul does (fd_matmul_kind > 0)."""
    cdef int64_t k0
    if dn <= e.k_whole or dn % e.k_align == 0:
        return fd_matmul_kind(a0, a1, b0, b1, dp, 1, dm, dn, dp) > 0
    k0 = dn - dn % e.k_align
    return (fd_matmul_kind(a0, a1, b0, b1, dp, 1, dm, k0, dp) > 0
            and fd_matmul_kind(a0, a1, b0, b1, dp, 1, dm, dn - k0, dp) > 0)


cdef bint _products_ok(const fd_loop_epoch *e, const fd_loop_layer *L, int64_t m) noexcept nogil:
    """Whether every product of an element-mode step of m rows is one the loop computes as
    numpy does: a @ W.T, dz.T @ a and dz @ W of every layer (batch mode's submatrices only
    change the sizes, and every size of contiguous operands is one the loop computes)."""
    cdef int64_t l, fi, fo
    for l in range(e.n_layers):
        fi, fo = L[l].fan_in, L[l].fan_out
        if not (_gemm_ok(e, fi, 1, 1, fi, m, fi, fo)          # a @ W.T
                and _gemm_ok(e, 1, fo, fi, 1, fo, m, fi)      # dz.T @ a
                and (l == 0 or _gemm_ok(e, fo, 1, fi, 1, m, fo, fi))):  # dz @ W
            return False
    return True


cdef double _layer_update(const fd_loop_epoch *e, const fd_loop_layer *layer, floating *dummy,
                          double lr, double m, double *part,
                          const fd_grad_job *job) noexcept nogil:
    """optim._Optimizer.update_layer: the weights with the penalties, then the bias; returns
    the layer's penalty loss from the weights before the step. The weights' chunks share one
    parallel region with ``job``'s blocks (the layer below's activation backward, which
    reads nothing the step writes): no second region between two products."""
    cdef fd_step_params hp = _weight_settings(e, lr, m)
    cdef double sq, ab
    sq, ab = _loop_step_array(e, <floating *>layer.weights, <floating *>layer.grad_weights,
                              <floating *>layer.state1_w, <floating *>layer.state2_w,
                              layer.fan_in * layer.fan_out, &hp, part, job)
    return _bias_step(e, layer, dummy, &hp, sq, ab, m, part)


cdef inline fd_step_params _weight_settings(const fd_loop_epoch *e, double lr,
                                            double m) noexcept nogil:
    """The STEP_PARAMS record of a layer's weights: the penalties over the batch's rows (or
    their summed weights) ``m``."""
    cdef fd_step_params hp
    hp.lr, hp.momentum, hp.nesterov = lr, e.momentum, e.nesterov
    hp.beta_1, hp.beta_2, hp.epsilon = e.beta_1, e.beta_2, e.epsilon
    hp.l2, hp.l1 = e.alpha / m, e.l1 / m
    return hp


cdef double _bias_step(const fd_loop_epoch *e, const fd_loop_layer *layer, floating *dummy,
                       fd_step_params *hp, double sq, double ab, double m,
                       double *part) noexcept nogil:
    """update_layer's second half: the bias, never penalized; returns the layer's penalty
    loss from its weights' sums (sum w^2, sum |w|) before their step."""
    cdef fd_grad_job none = _no_job()
    hp.l2, hp.l1 = 0.0, 0.0
    _loop_step_array(e, <floating *>layer.bias, <floating *>layer.grad_bias,
                     <floating *>layer.state1_b, <floating *>layer.state2_b, layer.fan_out, hp,
                     part, &none)
    return ((0.5 * e.alpha * sq if e.alpha else 0.0) + (e.l1 * ab if e.l1 else 0.0)) / m


cdef (double, double) _loop_step_array(const fd_loop_epoch *e, floating *w, const floating *g,
                                       floating *s1, floating *s2, int64_t n,
                                       const fd_step_params *hp, double *part,
                                       const fd_grad_job *job) noexcept nogil:
    """optimizer_step: the same chunks, partial sums in the same order; ``job``'s blocks in
    the same loop (one parallel region for both when either would fan out)."""
    cdef int64_t c, n_chunks = (n + CHUNK - 1) // CHUNK
    cdef int nt = <int>e.threads
    if nt > 1 and (n_chunks > 1 or _job_fans(job)):
        for c in prange(n_chunks + job.n_tasks, schedule='static', chunksize=1,
                        num_threads=nt):
            if c < n_chunks:
                _step_chunk(e.optimizer, w, g, s1, s2, n, c, hp, part)
            else:
                _job_task(job, <floating *>NULL, c - n_chunks)
    else:
        for c in range(n_chunks):
            _step_chunk(e.optimizer, w, g, s1, s2, n, c, hp, part)
        for c in range(job.n_tasks):
            _job_task(job, <floating *>NULL, c)
    _job_done(job, <floating *>NULL)
    return _ordered_sum(part, n_chunks) if n_chunks else (0.0, 0.0)


cdef inline void _step_chunk(int kind, floating *w, const floating *g, floating *s1,
                             floating *s2, int64_t n, int64_t c, const fd_step_params *hp,
                             double *part) noexcept nogil:
    cdef int64_t start = c * CHUNK
    part[2 * c] = 0
    part[2 * c + 1] = 0
    _step_block(kind, w + start, g + start, s1 + start, s2 + start if s2 != NULL else NULL,
                min(<int64_t>CHUNK, n - start), hp, part + 2 * c)


cdef void _gather(const fd_loop_epoch *e, floating *dummy, int64_t start,
                  int64_t m) noexcept nogil:
    """The batch's rows of X and of the targets, in the epoch's order."""
    cdef int64_t i
    cdef int nt = <int>e.threads
    if nt > 1 and m >= 16 and e.x_cols > 0:  # as _nn_kernels.take_rows fans out
        for i in prange(m, schedule='static', num_threads=nt):
            _gather_one(e, dummy, (<const int64_t *>e.order)[start + i], i)
    else:
        for i in range(m):
            _gather_one(e, dummy, (<const int64_t *>e.order)[start + i], i)


cdef inline void _gather_one(const fd_loop_epoch *e, floating *dummy, int64_t r,
                             int64_t i) noexcept nogil:
    """Row r of X, of the targets and of the row weights into the batch's row i."""
    cdef int64_t c = e.x_cols, k = e.target_cols
    memcpy(<floating *>e.batch_x + i * c, <const floating *>e.X + r * c, c * sizeof(floating))
    if k == 0:
        (<int64_t *>e.batch_target)[i] = (<const int64_t *>e.target)[r]
    else:
        memcpy(<floating *>e.batch_target + i * k, <const floating *>e.target + r * k,
               k * sizeof(floating))
    if e.weights:
        (<floating *>e.batch_weights)[i] = (<const floating *>e.weights)[r]


cdef floating *_activate(const fd_loop_layer *layer, const fd_loop_layer *nxt, floating *z,
                         int64_t m, uint64_t step, int nt) noexcept nogil:
    """Layer.activation.activate, then the next layer's site forward (ReLU and a mask: one
    pass; NoDropout's pass draws nothing); returns the next layer's input: z, or the site's
    own buffer for noise after the activation."""
    cdef int64_t k = layer.fan_out
    cdef const floating *bias = <const floating *>layer.bias
    cdef bint masks = nxt.noise == NOISE_MASK and nxt.threshold < THRESHOLD_ONE
    if layer.activation == 0:
        _site_pass(z, m * k, nxt.seed if masks else 0, step if masks else 0,
                   <uint32_t>nxt.threshold if masks else THRESHOLD_ONE,
                   nxt.scale if masks else 1.0, bias, k, True, nt)
    else:
        _activate_rows(z, m, k, bias, <int>layer.activation, nt)
        if masks:
            _site_pass(z, m * k, nxt.seed, step, <uint32_t>nxt.threshold, nxt.scale,
                       <const floating *>NULL, 1, False, nt)
    if nxt.noise == NOISE_MASK:
        return z
    _noise_pass(nxt, z, <floating *>nxt.site_out, m * k, step, nt)
    return <floating *>nxt.site_out


cdef void _activate_rows(floating *z, int64_t m, int64_t k, const floating *bias, int kind,
                         int nt) noexcept nogil:
    """_nn_kernels.activate: a row each, in parallel as its driver fans out."""
    cdef int64_t i
    if _fan_out(m if m * k >= CHUNK else 1, nt):
        for i in prange(m, schedule='static', num_threads=nt):
            _activate_row(z + i * k, k, bias, kind)
    else:
        for i in range(m):
            _activate_row(z + i * k, k, bias, kind)


cdef fd_grad_job _activation_backward(const fd_loop_epoch *e, const fd_loop_layer *layer,
                                      const fd_loop_layer *site, floating *grad,
                                      const floating *out, int64_t m,
                                      uint64_t step) noexcept nogil:
    """site.backward: the site's part (its mask on the gradient again where the activation's
    output does not show it; the noise's own backward), then the activation's on its output
    (the layer's activations), with the bias gradient of ``layer``: returned as a job for
    the layer update above it to run."""
    cdef int64_t k = layer.fan_out
    cdef floating *colsum = <floating *>layer.grad_bias
    cdef double scale = site.scale
    cdef int nt = <int>e.threads
    if site.noise != NOISE_MASK:
        _noise_backward(site, grad, m * k, step, nt)
        out, scale = <const floating *>layer.output, 1.0
    if (layer.activation != 0 and site.noise == NOISE_MASK
            and site.threshold < THRESHOLD_ONE):
        _site_pass(grad, m * k, site.seed, step, <uint32_t>site.threshold, 1.0,
                   <const floating *>NULL, 1, False, nt)
    return _activation_grad(layer, grad, out, m, k, scale, colsum, <double *>e.colsums)


# ---- an activation's backward pass as a job: blocks of columns a layer update runs with its
# own chunks in one parallel region (gate_colsum's blocks for ReLU, derivative_colsum's 64
# columns for the others), the same blocks, each its own sums, whatever runs them

cdef struct fd_grad_job:
    void *grad              # (m, k) of the dtype, in place
    const void *out         # (m, k) the layer's output
    void *colsum            # (k,) the bias gradient
    double *acc             # (k,) derivative_colsum's sums
    int64_t m
    int64_t k
    double scale
    int64_t activation      # 0 ReLU, else ACT_*
    int64_t n_tasks         # its blocks (0: nothing to do)


cdef fd_grad_job _activation_grad(const fd_loop_layer *layer, floating *grad,
                                  const floating *out, int64_t m, int64_t k, double scale,
                                  floating *colsum, double *acc) noexcept nogil:
    """Activation.backward: grad *= scale * f'(z) read from the output ``out``, in place,
    its column sums into ``colsum`` (through ``acc``, k doubles, for the others), as a job."""
    cdef fd_grad_job job
    cdef int64_t j
    job.grad, job.out, job.colsum, job.acc = grad, out, colsum, acc
    job.m, job.k, job.scale, job.activation = m, k, scale, layer.activation
    if layer.activation == 0:
        job.n_tasks = (k + FD_COLSUM_BLOCK - 1) // FD_COLSUM_BLOCK
    else:
        job.n_tasks = (k + 63) // 64
        for j in range(k):
            acc[j] = 0
    return job


cdef fd_grad_job _no_job() noexcept nogil:
    cdef fd_grad_job job
    memset(&job, 0, sizeof(job))
    return job


cdef inline bint _job_fans(const fd_grad_job *job) noexcept nogil:
    """Whether the job's blocks would fan out on their own (as their drivers decide)."""
    return job.n_tasks > 1 and job.m * job.k >= CHUNK


cdef inline void _job_task(const fd_grad_job *job, floating *dummy, int64_t b) noexcept nogil:
    if job.activation == 0:
        _gate_block(<floating *>job.grad, <const floating *>job.out, job.m, job.k, b,
                    job.scale, <floating *>job.colsum)
    else:
        _derivative_block(<floating *>job.grad, <const floating *>job.out, job.m, job.k,
                          b * 64, min(b * 64 + 64, job.k), job.scale, <int>job.activation,
                          job.acc)


cdef inline void _job_done(const fd_grad_job *job, floating *dummy) noexcept nogil:
    cdef int64_t j
    if job.activation != 0 and job.n_tasks:
        for j in range(job.k):
            (<floating *>job.colsum)[j] = <floating>job.acc[j]


cdef double _output_loss(const fd_loop_epoch *e, floating *z, int64_t m, int64_t k,
                         const floating *bias, floating *grad_bias) noexcept nogil:
    """MLP._output_loss with its gradient (network._OUTPUT_LOSSES), the batch's row weights
    if any (each row's gradient scaled by its weight over their sum, as _row_scale sums it)."""
    cdef const floating *w = <const floating *>e.batch_weights if e.weights else NULL
    cdef double total = <double>m, inv
    cdef int64_t i
    if w != NULL:
        total = 0
        for i in range(m):
            total += w[i]
    inv = 1.0 / total if total > 0 else 0.0
    if e.output_kind == OUT_SOFTMAX:
        return _softmax_rows(z, m, k, bias, <const int64_t *>e.batch_target, True, grad_bias,
                             w, inv)
    if e.output_kind == OUT_GAUSSIAN:
        return _gaussian_rows(z, m, k // 2, bias, <const floating *>e.batch_target, True,
                              grad_bias, w, inv)
    return _elementwise_rows(e.output_kind, z, m, k, bias, <const floating *>e.batch_target,
                             True, grad_bias, w, inv)


cdef floating _pairwise_sum(const floating *a, int64_t n) noexcept nogil:
    """numpy's sum of n contiguous values (its pairwise summation: blocks of up to 128 in
    eight running sums, halves at multiples of 8 above that), in their own precision."""
    cdef floating r[8]
    cdef floating res
    cdef int64_t i, j, n2
    if n < 8:
        res = 0
        for i in range(n):
            res = res + a[i]
        return res
    if n <= 128:
        for j in range(8):
            r[j] = a[j]
        i = 8
        while i < n - (n % 8):
            for j in range(8):
                r[j] = r[j] + a[i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res = res + a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, n2) + _pairwise_sum(a + n2, n - n2)


cdef int _forward(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy, int64_t m,
                  double *loss) noexcept nogil:
    """MLP._forward_element: the batch's loss (summed) into loss; the output gradient is
    left in the logits buffer, each hidden layer's activations in its buffer and, where its
    site's noise is a pass of its own, the next layer's input in the site's."""
    cdef floating *a = <floating *>e.batch_x
    cdef floating *out = a
    cdef int64_t l, last = e.n_layers - 1, fi, fo
    cdef uint64_t step = <uint64_t>e.step
    cdef int nt = <int>e.threads
    if L[0].noise != NOISE_MASK:  # _NoiseAfterActivation.forward at the input: in place
        _noise_pass(&L[0], a, a, m * e.x_cols, step, nt)
    elif L[0].threshold < THRESHOLD_ONE:
        _site_pass(a, m * e.x_cols, L[0].seed, step, <uint32_t>L[0].threshold, L[0].scale,
                   <const floating *>NULL, 1, False, nt)
    for l in range(e.n_layers):
        fi, fo = L[l].fan_in, L[l].fan_out
        out = <floating *>(L[l].output if l < last else e.logits)
        if _gemm_into(e, a, fi, 1, _used_weights(&L[l], dummy, step, nt), 1, fi, out, m, fi,
                      fo):
            return LOOP_BAD_PRODUCT
        if l < last:
            a = _activate(&L[l], &L[l + 1], out, m, step, nt)
    loss[0] = _output_loss(e, out, m, L[last].fan_out, <const floating *>L[last].bias,
                           <floating *>L[last].grad_bias)
    return LOOP_OK


cdef int _backward(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy, int64_t m, double lr,
                   double *penalty, double *stepping) noexcept nogil:
    """MLP._backward_element with trainer.LayerwiseStep: each layer's gradients, then its
    optimizer step at once; the penalties summed from the last layer down."""
    cdef floating *dz = <floating *>e.logits
    cdef floating *a
    cdef floating *da
    cdef int64_t l, fi, fo
    cdef uint64_t step = <uint64_t>e.step
    cdef double t
    cdef fd_grad_job job
    for l in range(e.n_layers - 1, -1, -1):
        fi, fo = L[l].fan_in, L[l].fan_out
        if l == 0:
            a = <floating *>e.batch_x
        else:
            a = <floating *>(L[l].site_out if L[l].noise != NOISE_MASK else L[l - 1].output)
        if _gemm_into(e, dz, 1, fo, a, fi, 1, <floating *>L[l].grad_weights, fo, m, fi):
            return LOOP_BAD_PRODUCT
        if L[l].dropconnect:  # WeightMask.mask_gradient
            _site_pass(<floating *>L[l].grad_weights, fi * fo, L[l].seed,
                       _dropconnect_step(step), <uint32_t>L[l].dc_threshold,
                       <double>THRESHOLD_ONE / L[l].dc_threshold, <const floating *>NULL, 1,
                       False, <int>e.threads)
        da = NULL
        job = _no_job()
        if l > 0:
            da = <floating *>L[l - 1].output_grad
            if _gemm_into(e, dz, fo, 1, <const floating *>(L[l].masked_weights if
                          L[l].dropconnect else L[l].weights), fi, 1, da, m, fo, fi):
                return LOOP_BAD_PRODUCT
            job = _activation_backward(e, &L[l - 1], &L[l], da, a, m, step)
        t = fd_now()  # the update's time holds the activation backward run with it
        penalty[0] += _layer_update(e, &L[l], dummy, lr, e.step_weight, <double *>e.part,
                                    &job)
        stepping[0] += fd_now() - t
        dz = da
    return LOOP_OK


cdef void _max_norms(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy) noexcept nogil:
    """Trainer._apply_max_norm: every hidden unit's incoming weights, a row each."""
    cdef int64_t l
    for l in range(e.n_layers - 1):
        e.norm_clipped += _max_norm_rows(<floating *>L[l].weights, L[l].fan_out, L[l].fan_in,
                                         e.max_norm)
        e.norm_checked += L[l].fan_out


# ---- batch mode: the pass on the kept units' submatrices (network.MLP._forward_backward_batch)

cdef void _draw_kept(const fd_loop_epoch *e, fd_loop_layer *layer, uint64_t step) noexcept nogil:
    """site.kept: the kept inputs of a layer for this step (all, without dropout), from the
    mask words of the site's draw as _plumbing.packed_words makes them."""
    cdef int64_t n = layer.fan_in, n_words = (n + 63) // 64, c, w, j, count = 0
    cdef int64_t *kept = <int64_t *>layer.kept
    cdef uint64_t *words = <uint64_t *>e.words
    cdef uint64_t word
    cdef fd_draw d
    if layer.threshold >= THRESHOLD_ONE:
        for j in range(n):
            kept[j] = j
        layer.n_kept = n
        return
    d = _loop_draw(layer.seed, step, <uint32_t>layer.threshold)
    for c in range((n_words + 255) // 256):  # _kernels.mask_words's chunks of 256 words
        fd_words(words + c * 256, <uint64_t>(c * 256), min(<int64_t>256, n_words - c * 256), &d)
    for w in range(n_words):
        word = words[w]
        for j in range(64):
            if (word >> j) & 1 and w * 64 + j < n:
                kept[count] = w * 64 + j
                count += 1
    layer.n_kept = count


cdef void _fill_positions(fd_loop_layer *layer, const fd_loop_layer *nxt) noexcept nogil:
    """network._fill_positions: each output unit's row among the next site's kept (the last
    layer's: every output, in order)."""
    cdef int64_t *pos = <int64_t *>layer.positions
    cdef const int64_t *kept
    cdef int64_t r
    for r in range(layer.fan_out):
        pos[r] = r if nxt == NULL else -1
    if nxt != NULL:
        kept = <const int64_t *>nxt.kept
        for r in range(nxt.n_kept):
            pos[kept[r]] = r


cdef int _forward_batch(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy, int64_t m,
                        double *loss) noexcept nogil:
    """MLP._forward_batch: the loss on the kept units' submatrices; each layer's input stays
    where the backward half finds it (its activations buffer, x_kept or the batch)."""
    cdef int64_t l, last = e.n_layers - 1, i, r, kin, kout, c = e.x_cols
    cdef const int64_t *kin_idx
    cdef const int64_t *kout_idx
    cdef floating *a = <floating *>e.batch_x
    cdef floating *w
    cdef floating *b
    cdef floating *out = a
    cdef const floating *W
    cdef const floating *bias
    cdef int nt = <int>e.threads
    kin = L[0].n_kept
    if L[0].threshold < THRESHOLD_ONE:  # _kept_input: the kept columns, scaled
        kin_idx = <const int64_t *>L[0].kept
        a = <floating *>e.x_kept
        for i in range(m):
            _gather_row(<const floating *>e.batch_x + i * c, kin_idx, kin, c, a + i * kin)
        if L[0].scale != 1.0:
            _site_pass(a, m * kin, 0, 0, THRESHOLD_ONE, L[0].scale, <const floating *>NULL,
                       1, False, nt)
    for l in range(e.n_layers):
        kin = L[l].n_kept
        kin_idx = <const int64_t *>L[l].kept
        kout = L[l + 1].n_kept if l < last else L[l].fan_out
        kout_idx = <const int64_t *>L[l + 1].kept if l < last else NULL
        W, bias = <const floating *>L[l].weights, <const floating *>L[l].bias
        w, b = <floating *>L[l].sub_weights, <floating *>L[l].sub_bias
        if nt > 1 and kout > 1 and kin > 0:  # _nn_kernels.gather and np.take
            for r in prange(kout, schedule='static', num_threads=nt):
                _gather_sub_row(W, bias, kout_idx, kin_idx, kin, L[l].fan_in, w, b, r)
        else:
            for r in range(kout):
                _gather_sub_row(W, bias, kout_idx, kin_idx, kin, L[l].fan_in, w, b, r)
        out = <floating *>(L[l].output if l < last else e.logits)
        if _gemm_into(e, a, kin, 1, w, 1, kin, out, m, kin, kout):
            return LOOP_BAD_PRODUCT
        if l < last:
            _activate_kept(&L[l], &L[l + 1], out, m, kout, nt)
            a = out
    loss[0] = _output_loss(e, out, m, L[last].fan_out, <const floating *>L[last].sub_bias,
                           <floating *>L[last].sub_dbias)
    return LOOP_OK


cdef inline void _gather_sub_row(const floating *W, const floating *bias,
                                 const int64_t *kout_idx, const int64_t *kin_idx, int64_t kin,
                                 int64_t fan_in, floating *w, floating *b,
                                 int64_t r) noexcept nogil:
    """Row r of a layer's kept submatrix (and its bias) from the full weights."""
    cdef int64_t i = kout_idx[r] if kout_idx != NULL else r
    _gather_row(W + i * fan_in, kin_idx, kin, fan_in, w + r * kin)
    b[r] = bias[i]


cdef void _activate_kept(const fd_loop_layer *layer, const fd_loop_layer *nxt, floating *z,
                         int64_t m, int64_t k, int nt) noexcept nogil:
    """The activation, then the next site's forward_kept: its training scale on the kept
    units (sites._fuse: skipped when there is nothing to do)."""
    cdef const floating *bias = <const floating *>layer.sub_bias
    if layer.activation == 0:
        _site_pass(z, m * k, 0, 0, THRESHOLD_ONE, nxt.scale, bias, k, True, nt)
        return
    _activate_rows(z, m, k, bias, <int>layer.activation, nt)
    if nxt.scale != 1.0:
        _site_pass(z, m * k, 0, 0, THRESHOLD_ONE, nxt.scale, <const floating *>NULL, 1, False,
                   nt)


cdef int _backward_batch(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy, int64_t m,
                         double lr, double *penalty, double *stepping) noexcept nogil:
    """MLP._backward_batch with the layer-wise steps: submatrix gradients, every parameter
    stepped (optimizer_step_submatrix), the bias gradient zero outside the kept units."""
    cdef floating *dz = <floating *>e.logits
    cdef floating *a
    cdef floating *da
    cdef floating *gb
    cdef int64_t l, r, kin, kout, last = e.n_layers - 1
    cdef const int64_t *kout_idx
    cdef double t
    cdef fd_grad_job job
    for l in range(last, -1, -1):
        kin = L[l].n_kept
        kout = L[l + 1].n_kept if l < last else L[l].fan_out
        kout_idx = <const int64_t *>L[l + 1].kept if l < last else NULL
        if l > 0:
            a = <floating *>L[l - 1].output
        else:
            a = <floating *>(e.x_kept if L[0].threshold < THRESHOLD_ONE else e.batch_x)
        if _gemm_into(e, dz, 1, kout, a, kin, 1, <floating *>L[l].sub_grads, kout, m, kin):
            return LOOP_BAD_PRODUCT
        gb = <floating *>L[l].grad_bias
        for r in range(L[l].fan_out):
            gb[r] = 0
        for r in range(kout):
            gb[kout_idx[r] if kout_idx != NULL else r] = (<floating *>L[l].sub_dbias)[r]
        da = NULL
        job = _no_job()
        if l > 0:
            da = <floating *>L[l - 1].output_grad
            if _gemm_into(e, dz, kout, 1, <const floating *>L[l].sub_weights, kin, 1, da, m,
                          kout, kin):
                return LOOP_BAD_PRODUCT
            # site.backward_kept: the activation's backward alone (no dropped unit here)
            job = _activation_grad(&L[l - 1], da, a, m, kin, L[l].scale,
                                   <floating *>L[l - 1].sub_dbias, <double *>e.colsums)
        t = fd_now()  # with the activation backward, as in _backward
        penalty[0] += _layer_update_kept(e, &L[l], dummy, lr, e.step_weight, kout, &job)
        stepping[0] += fd_now() - t
        dz = da
    return LOOP_OK


cdef double _layer_update_kept(const fd_loop_epoch *e, const fd_loop_layer *layer,
                               floating *dummy, double lr, double m, int64_t kout,
                               const fd_grad_job *job) noexcept nogil:
    """update_layer with a SubmatrixGradient: optimizer_step_submatrix (its blocks of rows,
    a staging buffer per thread after one of zeros, its partial sums in block order), then
    the bias; ``job`` in the same parallel region, as in _layer_update."""
    cdef fd_step_params hp = _weight_settings(e, lr, m)
    cdef double sq, ab
    cdef int64_t nr = layer.fan_out, nc = layer.fan_in, b
    cdef int64_t rows_per_block = max(1, ROW_BLOCK // nc) if nc else 1
    cdef int64_t n_blocks = (nr + rows_per_block - 1) // rows_per_block if nc else 0
    cdef int nt = <int>e.threads
    cdef bint fan = nt > 1 and (n_blocks > 1 or _job_fans(job))
    if n_blocks:
        memset(<floating *>e.row_scratch, 0,
               ((nt if fan else 1) + 1) * rows_per_block * nc * sizeof(floating))
    if fan:
        for b in prange(n_blocks + job.n_tasks, schedule='static', chunksize=1,
                        num_threads=nt):
            if b < n_blocks:
                _kept_rows_block(e, layer, dummy, b, rows_per_block, kout, &hp, threadid())
            else:
                _job_task(job, dummy, b - n_blocks)
    else:
        for b in range(n_blocks):
            _kept_rows_block(e, layer, dummy, b, rows_per_block, kout, &hp, 0)
        for b in range(job.n_tasks):
            _job_task(job, dummy, b)
    _job_done(job, dummy)
    sq, ab = _ordered_sum(<double *>e.part, n_blocks) if n_blocks else (0.0, 0.0)
    return _bias_step(e, layer, dummy, &hp, sq, ab, m, <double *>e.part)


cdef inline void _kept_rows_block(const fd_loop_epoch *e, const fd_loop_layer *layer,
                                  floating *dummy, int64_t b, int64_t rows_per_block,
                                  int64_t kout, const fd_step_params *hp,
                                  int64_t tid) noexcept nogil:
    """Block b of a submatrix step, staged in thread tid's buffer (row_scratch: a block of
    zeros, then one block per thread)."""
    cdef int64_t nc = layer.fan_in, kc = layer.n_kept, r0 = b * rows_per_block
    cdef int64_t size = rows_per_block * nc
    cdef floating *scratch = <floating *>e.row_scratch
    cdef double *part = <double *>e.part
    part[2 * b] = 0
    part[2 * b + 1] = 0
    _step_rows(e.optimizer, <floating *>layer.weights, <floating *>layer.state1_w,
               <floating *>layer.state2_w, r0, min(layer.fan_out, r0 + rows_per_block), nc,
               <const floating *>layer.sub_grads if kout and kc else NULL, kc,
               <const int64_t *>layer.positions, <const int64_t *>layer.kept if kc else NULL,
               scratch + (1 + tid) * size, scratch, hp, part + 2 * b)


cdef int _pass(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy, int64_t m, double lr,
               double t0, double *loss, double *penalty, double *stepping) noexcept nogil:
    """One step's forward and backward halves with their layer-wise updates, in element or
    batch mode (MLP.forward_backward)."""
    cdef int status
    cdef int64_t l
    if e.batch_mode:
        for l in range(e.n_layers):
            _draw_kept(e, &L[l], <uint64_t>e.step)
        for l in range(e.n_layers):
            _fill_positions(&L[l], &L[l + 1] if l < e.n_layers - 1 else NULL)
        status = _forward_batch(e, L, dummy, m, loss)
    else:
        status = _forward(e, L, dummy, m, loss)
    if status:
        return status
    e.t_forward += fd_now() - t0
    if e.batch_mode:
        return _backward_batch(e, L, dummy, m, lr, penalty, stepping)
    return _backward(e, L, dummy, m, lr, penalty, stepping)


cdef int _epoch(fd_loop_epoch *e, fd_loop_layer *L, floating *dummy) noexcept nogil:
    """A run of trainer.Trainer._epoch's batches, batch_from up to batch_to; stops at a loss
    that is not below loss_limit, or after a step whose time per row leaves the run's
    bounds (the thread policy looks at it first)."""
    cdef int64_t b = e.batch_from, start, m
    cdef int status
    cdef double t0, t1, t_end, per_row, loss, penalty, stepping, lr
    cdef double *times = <double *>e.step_times
    while b < e.batch_to:
        start = b * e.batch_size
        m = min(e.batch_size, e.n_rows - start)
        t0 = fd_now()
        _gather(e, dummy, start, m)
        e.step_weight = <double>m
        b += 1
        e.batch_next = b
        if e.weights:  # the batch's summed weights, as float(w.sum()) gives them
            e.step_weight = <double>(<floating>0 + _pairwise_sum(
                <const floating *>e.batch_weights, m))
            if e.step_weight == 0:  # every row weighs 0: no loss, nothing to step on
                if times != NULL:
                    times[b - 1 - e.batch_from] = -1
                continue
        lr = e.lr
        if e.optimizer == KIND_ADAM:  # Adam.start_step
            e.adam_t += 1
            lr = (e.lr_init * sqrt(1 - pow(e.beta_2, <double>e.adam_t))
                  / (1 - pow(e.beta_1, <double>e.adam_t)))
        penalty, stepping = 0.0, 0.0
        status = _pass(e, L, dummy, m, lr, t0, &loss, &penalty, &stepping)
        if status:
            return status
        t1 = fd_now()
        e.t_passes += t1 - t0 - stepping
        e.t_update += stepping
        loss = loss / e.step_weight
        loss += penalty
        e.loss = loss
        if e.max_norm > 0:  # Trainer._apply_max_norm, after the step
            _max_norms(e, L, dummy)
        e.t_update += fd_now() - t1
        if not loss < e.loss_limit:  # NaN too
            return LOOP_DIVERGED
        e.step += 1
        e.total += loss * <double>m
        e.steps_done += 1
        t_end = fd_now()
        if times != NULL:
            times[b - 1 - e.batch_from] = t_end - t0
        if _drifted(e, (t_end - t0) / <double>m):
            break
    return LOOP_OK


cdef bint _drifted(fd_loop_epoch *e, double per_row) noexcept nogil:
    """A step's time per row into the window of latest ones; whether their mean (as
    np.mean sums them) now crosses a bound of the run, which StepThreads must see before the
    next step."""
    cdef double mean
    cdef double window[LOOP_WINDOW]
    cdef int64_t i
    if e.window < 1 or e.window > LOOP_WINDOW or (e.stop_above <= 0 and e.stop_below <= 0):
        return False
    if e.recent_len >= e.window:
        for i in range(e.window - 1):
            e.recent[i] = e.recent[i + 1]
        e.recent_len = e.window - 1
    e.recent[e.recent_len] = per_row
    e.recent_len += 1
    if e.recent_len < e.window // 2:
        return False
    for i in range(e.recent_len):  # out of the packed record: an aligned copy
        window[i] = e.recent[i]
    mean = _pairwise_sum(&window[0], e.recent_len) / <double>e.recent_len
    return (e.stop_above > 0 and mean > e.stop_above) or mean < e.stop_below


def matmul_kind(int64_t a0, int64_t a1, int64_t b0, int64_t b1, int64_t o0, int64_t o1,
                int64_t dm, int64_t dn, int64_t dp):
    """How numpy's matmul computes a 2-d product of these element strides (see
    _step_loop.h): 1 gemm, 2 and 3 gemv, 4 and 5 its loops we take, 6 dot, 0 refused."""
    return fd_matmul_kind(a0, a1, b0, b1, o0, o1, dm, dn, dp)


def direct_matmul(const uint64_t[::1] blas,        # IN numpy's CBLAS functions (6 addresses)
                  const floating[:, :] a,          # IN (m, k), any strides BLAS takes
                  const floating[:, :] b,          # IN (k, n)
                  floating[:, ::1] out):           # OUT (m, n)
    """out = a @ b through fd_matmul, as the loop calls it (to check the BLAS found against
    np.matmul); False where numpy would not call BLAS for these shapes."""
    cdef int64_t s = sizeof(floating)
    cdef int status
    if blas.shape[0] != 6:
        raise ValueError(f"blas must hold 6 addresses, got {blas.shape[0]}")
    if floating is float:
        status = fd_matmul_f32(<const fd_blas *>&blas[0], &a[0, 0], a.strides[0] // s,
                               a.strides[1] // s, &b[0, 0], b.strides[0] // s,
                               b.strides[1] // s, &out[0, 0], out.shape[1], 1, a.shape[0],
                               a.shape[1], b.shape[1])
    else:
        status = fd_matmul_f64(<const fd_blas *>&blas[0], &a[0, 0], a.strides[0] // s,
                               a.strides[1] // s, &b[0, 0], b.strides[0] // s,
                               b.strides[1] // s, &out[0, 0], out.shape[1], 1, a.shape[0],
                               a.shape[1], b.shape[1])
    return status == 0


def pairwise_sum(const floating[::1] a):
    """The loop's sum of row weights (numpy's pairwise summation), for the tests."""
    cdef floating total
    with nogil:
        total = <floating>0 + _pairwise_sum(&a[0] if a.shape[0] else NULL, a.shape[0])
    return total


def train_epoch(unsigned char[::1] epoch,          # IN/OUT one EPOCH_RECORD's bytes
                unsigned char[::1] layers,         # IN/OUT n_layers LAYER_RECORDs' bytes
                bint double_precision):
    """Run one run of an epoch's steps, the record's batch_from up to batch_to on its threads
    (see fastdrop._compiled_epoch, which builds the records and keeps every array they point
    to alive). Returns the record's status."""
    cdef fd_loop_epoch *e
    cdef fd_loop_layer *L
    _records(epoch, layers)
    e = <fd_loop_epoch *>&epoch[0]
    L = <fd_loop_layer *>&layers[0]
    if e.threads < 1:
        raise ValueError(f"the record's threads must be at least 1, got {e.threads}")
    if not 0 <= e.batch_from <= e.batch_to <= (e.n_rows + e.batch_size - 1) // e.batch_size:
        raise ValueError(f"the record's batches {e.batch_from}..{e.batch_to} are not a run of "
                         f"the epoch's {(e.n_rows + e.batch_size - 1) // e.batch_size}")
    if not 0 <= e.recent_len <= e.window <= LOOP_WINDOW:
        raise ValueError(f"the record's window must be 0 to {LOOP_WINDOW} step times and "
                         f"hold at most that many recent ones; got {e.window} and "
                         f"{e.recent_len}")
    e.batch_next = e.batch_from
    with nogil:
        if double_precision:
            e.status = _epoch(e, L, <double *>NULL)
        else:
            e.status = _epoch(e, L, <float *>NULL)
    return e.status


def products_ok(unsigned char[::1] epoch, unsigned char[::1] layers, int64_t m):
    """Whether every product of a step of m rows is one numpy sends to BLAS (the records as
    train_epoch takes them)."""
    _records(epoch, layers)
    return _products_ok(<fd_loop_epoch *>&epoch[0], <fd_loop_layer *>&layers[0], m)


cdef _records(unsigned char[::1] epoch, unsigned char[::1] layers):
    cdef fd_loop_epoch *e
    if epoch.shape[0] != sizeof(fd_loop_epoch):
        raise ValueError(f"epoch must be one EPOCH_RECORD ({sizeof(fd_loop_epoch)} bytes), "
                         f"got {epoch.shape[0]}")
    e = <fd_loop_epoch *>&epoch[0]
    if e.n_layers < 1 or layers.shape[0] != e.n_layers * sizeof(fd_loop_layer):
        raise ValueError(f"layers must be {e.n_layers} LAYER_RECORDs "
                         f"({sizeof(fd_loop_layer)} bytes each), got {layers.shape[0]} bytes")
