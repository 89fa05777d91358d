/*
 * gemv.cu - host side of the GEMV kernels (gemv.cuh): argument checks, the work plan, launches,
 * error reporting; the fused GEMV on a device-resident coded tensor (tseal_gpu_gemv,
 * tseal_gpu_gemv_async) and the BF16 reference kernel on uncompressed weights
 * (tseal_gpu_gemv_ref). Both run the same kernel template (only the weight source differs),
 * so they share the reduction order by construction. Design: docs/GEMV.md.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "tseal.h"
#include "decode.cuh"
#include "gemv.cuh"
#include "cuda_check.h"
#include "gpu_tensor.cuh"

static_assert(sizeof(tseal_gemv_err) == sizeof(tseal_gpu_err), "error record layouts differ");
static_assert(offsetof(tseal_gemv_err, seg_inv) == offsetof(tseal_gpu_err, seg_inv),
              "error record layouts differ");
static_assert(TSEAL_GEMV_ERR_OVERRUN == TSEAL_GPU_ERR_OVERRUN &&
                  TSEAL_GEMV_ERR_SHORT == TSEAL_GPU_ERR_SHORT &&
                  TSEAL_GEMV_ERR_BOUNDS == TSEAL_GPU_ERR_BOUNDS &&
                  TSEAL_GEMV_ERR_TABLE == TSEAL_GPU_ERR_TABLE,
              "error flags differ");
static_assert(TSEAL_GEMV_CHUNK == TSEAL_GPU_DEC_CHUNK, "the decoder's chunks are the order's");
static_assert(TSEAL_GEMV_PIECE_TILES_MAX <= (1u << (TSEAL_GEMV_STACK_LEVELS - 1)),
              "stack too shallow for a piece");
static_assert(TSEAL_GEMV_FLAT_SEG_LOG2 >= TSEAL_SEG_LOG2_MIN &&
                  TSEAL_GEMV_FLAT_SEG_LOG2 <= TSEAL_SEG_LOG2_MAX,
              "flat segment size out of range");

/* ---- kernels, occupancy ---------------------------------------------------------------------- */

typedef void (*gemv_fn)(tseal_gemv_args);

#define NB_COUNT 5 /* compile-time batch bounds 1, 2, 4, 8, 16 */

static unsigned nb_index(unsigned batch) {
    return batch <= 1 ? 0 : batch <= 2 ? 1 : batch <= 4 ? 2 : batch <= 8 ? 3 : 4;
}

template <int KIND, bool VEC, int PAIR> static gemv_fn pick_nb(unsigned nbi) {
    switch (nbi) {
    case 0:
        return tseal_gemv_kernel<KIND, 1, VEC, PAIR>;
    case 1:
        return tseal_gemv_kernel<KIND, 2, VEC, PAIR>;
    case 2:
        return tseal_gemv_kernel<KIND, 4, VEC, PAIR>;
    default:
        return tseal_gemv_kernel<KIND, 8, VEC, PAIR>;
    }
}

template <int KIND, bool VEC> static gemv_fn pick_nb(unsigned nbi) {
    return nbi < NB_COUNT - 1 ? pick_nb<KIND, VEC, 1>(nbi) : tseal_gemv_kernel<KIND, 16, VEC, 1>;
}

static_assert(TSEAL_GEMV_PAIR_NB_MAX == 8, "pick() instantiates pair kernels for NB 1..8");

/* pair == 2: HUFF only, batch bound <= TSEAL_GEMV_PAIR_NB_MAX (the plan says). */
static gemv_fn pick(int kind, unsigned nbi, bool vec, unsigned pair) {
    if (pair == 2)
        return vec ? pick_nb<TSEAL_GEMV_KIND_HUFF, true, 2>(nbi)
                   : pick_nb<TSEAL_GEMV_KIND_HUFF, false, 2>(nbi);
    switch (kind) {
    case TSEAL_GEMV_KIND_HUFF:
        return vec ? pick_nb<TSEAL_GEMV_KIND_HUFF, true>(nbi)
                   : pick_nb<TSEAL_GEMV_KIND_HUFF, false>(nbi);
    case TSEAL_GEMV_KIND_CONST:
        return vec ? pick_nb<TSEAL_GEMV_KIND_CONST, true>(nbi)
                   : pick_nb<TSEAL_GEMV_KIND_CONST, false>(nbi);
    default:
        return vec ? pick_nb<TSEAL_GEMV_KIND_BF16, true>(nbi)
                   : pick_nb<TSEAL_GEMV_KIND_BF16, false>(nbi);
    }
}

