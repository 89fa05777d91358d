/*
 * gemv.cuh - fused decode+GEMV kernels (device code): y[b] = W x[b] with W a coded tensor
 * resident on the GPU, decoded in registers right before the multiply (the decoded weights
 * never go to device memory). Design, reduction order and tunables: docs/GEMV.md.
 * Host side (launches, argument checks, errors): kernels/gemv.cu. C reference (the oracle of
 * the tests, same reduction order): kernels/gemv_ref.c.
 *
 * This header is plain C99 up to the `__CUDACC__` section at its end: every per-lane step of
 * the kernels (task mapping, segment lengths and start bits, the decode-and-multiply of one
 * segment, the reduction steps, the output rounding) is a TSEAL_GEMV_HD function that
 * tests/test_gemv.c compiles with the C compiler and runs on the CPU, emulating a warp by 32
 * lanes in a loop and the shuffles by plain arrays. The kernels only add the data movement
 * between lanes (__shfl_*_sync) and shared memory.
 *
 * Reduction order (the contract; identical in the C reference, the BF16 reference kernel and
 * the fused kernel, so their outputs are bit-identical). For output y[b][r], with K columns,
 * segments of S = 2^seg_log2 columns (the last one of a row may be shorter):
 *   1. chunk:   each segment is cut into chunks of 8 columns from its start (the last chunk of
 *               a row may be shorter); c = -0.0f, then c = fmaf(w[col], x[b][col], c) for the
 *               chunk's columns in increasing order;
 *   2. segment: p = -0.0f, then p = p + c for the segment's chunks in order;
 *   3. row:     the segment partials p_0 .. p_{P-1} of the row (P = ceil(K / S)) are summed by
 *               the pairwise tree over P' = next power of two >= P slots, slots >= P holding
 *               -0.0f: level by level, node [i, i + 2h) = node [i, i + h) + node [i + h, i + 2h);
 *               P == 0 (K == 0) gives +0.0f;
 *   4. output:  y = BF16 round-to-nearest-even of the row sum; any NaN gives 0x7FC0.
 * All arithmetic is FP32 with explicit fused multiply-adds and plain additions (never
 * contracted or reassociated; no flush to zero). -0.0f is the exact identity of addition, so
 * every aligned power-of-two range of slots is a subtree whose value does not depend on how
 * the work was split: a lane, a warp or several warps may compute any such subtree.
 */
#ifndef TSEAL_GEMV_CUH
#define TSEAL_GEMV_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tseal.h"
#include "gpu_bits.h"
#include "tseal_layout.h"

#ifdef __CUDACC__
#include <cuda_runtime.h>
#define TSEAL_GEMV_HD static __forceinline__ __host__ __device__
#else
#define TSEAL_GEMV_HD static inline
#endif
/* Full unrolling of the per-batch and per-chunk loops in device code (the host compilers do
 * not know the pragma). */
#ifdef __CUDA_ARCH__
#define TSEAL_GEMV_UNROLL _Pragma("unroll")
#else
#define TSEAL_GEMV_UNROLL
#endif

/* ---- tunables (docs/GEMV.md, "Tunables") ----------------------------------------------------- */

#ifndef TSEAL_GEMV_WARPS
#define TSEAL_GEMV_WARPS 8 /* warps per block: every warp runs its own tasks */
#endif
#define TSEAL_GEMV_THREADS (32 * TSEAL_GEMV_WARPS)
#ifndef TSEAL_GEMV_TASKS_PER_SM
#define TSEAL_GEMV_TASKS_PER_SM 16 /* warp tasks wanted per SM before rows are split in pieces */
#endif
/* Most tiles one warp task sums; longer rows are always split in pieces. Each row's stack of
 * partial sums has log2 of this plus one levels. */
#define TSEAL_GEMV_PIECE_TILES_MAX 2048u
#define TSEAL_GEMV_STACK_LEVELS    12u
/* TILES: a tile is C = 2^tile_log2 consecutive segments of a row (C = 8, 16 or 32), and a warp
 * task covers 32 / C rows (at most TSEAL_GEMV_TILE_ROWS_MAX, one partial-sum stack each). */
#define TSEAL_GEMV_TILE_LOG2_MIN 3u
#define TSEAL_GEMV_TILE_LOG2_MAX 5u
#define TSEAL_GEMV_TILE_ROWS_MAX (32u >> TSEAL_GEMV_TILE_LOG2_MIN)
/* Pair tasks (two rows per lane) exist for HUFF kernels of batch bound <= this: at 16, two
 * rows' stacks per warp would not fit in static shared memory beside the table. */
#define TSEAL_GEMV_PAIR_NB_MAX     8
#define TSEAL_GEMV_COMBINE_THREADS 128 /* threads per block of the piece-combining kernel */
#define TSEAL_GEMV_CHUNK           8   /* columns per FMA chain (reduction order, step 1) */

/* Order segment size of tensors without segments (RAW and CONST) and the batch limit are
 * public: include/tseal.h (TSEAL_GEMV_FLAT_SEG_LOG2, TSEAL_GEMV_MAX_BATCH). */

/* Weight sources (kernel template parameter, constant-folded in the per-lane code). */
#define TSEAL_GEMV_KIND_HUFF  0 /* Huffman-coded exponents + plane */
#define TSEAL_GEMV_KIND_CONST 1 /* one exponent + plane */
#define TSEAL_GEMV_KIND_BF16  2 /* plain row-major BF16 (RAW tensors, the reference kernel) */

/* tseal_gemv_plan_make_tile's `pair`: two rows per lane where every SM still gets its tasks. */
#define TSEAL_GEMV_PAIR_IF_FILLED 3

/* Work split (tseal_gemv_plan_make). */
#define TSEAL_GEMV_MODE_ROWS 0 /* P <= 32: a warp task is floor(32 / P) whole rows */
#define TSEAL_GEMV_MODE_TILES                                                                      \
    1 /* P > 32: a warp task is a piece of 32 / C rows (tiles of C segs) */

/* Error flags of a segment (gpu_bits.h). */
#define TSEAL_GEMV_ERR_OVERRUN TSEAL_GPU_ERR_OVERRUN
#define TSEAL_GEMV_ERR_SHORT   TSEAL_GPU_ERR_SHORT
#define TSEAL_GEMV_ERR_BOUNDS  TSEAL_GPU_ERR_BOUNDS
#define TSEAL_GEMV_ERR_TABLE   TSEAL_GPU_ERR_TABLE

/* Error record (same layout as decode.cuh's tseal_gpu_err; gemv.cu checks it). */
typedef struct tseal_gemv_err {
    unsigned int flags;         /* TSEAL_GEMV_ERR_* seen in any segment */
    unsigned int n_bad;         /* segments flagged */
    unsigned long long seg_inv; /* ~(lowest flagged segment), 0 if none */
} tseal_gemv_err;

