/*
 * gpu_internal.h - C-callable CUDA helpers for the loader (loader/load.c), so that the loader
 * stays plain C: pinned host memory, streams, events, asynchronous copies, and device tensors
 * made from a coded blob already copied to the device. Implemented in kernels/gpu_host.cu;
 * kernels/gpu_nocuda.c returns TSEAL_E_NO_GPU for each when built without CUDA.
 */
#ifndef TSEAL_GPU_INTERNAL_H
#define TSEAL_GPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tseal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The calling thread's current device, and setting it back (the loader leaves it as found:
 * callers such as PyTorch keep their own notion of the current device). */
int tseal_gpu_current_device(int *device);
void tseal_gpu_restore_device(int device);

/* Page-locked host memory (cudaHostAlloc): the only host memory DMA copies read from directly.
 * The caller wipes it before freeing (the loader keeps compressed plaintext there). */
int tseal_gpu_pinned_alloc(size_t bytes, void **out);
void tseal_gpu_pinned_free(void *p);

/* A non-blocking stream on `device` (made current for the calling thread). */
int tseal_gpu_stream_new(int device, void **out);
void tseal_gpu_stream_free(void *stream);
int tseal_gpu_stream_sync(void *stream);

int tseal_gpu_event_new(void **out);
void tseal_gpu_event_free(void *event);
int tseal_gpu_event_record(void *event, void *stream);
/* Wait until the work recorded before `event` is done. */
int tseal_gpu_event_wait(void *event);

/* Host (pinned) to device, queued on `stream`. */
int tseal_gpu_copy_h2d_async(void *dev_dst, const void *host_src, size_t bytes, void *stream);

/* Device memory for a coded blob of `blob_len` bytes on the current device, with
 * TSEAL_GPU_BLOB_PAD zero bytes after it (the kernels may read that far ahead). */
#define TSEAL_GPU_BLOB_PAD 16
int tseal_gpu_blob_alloc(int device, uint64_t blob_len, void **out);

/*
 * A device tensor over a coded blob already on device `device` (copied by the caller from
 * validated bytes): `v` is the host view of that blob (tseal_codec_view_regions: geometry,
 * code lengths, index; the plane and stream may be NULL). Takes ownership of `dev_blob` (also
 * on failure). `name` is copied; `bytes` is the decoded size.
 */
int tseal_gpu_tensor_adopt(const tseal_ct_view *v, int device, void *dev_blob, const char *name,
                           uint64_t bytes, tseal_gpu_tensor **out);

/* Queue a decode on `stream` and return (benchmarks): no synchronisation and no corruption
 * check; run tseal_gpu_tensor_decode once to check the stream. */
int tseal_gpu_tensor_decode_launch(const tseal_gpu_tensor *t, void *dst, void *stream);

/* Decrypt in place, on `stream`, a run of default-suite chunks copied to the device without
 * their tags (kernels/chacha.cu): `bytes` of chunks chunk0, chunk0 + 1, ... of a segment
 * whose last chunk is `last_chunk`, with the segment key. The ciphertext must have been
 * checked against the signed hash list (the tags are not checked). C reference:
 * tseal_chacha_xor_ref (host memory, same arguments). */
int tseal_gpu_chacha_xor_async(void *dev, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                               uint32_t chunk_size, uint64_t last_chunk, void *stream);
void tseal_chacha_xor_ref(uint8_t *buf, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                          uint32_t chunk_size, uint64_t last_chunk);

/* Wipe device memory (zeroes) synchronously; for freed plaintext. */
int tseal_gpu_wipe(void *dev_ptr, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif
