/*
 * gpu_bits.h - bit helpers shared by the kernel families (decode.cuh, gemv.cuh): the device
 * intrinsic under nvcc's device pass, the same result in plain C for the CPU tests.
 */
#ifndef TSEAL_GPU_BITS_H
#define TSEAL_GPU_BITS_H

#include <stdint.h>
#include <string.h>

#include "tseal_layout.h"

#if defined(__CUDACC__)
#define TSEAL_BITS_HD static __forceinline__ __host__ __device__
#else
#define TSEAL_BITS_HD static inline
#endif

TSEAL_BITS_HD uint32_t tseal_gpu_bswap32(uint32_t x) {
#ifdef __CUDA_ARCH__
    return __byte_perm(x, 0, 0x0123);
#else
    return __builtin_bswap32(x);
#endif
}

/* Bits [s, s + 32) of the 64-bit value hi:lo, s in 0..31. */
TSEAL_BITS_HD uint32_t tseal_gpu_shr64(uint32_t lo, uint32_t hi, uint32_t s) {
#ifdef __CUDA_ARCH__
    return __funnelshift_r(lo, hi, s);
#else
    return (uint32_t)((((uint64_t)hi << 32) | lo) >> (s & 31));
#endif
}

/* Word i of a read-only array: the read-only data path on the device; any alignment on the
 * host (the CPU tests read words out of byte buffers). */
TSEAL_BITS_HD uint32_t tseal_gpu_ldw(const uint32_t *p, uint64_t i) {
#ifdef __CUDA_ARCH__
    return __ldg(p + i);
#else
    uint32_t v;
    memcpy(&v, (const uint8_t *)p + 4 * i, 4);
    return v;
#endif
}

/*
 * One multi-symbol lookup of a segment's fast path. The bit buffer `buf` holds the next `avail`
 * bits of the MSB-first exponent stream, left-aligned; word `wi` is the next to load. Refill
 * when 32 or fewer bits are left, look the next TSEAL_DTAB_BITS bits up in `dtab`, consume the
 * entry's bits. Returns the entry, or 0 if it has no symbols or no bits (invalid code lengths).
 */
TSEAL_BITS_HD uint32_t tseal_gpu_lookup(const uint32_t *words, const uint32_t *dtab, uint64_t *buf,
                                        uint32_t *avail, uint64_t *wi) {
    if (*avail <= 32) {
        *buf |= (uint64_t)tseal_gpu_bswap32(tseal_gpu_ldw(words, (*wi)++)) << (32 - *avail);
        *avail += 32;
    }
    const uint32_t e = dtab[*buf >> (64 - TSEAL_DTAB_BITS)];
    const uint32_t nbits = TSEAL_DTAB_NBITS(e);
    if (TSEAL_DTAB_COUNT(e) == 0 || nbits == 0) return 0;
    *buf <<= nbits;
    *avail -= nbits;
    return e;
}

#endif