/* How the rows are cut into warp tasks. Any plan gives the same bits (see the order above). */
typedef struct tseal_gemv_plan {
    uint64_t n, k;           /* rows (outputs) and columns */
    uint64_t segs_per_row;   /* P = ceil(k / S) */
    uint64_t tiles;          /* TILES: ceil(P / C) per row */
    uint64_t piece_tiles;    /* TILES: tiles per piece, a power of two */
    uint64_t pieces;         /* TILES: pieces per row; > 1: the combine kernel sums them */
    uint64_t n_tasks;        /* warp tasks */
    uint32_t seg_log2;       /* S = 2^seg_log2 */
    uint32_t mode;           /* TSEAL_GEMV_MODE_* */
    uint32_t rows_per_warp;  /* ROWS: floor(32 / P); TILES: 32 / C */
    uint32_t lanes_per_task; /* lanes that get a segment in a full task */
    uint32_t tile_log2;      /* TILES: C = 2^tile_log2 segments per tile */
    uint32_t pair;           /* rows per lane, 1 or 2: a task covers `pair` row groups (below) */
} tseal_gemv_plan;

/* Everything a kernel reads (device pointers; the CPU emulation passes host pointers). */
typedef struct tseal_gemv_args {
    const uint32_t *dtab;       /* HUFF: TSEAL_DTAB_SIZE multi-symbol entries */
    const uint8_t *code_len;    /* HUFF: 256 code lengths */
    const uint64_t *group_base; /* HUFF: n_groups bit offsets */
    const uint32_t *seg_lens;   /* HUFF: packed length fields, read as little-endian words */
    const uint32_t *exp_words;  /* HUFF: exponent stream, read as little-endian words */
    const uint8_t *plane;       /* HUFF, CONST: n * k sign+mantissa bytes */
    const uint16_t *w;          /* BF16: n * k weights, row-major */
    const uint16_t *x;          /* batch * k BF16 */
    uint16_t *y;                /* batch * n BF16 */
    float *pieces;              /* plan.pieces > 1: n * pieces * batch partial sums */
    tseal_gemv_err *err;        /* HUFF: error record, or NULL (then only NaN outputs) */
    uint64_t n_segs;            /* HUFF */
    uint64_t exp_bits;          /* HUFF */
    uint32_t seg_bits_min;      /* HUFF */
    uint32_t len_width;         /* HUFF */
    uint32_t const_exp;         /* CONST */
    uint32_t batch;             /* 1..TSEAL_GEMV_MAX_BATCH */
    tseal_gemv_plan plan;
} tseal_gemv_args;

/* ---- small helpers (bit casts, loads, arithmetic) ---------------------------------------------
 */

TSEAL_GEMV_HD float tseal_gemv_f32(uint32_t bits) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(bits);
#else
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

TSEAL_GEMV_HD uint32_t tseal_gemv_bits(float f) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
#endif
}

/* Exactly one rounding, never contracted or reassociated. */
TSEAL_GEMV_HD float tseal_gemv_fma(float a, float b, float c) {
#ifdef __CUDA_ARCH__
    return __fmaf_rn(a, b, c);
#else
    return fmaf(a, b, c);
#endif
}

