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

/* Why a segment did not decode (flags; the decode and GEMV error records hold their OR). */
#define TSEAL_GPU_ERR_OVERRUN 1u /* the codes ran past the segment's end */
#define TSEAL_GPU_ERR_SHORT   2u /* all symbols decoded before the segment's end */
#define TSEAL_GPU_ERR_BOUNDS  4u /* segment not inside the exponent stream */
#define TSEAL_GPU_ERR_TABLE   8u /* table entry without a symbol (invalid code lengths) */

/* Exponents per chunk of the chunk decoder below (8: one 8-byte plane load, 16 output bytes). */
#define TSEAL_GPU_DEC_CHUNK 8u

/*
 * HUFF decoding of one segment, chunk by chunk: a 64-bit left-aligned bit buffer refilled from
 * byte-swapped 32-bit words, multi-symbol lookups (the fast path) while >= 3 symbols and >= 12
 * bits remain, then single codes checked against the segment's end. Exponents are gathered 8 at
 * a time in a 64-bit register (first in bits 0..7); a lookup of c symbols that completes a chunk
 * leaves its last (n - 8) symbols for the next one (taken from `syms`). Once a segment fails,
 * `err` holds TSEAL_GPU_ERR_* and no symbol is left.
 */
typedef struct tseal_gpu_dec {
    uint64_t buf;  /* the next `avail` bits, left-aligned */
    uint64_t wi;   /* next stream word */
    uint64_t acc;  /* the chunk's n exponents so far */
    uint32_t syms; /* the last lookup's symbols, c of them (n > 8: the last n - 8 are past the
                      chunk and fell off acc) */
    uint32_t c;
    uint32_t avail, used, seg_len, left, n, err;
} tseal_gpu_dec;

/* Segment of seg_len bits at bit `start` of a stream of exp_bits bits, nsyms symbols (nsyms ==
 * 0: an idle stream). */
TSEAL_BITS_HD void tseal_gpu_dec_init(const uint32_t *words, uint64_t exp_bits, tseal_gpu_dec *d,
                                      uint64_t start, uint32_t seg_len, uint32_t nsyms) {
    d->acc = 0;
    d->syms = 0;
    d->c = 0;
    d->used = 0;
    d->n = 0;
    d->err = 0;
    d->seg_len = nsyms ? seg_len : 0u;
    d->left = nsyms;
    d->buf = 0;
    d->avail = 0;
    d->wi = 0;
    if (!nsyms) return;
    if (start > exp_bits || seg_len > exp_bits - start) {
        d->err = TSEAL_GPU_ERR_BOUNDS;
        d->left = 0;
        return;
    }
    d->wi = start >> 5;
    const uint32_t s0 = (uint32_t)(start & 31);
    d->buf = (uint64_t)tseal_gpu_bswap32(tseal_gpu_ldw(words, d->wi++)) << (32 + s0);
    d->avail = 32 - s0;
}

TSEAL_BITS_HD void tseal_gpu_dec_fail(tseal_gpu_dec *d, uint32_t err) {
    d->err = err;
    d->left = 0;
    d->n = 0;
}

/* The chunk still needs symbols and the fast path may give them. */
TSEAL_BITS_HD int tseal_gpu_dec_fast(const tseal_gpu_dec *d) {
    return d->n < TSEAL_GPU_DEC_CHUNK && d->left >= TSEAL_DTAB_MAX_SYMS &&
           d->used + TSEAL_DTAB_BITS <= d->seg_len;
}

/* One multi-symbol lookup (n <= 7 before it). */
TSEAL_BITS_HD void tseal_gpu_dec_lookup(const uint32_t *words, tseal_gpu_dec *d,
                                        const uint32_t *dtab) {
    const uint32_t e = tseal_gpu_lookup(words, dtab, &d->buf, &d->avail, &d->wi);
    if (!e) {
        tseal_gpu_dec_fail(d, TSEAL_GPU_ERR_TABLE);
        return;
    }
    d->c = TSEAL_DTAB_COUNT(e);
    d->syms = e & 0xFFFFFFu; /* unused symbol bytes are zero */
    d->used += TSEAL_DTAB_NBITS(e);
    d->left -= d->c;
    d->acc |= (uint64_t)d->syms << (8 * d->n);
    d->n += d->c;
}

/*
 * After the fast lookups: the next chunk's exponents in *e8 and its size (8, or fewer at the
 * segment's end), or 0 when the segment is done (then a segment that did not end exactly at its
 * last bit is flagged) or bad. Single codes fill the chunk where the fast path cannot.
 */
TSEAL_BITS_HD uint32_t tseal_gpu_dec_chunk(const uint32_t *words, tseal_gpu_dec *d,
                                           const uint32_t *dtab, const uint8_t *code_len,
                                           uint64_t *e8) {
    if (d->n >= TSEAL_GPU_DEC_CHUNK) {
        *e8 = d->acc;
        d->n -= TSEAL_GPU_DEC_CHUNK;             /* <= 2 */
        d->acc = d->syms >> (8 * (d->c - d->n)); /* the symbols that did not fit */
        return TSEAL_GPU_DEC_CHUNK;
    }
    while (d->n < TSEAL_GPU_DEC_CHUNK && d->left > 0) {
        if (d->used >= d->seg_len) {
            tseal_gpu_dec_fail(d, TSEAL_GPU_ERR_OVERRUN);
            return 0;
        }
        if (d->avail <= 32) {
            d->buf |= (uint64_t)tseal_gpu_bswap32(tseal_gpu_ldw(words, d->wi++)) << (32 - d->avail);
            d->avail += 32;
        }
        const uint32_t e = dtab[d->buf >> (64 - TSEAL_DTAB_BITS)];
        const uint32_t sym = e & 0xFFu, len = code_len[sym];
        if (TSEAL_DTAB_COUNT(e) == 0 || len == 0) {
            tseal_gpu_dec_fail(d, TSEAL_GPU_ERR_TABLE);
            return 0;
        }
        if (len > d->seg_len - d->used) {
            tseal_gpu_dec_fail(d, TSEAL_GPU_ERR_OVERRUN);
            return 0;
        }
        d->buf <<= len;
        d->avail -= len;
        d->used += len;
        d->left--;
        d->acc |= (uint64_t)sym << (8 * d->n);
        d->n++;
    }
    const uint32_t m = d->n;
    if (m == 0) {
        if (!d->err && d->used != d->seg_len) d->err = TSEAL_GPU_ERR_SHORT;
        return 0;
    }
    *e8 = d->acc;
    d->acc = 0;
    d->n = 0;
    return m;
}

#endif
