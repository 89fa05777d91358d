/*
 * decode.cuh - CUDA decode kernels for coded tensors (device code).
 *
 * Stream layout: include/tseal_layout.h. Host side (upload, launches, error reporting):
 * kernels/decode.cu. CPU oracle: tseal_codec_decode_ref; tests/gpu/test_gpu_decode.c compares
 * the two bit for bit.
 *
 * HUFF kernel (tseal_gpu_huff_kernel): one thread per segment. A block of 128 threads is 4 warps
 * and every warp owns one group of TSEAL_SEGS_PER_GROUP (32) consecutive segments, so lane l of
 * a warp decodes segment 32 * group + l. Its start bit is the group base plus an exclusive warp
 * scan (__shfl_up_sync) of the packed segment lengths. The block first copies the 4096-entry
 * multi-symbol table (16 KiB, built on the host by tseal_huff_build_dtab) and the 256 code
 * lengths into shared memory with 16-byte loads; single-symbol decoding needs no second table:
 * the first symbol of a multi-symbol entry is always the next code and code_len[] gives its
 * length. Each thread then:
 *   - keeps a 64-bit left-aligned bit buffer refilled from aligned 32-bit words of the MSB-first
 *     exponent stream (byte-swapped with __byte_perm),
 *   - does multi-symbol lookups (1..3 symbols each) while >= 3 symbols remain and >= 12 bits
 *     remain in the segment (so an entry can never straddle the segment end),
 *   - finishes with single-symbol lookups, each checked against the segment end,
 *   - stops at exactly the segment's symbol count and flags the segment (atomics on a device
 *     error record) if it did not consume exactly its length in bits.
 * Symbols are gathered 8 at a time in a 64-bit register, joined with 8 plane bytes (one 8-byte
 * load) and written with one 16-byte store whenever the 8 output elements are 16-byte aligned;
 * the unaligned head and tail of a segment (and destinations that are not 16-byte aligned) use
 * scalar stores.
 *
 * Reads stay inside the sections: a refill happens only while the position is inside the
 * segment, and reads at most 64 bits ahead, i.e. inside the >= TSEAL_EXP_SLACK zero bytes after
 * the stream; the host additionally pads every device section with zero bytes.
 *
 * Stores (STAGED kernels). Written directly, the lanes of a warp store 16 bytes each at
 * addresses S * 2 bytes apart, so every warp store touches 32 separate lines, half a sector
 * each. When every chunk is a whole aligned 8 elements (16-byte aligned output, K % 8 == 0),
 * the staged kernel instead has each lane decode TSEAL_DECODE_STAGE_CHUNKS chunks into its row
 * of a per-warp shared-memory buffer; the warp then writes the buffer out so that each store
 * instruction covers 32 / TSEAL_DECODE_STAGE_CHUNKS whole runs of 8 chunks (128 bytes, whole
 * lines): 8 times fewer, full-line write requests. Same bytes; tseal_gpu_decode_tune picks.
 *
 * For a later optimization pass:
 *   - The plane reads have the same pattern (8 bytes per lane, S apart), served by L1.
 *   - Several segments per thread (interleaved bit buffers, as the CPU fast decoder does) to
 *     hide the shared-memory lookup latency; bank conflicts of the random table lookups.
 *   - Fusing the decode into the consumer (GEMV), which removes the BF16 round trip to HBM.
 *
 * Everything but the kernels themselves is __host__ __device__, so the per-segment logic can
 * also be exercised on the CPU (see the report of the issue that added this file).
 */
#ifndef TSEAL_DECODE_CUH
#define TSEAL_DECODE_CUH

#include <stdint.h>

#include <cuda_runtime.h>

#include "gpu_bits.h"
#include "tseal_layout.h"

#define TSEAL_GPU_HUFF_THREADS  128 /* 4 warps = 4 groups of segments per block */
#define TSEAL_GPU_CONST_THREADS 256
#define TSEAL_GPU_SECTION_PAD   16 /* zero bytes after every device section */

#define TSEAL_GPU_HD static __forceinline__ __host__ __device__

