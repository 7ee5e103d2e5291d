/* OpenBLAS's parallel jobs, run on the OpenMP thread pool fastdrop's kernels use.
 *
 * OpenBLAS (0.3.27 and later, pthreads builds) lets a program take over its threading:
 * openblas_set_threads_callback_function(cb) makes every multithreaded BLAS call hand its
 * `numjobs` jobs to cb instead of waking OpenBLAS's own workers. fd_blas_threads_callback
 * runs them on libgomp's (or libomp's) pool, the one prange uses, so GEMMs and the fused
 * kernels share one set of threads: no OpenBLAS worker spins on a core an OpenMP thread
 * needs, and the element-wise kernels may use the whole thread budget inside a fit.
 *
 * OpenBLAS's level-3 jobs wait on one another (each packs a panel the others read), so all
 * `numjobs` must run at once. The OpenMP team is used only when it is certain to have
 * that many threads (not nested, no dynamic adjustment, within the thread limit) and is
 * checked once formed; otherwise the jobs run on threads of their own (POSIX threads).
 *
 * One multithreaded BLAS call at a time runs its jobs here (fd_blas_lock). OpenBLAS hands a
 * callback's job t the work buffer of its worker t, a process-wide array, so two calls from
 * two Python threads (two fits at once) running their jobs together would share buffers and
 * corrupt each other's products without a word. Serializing the calls costs concurrent BLAS
 * its overlap, never its bits; single-threaded BLAS calls never come here.
 *
 * After fork() the child has one thread and GNU OpenMP's pool refers to threads that are
 * gone: a parallel region there hangs. fd_blas_pool_init() registers a child handler that
 * re-creates the lock (a parent thread may have held it) and sends every later job to the
 * POSIX-thread path.
 *
 * fd_blas_callback_address() is 0 where this is unavailable (serial build, Windows): the
 * Python side then leaves OpenBLAS's threading as it is.
 */
#ifndef FD_BLAS_POOL_H
#define FD_BLAS_POOL_H

#include <stddef.h>
#include <stdint.h>

#if defined(_OPENMP) && !defined(_WIN32)
#include <omp.h>
#include <pthread.h>

/* OpenBLAS's openblas_dojob_callback: run job `thread_num`, whose data is `jobdata`. */
typedef void (*fd_dojob_t)(int thread_num, void *jobdata, int dojob_data);

static pthread_mutex_t fd_blas_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile int fd_blas_forked = 0;  /* set in a fork()ed child: no OpenMP teams there */

static void fd_blas_after_fork_in_child(void)
{
    pthread_mutex_init(&fd_blas_lock, NULL);
    fd_blas_forked = 1;
}

/* Once per process, at import. */
static void fd_blas_pool_init(void)
{
    static int done = 0;
    if (!done) {
        done = 1;
        pthread_atfork(NULL, NULL, fd_blas_after_fork_in_child);
    }
}

typedef struct {
    fd_dojob_t dojob;
    int index;
    void *data;
    int dojob_data;
} fd_blas_job;

static void *fd_blas_job_main(void *arg)
{
    fd_blas_job *job = (fd_blas_job *)arg;
    job->dojob(job->index, job->data, job->dojob_data);
    return NULL;
}

/* Every job on a thread of its own (the first on the caller's): the always-correct path.
   numjobs is at most OpenBLAS's thread count, so the bookkeeping fits on the stack. A job
   whose thread cannot be created runs on the caller's after job 0, the best left to do. */
static void fd_blas_jobs_on_pthreads(fd_dojob_t dojob, int numjobs, size_t elsize,
                                     char *jobdata, int dojob_data)
{
    fd_blas_job jobs[numjobs];
    pthread_t threads[numjobs];
    char started[numjobs];
    int i;
    for (i = 1; i < numjobs; i++) {
        jobs[i].dojob = dojob;
        jobs[i].index = i;
        jobs[i].data = jobdata + (size_t)i * elsize;
        jobs[i].dojob_data = dojob_data;
        started[i] = pthread_create(&threads[i], NULL, fd_blas_job_main, &jobs[i]) == 0;
    }
    dojob(0, jobdata, dojob_data);
    for (i = 1; i < numjobs; i++) {
        if (started[i])
            pthread_join(threads[i], NULL);
        else
            dojob(i, jobdata + (size_t)i * elsize, dojob_data);
    }
}

/* All `numjobs` jobs on one OpenMP team; 0, with no job run, when a full team cannot be had. */
static int fd_blas_jobs_on_team(fd_dojob_t dojob, int numjobs, size_t elsize, char *jobdata,
                                int dojob_data)
{
    int full_team = 1;
    if (fd_blas_forked || omp_in_parallel() || omp_get_dynamic()
            || omp_get_thread_limit() < numjobs)
        return 0;
    #pragma omp parallel num_threads(numjobs)
    {
        if (omp_get_num_threads() == numjobs) {
            int t = omp_get_thread_num();
            dojob(t, jobdata + (size_t)t * elsize, dojob_data);
        } else if (omp_get_thread_num() == 0) {
            full_team = 0;
        }
    }
    return full_team;
}

/* The callback: signature of OpenBLAS's openblas_threads_callback. `sync` is always 1 in
   OpenBLAS's callers (the call returns once every job is done), and so it is here. */
static void fd_blas_threads_callback(int sync, fd_dojob_t dojob, int numjobs, size_t elsize,
                                     void *jobdata, int dojob_data)
{
    (void)sync;
    if (numjobs <= 0)
        return;
    pthread_mutex_lock(&fd_blas_lock);
    if (numjobs == 1)
        dojob(0, jobdata, dojob_data);
    else if (!fd_blas_jobs_on_team(dojob, numjobs, elsize, (char *)jobdata, dojob_data))
        fd_blas_jobs_on_pthreads(dojob, numjobs, elsize, (char *)jobdata, dojob_data);
    pthread_mutex_unlock(&fd_blas_lock);
}

static size_t fd_blas_callback_address(void)
{
    return (size_t)(uintptr_t)&fd_blas_threads_callback;
}

#else

static size_t fd_blas_callback_address(void) { return 0; }
static void fd_blas_pool_init(void) {}

#endif
#endif
