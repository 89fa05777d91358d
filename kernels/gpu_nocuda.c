/*
 * gpu_nocuda.c - the kernels/ entry points when tseal is built without CUDA (CUDA=0):
 * every GPU call fails cleanly with TSEAL_E_NO_GPU (message: "built without CUDA").
 */
#include "internal.h"

int tseal_gpu_built(void) {
    return 0;
}

int tseal_gpu_device_count(void) {
    tseal_err(TSEAL_E_NO_GPU, "tseal was built without CUDA (rebuild with nvcc on PATH)");
    return 0;
}

int tseal_gpu_tensor_upload(const tseal_ct_view *view, int device, tseal_gpu_tensor **out) {
    (void)view;
    (void)device;
    if (out) *out = NULL;
    tseal_gpu_device_count(); /* sets the message */
    return TSEAL_E_NO_GPU;
}

int tseal_gpu_tensor_decode(const tseal_gpu_tensor *t, void *dst, void *stream) {
    (void)t;
    (void)dst;
    (void)stream;
    tseal_gpu_device_count(); /* sets the message */
    return TSEAL_E_NO_GPU;
}

void tseal_gpu_tensor_free(tseal_gpu_tensor *t) {
    (void)t;
}

uint64_t tseal_gpu_tensor_device_bytes(const tseal_gpu_tensor *t) {
    (void)t;
    return 0;
}

int tseal_gpu_malloc(int device, size_t bytes, void **out) {
    (void)device;
    (void)bytes;
    if (out) *out = NULL;
    tseal_gpu_device_count();
    return TSEAL_E_NO_GPU;
}

void tseal_gpu_free(void *dev_ptr) {
    (void)dev_ptr;
}

int tseal_gpu_memcpy_h2d(void *dev_dst, const void *host_src, size_t bytes) {
    (void)dev_dst;
    (void)host_src;
    (void)bytes;
    tseal_gpu_device_count();
    return TSEAL_E_NO_GPU;
}

int tseal_gpu_memcpy_d2h(void *host_dst, const void *dev_src, size_t bytes) {
    (void)host_dst;
    (void)dev_src;
    (void)bytes;
    tseal_gpu_device_count();
    return TSEAL_E_NO_GPU;
}

int tseal_gpu_memset(void *dev_ptr, int value, size_t bytes) {
    (void)dev_ptr;
    (void)value;
    (void)bytes;
    tseal_gpu_device_count();
    return TSEAL_E_NO_GPU;
}