TSEAL_GEMV_HD float tseal_gemv_add(float a, float b) {
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

/* The output rounding (order step 4): RNE to BF16, every NaN to the canonical 0x7FC0. */
TSEAL_GEMV_HD uint16_t tseal_gemv_bf16_out(float f) {
    const uint32_t u = tseal_gemv_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0u;
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

/* Loads through the read-only path on the device; memcpy (any alignment) on the host. */
TSEAL_GEMV_HD uint64_t tseal_gemv_ldq(const uint64_t *p, uint64_t i) {
#ifdef __CUDA_ARCH__
    return __ldg((const unsigned long long *)p + i);
#else
    uint64_t v;
    memcpy(&v, (const uint8_t *)p + 8 * i, 8);
    return v;
#endif
}

TSEAL_GEMV_HD uint32_t tseal_gemv_ldb(const uint8_t *p) {
#ifdef __CUDA_ARCH__
    return __ldg(p);
#else
    return *p;
#endif
}

TSEAL_GEMV_HD uint32_t tseal_gemv_ldh(const uint16_t *p) {
#ifdef __CUDA_ARCH__
    return __ldg((const unsigned short *)p);
#else
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#endif
}

/* 8 bytes (8-byte aligned on the device) as two little-endian words. */
TSEAL_GEMV_HD void tseal_gemv_ld8(const uint8_t *p, uint32_t v[2]) {
#ifdef __CUDA_ARCH__
    const uint2 q = __ldg((const uint2 *)p);
    v[0] = q.x;
    v[1] = q.y;
#else
    memcpy(v, p, 8);
#endif
}

/* 16 bytes (16-byte aligned on the device) as four little-endian words. */
TSEAL_GEMV_HD void tseal_gemv_ld16(const uint16_t *p, uint32_t v[4]) {
#ifdef __CUDA_ARCH__
    const uint4 q = __ldg((const uint4 *)p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
#else
    memcpy(v, p, 16);
#endif
}

TSEAL_GEMV_HD uint64_t tseal_gemv_pow2_ceil(uint64_t v) {
    uint64_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

/* ---- the plan: rows -> warp tasks ------------------------------------------------------------ */

/*
 * TILES tile width for n rows of P segments: of C = 32, 16, 8, the one that leaves the fewest
 * lanes idle, counting the idle lanes of each row's last tile and the rows missing from the last
 * group of 32 / C rows; the wider one on ties (more, smaller tasks). A narrower tile puts more
 * rows in a warp, and those rows' lanes read the same `x` columns.
 */
TSEAL_GEMV_HD uint32_t tseal_gemv_tile_log2_auto(uint64_t n, uint64_t P) {
    uint32_t best = 0;
    uint64_t best_slots = 0;
    for (uint32_t tl = TSEAL_GEMV_TILE_LOG2_MAX + 1; tl-- > TSEAL_GEMV_TILE_LOG2_MIN;) {
        const uint64_t R = 32u >> tl, rows = (n + R - 1) / R * R;
        const uint64_t slots = rows * (((P + ((uint64_t)1 << tl) - 1) >> tl) << tl);
        if (!best || slots < best_slots) {
            best = tl;
            best_slots = slots;
        }
    }
    return best;
}

/*
 * Cut n rows of k columns (order segments of 2^seg_log2) into row groups and warp tasks. ROWS
 * (P <= 32): a row group is floor(32 / P) consecutive rows, lane l handling segment l % P of
 * row l / P. TILES (P > 32): a row is ceil(P / C) tiles of C consecutive segments, and a row
 * group is R = 32 / C consecutive rows; lane l works on row l / C, segment C t + l % C of tile
 * t. A task covers `pair` consecutive row groups (1, or 2 when asked and worth it, see below):
 * with 2, every lane has a segment of each group, the same columns in two rows, so it loads and
 * converts each `x` chunk once for both and decodes two independent streams. In TILES a task
 * sums `piece_tiles` consecutive tiles of its rows (an aligned power-of-two range, so a subtree
 * of each row's pairwise tree); the largest such piece is used that still gives >= min_tasks
 * tasks (fill every SM), and rows of more than one piece are finished by the combine kernel.
 * pair: the rows per lane wanted: 1; 2 (taken if there are two row groups); or
 * TSEAL_GEMV_PAIR_IF_FILLED, as 2 except that ROWS plans, which cannot split rows further, keep
 * one row per lane unless two still leave >= min_tasks tasks.
 * tile_log2: TSEAL_GEMV_TILE_LOG2_MIN..MAX, or 0 for tseal_gemv_tile_log2_auto. k == 0 gives no
 * tasks (the caller writes +0).
 */
TSEAL_GEMV_HD void tseal_gemv_plan_make_tile(uint64_t n, uint64_t k, unsigned seg_log2,
                                             uint64_t min_tasks, unsigned tile_log2, unsigned pair,
                                             tseal_gemv_plan *pl) {
    pl->n = n;
    pl->k = k;
    pl->seg_log2 = seg_log2;
    pl->segs_per_row = k ? ((k - 1) >> seg_log2) + 1 : 0;
    pl->tile_log2 = 0;
    pl->pair = 1;
    const uint64_t P = pl->segs_per_row;
    if (P == 0 || n == 0) {
        pl->mode = TSEAL_GEMV_MODE_ROWS;
        pl->rows_per_warp = 1;
        pl->lanes_per_task = 0;
        pl->tiles = pl->piece_tiles = pl->pieces = 1;
        pl->n_tasks = 0;
    } else if (P <= 32) {
        pl->mode = TSEAL_GEMV_MODE_ROWS;
        pl->rows_per_warp = (uint32_t)(32 / P);
        pl->lanes_per_task = (uint32_t)(pl->rows_per_warp * P);
        pl->tiles = pl->piece_tiles = pl->pieces = 1;
        const uint64_t groups = (n + pl->rows_per_warp - 1) / pl->rows_per_warp;
        if (groups >= 2 &&
            (pair == 2 || (pair == TSEAL_GEMV_PAIR_IF_FILLED && (groups + 1) / 2 >= min_tasks)))
            pl->pair = 2;
        pl->n_tasks = (groups + pl->pair - 1) / pl->pair;
    } else {
        pl->mode = TSEAL_GEMV_MODE_TILES;
        pl->tile_log2 = tile_log2 ? tile_log2 : tseal_gemv_tile_log2_auto(n, P);
        pl->rows_per_warp = 32u >> pl->tile_log2;
        pl->lanes_per_task = 32;
        pl->tiles = ((P - 1) >> pl->tile_log2) + 1;
        const uint64_t groups = (n + pl->rows_per_warp - 1) / pl->rows_per_warp;
        if (pair >= 2 && groups >= 2) pl->pair = 2;
        const uint64_t tasks_per_piece = (groups + pl->pair - 1) / pl->pair;
        uint64_t bt = tseal_gemv_pow2_ceil(pl->tiles);
        if (bt > TSEAL_GEMV_PIECE_TILES_MAX) bt = TSEAL_GEMV_PIECE_TILES_MAX;
        while (bt > 1 && tasks_per_piece * ((pl->tiles + bt - 1) / bt) < min_tasks) bt >>= 1;
        pl->piece_tiles = bt;
        pl->pieces = (pl->tiles + bt - 1) / bt;
        pl->n_tasks = tasks_per_piece * pl->pieces;
    }
}

TSEAL_GEMV_HD void tseal_gemv_plan_make(uint64_t n, uint64_t k, unsigned seg_log2,
                                        uint64_t min_tasks, tseal_gemv_plan *pl) {
    tseal_gemv_plan_make_tile(n, k, seg_log2, min_tasks, 0, 1, pl);
}

/* The segment a lane works on. */
typedef struct tseal_gemv_slot {
    uint64_t row;   /* output row */
    uint64_t i;     /* segment index within the row */
    uint64_t rel;   /* index within the task's tree (ROWS: i; TILES: i - C * tile) */
    uint64_t lim;   /* slots of that tree holding a segment (ROWS: P; TILES: count) */
    uint64_t j0;    /* first segment (global index) of the lane's run: ROWS, the warp's lanes;
                       TILES, the lanes of its row (the tile) */
    uint32_t count; /* segments of that run (contiguous from j0) */
    int active;     /* this lane has a segment */
} tseal_gemv_slot;

/* ROWS: lane `lane` in row group `group` (a group past the last row has no active lane). */
TSEAL_GEMV_HD void tseal_gemv_rows_slot(const tseal_gemv_plan *pl, uint64_t group, unsigned lane,
                                        tseal_gemv_slot *s) {
    const uint64_t P = pl->segs_per_row, row0 = group * pl->rows_per_warp;
    const uint64_t left = row0 < pl->n ? pl->n - row0 : 0;
    const uint64_t nrows = left < pl->rows_per_warp ? left : pl->rows_per_warp;
    s->row = row0 + lane / P;
    s->i = lane % P;
    s->rel = s->i;
    s->lim = P;
    s->j0 = row0 * P;
    s->count = (uint32_t)(nrows * P);
    s->active = lane < s->count;
}

/* TILES: lane `lane` in tile `tile` of row group `group` (rows R group .. R group + R - 1);
 * lanes of a row past n are inactive. */
TSEAL_GEMV_HD void tseal_gemv_tile_slot(const tseal_gemv_plan *pl, uint64_t group, uint64_t tile,
                                        unsigned lane, tseal_gemv_slot *s) {
    const uint64_t P = pl->segs_per_row, first = tile << pl->tile_log2;
    const uint32_t C = 1u << pl->tile_log2, c = lane & (C - 1);
    s->row = group * pl->rows_per_warp + (lane >> pl->tile_log2);
    s->i = first + c;
    s->rel = c;
    s->count = (uint32_t)(P - first < C ? P - first : C);
    s->lim = s->count;
    s->j0 = s->row * P + first;
    s->active = s->row < pl->n && c < s->count;
}

/* ---- segment lengths and start bits (HUFF) --------------------------------------------------- */

/* Length in bits of segment j < n_segs (the layout's tseal_ct_seg_bits over words). */
TSEAL_GEMV_HD uint32_t tseal_gemv_seg_bits(const tseal_gemv_args *a, uint64_t j) {
    if (a->len_width == 0) return a->seg_bits_min;
    const uint64_t bit = j * a->len_width, w = bit >> 5;
    const uint32_t v = tseal_gpu_shr64(tseal_gpu_ldw(a->seg_lens, w),
                                       tseal_gpu_ldw(a->seg_lens, w + 1), (uint32_t)(bit & 31));
    return a->seg_bits_min + (v & ((1u << a->len_width) - 1u));
}

/*
 * Start bits of the warp's segments j0 .. j0 + count - 1 (count <= 32, so at most two groups,
 * g0 = j0 / 32 and g0 + 1). Every lane l loads the lengths of segments 32 g0 + l ("lo") and,
 * if the range reaches group g0 + 1, 32 g0 + 32 + l ("hi"); the warp scans both; a lane whose
 * segment is k = j - 32 g0 slots after the first of g0 takes the exclusive prefix of lane
 * k % 32 of the scan of its group. These are the per-lane inputs and the final selection.
 */
TSEAL_GEMV_HD int tseal_gemv_scan_two(uint64_t j0, uint32_t count) {
    return (j0 & 31) + count > 32;
}

TSEAL_GEMV_HD uint32_t tseal_gemv_scan_len(const tseal_gemv_args *a, uint64_t j0, unsigned lane,
                                           int hi) {
    const uint64_t j = ((j0 >> 5) << 5) + (hi ? 32u : 0u) + lane;
    return j < a->n_segs ? tseal_gemv_seg_bits(a, j) : 0u;
}

/* Lane l's source lane for the scan values of segment j. */
TSEAL_GEMV_HD unsigned tseal_gemv_scan_src(uint64_t j0, uint64_t j) {
    return (unsigned)((j - ((j0 >> 5) << 5)) & 31);
}

/* `excl_*` and `len_*` are the exclusive prefix and the length at lane tseal_gemv_scan_src. */
TSEAL_GEMV_HD void tseal_gemv_scan_pick(const tseal_gemv_args *a, uint64_t j0, uint64_t j,
                                        uint32_t excl_lo, uint32_t len_lo, uint32_t excl_hi,
                                        uint32_t len_hi, uint64_t *start, uint32_t *len) {
    const uint64_t g0 = j0 >> 5;
    if (j - (g0 << 5) < 32) {
        *start = tseal_gemv_ldq(a->group_base, g0) + excl_lo;
        *len = len_lo;
    } else {
        *start = tseal_gemv_ldq(a->group_base, g0 + 1) + excl_hi;
        *len = len_hi;
    }
}

/* ---- one segment: decode (HUFF, CONST, BF16) and multiply ------------------------------------ */

/* Record a bad segment (device: atomics on the shared record; host: plain updates). */
TSEAL_GEMV_HD void tseal_gemv_flag(tseal_gemv_err *err, uint64_t seg, uint32_t flags) {
    if (!err) return;
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

/*
 * Four BF16 weights as FP32 from 4 sign+mantissa bytes and 4 exponents (byte i = weight i):
 * interleave to [sm0 e0 sm1 e1] and [sm2 e2 sm3 e3], move the bits of each 16-bit half into
 * place (sign from bit 7 to 15, exponent from 8..15 to 7..14, mantissa stays), widen.
 */
TSEAL_GEMV_HD void tseal_gemv_join4(uint32_t sm4, uint32_t e4, float w[4]) {
#ifdef __CUDA_ARCH__
    const uint32_t u0 = __byte_perm(sm4, e4, 0x5140), u1 = __byte_perm(sm4, e4, 0x7362);
#else
    const uint32_t u0 =
        (sm4 & 0xFFu) | ((e4 & 0xFFu) << 8) | ((sm4 & 0xFF00u) << 8) | ((e4 & 0xFF00u) << 16);
    const uint32_t u1 = ((sm4 >> 16) & 0xFFu) | ((e4 >> 8) & 0xFF00u) | ((sm4 >> 8) & 0xFF0000u) |
                        (e4 & 0xFF000000u);
#endif
    const uint32_t b0 = ((u0 >> 1) & 0x7F807F80u) | (u0 & 0x007F007Fu) | ((u0 << 8) & 0x80008000u);
    const uint32_t b1 = ((u1 >> 1) & 0x7F807F80u) | (u1 & 0x007F007Fu) | ((u1 << 8) & 0x80008000u);
    w[0] = tseal_gemv_f32(b0 << 16);
    w[1] = tseal_gemv_f32(b0 & 0xFFFF0000u);
    w[2] = tseal_gemv_f32(b1 << 16);
    w[3] = tseal_gemv_f32(b1 & 0xFFFF0000u);
}

/* 8 BF16 values at p as FP32 (m <= 8 of them; the rest +0). vec: m == 8 and p 16-byte aligned,
 * one 16-byte load. */
TSEAL_GEMV_HD void tseal_gemv_bf16x8(const uint16_t *p, int vec, unsigned m, float out[8]) {
    if (vec) {
        uint32_t q[4];
        tseal_gemv_ld16(p, q);
        TSEAL_GEMV_UNROLL
        for (unsigned i = 0; i < 4; i++) {
            out[2 * i] = tseal_gemv_f32(q[i] << 16);
            out[2 * i + 1] = tseal_gemv_f32(q[i] & 0xFFFF0000u);
        }
    } else {
        TSEAL_GEMV_UNROLL
        for (unsigned i = 0; i < 8; i++)
            out[i] = tseal_gemv_f32(i < m ? tseal_gemv_ldh(p + i) << 16 : 0u);
    }
}

/* Order step 1 inputs: the `x` values of batch entry b at column `col` (vec: k % 8 == 0 and x
 * 16-byte aligned). */
TSEAL_GEMV_HD void tseal_gemv_x8(const tseal_gemv_args *a, int vec, unsigned b, uint64_t col,
                                 unsigned m, float xv[8]) {
    tseal_gemv_bf16x8(a->x + (uint64_t)b * a->plan.k + col, vec, m, xv);
}

/* Order step 1: one chunk's chain of m fused multiply-adds from -0. */
TSEAL_GEMV_HD float tseal_gemv_chain8(int vec, unsigned m, const float w[8], const float xv[8]) {
    float c = -0.0f;
    TSEAL_GEMV_UNROLL
    for (unsigned i = 0; i < 8; i++)
        if (vec || i < m) c = tseal_gemv_fma(w[i], xv[i], c);
    return c;
}

/*
 * Order steps 1-2 for one chunk: m (<= 8) weights w[] at column `col`; p[b] += chain(b) for
 * b < batch. `nb` is the compile-time batch bound of the kernel (the host passes batch).
 */
TSEAL_GEMV_HD void tseal_gemv_chunk_fma(const tseal_gemv_args *a, int vec, unsigned nb,
                                        uint64_t col, unsigned m, const float w[8], float *p) {
    TSEAL_GEMV_UNROLL
    for (unsigned b = 0; b < nb; b++) {
        if (b >= a->batch) break;
        float xv[8];
        tseal_gemv_x8(a, vec, b, col, m, xv);
        p[b] = tseal_gemv_add(p[b], tseal_gemv_chain8(vec, m, w, xv));
    }
}

/* The m weights of a chunk: plane bytes at element `elem` joined with 8 exponents (byte i of
 * e8). */
TSEAL_GEMV_HD void tseal_gemv_plane_w8(const tseal_gemv_args *a, int vec, uint64_t elem, unsigned m,
                                       uint64_t e8, float w[8]) {
    if (vec) {
        uint32_t sm[2];
        tseal_gemv_ld8(a->plane + elem, sm);
        tseal_gemv_join4(sm[0], (uint32_t)e8, w);
        tseal_gemv_join4(sm[1], (uint32_t)(e8 >> 32), w + 4);
    } else {
        TSEAL_GEMV_UNROLL
        for (unsigned i = 0; i < 8; i++) {
            const uint32_t bf = i < m
                                    ? tseal_bf16_join((uint8_t)tseal_gemv_ldb(a->plane + elem + i),
                                                      (uint8_t)(e8 >> (8 * i)))
                                    : 0u;
            w[i] = tseal_gemv_f32(bf << 16);
        }
    }
}

/* A chunk of plane bytes at element `elem` joined with 8 exponents (byte i of e8), multiplied. */
TSEAL_GEMV_HD void tseal_gemv_plane_chunk(const tseal_gemv_args *a, int vec, unsigned nb,
                                          uint64_t elem, uint64_t col, unsigned m, uint64_t e8,
                                          float *p) {
    float w[8];
    tseal_gemv_plane_w8(a, vec, elem, m, e8, w);
    tseal_gemv_chunk_fma(a, vec, nb, col, m, w, p);
}

/*
 * The same chunk columns of two rows (a pair task): row h's chunk has m[h] weights at element
 * elem[h] (m[h] == 0: nothing for that row, whose segment is done or bad; otherwise both are
 * the same), and each `x` chunk is loaded and converted once for both chains.
 */
TSEAL_GEMV_HD void tseal_gemv_plane_chunk2(const tseal_gemv_args *a, int vec, unsigned nb,
                                           const uint64_t elem[2], uint64_t col,
                                           const uint32_t m[2], const uint64_t e8[2], float *p0,
                                           float *p1) {
    float w0[8], w1[8];
    const unsigned mx = m[0] > m[1] ? m[0] : m[1];
    if (m[0]) tseal_gemv_plane_w8(a, vec, elem[0], m[0], e8[0], w0);
    if (m[1]) tseal_gemv_plane_w8(a, vec, elem[1], m[1], e8[1], w1);
    TSEAL_GEMV_UNROLL
    for (unsigned b = 0; b < nb; b++) {
        if (b >= a->batch) break;
        float xv[8];
        tseal_gemv_x8(a, vec, b, col, mx, xv);
        if (m[0]) p0[b] = tseal_gemv_add(p0[b], tseal_gemv_chain8(vec, m[0], w0, xv));
        if (m[1]) p1[b] = tseal_gemv_add(p1[b], tseal_gemv_chain8(vec, m[1], w1, xv));
    }
}

/* A chunk of plain BF16 weights at element `elem`, multiplied. */
TSEAL_GEMV_HD void tseal_gemv_bf16_chunk(const tseal_gemv_args *a, int vec, unsigned nb,
                                         uint64_t elem, uint64_t col, unsigned m, float *p) {
    float w[8];
    tseal_gemv_bf16x8(a->w + elem, vec, m, w);
    tseal_gemv_chunk_fma(a, vec, nb, col, m, w, p);
}

/*
 * HUFF: decode the segment's nsyms exponents from seg_len bits at bit `start` while
 * multiplying. dtab/code_len: the shared-memory copies. Returns 0 or TSEAL_GEMV_ERR_* (p is
 * then unspecified).
 *
 * Control flow (not the arithmetic: both forms make the same chunks in the same order). The
 * lanes of a warp fill their chunks after different numbers of lookups (1-3 symbols each). By
 * default the lookups run in an inner loop until the chunk is full and the multiply follows it,
 * so the warp runs the multiply (loads, joins, batch x 8 FMAs) once per chunk with all lanes.
 * TSEAL_GEMV_INLINE_CHUNKS=1 builds the earlier form, the multiply inside the lookup loop: the
 * warp then runs it in nearly every lookup, each time for the few lanes that just filled a chunk
 * (kept to be measured against; `inline_chunks` selects it in the C tests).
 */
#ifndef TSEAL_GEMV_INLINE_CHUNKS
#define TSEAL_GEMV_INLINE_CHUNKS 0
#endif

TSEAL_GEMV_HD uint32_t tseal_gemv_seg_huff(const tseal_gemv_args *a, int vec, unsigned nb,
                                           int inline_chunks, uint64_t elem, uint64_t col,
                                           uint32_t nsyms, uint64_t start, uint32_t seg_len,
                                           const uint32_t *dtab, const uint8_t *code_len,
                                           float *p) {
    tseal_gpu_dec d;
    tseal_gpu_dec_init(a->exp_words, a->exp_bits, &d, start, seg_len, nsyms);
    if (inline_chunks) {
        while (tseal_gpu_dec_fast(&d)) {
            tseal_gpu_dec_lookup(a->exp_words, &d, dtab);
            if (d.n >= TSEAL_GEMV_CHUNK) {
                uint64_t e8 = 0;
                tseal_gpu_dec_chunk(a->exp_words, &d, dtab, code_len, &e8);
                tseal_gemv_plane_chunk(a, vec, nb, elem, col, TSEAL_GEMV_CHUNK, e8, p);
                elem += TSEAL_GEMV_CHUNK;
                col += TSEAL_GEMV_CHUNK;
            }
        }
    }
    for (;;) {
        while (tseal_gpu_dec_fast(&d)) tseal_gpu_dec_lookup(a->exp_words, &d, dtab);
        uint64_t e8 = 0;
        const uint32_t m = tseal_gpu_dec_chunk(a->exp_words, &d, dtab, code_len, &e8);
        if (!m) break;
        tseal_gemv_plane_chunk(a, vec, nb, elem, col, m, e8, p);
        elem += TSEAL_GEMV_CHUNK;
        col += TSEAL_GEMV_CHUNK;
    }
    return d.err;
}

/*
 * HUFF, a pair task: the same nsyms columns from `col` in two rows (elements elem[h], segments
 * of len[h] bits at start[h]; act[h] == 0: no segment for row h). The two streams are decoded
 * in step (their fast lookups interleaved, independent work for the same issue slots) and each
 * chunk is multiplied with the same `x` chunk. f[h]: 0 or TSEAL_GEMV_ERR_* of row h.
 */
TSEAL_GEMV_HD void tseal_gemv_seg_huff2(const tseal_gemv_args *a, int vec, unsigned nb,
                                        const uint64_t elem0[2], uint64_t col, uint32_t nsyms,
                                        const uint64_t start[2], const uint32_t len[2],
                                        const int act[2], const uint32_t *dtab,
                                        const uint8_t *code_len, float *p0, float *p1,
                                        uint32_t f[2]) {
    tseal_gpu_dec d[2];
    uint64_t elem[2] = {elem0[0], elem0[1]};
    tseal_gpu_dec_init(a->exp_words, a->exp_bits, &d[0], start[0], len[0], act[0] ? nsyms : 0u);
    tseal_gpu_dec_init(a->exp_words, a->exp_bits, &d[1], start[1], len[1], act[1] ? nsyms : 0u);
    for (;;) {
        for (;;) {
            const int f0 = tseal_gpu_dec_fast(&d[0]), f1 = tseal_gpu_dec_fast(&d[1]);
            if (!f0 && !f1) break;
            if (f0) tseal_gpu_dec_lookup(a->exp_words, &d[0], dtab);
            if (f1) tseal_gpu_dec_lookup(a->exp_words, &d[1], dtab);
        }
        uint64_t e8[2] = {0, 0};
        const uint32_t m[2] = {tseal_gpu_dec_chunk(a->exp_words, &d[0], dtab, code_len, &e8[0]),
                               tseal_gpu_dec_chunk(a->exp_words, &d[1], dtab, code_len, &e8[1])};
        if (!m[0] && !m[1]) break;
        tseal_gemv_plane_chunk2(a, vec, nb, elem, col, m, e8, p0, p1);
        elem[0] += TSEAL_GEMV_CHUNK;
        elem[1] += TSEAL_GEMV_CHUNK;
        col += TSEAL_GEMV_CHUNK;
    }
    f[0] = d[0].err;
    f[1] = d[1].err;
}

/* Columns and element of a lane's segment: first column, symbols, first element. */
TSEAL_GEMV_HD uint32_t tseal_gemv_seg_cols(const tseal_gemv_args *a, const tseal_gemv_slot *s,
                                           uint64_t *col, uint64_t *elem) {
    const uint64_t k = a->plan.k, S = (uint64_t)1 << a->plan.seg_log2;
    *col = s->i << a->plan.seg_log2;
    *elem = s->row * k + *col;
    return (uint32_t)(k - *col < S ? k - *col : S);
}

TSEAL_GEMV_HD void tseal_gemv_nan(unsigned nb, float *p) {
    TSEAL_GEMV_UNROLL
    for (unsigned b = 0; b < nb; b++) p[b] = tseal_gemv_f32(0x7FC00000u);
}

/*
 * One lane's segment (order steps 1-2): p[0..nb) receives the partial sums (batch entries
 * >= a->batch are left at -0). HUFF needs the segment's start bit and length (the scan);
 * on a bad segment the flags are returned and p[] is set to NaN (the row's outputs are then
 * 0x7FC0). `kind` and `vec` are compile-time constants in the kernels.
 */
TSEAL_GEMV_HD uint32_t tseal_gemv_segment(const tseal_gemv_args *a, int kind, int vec, unsigned nb,
                                          int inline_chunks, const tseal_gemv_slot *s,
                                          uint64_t start, uint32_t seg_len, const uint32_t *dtab,
                                          const uint8_t *code_len, float *p) {
    uint64_t col = 0, elem = 0;
    const uint32_t nsyms = tseal_gemv_seg_cols(a, s, &col, &elem);
    TSEAL_GEMV_UNROLL
    for (unsigned b = 0; b < nb; b++) p[b] = -0.0f;
    uint32_t f = 0;
    if (kind == TSEAL_GEMV_KIND_HUFF) {
        f = tseal_gemv_seg_huff(a, vec, nb, inline_chunks, elem, col, nsyms, start, seg_len, dtab,
                                code_len, p);
    } else if (kind == TSEAL_GEMV_KIND_CONST) {
        const uint64_t e8 = (uint64_t)(a->const_exp & 0xFFu) * 0x0101010101010101ull;
        for (uint32_t c = 0; c < nsyms; c += TSEAL_GEMV_CHUNK) {
            const unsigned m = nsyms - c < TSEAL_GEMV_CHUNK ? nsyms - c : TSEAL_GEMV_CHUNK;
            tseal_gemv_plane_chunk(a, vec, nb, elem + c, col + c, m, e8, p);
        }
    } else {
        for (uint32_t c = 0; c < nsyms; c += TSEAL_GEMV_CHUNK) {
            const unsigned m = nsyms - c < TSEAL_GEMV_CHUNK ? nsyms - c : TSEAL_GEMV_CHUNK;
            tseal_gemv_bf16_chunk(a, vec, nb, elem + c, col + c, m, p);
        }
    }
    if (f) tseal_gemv_nan(nb, p);
    return f;
}

/*
 * A pair task's lane: the segments s[0] and s[1] (same columns, two rows; either may be
 * inactive), as tseal_gemv_segment each. HUFF decodes both streams in step and shares the `x`
 * chunks; the other kinds (no decoding to overlap) run the two segments one after the other.
 */
TSEAL_GEMV_HD void tseal_gemv_segment2(const tseal_gemv_args *a, int kind, int vec, unsigned nb,
                                       const tseal_gemv_slot s[2], const uint64_t start[2],
                                       const uint32_t len[2], const uint32_t *dtab,
                                       const uint8_t *code_len, float *p0, float *p1,
                                       uint32_t f[2]) {
    TSEAL_GEMV_UNROLL
    for (unsigned b = 0; b < nb; b++) p0[b] = p1[b] = -0.0f;
    if (kind != TSEAL_GEMV_KIND_HUFF) {
        f[0] = f[1] = 0;
        if (s[0].active) f[0] = tseal_gemv_segment(a, kind, vec, nb, 0, &s[0], 0, 0, 0, 0, p0);
        if (s[1].active) f[1] = tseal_gemv_segment(a, kind, vec, nb, 0, &s[1], 0, 0, 0, 0, p1);
        return;
    }
    uint64_t col = 0, elem[2] = {0, 0}, col1 = 0;
    const int act[2] = {s[0].active, s[1].active};
    const uint32_t nsyms = tseal_gemv_seg_cols(a, act[0] ? &s[0] : &s[1], &col, &elem[0]);
    if (act[1]) tseal_gemv_seg_cols(a, &s[1], &col1, &elem[1]);
    tseal_gemv_seg_huff2(a, vec, nb, elem, col, nsyms, start, len, act, dtab, code_len, p0, p1, f);
    if (f[0]) tseal_gemv_nan(nb, p0);
    if (f[1]) tseal_gemv_nan(nb, p1);
}

/* ---- reductions (order step 3) ----------------------------------------------------------------
 */

/* Tree step of width h inside a task: slot `rel` adds slot rel + h (from lane + h) when it is
 * the left child and the right child holds a segment (else the right child is -0). */
TSEAL_GEMV_HD int tseal_gemv_tree_take(uint64_t rel, uint32_t h, uint64_t lim) {
    return (rel & (2 * (uint64_t)h - 1)) == 0 && rel + h < lim;
}

/*
 * Pairwise sum of a sequence of subtree values arriving left to right (the tiles of a piece,
 * the pieces of a row): st holds one complete subtree per level (nb floats each); pushing
 * value number idx merges equal-sized neighbours like a binary counter. v[] is clobbered.
 */
TSEAL_GEMV_HD void tseal_gemv_stack_push(float *st, unsigned nb, uint64_t idx, float *v) {
    unsigned lvl = 0;
    while (idx & 1) {
        for (unsigned b = 0; b < nb; b++) v[b] = tseal_gemv_add(st[lvl * nb + b], v[b]);
        idx >>= 1;
        lvl++;
    }
    for (unsigned b = 0; b < nb; b++) st[lvl * nb + b] = v[b];
}

/* The tree over a power-of-two number of slots >= count after `count` (>= 1) pushes: the
 * pending subtrees from the right (smallest) to the left, padding being the identity. */
TSEAL_GEMV_HD void tseal_gemv_stack_fold(const float *st, unsigned nb, uint64_t count, float *out) {
    int have = 0;
    for (unsigned lvl = 0; count; lvl++, count >>= 1) {
        if (!(count & 1)) continue;
        for (unsigned b = 0; b < nb; b++)
            out[b] = have ? tseal_gemv_add(st[lvl * nb + b], out[b]) : st[lvl * nb + b];
        have = 1;
    }
}

/* ---- the kernels ------------------------------------------------------------------------------
 */

#ifdef __CUDACC__

/* The plan a launch of batch `batch` on tensor t uses on a device of `sms` SMs (for display). */
void tseal_gemv_plan_for(const tseal_gpu_tensor *t, unsigned batch, int sms, tseal_gemv_plan *pl);

#define TSEAL_GEMV_FULL_MASK 0xFFFFFFFFu

/* Start bit and length of segment j of the run j0 .. j0 + count - 1 (count <= 32). All 32
 * lanes call it with the same j0 and count; lanes without a segment of the run pass
 * active = false (see tseal_gemv_scan_*). */
__device__ __forceinline__ void tseal_gemv_warp_starts(const tseal_gemv_args *a, uint64_t j0,
                                                       uint32_t count, uint64_t j, bool active,
                                                       unsigned lane, uint64_t *start,
                                                       uint32_t *len) {
    const int two = tseal_gemv_scan_two(j0, count); /* warp-uniform */
    const uint32_t len_lo = tseal_gemv_scan_len(a, j0, lane, 0);
    const uint32_t len_hi = two ? tseal_gemv_scan_len(a, j0, lane, 1) : 0u;
    uint32_t inc_lo = len_lo, inc_hi = len_hi;
#pragma unroll
    for (unsigned d = 1; d < 32; d <<= 1) {
        const uint32_t v = __shfl_up_sync(TSEAL_GEMV_FULL_MASK, inc_lo, d);
        if (lane >= d) inc_lo += v;
        if (two) {
            const uint32_t u = __shfl_up_sync(TSEAL_GEMV_FULL_MASK, inc_hi, d);
            if (lane >= d) inc_hi += u;
        }
    }
    const unsigned src = active ? tseal_gemv_scan_src(j0, j) : lane;
    const uint32_t el = __shfl_sync(TSEAL_GEMV_FULL_MASK, inc_lo - len_lo, src);
    const uint32_t ll = __shfl_sync(TSEAL_GEMV_FULL_MASK, len_lo, src);
    uint32_t eh = 0, lh = 0;
    if (two) {
        eh = __shfl_sync(TSEAL_GEMV_FULL_MASK, inc_hi - len_hi, src);
        lh = __shfl_sync(TSEAL_GEMV_FULL_MASK, len_hi, src);
    }
    if (active) tseal_gemv_scan_pick(a, j0, j, el, ll, eh, lh, start, len);
}

/* The segments of this lane, one per row group of the task (inactive ones: -0), with error
 * reporting; HUFF: start and len from the warp scans. */
template <int KIND, int NB, bool VEC, int PAIR>
__device__ __forceinline__ void
tseal_gemv_warp_segments(const tseal_gemv_args *a, const tseal_gemv_slot s[PAIR],
                         const uint64_t start[PAIR], const uint32_t len[PAIR], const uint32_t *dtab,
                         const uint8_t *code_len, float p[PAIR][NB]) {
    uint32_t f[2] = {0, 0};
    if constexpr (PAIR == 1) {
#pragma unroll
        for (int b = 0; b < NB; b++) p[0][b] = -0.0f;
        if (s[0].active)
            f[0] = tseal_gemv_segment(a, KIND, VEC, NB, TSEAL_GEMV_INLINE_CHUNKS, &s[0], start[0],
                                      len[0], dtab, code_len, p[0]);
    } else {
        tseal_gemv_segment2(a, KIND, VEC, NB, s, start, len, dtab, code_len, p[0], p[1], f);
    }
#pragma unroll
    for (int h = 0; h < PAIR; h++)
        if (f[h]) tseal_gemv_flag(a->err, s[h].row * a->plan.segs_per_row + s[h].i, f[h]);
}

/* Pairwise tree over the task's slots (widths 1, 2, 4, ... < hmax); slot 0 ends with it. */
template <int NB>
__device__ __forceinline__ void tseal_gemv_warp_tree(const tseal_gemv_slot *s, uint32_t hmax,
                                                     unsigned batch, float p[NB]) {
    for (uint32_t h = 1; h < hmax; h <<= 1) {
        const bool take = s->active && tseal_gemv_tree_take(s->rel, h, s->lim);
#pragma unroll
        for (int b = 0; b < NB; b++) {
            if ((unsigned)b >= batch) break;
            const float o = __shfl_down_sync(TSEAL_GEMV_FULL_MASK, p[b], h);
            if (take) p[b] = tseal_gemv_add(p[b], o);
        }
    }
}

template <int KIND, int NB, bool VEC, int PAIR>
__device__ __forceinline__ void tseal_gemv_task_rows(const tseal_gemv_args *a, uint64_t task,
                                                     unsigned lane, const uint32_t *dtab,
                                                     const uint8_t *code_len) {
    tseal_gemv_slot s[PAIR];
    uint64_t start[PAIR];
    uint32_t len[PAIR];
#pragma unroll
    for (int h = 0; h < PAIR; h++) {
        tseal_gemv_rows_slot(&a->plan, task * PAIR + h, lane, &s[h]);
        start[h] = 0;
        len[h] = 0;
        if (KIND == TSEAL_GEMV_KIND_HUFF && s[h].count) /* count: warp-uniform */
            tseal_gemv_warp_starts(a, s[h].j0, s[h].count, s[h].row * a->plan.segs_per_row + s[h].i,
                                   s[h].active, lane, &start[h], &len[h]);
    }
    float p[PAIR][NB];
    tseal_gemv_warp_segments<KIND, NB, VEC, PAIR>(a, s, start, len, dtab, code_len, p);
#pragma unroll
    for (int h = 0; h < PAIR; h++) {
        tseal_gemv_warp_tree<NB>(&s[h], (uint32_t)a->plan.segs_per_row, a->batch, p[h]);
        if (s[h].active && s[h].i == 0) {
#pragma unroll
            for (int b = 0; b < NB; b++)
                if ((unsigned)b < a->batch)
                    a->y[(uint64_t)b * a->plan.n + s[h].row] = tseal_gemv_bf16_out(p[h][b]);
        }
    }
}

/* TILES: start bits of the lanes' segments in row group `group`, one warp scan per row (each
 * row's tile is its own run of consecutive segments). */
__device__ __forceinline__ void tseal_gemv_tile_starts(const tseal_gemv_args *a,
                                                       const tseal_gemv_slot *s, uint64_t group,
                                                       uint64_t tile, unsigned lane,
                                                       uint64_t *start, uint32_t *len) {
    const tseal_gemv_plan *pl = &a->plan;
    const uint64_t j = s->row * pl->segs_per_row + s->i;
    const uint32_t mine = lane >> pl->tile_log2;
    for (uint32_t r = 0; r < pl->rows_per_warp; r++) {
        const uint64_t row = group * pl->rows_per_warp + r;
        if (row >= pl->n) break; /* warp-uniform */
        const uint64_t j0 = row * pl->segs_per_row + (tile << pl->tile_log2);
        tseal_gemv_warp_starts(a, j0, s->count, j, s->active && mine == r, lane, start, len);
    }
}

/* TILES, tiles after a task's first: the row's segments continue where its previous tile ended
 * (`next`, the same in all lanes of the row), so a lane only needs the exclusive prefix of the
 * lengths in its row's tile (a scan over the row's C lanes). Equal to tseal_gemv_tile_starts
 * because the view checks that the lengths chain into the group bases. */
__device__ __forceinline__ void tseal_gemv_tile_next_starts(const tseal_gemv_args *a,
                                                            const tseal_gemv_slot *s, uint64_t next,
                                                            unsigned lane, uint64_t *start,
                                                            uint32_t *len) {
    const uint32_t C = 1u << a->plan.tile_log2, c = lane & (C - 1);
    const uint32_t own =
        s->active ? tseal_gemv_seg_bits(a, s->row * a->plan.segs_per_row + s->i) : 0u;
    uint32_t incl = own;
    for (uint32_t d = 1; d < C; d <<= 1) {
        const uint32_t v = __shfl_up_sync(TSEAL_GEMV_FULL_MASK, incl, d);
        if (c >= d) incl += v; /* lane - d is in the same row's lanes */
    }
    *start = next + (incl - own);
    *len = own;
}

/* TILES: the task's piece of the rows of its PAIR row groups; stacks[h R + r] is the stack of
 * row r of group h. */
template <int KIND, int NB, bool VEC, int PAIR>
__device__ __forceinline__ void
tseal_gemv_task_tiles(const tseal_gemv_args *a, uint64_t task, unsigned lane, const uint32_t *dtab,
                      const uint8_t *code_len, float (*stacks)[TSEAL_GEMV_STACK_LEVELS * NB]) {
    const tseal_gemv_plan *pl = &a->plan;
    const uint64_t pg = task / pl->pieces, piece = task - pg * pl->pieces;
    const uint64_t t0 = piece * pl->piece_tiles;
    const uint64_t t1 = t0 + pl->piece_tiles < pl->tiles ? t0 + pl->piece_tiles : pl->tiles;
    const uint32_t r = lane >> pl->tile_log2, R = pl->rows_per_warp;
    const bool first_lane = (lane & ((1u << pl->tile_log2) - 1)) == 0;
    uint64_t next[PAIR]; /* HUFF: start bit of each row's next tile */
#pragma unroll
    for (int h = 0; h < PAIR; h++) next[h] = 0;
    for (uint64_t t = t0; t < t1; t++) {
        tseal_gemv_slot s[PAIR];
        uint64_t start[PAIR];
        uint32_t len[PAIR];
#pragma unroll
        for (int h = 0; h < PAIR; h++) {
            const uint64_t group = pg * PAIR + h;
            tseal_gemv_tile_slot(pl, group, t, lane, &s[h]);
            start[h] = 0;
            len[h] = 0;
            if (KIND == TSEAL_GEMV_KIND_HUFF) {
                /* one warp scan per row for the first tile, a scan within the row after it */
                if (t == t0)
                    tseal_gemv_tile_starts(a, &s[h], group, t, lane, &start[h], &len[h]);
                else
                    tseal_gemv_tile_next_starts(a, &s[h], next[h], lane, &start[h], &len[h]);
                const unsigned last = (lane & ~((1u << pl->tile_log2) - 1)) + s[h].count - 1;
                next[h] = __shfl_sync(TSEAL_GEMV_FULL_MASK, start[h] + len[h], last);
            }
        }
        float p[PAIR][NB];
        tseal_gemv_warp_segments<KIND, NB, VEC, PAIR>(a, s, start, len, dtab, code_len, p);
#pragma unroll
        for (int h = 0; h < PAIR; h++) {
            tseal_gemv_warp_tree<NB>(&s[h], 1u << pl->tile_log2, a->batch, p[h]);
            /* the first lane of each row's tile holds the tile's sum and keeps the row's stack */
            if (first_lane && s[h].row < pl->n)
                tseal_gemv_stack_push(stacks[h * R + r], NB, t - t0, p[h]);
        }
    }
#pragma unroll
    for (int h = 0; h < PAIR; h++) {
        const uint64_t row = (pg * PAIR + h) * R + r;
        if (!first_lane || row >= pl->n) continue;
        float y[NB];
        tseal_gemv_stack_fold(stacks[h * R + r], NB, t1 - t0, y);
        if (pl->pieces == 1) {
#pragma unroll
            for (int b = 0; b < NB; b++)
                if ((unsigned)b < a->batch)
                    a->y[(uint64_t)b * pl->n + row] = tseal_gemv_bf16_out(y[b]);
        } else {
#pragma unroll
            for (int b = 0; b < NB; b++)
                if ((unsigned)b < a->batch)
                    a->pieces[(row * pl->pieces + piece) * a->batch + b] = y[b];
        }
    }
}

/*
 * The GEMV kernel: persistent blocks of TSEAL_GEMV_WARPS warps; every warp runs warp tasks
 * blockIdx.x * WARPS + warp, then + gridDim.x * WARPS, ... (no block-wide synchronisation
 * after the HUFF table copy). NB: compile-time batch bound (1, 2, 4, 8, 16). PAIR: rows per
 * lane (the plan's `pair`; 2 only for HUFF and NB <= 8, see TSEAL_GEMV_PAIR_NB_MAX). Batch 1
 * with one row per lane asks for 5 resident blocks (<= 51 registers; ptxas -v: 48, no spill)
 * so that 40 warps per SM hide the latency of the serial decode; left alone ptxas gave it 55.
 * Its byte-wise variant (!VEC: k % 8 != 0 or x unaligned, rare) asks for 4: at 48 registers
 * it spilled. Batch 2 asks for 4 (<= 64 registers; it needed 70 unbounded, i.e. 3 blocks).
 */
#define TSEAL_GEMV_MIN_BLOCKS(NB, VEC, PAIR)                                                       \
    ((PAIR) != 1 ? 1 : (NB) == 1 ? ((VEC) ? 5 : 4) : (NB) == 2 ? 4 : 1)
template <int KIND, int NB, bool VEC, int PAIR>
__global__ void __launch_bounds__(TSEAL_GEMV_THREADS, TSEAL_GEMV_MIN_BLOCKS(NB, VEC, PAIR))
    tseal_gemv_kernel(const __grid_constant__ tseal_gemv_args a) {
    __shared__ __align__(16) uint32_t s_dtab[KIND == TSEAL_GEMV_KIND_HUFF ? TSEAL_DTAB_SIZE : 4];
    __shared__ __align__(16) uint8_t s_len[KIND == TSEAL_GEMV_KIND_HUFF ? 256 : 16];
    __shared__ float s_stack[TSEAL_GEMV_WARPS][TSEAL_GEMV_TILE_ROWS_MAX * PAIR]
                            [TSEAL_GEMV_STACK_LEVELS * NB];

    if constexpr (KIND == TSEAL_GEMV_KIND_HUFF) {
        const uint4 *src = reinterpret_cast<const uint4 *>(a.dtab);
        uint4 *dst = reinterpret_cast<uint4 *>(s_dtab);
        for (unsigned i = threadIdx.x; i < TSEAL_DTAB_SIZE / 4; i += blockDim.x) dst[i] = src[i];
        if (threadIdx.x < 256 / 16)
            reinterpret_cast<uint4 *>(s_len)[threadIdx.x] =
                reinterpret_cast<const uint4 *>(a.code_len)[threadIdx.x];
        __syncthreads();
    }
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const uint64_t stride = (uint64_t)gridDim.x * TSEAL_GEMV_WARPS;
    for (uint64_t task = (uint64_t)blockIdx.x * TSEAL_GEMV_WARPS + warp; task < a.plan.n_tasks;
         task += stride) {
        if (a.plan.mode == TSEAL_GEMV_MODE_ROWS)
            tseal_gemv_task_rows<KIND, NB, VEC, PAIR>(&a, task, lane, s_dtab, s_len);
        else
            tseal_gemv_task_tiles<KIND, NB, VEC, PAIR>(&a, task, lane, s_dtab, s_len,
                                                       s_stack[warp]);
    }
}

/* Rows of more than one piece: one thread per (row, batch entry) sums the row's pieces with
 * the same pairwise tree. */
static __global__ void __launch_bounds__(TSEAL_GEMV_COMBINE_THREADS)
    tseal_gemv_combine_kernel(const __grid_constant__ tseal_gemv_args a) {
    const uint64_t total = a.plan.n * a.batch;
    float st[64];
    for (uint64_t idx = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (uint64_t)gridDim.x * blockDim.x) {
        const uint64_t row = idx / a.batch, b = idx - row * a.batch;
        const float *src = a.pieces + row * a.plan.pieces * a.batch + b;
        for (uint64_t pc = 0; pc < a.plan.pieces; pc++) {
            float v = src[pc * a.batch];
            tseal_gemv_stack_push(st, 1, pc, &v);
        }
        float r = 0.0f;
        tseal_gemv_stack_fold(st, 1, a.plan.pieces, &r);
        a.y[b * a.plan.n + row] = tseal_gemv_bf16_out(r);
    }
}

#endif /* __CUDACC__ */

#endif /* TSEAL_GEMV_CUH */