/* Per device: SM count and resident blocks of each kernel, computed once (0 = not yet; racing
 * threads compute the same value). */
#define MAX_DEVICES 64
static int g_sms[MAX_DEVICES];
static int g_blocks[MAX_DEVICES][3][NB_COUNT][2][2];

static int device_sms(int device, int *sms, const char *what) {
    const bool cache = device >= 0 && device < MAX_DEVICES;
    int s = cache ? __atomic_load_n(&g_sms[device], __ATOMIC_RELAXED) : 0;
    if (s <= 0) {
        CUDA_TRY(cudaDeviceGetAttribute(&s, cudaDevAttrMultiProcessorCount, device), what);
        if (s < 1) s = 1;
        if (cache) __atomic_store_n(&g_sms[device], s, __ATOMIC_RELAXED);
    }
    *sms = s;
    return 0;
}

static int kernel_blocks(int device, int kind, unsigned nbi, bool vec, unsigned pair, gemv_fn fn,
                         int *blocks_per_sm, const char *what) {
    const bool cache = device >= 0 && device < MAX_DEVICES;
    int *slot = cache ? &g_blocks[device][kind][nbi][vec ? 1 : 0][pair == 2 ? 1 : 0] : NULL;
    int b = slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : 0;
    if (b <= 0) {
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, fn, TSEAL_GEMV_THREADS, 0),
                 what);
        if (b < 1) b = 1;
        if (slot) __atomic_store_n(slot, b, __ATOMIC_RELAXED);
    }
    *blocks_per_sm = b;
    return 0;
}

/* tseal_gpu_gemv_tune's settings; 0: automatic */
static unsigned g_tile_log2, g_pair;

extern "C" void tseal_gpu_gemv_tune(unsigned tile_log2, unsigned rows_per_lane) {
    if (tile_log2 && (tile_log2 < TSEAL_GEMV_TILE_LOG2_MIN || tile_log2 > TSEAL_GEMV_TILE_LOG2_MAX))
        tile_log2 = 0;
    __atomic_store_n(&g_tile_log2, tile_log2, __ATOMIC_RELAXED);
    __atomic_store_n(&g_pair, rows_per_lane <= 2 ? rows_per_lane : 0u, __ATOMIC_RELAXED);
}

/*
 * Rows per lane to ask the plan for. Two rows per lane halve the `x` loads and conversions per
 * weight and give each lane two independent decode chains, for more registers. By default they
 * are asked for at batch 3..8, where the `x` work per weight is large (docs/GEMV.md, "Two rows
 * per lane"); batch 1-2 keep one row per lane and 5 resident blocks.
 */
static unsigned pair_wanted(int kind, unsigned batch) {
    const unsigned nb = (unsigned)tseal_gemv_pow2_ceil(batch);
    if (kind != TSEAL_GEMV_KIND_HUFF || nb > TSEAL_GEMV_PAIR_NB_MAX) return 1;
    const unsigned set = __atomic_load_n(&g_pair, __ATOMIC_RELAXED);
    if (set) return set;
    return nb >= 4 ? TSEAL_GEMV_PAIR_IF_FILLED : 1;
}

static void plan_make(uint64_t n, uint64_t k, unsigned seg_log2, int kind, unsigned batch, int sms,
                      tseal_gemv_plan *pl) {
    tseal_gemv_plan_make_tile(n, k, seg_log2, (uint64_t)sms * TSEAL_GEMV_TASKS_PER_SM,
                              __atomic_load_n(&g_tile_log2, __ATOMIC_RELAXED),
                              pair_wanted(kind, batch), pl);
}

/*
 * Plan and enqueue one GEMV: `a` has every field but the plan and `pieces`. Rows split in
 * pieces get a stream-ordered scratch buffer and the combine kernel.
 */