/* Error record of one decode (device memory, zeroed before each launch). */
struct tseal_gpu_err {
    unsigned int flags;         /* TSEAL_GPU_ERR_* seen in any segment */
    unsigned int n_bad;         /* segments flagged */
    unsigned long long seg_inv; /* ~(lowest flagged segment), 0 if none (atomicMax of ~j) */
};
/* TSEAL_GPU_ERR_* flags: gpu_bits.h */

/* Parameters of the HUFF kernel (device pointers into one allocation, see decode.cu). */
struct tseal_gpu_huff_args {
    const uint32_t *dtab;       /* TSEAL_DTAB_SIZE multi-symbol entries, 16-byte aligned */
    const uint8_t *code_len;    /* 256 code lengths, 16-byte aligned */
    const uint64_t *group_base; /* n_groups bit offsets */
    const uint32_t *seg_lens;   /* packed length fields as little-endian words, zero padded */
    const uint32_t *exp_words;  /* exponent stream as words, zero padded */
    const uint8_t *plane;       /* n_elems sign+mantissa bytes, 16-byte aligned */
    uint16_t *out;              /* n_elems BF16 values */
    tseal_gpu_err *err;
    uint64_t n_segs;
    uint64_t segs_per_row;
    uint64_t cols;
    uint64_t exp_bits;
    uint32_t seg_bits_min;
    uint32_t len_width;
    uint32_t seg_log2;
};

TSEAL_GPU_HD void tseal_gpu_flag(tseal_gpu_err *err, uint64_t seg, uint32_t flags) {
#ifdef __CUDA_ARCH__
    atomicOr(&err->flags, flags);
    atomicAdd(&err->n_bad, 1u);
    atomicMax(&err->seg_inv, (unsigned long long)~seg);
#else
    err->flags |= flags;
    err->n_bad++;
    if ((unsigned long long)~seg > err->seg_inv) err->seg_inv = (unsigned long long)~seg;
#endif
}

/* Length in bits of segment j (tseal_ct_seg_bits over the device copy of the fields). */
TSEAL_GPU_HD uint32_t tseal_gpu_seg_bits(const tseal_gpu_huff_args &a, uint64_t j) {
    if (a.len_width == 0) return a.seg_bits_min;
    const uint64_t bit = j * a.len_width;
    const uint64_t w = bit >> 5;
    /* A field is <= 24 bits and starts at bit 0..31 of word w: words w and w + 1 hold it
     * (the device copy has TSEAL_GPU_SECTION_PAD zero bytes after the last field). */
    const uint32_t v = tseal_gpu_shr64(a.seg_lens[w], a.seg_lens[w + 1], (uint32_t)(bit & 31));
    return a.seg_bits_min + (v & ((1u << a.len_width) - 1u));
}

/* 8 BF16 values from 8 sign+mantissa bytes and 8 exponents (element k in byte k). */
TSEAL_GPU_HD uint4 tseal_gpu_join8(uint64_t sm8, uint64_t e8) {
    uint32_t r[4];
    for (int k = 0; k < 4; k++) {
        const uint32_t lo = tseal_bf16_join((uint8_t)(sm8 >> (16 * k)), (uint8_t)(e8 >> (16 * k)));
        const uint32_t hi =
            tseal_bf16_join((uint8_t)(sm8 >> (16 * k + 8)), (uint8_t)(e8 >> (16 * k + 8)));
        r[k] = lo | (hi << 16);
    }
    return make_uint4(r[0], r[1], r[2], r[3]);
}

/* 8 bytes at an 8-byte aligned address, as a little-endian 64-bit value (read-only path on the
 * device, like tseal_gpu_ldw). */
TSEAL_GPU_HD uint64_t tseal_gpu_ld8(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    const uint2 v = __ldg(reinterpret_cast<const uint2 *>(p));
#else
    const uint2 v = *reinterpret_cast<const uint2 *>(p);
#endif
    return (uint64_t)v.x | ((uint64_t)v.y << 32);
}

/*
 * Output of one segment: exponents are buffered in a 64-bit register until the next 8-element
 * boundary (or the segment end), then joined with the plane and stored. `lim` is how many
 * symbols complete the current chunk; a full aligned chunk (lim == 8) is one 16-byte store when
 * VEC (destination 16-byte aligned).
 */
