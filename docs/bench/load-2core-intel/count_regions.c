#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static long n_par = 0;
typedef void (*par_t)(void (*)(void*), void*, unsigned, unsigned);
void GOMP_parallel(void (*fn)(void*), void *data, unsigned nt, unsigned flags) {
    static par_t real = 0;
    if (!real) real = (par_t)dlsym(dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL), "GOMP_parallel");
    __atomic_add_fetch(&n_par, 1, __ATOMIC_RELAXED);
    real(fn, data, nt, flags);
}
long fd_region_count(void) { return n_par; }