static int launch(tseal_gemv_args *a, int kind, int device, cudaStream_t s, const char *what) {
    const uint64_t n = a->plan.n, k = a->plan.k;
    const unsigned seg_log2 = a->plan.seg_log2;
    if (n == 0) return 0;
    if (k == 0) {
        CUDA_TRY(cudaMemsetAsync(a->y, 0, (size_t)(n * a->batch * 2), s), what);
        return 0;
    }
    /* 16-byte loads: x rows and weight chunks aligned (the plane needs 8, BF16 weights 16). */
    const bool vec = k % 8 == 0 && ((uintptr_t)a->x & 15) == 0 &&
                     (kind == TSEAL_GEMV_KIND_BF16 ? ((uintptr_t)a->w & 15) == 0
                                                   : ((uintptr_t)a->plane & 7) == 0);
    const unsigned nbi = nb_index(a->batch);
    int sms = 0, per_sm = 0;
    int rc = device_sms(device, &sms, what);
    if (rc) return rc;
    plan_make(n, k, seg_log2, kind, a->batch, sms, &a->plan);
    gemv_fn fn = pick(kind, nbi, vec, a->plan.pair);
    rc = kernel_blocks(device, kind, nbi, vec, a->plan.pair, fn, &per_sm, what);
    if (rc) return rc;

    a->pieces = NULL;
    if (a->plan.pieces > 1) {
        const size_t bytes = (size_t)(n * a->plan.pieces * a->batch * sizeof(float));
        CUDA_TRY(cudaMallocAsync((void **)&a->pieces, bytes, s), what);
    }
    const uint64_t blocks = (a->plan.n_tasks + TSEAL_GEMV_WARPS - 1) / TSEAL_GEMV_WARPS;
    const uint64_t cap = (uint64_t)sms * (uint64_t)per_sm;
    const unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
    fn<<<grid, TSEAL_GEMV_THREADS, 0, s>>>(*a);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && a->plan.pieces > 1) {
        const uint64_t work = n * a->batch;
        uint64_t cb = (work + TSEAL_GEMV_COMBINE_THREADS - 1) / TSEAL_GEMV_COMBINE_THREADS;
        if (cb > cap * 4) cb = cap * 4;
        tseal_gemv_combine_kernel<<<(unsigned)cb, TSEAL_GEMV_COMBINE_THREADS, 0, s>>>(*a);
        e = cudaGetLastError();
        if (e != cudaSuccess) rc = cuda_fail(e, "tseal_gemv_combine_kernel launch", what);
    } else if (e != cudaSuccess) {
        rc = cuda_fail(e, "tseal_gemv_kernel launch", what);
    }
    if (a->pieces) {
        cudaError_t f = cudaFreeAsync(a->pieces, s);
        if (f != cudaSuccess && rc == 0) rc = cuda_fail(f, "cudaFreeAsync", what);
    }
    return rc;
}

/* ---- argument checks ------------------------------------------------------------------------- */

static bool overlap(const void *a, uint64_t alen, const void *b, uint64_t blen) {
    const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return alen && blen && x < y + blen && y < x + alen;
}

/* x: batch x k, y: batch x n (BF16): non-NULL when not empty, 2-byte aligned, disjoint. */
static int check_xy(const void *x, const void *y, uint64_t n, uint64_t k, unsigned batch,
                    const char *what) {
    if (batch < 1 || batch > TSEAL_GEMV_MAX_BATCH)
        return tseal_err(TSEAL_E_INVAL, "%s: batch %u out of range 1..%u", what, batch,
                         TSEAL_GEMV_MAX_BATCH);
    uint64_t xb = 0, yb = 0;
    if (__builtin_mul_overflow(k, (uint64_t)batch * 2, &xb) ||
        __builtin_mul_overflow(n, (uint64_t)batch * 2, &yb))
        return tseal_err(TSEAL_E_INVAL, "%s: shape too large", what);
    if (n == 0) return 0;
    if (!y) return tseal_err(TSEAL_E_INVAL, "%s: y is NULL", what);
    if (!x && k) return tseal_err(TSEAL_E_INVAL, "%s: x is NULL", what);
    if (((uintptr_t)x & 1) || ((uintptr_t)y & 1))
        return tseal_err(TSEAL_E_INVAL, "%s: x %p or y %p is not 2-byte aligned", what, x, y);
    if (overlap(x, xb, y, yb)) return tseal_err(TSEAL_E_INVAL, "%s: x and y overlap", what);
    return 0;
}

/* Device memory of `device` (or managed memory): for the synchronous, checked call. */
static int check_device_ptr(const void *p, uint64_t bytes, int device, const char *name,
                            const char *what) {
    if (!p || !bytes) return 0;
    cudaPointerAttributes at;
    cudaError_t e = cudaPointerGetAttributes(&at, p);
    if (e != cudaSuccess) return cuda_fail(e, "cudaPointerGetAttributes", what);
    if (at.type == cudaMemoryTypeManaged) return 0;
    if (at.type != cudaMemoryTypeDevice || at.device != device)
        return tseal_err(TSEAL_E_INVAL, "%s: %s (%p) is not device memory of device %d", what, name,
                         p, device);
    return 0;
}