template <bool VEC> struct tseal_gpu_out8 {
    uint16_t *out;
    const uint8_t *plane;
    uint64_t idx; /* element of the first buffered symbol */
    uint64_t end; /* one past the segment's last element */
    uint64_t acc; /* buffered exponents, first in bits 0..7 */
    uint32_t n;   /* buffered symbols */
    uint32_t lim; /* symbols that complete the current chunk (0: segment done) */

    __host__ __device__ __forceinline__ void start(uint16_t *o, const uint8_t *p, uint64_t first,
                                                   uint32_t count) {
        out = o;
        plane = p;
        idx = first;
        end = first + count;
        acc = 0;
        n = 0;
        const uint32_t to_boundary = 8u - (uint32_t)(first & 7);
        lim = count < to_boundary ? count : to_boundary;
    }

    __host__ __device__ __forceinline__ void flush() {
        if (VEC && lim == 8) {
            *reinterpret_cast<uint4 *>(out + idx) =
                tseal_gpu_join8(tseal_gpu_ld8(plane + idx), acc);
        } else {
            for (uint32_t k = 0; k < lim; k++)
                out[idx + k] = tseal_bf16_join(plane[idx + k], (uint8_t)(acc >> (8 * k)));
        }
        idx += lim;
        acc = 0;
        n = 0;
        const uint64_t left = end - idx;
        lim = left < 8 ? (uint32_t)left : 8u;
    }

    __host__ __device__ __forceinline__ void push(uint32_t sym) {
        acc |= (uint64_t)sym << (8 * n); /* n <= 7 */
        if (++n == lim) flush();
    }

    /* Buffer the c symbols of a multi-symbol entry (bytes 0..c-1 of syms, the rest zero);
     * n < lim before, n may pass lim after (then flush_carry). */
    __host__ __device__ __forceinline__ void take(uint64_t syms, uint32_t c) {
        acc |= syms << (8 * n); /* n <= 7; symbols past bit 63 are in syms for flush_carry */
        n += c;
    }

    /* n >= lim: write the chunk, keep the n - lim symbols of the last entry (syms, c). */
    __host__ __device__ __forceinline__ void flush_carry(uint64_t syms, uint32_t c) {
        const uint32_t extra = n - lim;
        flush();
        acc = syms >> (8 * (c - extra));
        n = extra;
    }
};

/*
 * Control flow of the fast path. The lanes of a warp fill their 8-symbol chunks after different
 * numbers of lookups. By default the lookups run in an inner loop until the chunk is full and
 * the chunk's join and store follow it, so the warp runs them once per chunk with all lanes;
 * TSEAL_DECODE_INLINE_CHUNKS=1 builds the earlier form (the store inside the lookup loop, run
 * in nearly every lookup for the few lanes that just filled a chunk), kept to be measured
 * against. Both write the same bytes.
 */
#ifndef TSEAL_DECODE_INLINE_CHUNKS
#define TSEAL_DECODE_INLINE_CHUNKS 0
#endif

/*
 * Decode one segment: `nsyms` exponents from `seg_len` bits starting at bit `start` of the
 * stream (`words`), joined with plane[first..] into out[first..]. dtab and code_len are the
 * shared-memory copies. Returns 0 or TSEAL_GPU_ERR_* (the output is then unspecified).
 * The caller has checked start + seg_len <= exp_bits.
 */
