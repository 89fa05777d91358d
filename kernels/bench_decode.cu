/*
 * bench_decode.cu - `tseal bench gpu`, decode part: per tensor shape, the BF16 device-to-device
 * copy against the decode kernel, timed with CUDA events, medians of `repeat` runs with the L2
 * cache flushed before each (a memset of a buffer twice its size), in one process.
 */
#include <algorithm>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include <cuda_runtime.h>

#include "bench.h"
#include "gpu_internal.h"

static int cuda_failed(cudaError_t e, const char *call) {
    (void)cudaGetLastError();
    return tseal_err(e == cudaErrorMemoryAllocation ? TSEAL_E_NOMEM : TSEAL_E_CUDA,
                     "bench gpu: %s failed: %s", call, cudaGetErrorString(e));
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = cuda_failed(e_, #call);                                                           \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

/* Deterministic N(0, 0.02)-like BF16 weights (sum of four uniforms, scaled). */
static void fill_weights(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < 4; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s += (float)(x >> 40) / (float)(1ull << 24);
        }
        w[i] = tseal_f32_to_bf16((s - 2.0f) * 0.02f * 1.7320508f);
    }
}

static double median(std::vector<float> &v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

int tseal_bench_gpu_decode_shape(uint64_t n, uint64_t k, unsigned seg_log2, unsigned repeat,
                                 int device, tseal_gpu_decode_row *row) {
    memset(row, 0, sizeof *row);
    row->n = n;
    row->k = k;
    const uint64_t elems = n * k, bytes = elems * 2;
    row->bf16_bytes = bytes;
    int rc = 0;
    uint16_t *w = (uint16_t *)malloc(bytes), *back = NULL;
    tseal_buf blob = {NULL, 0};
    tseal_ct_view v;
    tseal_gpu_tensor *t = NULL;
    void *src = NULL, *dst = NULL, *flush = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    cudaStream_t s = NULL;
    int l2 = 0;
    std::vector<float> copy_ms, dec_ms;
    tseal_codec_params p;
    tseal_codec_params_default(&p);
    if (seg_log2) p.seg_log2 = (uint8_t)seg_log2;
    if (!w) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    fill_weights(w, elems, n * 31 + k);
    rc = tseal_codec_encode(w, n, k, &p, &blob, NULL);
    if (!rc) rc = tseal_codec_view(blob.data, blob.size, &v);
    if (!rc) rc = tseal_gpu_tensor_upload(&v, device, &t);
    if (rc) goto done;
    row->coded_bytes = blob.size;
    CK(cudaSetDevice(device));
    CK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
    CK(cudaMalloc(&src, bytes));
    CK(cudaMalloc(&dst, bytes));
    CK(cudaMalloc(&flush, (size_t)(l2 > 0 ? l2 : 64 << 20) * 2));
    CK(cudaMemcpy(src, w, bytes, cudaMemcpyHostToDevice));
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    /* correctness first: one checked decode, compared with the original */
    rc = tseal_gpu_tensor_decode(t, dst, s);
    if (rc) goto done;
    back = (uint16_t *)malloc(bytes);
    if (!back) {
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        goto done;
    }
    CK(cudaMemcpy(back, dst, bytes, cudaMemcpyDeviceToHost));
    row->exact = memcmp(back, w, bytes) == 0;
    for (unsigned r = 0; r < repeat + 2; r++) {
        float ms = 0;
        CK(cudaMemsetAsync(flush, r & 0xFF, (size_t)(l2 > 0 ? l2 : 64 << 20) * 2, s));
        CK(cudaEventRecord(e0, s));
        CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 2) copy_ms.push_back(ms); /* two warm-up runs */
        CK(cudaMemsetAsync(flush, r & 0xFF, (size_t)(l2 > 0 ? l2 : 64 << 20) * 2, s));
        CK(cudaEventRecord(e0, s));
        rc = tseal_gpu_tensor_decode_launch(t, dst, s);
        if (rc) goto done;
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r >= 2) dec_ms.push_back(ms);
    }
    row->copy_us = median(copy_ms) * 1e3;
    row->decode_us = median(dec_ms) * 1e3;
    rc = tseal_gpu_tensor_decode(t, dst, s); /* the timed launches left the stream intact */
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    if (s) cudaStreamDestroy(s);
    cudaFree(src);
    cudaFree(dst);
    cudaFree(flush);
    (void)cudaGetLastError();
    tseal_gpu_tensor_free(t);
    tseal_buf_free(&blob);
    free(w);
    free(back);
    return rc;
}
