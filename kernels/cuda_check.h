/*
 * cuda_check.h - checked CUDA runtime calls for the host side of the kernel families
 * (decode.cu, gemv.cu): a failure becomes TSEAL_E_CUDA (TSEAL_E_NOMEM when out of memory) with a
 * message naming the operation and the CUDA function, and device selection that restores the
 * caller's device.
 */
#ifndef TSEAL_CUDA_CHECK_H
#define TSEAL_CUDA_CHECK_H

#include <string.h>

#include <cuda_runtime.h>

#include "tseal.h"

static inline int cuda_fail(cudaError_t e, const char *call, const char *what) {
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls start clean */
    /* `call` is the stringified call expression: name the function only. */
    return tseal_err(e == cudaErrorMemoryAllocation ? TSEAL_E_NOMEM : TSEAL_E_CUDA,
                     "%s: %.*s failed: %s (%s)", what, (int)strcspn(call, "("), call,
                     cudaGetErrorString(e), cudaGetErrorName(e));
}

#define CUDA_TRY(call, what)                                                                       \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return cuda_fail(e_, #call, what);                                  \
    } while (0)

/* Make `device` current for this thread; `*prev` receives the old one for dev_leave. */
static inline int dev_enter(int device, int *prev, const char *what) {
    CUDA_TRY(cudaGetDevice(prev), what);
    if (*prev != device) CUDA_TRY(cudaSetDevice(device), what);
    return 0;
}

static inline void dev_leave(int device, int prev) {
    if (prev != device) (void)cudaSetDevice(prev);
}

#endif