/* Fill the weight part of the kernel arguments from a tensor. */
static int tensor_args(const tseal_gpu_tensor *t, tseal_gemv_args *a, int *kind, const char *what) {
    if (!t) return tseal_err(TSEAL_E_INVAL, "%s: tensor is NULL", what);
    const tseal_ct_view *v = &t->geo;
    memset(a, 0, sizeof *a);
    switch (v->mode) {
    case TSEAL_CT_MODE_HUFF:
        *kind = TSEAL_GEMV_KIND_HUFF;
        a->dtab = t->huff.dtab;
        a->code_len = t->huff.code_len;
        a->group_base = t->huff.group_base;
        a->seg_lens = t->huff.seg_lens;
        a->exp_words = t->huff.exp_words;
        a->plane = t->huff.plane;
        a->n_segs = t->huff.n_segs;
        a->exp_bits = t->huff.exp_bits;
        a->seg_bits_min = t->huff.seg_bits_min;
        a->len_width = t->huff.len_width;
        a->plan.seg_log2 = t->huff.seg_log2;
        break;
    case TSEAL_CT_MODE_CONST:
        *kind = TSEAL_GEMV_KIND_CONST;
        a->plane = t->plane;
        a->const_exp = v->const_exp;
        a->plan.seg_log2 = TSEAL_GEMV_FLAT_SEG_LOG2;
        break;
    case TSEAL_CT_MODE_RAW:
        if (v->elem_size != 2)
            return tseal_err(TSEAL_E_UNSUPPORTED,
                             "%s: tensor of %u-byte elements (the GEMV needs BF16)", what,
                             v->elem_size);
        *kind = TSEAL_GEMV_KIND_BF16;
        a->w = (const uint16_t *)t->raw;
        a->plan.seg_log2 = TSEAL_GEMV_FLAT_SEG_LOG2;
        break;
    default:
        return tseal_err(TSEAL_E_INVAL, "%s: tensor of unknown mode %u", what, v->mode);
    }
    a->plan.n = v->rows;
    a->plan.k = v->cols;
    return 0;
}

/* ---- public entry points --------------------------------------------------------------------- */

extern "C" unsigned tseal_gpu_gemv_seg_log2(const tseal_gpu_tensor *t) {
    if (!t) return 0;
    return t->geo.mode == TSEAL_CT_MODE_HUFF ? t->geo.seg_log2 : TSEAL_GEMV_FLAT_SEG_LOG2;
}

void tseal_gemv_plan_for(const tseal_gpu_tensor *t, unsigned batch, int sms, tseal_gemv_plan *pl) {
    tseal_gemv_args a;
    int kind = 0;
    if (tensor_args(t, &a, &kind, "tseal_gemv_plan_for")) { /* no GEMV on this tensor */
        memset(pl, 0, sizeof *pl);
        return;
    }
    plan_make(a.plan.n, a.plan.k, a.plan.seg_log2, kind, batch, sms, pl);
}

extern "C" int tseal_gpu_gemv_async(const tseal_gpu_tensor *t, const void *x, void *y,
                                    unsigned batch, void *stream) {
    static const char *what = "tseal_gpu_gemv_async";
    tseal_gemv_args a;
    int kind = 0;
    int rc = tensor_args(t, &a, &kind, what);
    if (rc) return rc;
    rc = check_xy(x, y, a.plan.n, a.plan.k, batch, what);
    if (rc) return rc;
    a.x = (const uint16_t *)x;
    a.y = (uint16_t *)y;
    a.batch = batch;
    a.err = NULL; /* no report: bad segments give NaN rows */
    int prev = 0;
    rc = dev_enter(t->device, &prev, what);
    if (rc) return rc;
    rc = launch(&a, kind, t->device, (cudaStream_t)stream, what);
    dev_leave(t->device, prev);
    return rc;
}

static const char *err_text(unsigned flags) {
    if (flags & TSEAL_GEMV_ERR_BOUNDS) return "segment lies outside the exponent stream";
    if (flags & TSEAL_GEMV_ERR_TABLE) return "invalid decode table";
    if (flags & TSEAL_GEMV_ERR_OVERRUN) return "codes run past the segment's end";
    return "bits left over after the segment's last code";
}

