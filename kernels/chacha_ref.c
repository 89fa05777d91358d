/*
 * chacha_ref.c - the C reference of the GPU chunk decryption (kernels/chacha.cu): the same
 * per-block function over host memory. Tests compare it with libsodium's AEAD decryption.
 */
#include "chacha.h"
#include "gpu_internal.h"

void tseal_chacha_xor_ref(uint8_t *buf, uint64_t bytes, const uint8_t key[32], uint64_t chunk0,
                          uint32_t chunk_size, uint64_t last_chunk) {
    uint32_t k[8];
    tseal_chacha_key_words(key, k);
    for (uint64_t b = 0; b * TSEAL_CHACHA_BLOCK < bytes; b++) {
        uint64_t left = bytes - b * TSEAL_CHACHA_BLOCK;
        tseal_chacha_xor_block(buf + b * TSEAL_CHACHA_BLOCK,
                               (unsigned)(left < TSEAL_CHACHA_BLOCK ? left : TSEAL_CHACHA_BLOCK), k,
                               chunk0, chunk_size, last_chunk, b);
    }
    for (int i = 0; i < 8; i++) ((volatile uint32_t *)k)[i] = 0;
}