template <bool VEC>
TSEAL_GPU_HD uint32_t tseal_gpu_decode_segment(const uint32_t *words, uint64_t start,
                                               uint32_t seg_len, uint32_t nsyms,
                                               const uint32_t *dtab, const uint8_t *code_len,
                                               const uint8_t *plane, uint16_t *out,
                                               uint64_t first) {
    /* Bit buffer: the next `avail` stream bits, left-aligned; word `wi` is the next to load. */
    uint64_t wi = start >> 5;
    const uint32_t s0 = (uint32_t)(start & 31);
    uint64_t buf = (uint64_t)tseal_gpu_bswap32(tseal_gpu_ldw(words, wi++)) << (32 + s0);
    uint32_t avail = 32 - s0;

    tseal_gpu_out8<VEC> o;
    o.start(out, plane, first, nsyms);

    uint32_t used = 0, left = nsyms;
    /* Fast path: a whole entry (<= TSEAL_DTAB_BITS bits, <= 3 symbols) lies inside the segment. */
    if (TSEAL_DECODE_INLINE_CHUNKS) {
        while (left >= TSEAL_DTAB_MAX_SYMS && used + TSEAL_DTAB_BITS <= seg_len) {
            const uint32_t e = tseal_gpu_lookup(words, dtab, &buf, &avail, &wi);
            if (!e) return TSEAL_GPU_ERR_TABLE;
            const uint32_t c = TSEAL_DTAB_COUNT(e);
            used += TSEAL_DTAB_NBITS(e);
            left -= c;
            o.push(e & 0xFFu);
            if (c > 1) o.push((e >> 8) & 0xFFu);
            if (c > 2) o.push((e >> 16) & 0xFFu);
        }
    } else {
        for (;;) {
            uint32_t c = 0;
            uint64_t syms = 0;
            while (o.n < o.lim && left >= TSEAL_DTAB_MAX_SYMS &&
                   used + TSEAL_DTAB_BITS <= seg_len) {
                const uint32_t e = tseal_gpu_lookup(words, dtab, &buf, &avail, &wi);
                if (!e) return TSEAL_GPU_ERR_TABLE;
                c = TSEAL_DTAB_COUNT(e);
                used += TSEAL_DTAB_NBITS(e);
                left -= c;
                syms = e & 0xFFFFFFu; /* unused symbol bytes are zero */
                o.take(syms, c);
            }
            /* the fast region ended first (lim == 0: the segment is complete) */
            if (o.n < o.lim || o.lim == 0) break;
            o.flush_carry(syms, c);
        }
    }
    /* Tail: one code at a time, each checked against the segment end. */
    while (left > 0) {
        if (used >= seg_len) return TSEAL_GPU_ERR_OVERRUN;
        if (avail <= 32) {
            buf |= (uint64_t)tseal_gpu_bswap32(tseal_gpu_ldw(words, wi++)) << (32 - avail);
            avail += 32;
        }
        const uint32_t e = dtab[buf >> (64 - TSEAL_DTAB_BITS)];
        const uint32_t sym = e & 0xFFu, len = code_len[sym];
        if (TSEAL_DTAB_COUNT(e) == 0 || len == 0) return TSEAL_GPU_ERR_TABLE;
        if (len > seg_len - used) return TSEAL_GPU_ERR_OVERRUN;
        buf <<= len;
        avail -= len;
        used += len;
        left--;
        o.push(sym);
    }
    return used == seg_len ? 0u : TSEAL_GPU_ERR_SHORT;
}

/* Symbols of segment j and its first output element (*first). */
TSEAL_GPU_HD uint32_t tseal_gpu_seg_span(const tseal_gpu_huff_args &a, uint64_t j,
                                         uint64_t *first) {
    const uint64_t row = j / a.segs_per_row;
    const uint64_t c0 = (j - row * a.segs_per_row) << a.seg_log2;
    const uint64_t left = a.cols - c0, s = (uint64_t)1 << a.seg_log2;
    *first = row * a.cols + c0;
    return (uint32_t)(left < s ? left : s);
}

/* Start bit check and decode of segment j whose start bit is known. Returns TSEAL_GPU_ERR_*. */
template <bool VEC>
TSEAL_GPU_HD uint32_t tseal_gpu_segment(const tseal_gpu_huff_args &a, uint64_t j, uint64_t start,
                                        uint32_t seg_len, const uint32_t *dtab,
                                        const uint8_t *code_len) {
    if (start > a.exp_bits || seg_len > a.exp_bits - start) return TSEAL_GPU_ERR_BOUNDS;
    uint64_t first = 0;
    const uint32_t nsyms = tseal_gpu_seg_span(a, j, &first);
    return tseal_gpu_decode_segment<VEC>(a.exp_words, start, seg_len, nsyms, dtab, code_len,
                                         a.plane, a.out, first);
}

/* One thread of the CONST kernel: thread `tid` of `stride`; VEC: 8 elements per 16-byte store
 * (out 16-byte aligned, plane 8-byte aligned). */
