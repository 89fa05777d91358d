/*
 * gemv_nocuda.c - the GEMV entry points (kernels/gemv.cu, kernels/gemv_bench.cu) when tseal is
 * built without CUDA (CUDA=0): argument errors are still reported as such where no device is
 * needed to see them; everything else fails cleanly with TSEAL_E_NO_GPU ("built without
 * CUDA"). The C reference (kernels/gemv_ref.c) is built either way.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "internal.h"

static int no_gpu(void) {
    tseal_gpu_device_count(); /* sets the message */
    return TSEAL_E_NO_GPU;
}

static int check_batch(unsigned batch, const char *what) {
    if (batch < 1 || batch > TSEAL_GEMV_MAX_BATCH)
        return tseal_err(TSEAL_E_INVAL, "%s: batch %u out of range 1..%u", what, batch,
                         TSEAL_GEMV_MAX_BATCH);
    return 0;
}

int tseal_gpu_gemv(const tseal_gpu_tensor *t, const void *x, void *y, unsigned batch,
                   void *stream) {
    (void)x;
    (void)y;
    (void)stream;
    if (!t) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_gemv: tensor is NULL");
    int rc = check_batch(batch, "tseal_gpu_gemv");
    return rc ? rc : no_gpu();
}

int tseal_gpu_gemv_async(const tseal_gpu_tensor *t, const void *x, void *y, unsigned batch,
                         void *stream) {
    (void)x;
    (void)y;
    (void)stream;
    if (!t) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_gemv_async: tensor is NULL");
    int rc = check_batch(batch, "tseal_gpu_gemv_async");
    return rc ? rc : no_gpu();
}

unsigned tseal_gpu_gemv_seg_log2(const tseal_gpu_tensor *t) {
    (void)t; /* no tensor can exist without CUDA */
    return 0;
}

int tseal_gpu_gemv_ref(const void *w_bf16, uint64_t n, uint64_t k, unsigned seg_log2, const void *x,
                       void *y, unsigned batch, void *stream) {
    (void)w_bf16;
    (void)n;
    (void)k;
    (void)x;
    (void)y;
    (void)stream;
    if (seg_log2 < TSEAL_SEG_LOG2_MIN || seg_log2 > TSEAL_SEG_LOG2_MAX)
        return tseal_err(TSEAL_E_INVAL, "tseal_gpu_gemv_ref: seg_log2 %u out of range %u..%u",
                         seg_log2, TSEAL_SEG_LOG2_MIN, TSEAL_SEG_LOG2_MAX);
    int rc = check_batch(batch, "tseal_gpu_gemv_ref");
    return rc ? rc : no_gpu();
}

void tseal_gpu_gemv_tune(unsigned tile_log2, unsigned rows_per_lane) {
    (void)tile_log2; /* no kernel to tune */
    (void)rows_per_lane;
}

int tseal_bench_gemv_main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs("Usage: tseal bench gemv [--json] [--segment N] [--tile C] [--pair N] "
                  "[--batch LIST] [--shapes LIST] [--repeat N] [--cpu-check]\n"
                  "Fused decode+GEMV against cuBLAS on the GPU (docs/GEMV.md). This tseal was "
                  "built without CUDA.\n",
                  stdout);
            return 0;
        }
    }
    fprintf(stderr, "tseal bench gemv: tseal was built without CUDA (rebuild with nvcc on "
                    "PATH); no GPU benchmark to run\n");
    return 5;
}
