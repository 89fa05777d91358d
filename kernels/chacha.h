/*
 * chacha.h - ChaCha20 (RFC 8439) keystream for decrypting container chunks on a GPU, shared by
 * the CUDA kernel (kernels/chacha.cu) and its C reference (kernels/chacha_ref.c). Plain C that
 * nvcc also compiles (__host__ __device__).
 *
 * A chunk of the default suite is ChaCha20-Poly1305-IETF (libsodium): ciphertext = plaintext
 * XOR ChaCha20(segment key, nonce, counter 1, 2, ...) followed by a 16-byte tag; the nonce of
 * chunk j is tseal_chunk_nonce(j, last) (packager/container.c): j as 8 big-endian bytes, three
 * zero bytes, then 1 for the segment's last chunk. The GPU path does not check the tags: the
 * ciphertext was checked against the signed SHA-256 list on the host before it was copied.
 */
#ifndef TSEAL_CHACHA_H
#define TSEAL_CHACHA_H

#include <stdint.h>

#include "gpu_bits.h"

#define TSEAL_CHACHA_BLOCK 64

TSEAL_BITS_HD uint32_t tseal_chacha_rotl(uint32_t x, unsigned n) {
    return (x << n) | (x >> (32 - n));
}

#define TSEAL_CHACHA_QR(a, b, c, d)                                                                \
    a += b, d ^= a, d = tseal_chacha_rotl(d, 16), c += d, b ^= c, b = tseal_chacha_rotl(b, 12),    \
                    a += b, d ^= a, d = tseal_chacha_rotl(d, 8), c += d, b ^= c,                   \
                    b = tseal_chacha_rotl(b, 7)

/* One 64-byte keystream block as 16 little-endian words. */
TSEAL_BITS_HD void tseal_chacha20_block(const uint32_t key[8], uint32_t counter,
                                        const uint32_t nonce[3], uint32_t out[16]) {
    uint32_t s[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u, key[0], key[1],
                      key[2],      key[3],      key[4],      key[5],      key[6], key[7],
                      counter,     nonce[0],    nonce[1],    nonce[2]};
    uint32_t x[16];
    for (int i = 0; i < 16; i++) x[i] = s[i];
    for (int r = 0; r < 10; r++) {
        TSEAL_CHACHA_QR(x[0], x[4], x[8], x[12]);
        TSEAL_CHACHA_QR(x[1], x[5], x[9], x[13]);
        TSEAL_CHACHA_QR(x[2], x[6], x[10], x[14]);
        TSEAL_CHACHA_QR(x[3], x[7], x[11], x[15]);
        TSEAL_CHACHA_QR(x[0], x[5], x[10], x[15]);
        TSEAL_CHACHA_QR(x[1], x[6], x[11], x[12]);
        TSEAL_CHACHA_QR(x[2], x[7], x[8], x[13]);
        TSEAL_CHACHA_QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) out[i] = x[i] + s[i];
}

/* The nonce words of chunk j (tseal_chunk_nonce read as three little-endian words). */
TSEAL_BITS_HD void tseal_chacha_chunk_nonce(uint64_t chunk, int last, uint32_t nonce[3]) {
    uint32_t hi = (uint32_t)(chunk >> 32), lo = (uint32_t)chunk;
    nonce[0] = tseal_gpu_bswap32(hi);
    nonce[1] = tseal_gpu_bswap32(lo);
    nonce[2] = last ? 1u << 24 : 0u;
}

/*
 * XOR a keystream block into p[0..n), n <= 64. Byte i of the keystream is byte i % 4 of ks[i / 4]
 * (little endian), so a whole block is 16 word XORs: four 16-byte accesses on the device when p
 * is 16-byte aligned. Every index into ks is a constant after unrolling, so ks stays in
 * registers (a runtime index would put it in local memory).
 */
TSEAL_BITS_HD void tseal_chacha_xor_ks(uint8_t *p, unsigned n, const uint32_t ks[16]) {
#ifdef __CUDA_ARCH__
    if (n == TSEAL_CHACHA_BLOCK && ((uintptr_t)p & 15) == 0) {
        uint4 *v = (uint4 *)p;
#pragma unroll
        for (int q = 0; q < 4; q++) {
            uint4 d = v[q];
            d.x ^= ks[4 * q];
            d.y ^= ks[4 * q + 1];
            d.z ^= ks[4 * q + 2];
            d.w ^= ks[4 * q + 3];
            v[q] = d;
        }
        return;
    }
#define TSEAL_CHACHA_UNROLL _Pragma("unroll")
#else
#define TSEAL_CHACHA_UNROLL
#endif
    TSEAL_CHACHA_UNROLL
    for (unsigned w = 0; w < 16; w++) {
        TSEAL_CHACHA_UNROLL
        for (unsigned k = 0; k < 4; k++)
            if (4 * w + k < n) p[4 * w + k] ^= (uint8_t)(ks[w] >> (8 * k));
    }
#undef TSEAL_CHACHA_UNROLL
}

/*
 * Block `b` of a run of chunks laid out back to back without tags (chunk_size bytes each, a
 * multiple of 64, the last one possibly shorter): XOR its keystream into p[0..n), n <= 64.
 * `chunk0` is the index of the run's first chunk, `last_chunk` that of the segment's last.
 */
TSEAL_BITS_HD void tseal_chacha_xor_block(uint8_t *p, unsigned n, const uint32_t key[8],
                                          uint64_t chunk0, uint32_t chunk_size, uint64_t last_chunk,
                                          uint64_t b) {
    const uint64_t per_chunk = chunk_size / TSEAL_CHACHA_BLOCK;
    const uint64_t chunk = chunk0 + b / per_chunk;
    uint32_t nonce[3], ks[16];
    tseal_chacha_chunk_nonce(chunk, chunk == last_chunk, nonce);
    tseal_chacha20_block(key, 1u + (uint32_t)(b % per_chunk), nonce, ks);
    tseal_chacha_xor_ks(p, n, ks);
}

/* The 32-byte key as little-endian words. */
TSEAL_BITS_HD void tseal_chacha_key_words(const uint8_t key[32], uint32_t w[8]) {
    for (int i = 0; i < 8; i++)
        w[i] = (uint32_t)key[4 * i] | (uint32_t)key[4 * i + 1] << 8 |
               (uint32_t)key[4 * i + 2] << 16 | (uint32_t)key[4 * i + 3] << 24;
}

#endif
