/*
 * gpu_nocuda.c - the kernels/ entry points when tseal is built without CUDA (CUDA=0):
 * every GPU call fails cleanly with TSEAL_E_NO_GPU (message: "built without CUDA").
 */
#include "gpu_internal.h"
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

void tseal_gpu_mem_free(void *dev_ptr) {
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

/* ---- kernels/gpu_internal.h (the loader's pipeline) ------------------------------------------ */

static int no_gpu(void) {
    tseal_gpu_device_count(); /* sets the message */
    return TSEAL_E_NO_GPU;
}

int tseal_gpu_set_device(int device) {
    (void)device;
    return no_gpu();
}

int tseal_gpu_current_device(int *device) {
    *device = 0;
    return no_gpu();
}

void tseal_gpu_restore_device(int device) {
    (void)device;
}

int tseal_gpu_pinned_alloc(size_t bytes, void **out) {
    (void)bytes;
    *out = NULL;
    return no_gpu();
}

void tseal_gpu_pinned_free(void *p) {
    (void)p;
}

int tseal_gpu_stream_new(int device, void **out) {
    (void)device;
    *out = NULL;
    return no_gpu();
}

void tseal_gpu_stream_free(void *stream) {
    (void)stream;
}

int tseal_gpu_stream_sync(void *stream) {
    (void)stream;
    return no_gpu();
}

int tseal_gpu_event_new(void **out) {
    *out = NULL;
    return no_gpu();
}

void tseal_gpu_event_free(void *event) {
    (void)event;
}

int tseal_gpu_event_record(void *event, void *stream) {
    (void)event;
    (void)stream;
    return no_gpu();
}

int tseal_gpu_event_wait(void *event) {
    (void)event;
    return no_gpu();
}

int tseal_gpu_copy_h2d_async(void *dev_dst, const void *host_src, size_t bytes, void *stream) {
    (void)dev_dst;
    (void)host_src;
    (void)bytes;
    (void)stream;
    return no_gpu();
}

int tseal_gpu_blob_alloc(int device, uint64_t blob_len, void **out) {
    (void)device;
    (void)blob_len;
    *out = NULL;
    return no_gpu();
}

int tseal_gpu_tensor_adopt(const tseal_ct_view *v, int device, void *dev_blob, const char *name,
                           uint64_t bytes, tseal_gpu_tensor **out) {
    (void)v;
    (void)device;
    (void)dev_blob;
    (void)name;
    (void)bytes;
    *out = NULL;
    return no_gpu();
}

int tseal_gpu_wipe(void *dev_ptr, size_t bytes) {
    (void)dev_ptr;
    (void)bytes;
    return no_gpu();
}

const char *tseal_gpu_tensor_name(const tseal_gpu_tensor *t) {
    (void)t;
    return "";
}

uint64_t tseal_gpu_tensor_bytes(const tseal_gpu_tensor *t) {
    (void)t;
    return 0;
}

void tseal_gpu_tensor_shape(const tseal_gpu_tensor *t, uint64_t *rows, uint64_t *cols) {
    (void)t;
    if (rows) *rows = 0;
    if (cols) *cols = 0;
}

int tseal_gpu_tensor_decode_launch(const tseal_gpu_tensor *t, void *dst, void *stream) {
    (void)t;
    (void)dst;
    (void)stream;
    return no_gpu();
}

int tseal_gpu_chacha_xor_async(void *dev, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                               uint32_t chunk_size, uint64_t last_chunk, void *stream) {
    (void)dev, (void)bytes, (void)key, (void)chunk0, (void)chunk_size, (void)last_chunk;
    (void)stream;
    return no_gpu();
}

void tseal_gpu_decode_tune(unsigned stores) {
    (void)stores; /* no kernel to tune */
}
