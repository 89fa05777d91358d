/*
 * gpu_host.cu - the CUDA runtime calls the loader's pipeline needs (kernels/gpu_internal.h):
 * pinned host memory, streams, events, asynchronous copies, device memory for coded blobs.
 * Every call is checked; a failure returns TSEAL_E_CUDA (TSEAL_E_NOMEM when out of memory)
 * with a message naming the call.
 */
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_internal.h"

static int fail(cudaError_t e, const char *call) {
    (void)cudaGetLastError();
    return tseal_err(e == cudaErrorMemoryAllocation ? TSEAL_E_NOMEM : TSEAL_E_CUDA,
                     "%s failed: %s (%s)", call, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define TRY(call, name)                                                                            \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return fail(e_, name);                                              \
    } while (0)

int tseal_gpu_set_device(int device) {
    const int n = tseal_gpu_device_count();
    if (n == 0) return TSEAL_E_NO_GPU; /* message set */
    if (device < 0 || device >= n)
        return tseal_err(TSEAL_E_INVAL, "GPU %d does not exist (%d device%s)", device, n,
                         n == 1 ? "" : "s");
    TRY(cudaSetDevice(device), "cudaSetDevice");
    return 0;
}

int tseal_gpu_current_device(int *device) {
    *device = 0;
    TRY(cudaGetDevice(device), "cudaGetDevice");
    return 0;
}

void tseal_gpu_restore_device(int device) {
    (void)cudaSetDevice(device);
    (void)cudaGetLastError();
}

int tseal_gpu_pinned_alloc(size_t bytes, void **out) {
    *out = NULL;
    TRY(cudaHostAlloc(out, bytes ? bytes : 1, cudaHostAllocDefault), "cudaHostAlloc");
    memset(*out, 0, bytes);
    return 0;
}

void tseal_gpu_pinned_free(void *p) {
    if (p) (void)cudaFreeHost(p);
    (void)cudaGetLastError();
}

int tseal_gpu_stream_new(int device, void **out) {
    *out = NULL;
    TRY(cudaSetDevice(device), "cudaSetDevice");
    cudaStream_t s = NULL;
    TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    *out = (void *)s;
    return 0;
}

void tseal_gpu_stream_free(void *stream) {
    if (stream) (void)cudaStreamDestroy((cudaStream_t)stream);
    (void)cudaGetLastError();
}

int tseal_gpu_stream_sync(void *stream) {
    TRY(cudaStreamSynchronize((cudaStream_t)stream), "cudaStreamSynchronize");
    return 0;
}

int tseal_gpu_event_new(void **out) {
    *out = NULL;
    cudaEvent_t e = NULL;
    TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    *out = (void *)e;
    return 0;
}

void tseal_gpu_event_free(void *event) {
    if (event) (void)cudaEventDestroy((cudaEvent_t)event);
    (void)cudaGetLastError();
}

int tseal_gpu_event_record(void *event, void *stream) {
    TRY(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream), "cudaEventRecord");
    return 0;
}

int tseal_gpu_event_wait(void *event) {
    TRY(cudaEventSynchronize((cudaEvent_t)event), "cudaEventSynchronize");
    return 0;
}

int tseal_gpu_copy_h2d_async(void *dev_dst, const void *host_src, size_t bytes, void *stream) {
    if (!bytes) return 0;
    TRY(cudaMemcpyAsync(dev_dst, host_src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream),
        "cudaMemcpyAsync (host to device)");
    return 0;
}

int tseal_gpu_blob_alloc(int device, uint64_t blob_len, void **out) {
    *out = NULL;
    if (blob_len > SIZE_MAX - TSEAL_GPU_BLOB_PAD)
        return tseal_err(TSEAL_E_LIMIT, "coded blob of %llu bytes too large",
                         (unsigned long long)blob_len);
    TRY(cudaSetDevice(device), "cudaSetDevice");
    void *p = NULL;
    TRY(cudaMalloc(&p, (size_t)blob_len + TSEAL_GPU_BLOB_PAD), "cudaMalloc");
    cudaError_t e = cudaMemset((uint8_t *)p + blob_len, 0, TSEAL_GPU_BLOB_PAD);
    if (e != cudaSuccess) {
        (void)cudaFree(p);
        return fail(e, "cudaMemset");
    }
    *out = p;
    return 0;
}

int tseal_gpu_wipe(void *dev_ptr, size_t bytes) {
    if (!dev_ptr || !bytes) return 0;
    TRY(cudaMemset(dev_ptr, 0, bytes), "cudaMemset");
    TRY(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    return 0;
}
