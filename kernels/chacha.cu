/*
 * chacha.cu - decrypt container chunks on the GPU (default suite): one thread per 64-byte
 * ChaCha20 block, in place, on a stream. Device code is kernels/chacha.h (shared with the C
 * reference kernels/chacha_ref.c).
 */
#include <cuda_runtime.h>

#include "chacha.h"
#include "gpu_internal.h"

#define TSEAL_CHACHA_THREADS 256

struct chacha_args {
    uint32_t key[8];
    uint64_t chunk0, last_chunk, bytes;
    uint32_t chunk_size;
};

__global__ void tseal_gpu_chacha_kernel(uint8_t *buf, const chacha_args a) {
    const uint64_t blocks = (a.bytes + TSEAL_CHACHA_BLOCK - 1) / TSEAL_CHACHA_BLOCK;
    for (uint64_t b = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; b < blocks;
         b += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t left = a.bytes - b * TSEAL_CHACHA_BLOCK;
        tseal_chacha_xor_block(buf + b * TSEAL_CHACHA_BLOCK,
                               (unsigned)(left < TSEAL_CHACHA_BLOCK ? left : TSEAL_CHACHA_BLOCK),
                               a.key, a.chunk0, a.chunk_size, a.last_chunk, b);
    }
}

int tseal_gpu_chacha_xor_async(void *dev, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                               uint32_t chunk_size, uint64_t last_chunk, void *stream) {
    if (!bytes) return 0;
    if (!dev || !key || chunk_size % TSEAL_CHACHA_BLOCK)
        return tseal_err(TSEAL_E_INVAL, "tseal_gpu_chacha_xor_async: bad arguments");
    chacha_args a;
    tseal_chacha_key_words(key, a.key);
    a.chunk0 = chunk0;
    a.last_chunk = last_chunk;
    a.bytes = bytes;
    a.chunk_size = chunk_size;
    const uint64_t blocks = (bytes + TSEAL_CHACHA_BLOCK - 1) / TSEAL_CHACHA_BLOCK;
    const uint64_t grid64 = (blocks + TSEAL_CHACHA_THREADS - 1) / TSEAL_CHACHA_THREADS;
    const unsigned grid = (unsigned)(grid64 < 65535 ? grid64 : 65535);
    tseal_gpu_chacha_kernel<<<grid, TSEAL_CHACHA_THREADS, 0, (cudaStream_t)stream>>>((uint8_t *)dev,
                                                                                     a);
    for (int i = 0; i < 8; i++) ((volatile uint32_t *)a.key)[i] = 0;
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return tseal_err(TSEAL_E_CUDA, "tseal_gpu_chacha_kernel launch failed: %s",
                         cudaGetErrorString(e));
    return 0;
}
