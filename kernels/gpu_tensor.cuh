/*
 * gpu_tensor.cuh - the device-resident tensor shared by the kernel families (decode, GEMV) and
 * their host wrappers. Host code only (C++); C callers see the opaque tseal_gpu_tensor.
 */
#ifndef TSEAL_GPU_TENSOR_CUH
#define TSEAL_GPU_TENSOR_CUH

#include <pthread.h>

#include "decode.cuh"
#include "tseal.h"

#define ERR_RECORD_BYTES 256

struct tseal_gpu_tensor {
    int device;
    tseal_ct_view geo; /* the view's header fields; its host pointers are cleared */
    uint8_t *mem;      /* the one device allocation (NULL when empty) */
    uint64_t mem_bytes;
    tseal_gpu_huff_args huff; /* HUFF: device pointers and geometry (`out` set per decode) */
    const uint8_t *plane;     /* CONST */
    const uint8_t *raw;       /* RAW */
    unsigned grid_cap;        /* resident blocks of the decode kernel on the device */
    unsigned grid_cap_staged; /* HUFF: the same for its staged-store kernel */
    pthread_mutex_t lock;     /* one decode at a time: the error record is per tensor */
    /* Set by the loader (loader/load.c); NULL / 0 for tensors made by tseal_gpu_tensor_upload. */
    char *name;
    uint64_t bytes;    /* decoded bytes */
    uint8_t *blob;     /* device copy of the whole coded blob (the sections point into it) */
    uint64_t blob_mem; /* its allocation size */
};

#endif