template <bool VEC>
TSEAL_GPU_HD void tseal_gpu_const_thread(const uint8_t *plane, uint16_t *out, uint64_t n,
                                         uint32_t e, uint64_t tid, uint64_t stride) {
    uint64_t i0 = 0;
    if (VEC) {
        const uint64_t e8 = (uint64_t)(e & 0xFFu) * 0x0101010101010101ull;
        const uint64_t chunks = n / 8;
        for (uint64_t k = tid; k < chunks; k += stride) {
            *reinterpret_cast<uint4 *>(out + 8 * k) =
                tseal_gpu_join8(tseal_gpu_ld8(plane + 8 * k), e8);
        }
        i0 = chunks * 8;
    }
    for (uint64_t i = i0 + tid; i < n; i += stride) out[i] = tseal_bf16_join(plane[i], (uint8_t)e);
}

#ifdef __CUDACC__
/* Chunks of 8 outputs a lane stages before its warp writes them out (STAGED kernels); a lane's
 * row of the buffer has one spare entry so that the lanes' 16-byte shared stores do not hit
 * the same banks. */
#ifndef TSEAL_DECODE_STAGE_CHUNKS
#define TSEAL_DECODE_STAGE_CHUNKS 8u
#endif
#define TSEAL_DECODE_STAGE_ROW (TSEAL_DECODE_STAGE_CHUNKS + 1u)
static_assert(32 % TSEAL_DECODE_STAGE_CHUNKS == 0, "a store instruction covers whole lane runs");

/*
 * STAGED: segment j of the warp's group (live: j < n_segs) decoded chunk by chunk (the shared
 * chunk decoder, gpu_bits.h), TSEAL_DECODE_STAGE_CHUNKS chunks at a time into the lane's row of
 * `stage` (this warp's 32 rows); then the warp writes all rows out, store item i * 32 + l
 * being chunk (i * 32 + l) % CH of lane (i * 32 + l) / CH, so consecutive lanes write
 * consecutive 16-byte pieces of one segment's output. Needs whole aligned chunks (the host
 * checks K % 8 == 0 and a 16-byte aligned output). Every lane of the warp takes part until no
 * lane has chunks left.
 */
__device__ __forceinline__ void tseal_gpu_segment_staged(const tseal_gpu_huff_args &a, uint64_t j,
                                                         bool live, uint64_t start, uint32_t len,
                                                         unsigned lane, const uint32_t *dtab,
                                                         const uint8_t *code_len, uint4 *stage) {
    const unsigned CH = TSEAL_DECODE_STAGE_CHUNKS;
    uint64_t next = 0; /* element of the lane's next chunk */
    const uint32_t nsyms = live ? tseal_gpu_seg_span(a, j, &next) : 0u;
    tseal_gpu_dec d;
    tseal_gpu_dec_init(a.exp_words, a.exp_bits, &d, start, len, nsyms);
    uint4 *mine = stage + lane * TSEAL_DECODE_STAGE_ROW;
    for (;;) {
        uint32_t got = 0;
        for (unsigned c = 0; c < CH; c++) {
            while (tseal_gpu_dec_fast(&d)) tseal_gpu_dec_lookup(a.exp_words, &d, dtab);
            uint64_t e8 = 0;
            if (tseal_gpu_dec_chunk(a.exp_words, &d, dtab, code_len, &e8) != TSEAL_GPU_DEC_CHUNK)
                break; /* done or bad (whole chunks only: K % 8 == 0) */
            mine[c] = tseal_gpu_join8(tseal_gpu_ld8(a.plane + next + 8 * c), e8);
            got++;
        }
        if (__ballot_sync(0xFFFFFFFFu, got != 0) == 0) break;
        __syncwarp();
#pragma unroll
        for (unsigned i = 0; i < CH; i++) {
            const unsigned item = i * 32 + lane, owner = item / CH, c = item % CH;
            const uint32_t owner_got = __shfl_sync(0xFFFFFFFFu, got, owner);
            const uint64_t owner_next = __shfl_sync(0xFFFFFFFFu, next, owner);
            if (c < owner_got)
                *reinterpret_cast<uint4 *>(a.out + owner_next + 8 * c) =
                    stage[owner * TSEAL_DECODE_STAGE_ROW + c];
        }
        __syncwarp(); /* the rows are refilled next */
        next += 8 * (uint64_t)got;
    }
    if (d.err) tseal_gpu_flag(a.err, j, d.err);
}