/* Under the tensor's lock: launch with the tensor's error record, wait, report. */
static int gemv_checked(const tseal_gpu_tensor *t, tseal_gemv_args *a, int kind, cudaStream_t s,
                        const char *what) {
    tseal_gemv_err herr;
    memset(&herr, 0, sizeof herr);
    if (kind == TSEAL_GEMV_KIND_HUFF) {
        if (!t->huff.err)
            return tseal_err(TSEAL_E_INTERNAL, "%s: tensor without an error record", what);
        a->err = reinterpret_cast<tseal_gemv_err *>(t->huff.err);
        CUDA_TRY(cudaMemsetAsync(a->err, 0, sizeof *a->err, s), what);
    }
    int rc = launch(a, kind, t->device, s, what);
    if (rc) {
        (void)cudaStreamSynchronize(s); /* the error record stays in use until then */
        (void)cudaGetLastError();
        return rc;
    }
    if (a->err)
        CUDA_TRY(cudaMemcpyAsync(&herr, a->err, sizeof herr, cudaMemcpyDeviceToHost, s), what);
    CUDA_TRY(cudaStreamSynchronize(s), what);
    if (herr.flags) {
        const tseal_ct_view *v = &t->geo;
        const uint64_t j = ~(uint64_t)herr.seg_inv;
        const uint64_t row = j / v->segs_per_row, c0 = (j % v->segs_per_row) << v->seg_log2;
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: coded tensor: %u of %llu segments do not decode exactly; first: "
                         "segment %llu (row %llu, column %llu): %s",
                         what, herr.n_bad, (unsigned long long)v->n_segs, (unsigned long long)j,
                         (unsigned long long)row, (unsigned long long)c0, err_text(herr.flags));
    }
    return 0;
}

extern "C" int tseal_gpu_gemv(const tseal_gpu_tensor *t, const void *x, void *y, unsigned batch,
                              void *stream) {
    static const char *what = "tseal_gpu_gemv";
    tseal_gemv_args a;
    int kind = 0;
    int rc = tensor_args(t, &a, &kind, what);
    if (rc) return rc;
    rc = check_xy(x, y, a.plan.n, a.plan.k, batch, what);
    if (rc) return rc;
    a.x = (const uint16_t *)x;
    a.y = (uint16_t *)y;
    a.batch = batch;

    tseal_gpu_tensor *mt = (tseal_gpu_tensor *)t; /* the lock is the only mutable part */
    if (pthread_mutex_lock(&mt->lock) != 0)
        return tseal_err(TSEAL_E_INTERNAL, "%s: pthread_mutex_lock failed", what);
    int prev = 0;
    rc = dev_enter(t->device, &prev, what);
    if (rc == 0) {
        if (a.plan.n) rc = check_device_ptr(y, a.plan.n * batch * 2, t->device, "y", what);
        if (rc == 0 && a.plan.n)
            rc = check_device_ptr(x, a.plan.k * batch * 2, t->device, "x", what);
        if (rc == 0) rc = gemv_checked(t, &a, kind, (cudaStream_t)stream, what);
        dev_leave(t->device, prev);
    }
    pthread_mutex_unlock(&mt->lock);
    return rc;
}

extern "C" int tseal_gpu_gemv_ref(const void *w_bf16, uint64_t n, uint64_t k, unsigned seg_log2,
                                  const void *x, void *y, unsigned batch, void *stream) {
    static const char *what = "tseal_gpu_gemv_ref";
    if (seg_log2 < TSEAL_SEG_LOG2_MIN || seg_log2 > TSEAL_SEG_LOG2_MAX)
        return tseal_err(TSEAL_E_INVAL, "%s: seg_log2 %u out of range %u..%u", what, seg_log2,
                         TSEAL_SEG_LOG2_MIN, TSEAL_SEG_LOG2_MAX);
    uint64_t nk = 0;
    if (__builtin_mul_overflow(n, k, &nk) || nk > SIZE_MAX / 2)
        return tseal_err(TSEAL_E_INVAL, "%s: %llu x %llu is too large", what, (unsigned long long)n,
                         (unsigned long long)k);
    int rc = check_xy(x, y, n, k, batch, what);
    if (rc) return rc;
    if (nk && !w_bf16) return tseal_err(TSEAL_E_INVAL, "%s: weights are NULL", what);
    if ((uintptr_t)w_bf16 & 1)
        return tseal_err(TSEAL_E_INVAL, "%s: weights %p are not 2-byte aligned", what, w_bf16);
    if (overlap(w_bf16, nk * 2, y, n * batch * 2))
        return tseal_err(TSEAL_E_INVAL, "%s: weights and y overlap", what);
    if (tseal_gpu_device_count() <= 0) return TSEAL_E_NO_GPU; /* message set */
    int device = 0;
    CUDA_TRY(cudaGetDevice(&device), what);
    tseal_gemv_args a;
    memset(&a, 0, sizeof a);
    a.w = (const uint16_t *)w_bf16;
    a.x = (const uint16_t *)x;
    a.y = (uint16_t *)y;
    a.batch = batch;
    a.plan.n = n;
    a.plan.k = k;
    a.plan.seg_log2 = seg_log2;
    return launch(&a, TSEAL_GEMV_KIND_BF16, device, (cudaStream_t)stream, what);
}