template <bool VEC, bool STAGED>
__global__ void __launch_bounds__(TSEAL_GPU_HUFF_THREADS)
    tseal_gpu_huff_kernel(const tseal_gpu_huff_args a) {
    __shared__ __align__(16) uint32_t s_dtab[TSEAL_DTAB_SIZE];
    __shared__ __align__(16) uint8_t s_len[256];
    __shared__ uint4 s_stage[STAGED ? TSEAL_GPU_HUFF_THREADS * TSEAL_DECODE_STAGE_ROW : 1];

    {
        const uint4 *src = reinterpret_cast<const uint4 *>(a.dtab);
        uint4 *dst = reinterpret_cast<uint4 *>(s_dtab);
        for (unsigned i = threadIdx.x; i < TSEAL_DTAB_SIZE / 4; i += blockDim.x) dst[i] = src[i];
        if (threadIdx.x < 256 / 16)
            reinterpret_cast<uint4 *>(s_len)[threadIdx.x] =
                reinterpret_cast<const uint4 *>(a.code_len)[threadIdx.x];
    }
    __syncthreads();

    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const uint64_t n_blocks =
        (a.n_segs + TSEAL_GPU_HUFF_THREADS - 1) / (uint64_t)TSEAL_GPU_HUFF_THREADS;
    /* Grid-stride over blocks of 128 segments: any segment count fits any grid size. */
    for (uint64_t b = blockIdx.x; b < n_blocks; b += gridDim.x) {
        const uint64_t g = b * (TSEAL_GPU_HUFF_THREADS / TSEAL_SEGS_PER_GROUP) + warp;
        const uint64_t j0 = g * TSEAL_SEGS_PER_GROUP;
        if (j0 >= a.n_segs) continue; /* warp-uniform */
        const uint64_t j = j0 + lane;
        const bool live = j < a.n_segs;
        const uint32_t len = live ? tseal_gpu_seg_bits(a, j) : 0u;
        /* Inclusive warp scan of the lengths; a group's total fits 32 bits (the host checks
         * seg_bits_min <= 12 * S and the fields have <= 24 bits). */
        uint32_t incl = len;
#pragma unroll
        for (unsigned d = 1; d < 32; d <<= 1) {
            const uint32_t v = __shfl_up_sync(0xFFFFFFFFu, incl, d);
            if (lane >= d) incl += v;
        }
        const uint64_t start = live ? a.group_base[g] + (incl - len) : 0;
        if (STAGED) {
            tseal_gpu_segment_staged(a, j, live, start, len, lane, s_dtab, s_len,
                                     s_stage + warp * 32 * TSEAL_DECODE_STAGE_ROW);
            continue;
        }
        if (!live) continue;
        const uint32_t f = tseal_gpu_segment<VEC>(a, j, start, len, s_dtab, s_len);
        if (f) tseal_gpu_flag(a.err, j, f);
    }
    if (STAGED) {
        /* Decoded weights do not stay behind in shared memory for whatever runs next on the SM
         * (each lane clears its own row; the GPU does not promise to clear it between kernels). */
        uint4 *mine = s_stage + threadIdx.x * TSEAL_DECODE_STAGE_ROW;
        for (unsigned c = 0; c < TSEAL_DECODE_STAGE_ROW; c++) mine[c] = make_uint4(0, 0, 0, 0);
    }
}

/* CONST: every exponent is `e`; out[i] = join(plane[i], e). */
template <bool VEC>
__global__ void __launch_bounds__(TSEAL_GPU_CONST_THREADS)
    tseal_gpu_const_kernel(const uint8_t *__restrict__ plane, uint16_t *__restrict__ out,
                           uint64_t n, uint32_t e) {
    tseal_gpu_const_thread<VEC>(plane, out, n, e, (uint64_t)blockIdx.x * blockDim.x + threadIdx.x,
                                (uint64_t)gridDim.x * blockDim.x);
}
#endif /* __CUDACC__ */

#endif /* TSEAL_DECODE_CUH */
