/*
 * decode.cu - host side of the GPU decoder: upload a coded tensor to a device, launch the decode
 * kernels (decode.cuh), report corrupt streams and CUDA failures through tseal_err. Also the
 * plain device-memory helpers of tseal.h for C callers built without the CUDA headers.
 *
 * Device copy of a coded tensor: one allocation, every section 16-byte aligned and followed by
 * at least TSEAL_GPU_SECTION_PAD zero bytes (the whole allocation is zeroed first):
 *
 *   HUFF : error record (256 B) | multi-symbol table (16 KiB) | code lengths (256 B) |
 *          group bases | segment length fields | exponent stream | plane
 *   CONST: plane
 *   RAW  : raw element bytes
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "tseal.h"
#include "../codec/huffman.h"
#include "decode.cuh"
#include "gpu_internal.h"
#include "cuda_check.h"
#include "gpu_tensor.cuh"

static bool add_ovf(uint64_t a, uint64_t b, uint64_t *r) {
    return __builtin_add_overflow(a, b, r);
}

/* ---- upload ---------------------------------------------------------------------------------- */

/* The invariants the kernels' memory safety relies on (tseal_codec_view checks them and more). */
static int check_view(const tseal_ct_view *v) {
#define BAD(...)                                                                                   \
    tseal_err(TSEAL_E_INVAL, "tseal_gpu_tensor_upload: inconsistent view: " __VA_ARGS__)
    uint64_t n = 0;
    if (__builtin_mul_overflow(v->rows, v->cols, &n) || n != v->n_elems)
        return BAD("rows %llu x cols %llu != n_elems %llu", (unsigned long long)v->rows,
                   (unsigned long long)v->cols, (unsigned long long)v->n_elems);
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
        if (v->elem_size < 1 || v->elem_size > 8) return BAD("elem_size %u", v->elem_size);
        if (v->n_elems && !v->raw) return BAD("no raw section");
        return 0;
    case TSEAL_CT_MODE_CONST:
        if (v->n_elems && !v->plane) return BAD("no plane");
        return 0;
    case TSEAL_CT_MODE_HUFF:
        break;
    default:
        return BAD("mode %u", v->mode);
    }
    if (v->seg_log2 < TSEAL_SEG_LOG2_MIN || v->seg_log2 > TSEAL_SEG_LOG2_MAX)
        return BAD("seg_log2 %u", v->seg_log2);
    if (v->len_width > TSEAL_SEG_LEN_WIDTH_MAX) return BAD("len_width %u", v->len_width);
    if (v->seg_bits_min > ((uint32_t)TSEAL_HUFF_MAX_BITS << v->seg_log2))
        return BAD("seg_bits_min %u", v->seg_bits_min);
    const uint64_t spr = (v->cols >> v->seg_log2) + ((v->cols & ((1ull << v->seg_log2) - 1)) != 0);
    uint64_t segs = 0;
    if (v->segs_per_row != spr || __builtin_mul_overflow(v->rows, spr, &segs) || segs != v->n_segs)
        return BAD("segs_per_row %llu, n_segs %llu", (unsigned long long)v->segs_per_row,
                   (unsigned long long)v->n_segs);
    if (v->n_groups != (v->n_segs + TSEAL_SEGS_PER_GROUP - 1) / TSEAL_SEGS_PER_GROUP)
        return BAD("n_groups %llu", (unsigned long long)v->n_groups);
    if (v->exp_bytes < v->exp_bits / 8 + ((v->exp_bits & 7) != 0))
        return BAD("exp_bytes %llu < exp_bits %llu", (unsigned long long)v->exp_bytes,
                   (unsigned long long)v->exp_bits);
    if (v->n_elems && (!v->group_base || !v->exp_stream || !v->plane || !v->seg_lens))
        return BAD("missing section");
    return 0;
#undef BAD
}

/* Section sizes in the device allocation (each padded to 16, plus the zero pad). */
static uint64_t dev_section(uint64_t bytes) {
    return tseal_align16(bytes) + TSEAL_GPU_SECTION_PAD;
}

/* The HUFF kernel's arguments: error record, table and code lengths at `mem` (+ offsets), the
 * sections where they live on the device, and the view's geometry. */
static void set_huff_args(tseal_gpu_huff_args *a, const tseal_ct_view *v, uint8_t *mem,
                          uint64_t off_dtab, uint64_t off_len, const uint8_t *group_base,
                          const uint8_t *seg_lens, const uint8_t *exp, const uint8_t *plane) {
    a->err = (tseal_gpu_err *)mem;
    a->dtab = (const uint32_t *)(mem + off_dtab);
    a->code_len = mem + off_len;
    a->group_base = (const uint64_t *)group_base;
    a->seg_lens = (const uint32_t *)seg_lens;
    a->exp_words = (const uint32_t *)exp;
    a->plane = plane;
    a->n_segs = v->n_segs;
    a->segs_per_row = v->segs_per_row;
    a->cols = v->cols;
    a->exp_bits = v->exp_bits;
    a->seg_bits_min = v->seg_bits_min;
    a->len_width = v->len_width;
    a->seg_log2 = v->seg_log2;
}

/* Resident blocks of the tensor's decode kernels on its device (the current one). */
static int compute_grid_cap(tseal_gpu_tensor *t, const char *what) {
    const bool huff = t->geo.mode == TSEAL_CT_MODE_HUFF;
    int sms = 0, per_sm = 0, per_sm_vec = 0, per_sm_staged = 0;
    CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, t->device), what);
    if (huff) {
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                     &per_sm, tseal_gpu_huff_kernel<false, false>, TSEAL_GPU_HUFF_THREADS, 0),
                 what);
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                     &per_sm_vec, tseal_gpu_huff_kernel<true, false>, TSEAL_GPU_HUFF_THREADS, 0),
                 what);
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                     &per_sm_staged, tseal_gpu_huff_kernel<true, true>, TSEAL_GPU_HUFF_THREADS, 0),
                 what);
    } else {
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                     &per_sm, tseal_gpu_const_kernel<false>, TSEAL_GPU_CONST_THREADS, 0),
                 what);
        CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                     &per_sm_vec, tseal_gpu_const_kernel<true>, TSEAL_GPU_CONST_THREADS, 0),
                 what);
    }
    int m = per_sm < per_sm_vec ? per_sm : per_sm_vec;
    if (m < 1) m = 1;
    if (per_sm_staged < 1) per_sm_staged = 1;
    if (sms < 1) sms = 1;
    t->grid_cap = (unsigned)sms * (unsigned)m;
    t->grid_cap_staged = (unsigned)sms * (unsigned)per_sm_staged;
    return 0;
}

/* tseal_gpu_decode_tune's setting: 0 automatic, 1 direct stores, 2 staged where possible. */
static unsigned g_stores;

extern "C" void tseal_gpu_decode_tune(unsigned stores) {
    __atomic_store_n(&g_stores, stores <= 2 ? stores : 0u, __ATOMIC_RELAXED);
}

int tseal_gpu_tensor_upload(const tseal_ct_view *view, int device, tseal_gpu_tensor **out) {
    static const char *what = "tseal_gpu_tensor_upload";
    if (!out) return tseal_err(TSEAL_E_INVAL, "%s: out is NULL", what);
    *out = NULL;
    if (!view) return tseal_err(TSEAL_E_INVAL, "%s: view is NULL", what);
    const int n_dev = tseal_gpu_device_count();
    if (n_dev == 0) return TSEAL_E_NO_GPU; /* message set */
    if (device < 0 || device >= n_dev)
        return tseal_err(TSEAL_E_INVAL, "%s: device %d does not exist (%d device%s)", what, device,
                         n_dev, n_dev == 1 ? "" : "s");
    int rc = check_view(view);
    if (rc) return rc;
    const tseal_ct_view *v = view;
    const bool huff = v->mode == TSEAL_CT_MODE_HUFF;
    if (huff) {
        rc = tseal_huff_check(v->code_len);
        if (rc) return rc;
    }

    /* Layout. Sizes come from a view over a blob in memory, but add with overflow checks. */
    uint64_t off_dtab = 0, off_len = 0, off_gb = 0, off_sl = 0, off_exp = 0, off_plane = 0;
    uint64_t sl_bytes = 0, total = 0, data_bytes = 0;
    bool ovf = false;
    if (huff) {
        off_dtab = ERR_RECORD_BYTES;
        off_len = off_dtab + TSEAL_DTAB_SIZE * sizeof(uint32_t);
        off_gb = off_len + 256;
        sl_bytes = (v->n_segs * v->len_width + 7) / 8; /* n_segs * 24 cannot overflow here */
        ovf |= add_ovf(off_gb, dev_section(v->n_groups * 8), &off_sl);
        ovf |= add_ovf(off_sl, dev_section(sl_bytes), &off_exp);
        ovf |= add_ovf(off_exp, dev_section(v->exp_bytes), &off_plane);
        ovf |= add_ovf(off_plane, dev_section(v->n_elems), &total);
    } else if (v->mode == TSEAL_CT_MODE_CONST) {
        total = v->n_elems ? dev_section(v->n_elems) : 0;
    } else {
        ovf |= __builtin_mul_overflow(v->n_elems, (uint64_t)v->elem_size, &data_bytes);
        total = data_bytes ? dev_section(data_bytes) : 0;
    }
    if (ovf || total > SIZE_MAX)
        return tseal_err(TSEAL_E_LIMIT, "%s: coded tensor too large for this host", what);

    tseal_gpu_tensor *t = (tseal_gpu_tensor *)calloc(1, sizeof *t);
    uint32_t *dtab = NULL;
    uint16_t *stab = NULL;
    if (!t) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", what);
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return tseal_err(TSEAL_E_NOMEM, "%s: pthread_mutex_init failed", what);
    }
    t->device = device;
    t->geo = *v;
    t->geo.group_base = t->geo.seg_lens = t->geo.exp_stream = t->geo.plane = t->geo.raw = NULL;
    t->mem_bytes = total;

    int prev = 0;
    rc = dev_enter(device, &prev, what);
    if (rc) {
        pthread_mutex_destroy(&t->lock);
        free(t);
        return rc;
    }

#define TRY(call)                                                                                  \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = cuda_fail(e_, #call, what);                                                       \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

    if (total) {
        TRY(cudaMalloc((void **)&t->mem, (size_t)total));
        TRY(cudaMemsetAsync(t->mem, 0, (size_t)total, 0));
    }
    if (huff) {
        dtab = (uint32_t *)malloc(TSEAL_DTAB_SIZE * sizeof *dtab);
        stab = (uint16_t *)malloc(TSEAL_DTAB_SIZE * sizeof *stab);
        if (!dtab || !stab) {
            rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", what);
            goto fail;
        }
        tseal_huff_build_dtab(v->code_len, dtab, stab);
        uint8_t *m = t->mem;
        TRY(cudaMemcpyAsync(m + off_dtab, dtab, TSEAL_DTAB_SIZE * sizeof *dtab,
                            cudaMemcpyHostToDevice, 0));
        TRY(cudaMemcpyAsync(m + off_len, v->code_len, 256, cudaMemcpyHostToDevice, 0));
        if (v->n_groups)
            TRY(cudaMemcpyAsync(m + off_gb, v->group_base, (size_t)(v->n_groups * 8),
                                cudaMemcpyHostToDevice, 0));
        if (sl_bytes)
            TRY(cudaMemcpyAsync(m + off_sl, v->seg_lens, (size_t)sl_bytes, cudaMemcpyHostToDevice,
                                0));
        if (v->exp_bytes)
            TRY(cudaMemcpyAsync(m + off_exp, v->exp_stream, (size_t)v->exp_bytes,
                                cudaMemcpyHostToDevice, 0));
        if (v->n_elems)
            TRY(cudaMemcpyAsync(m + off_plane, v->plane, (size_t)v->n_elems, cudaMemcpyHostToDevice,
                                0));
        set_huff_args(&t->huff, v, m, off_dtab, off_len, m + off_gb, m + off_sl, m + off_exp,
                      m + off_plane);
    } else if (v->mode == TSEAL_CT_MODE_CONST) {
        if (v->n_elems)
            TRY(cudaMemcpyAsync(t->mem, v->plane, (size_t)v->n_elems, cudaMemcpyHostToDevice, 0));
        t->plane = t->mem;
    } else {
        if (data_bytes)
            TRY(cudaMemcpyAsync(t->mem, v->raw, (size_t)data_bytes, cudaMemcpyHostToDevice, 0));
        t->raw = t->mem;
    }
    /* The copies above are on the legacy default stream; wait so that a decode on any stream
     * (also a non-blocking one) sees them. */
    TRY(cudaStreamSynchronize(0));

    rc = compute_grid_cap(t, what);
    if (rc) goto fail;
#undef TRY

    free(dtab);
    free(stab);
    dev_leave(device, prev);
    *out = t;
    return 0;

fail:
    free(dtab);
    free(stab);
    if (t->mem) (void)cudaFree(t->mem);
    (void)cudaGetLastError();
    dev_leave(device, prev);
    pthread_mutex_destroy(&t->lock);
    free(t);
    return rc;
}

void tseal_gpu_tensor_free(tseal_gpu_tensor *t) {
    if (!t) return;
    if (t->mem || t->blob) {
        int prev = 0;
        if (dev_enter(t->device, &prev, "tseal_gpu_tensor_free") == 0) {
            if (t->mem) (void)cudaFree(t->mem);
            if (t->blob) (void)cudaFree(t->blob);
            (void)cudaGetLastError();
            dev_leave(t->device, prev);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t->name);
    free(t);
}

/* ---- a tensor over a blob already on the device (the loader) ------------------------------- */

int tseal_gpu_tensor_adopt(const tseal_ct_view *v, int device, void *dev_blob, const char *name,
                           uint64_t bytes, tseal_gpu_tensor **out) {
    static const char *what = "tseal_gpu_tensor_adopt";
    *out = NULL;
    int prev = 0, rc = 0;
    uint32_t *dtab = NULL;
    uint16_t *stab = NULL;
    tseal_gpu_tensor *t = (tseal_gpu_tensor *)calloc(1, sizeof *t);
    if (!t || pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        if (dev_blob && dev_enter(device, &prev, what) == 0) {
            (void)cudaFree(dev_blob);
            dev_leave(device, prev);
        }
        return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", what);
    }
    t->device = device;
    t->blob = (uint8_t *)dev_blob;
    t->blob_mem = v->blob_bytes + TSEAL_GPU_BLOB_PAD;
    t->bytes = bytes;
    t->name = name ? strdup(name) : NULL;
    t->geo = *v;
    t->geo.group_base = t->geo.seg_lens = t->geo.exp_stream = t->geo.plane = t->geo.raw = NULL;
    /* The plane and stream live on the device only: check the view's other invariants. */
    tseal_ct_view chk = *v;
    chk.plane = chk.exp_stream = chk.raw = (const uint8_t *)dev_blob;
    if (name && !t->name) rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", what);
    if (!rc) rc = check_view(&chk);
    if (!rc && v->mode == TSEAL_CT_MODE_HUFF) rc = tseal_huff_check(v->code_len);
    if (!rc) rc = dev_enter(device, &prev, what);
    if (rc) {
        tseal_gpu_tensor_free(t); /* frees the blob */
        return rc;
    }
    uint8_t *b = (uint8_t *)dev_blob;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = cuda_fail(e_, #call, what);                                                       \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)
    if (v->mode == TSEAL_CT_MODE_HUFF) {
        uint64_t plane_off, bases_off, lens_off, exp_off;
        tseal_ct_huff_sections(v, &plane_off, &bases_off, &lens_off, &exp_off);
        const uint64_t off_dtab = ERR_RECORD_BYTES, off_len = off_dtab + TSEAL_DTAB_SIZE * 4;
        t->mem_bytes = off_len + 256;
        dtab = (uint32_t *)malloc(TSEAL_DTAB_SIZE * sizeof *dtab);
        stab = (uint16_t *)malloc(TSEAL_DTAB_SIZE * sizeof *stab);
        if (!dtab || !stab) {
            rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", what);
            goto done;
        }
        tseal_huff_build_dtab(v->code_len, dtab, stab);
        TRY(cudaMalloc((void **)&t->mem, (size_t)t->mem_bytes));
        TRY(cudaMemset(t->mem, 0, ERR_RECORD_BYTES));
        TRY(cudaMemcpy(t->mem + off_dtab, dtab, TSEAL_DTAB_SIZE * 4, cudaMemcpyHostToDevice));
        TRY(cudaMemcpy(t->mem + off_len, v->code_len, 256, cudaMemcpyHostToDevice));
        set_huff_args(&t->huff, v, t->mem, off_dtab, off_len, b + bases_off, b + lens_off,
                      b + exp_off, b + plane_off);
    } else if (v->mode == TSEAL_CT_MODE_CONST) {
        t->plane = b + TSEAL_CT_HEADER_BYTES;
    } else {
        t->raw = b + TSEAL_CT_HEADER_BYTES;
    }
    TRY(cudaStreamSynchronize(0));
    rc = compute_grid_cap(t, what);
#undef TRY
done:
    free(dtab);
    free(stab);
    dev_leave(device, prev);
    if (rc) {
        tseal_gpu_tensor_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

const char *tseal_gpu_tensor_name(const tseal_gpu_tensor *t) {
    return t && t->name ? t->name : "";
}

uint64_t tseal_gpu_tensor_bytes(const tseal_gpu_tensor *t) {
    if (!t) return 0;
    if (t->bytes) return t->bytes;
    return t->geo.n_elems * (t->geo.mode == TSEAL_CT_MODE_RAW ? t->geo.elem_size : 2);
}

void tseal_gpu_tensor_shape(const tseal_gpu_tensor *t, uint64_t *rows, uint64_t *cols) {
    if (rows) *rows = t ? t->geo.rows : 0;
    if (cols) *cols = t ? t->geo.cols : 0;
}

uint64_t tseal_gpu_tensor_device_bytes(const tseal_gpu_tensor *t) {
    return t ? t->mem_bytes + (t->blob ? t->blob_mem : 0) : 0;
}

/* ---- decode ---------------------------------------------------------------------------------- */

static const char *err_text(unsigned flags) {
    if (flags & TSEAL_GPU_ERR_BOUNDS) return "segment lies outside the exponent stream";
    if (flags & TSEAL_GPU_ERR_TABLE) return "invalid decode table";
    if (flags & TSEAL_GPU_ERR_OVERRUN) return "codes run past the segment's end";
    return "bits left over after the segment's last code";
}

/* `wait` = 0: launch only (benchmarks): no error record reset or readback, no sync. */
static int launch_and_wait(const tseal_gpu_tensor *t, void *dst, cudaStream_t s, bool wait) {
    static const char *what = "tseal_gpu_tensor_decode";
    const tseal_ct_view *v = &t->geo;
    const bool vec = ((uintptr_t)dst & 15) == 0;
    tseal_gpu_err herr;
    memset(&herr, 0, sizeof herr);

    if (v->mode == TSEAL_CT_MODE_RAW) {
        CUDA_TRY(cudaMemcpyAsync(dst, t->raw, (size_t)(v->n_elems * v->elem_size),
                                 cudaMemcpyDeviceToDevice, s),
                 what);
    } else if (v->mode == TSEAL_CT_MODE_CONST) {
        const uint64_t work = vec ? (v->n_elems + 7) / 8 : v->n_elems;
        const uint64_t blocks = (work + TSEAL_GPU_CONST_THREADS - 1) / TSEAL_GPU_CONST_THREADS;
        const unsigned grid = (unsigned)(blocks < t->grid_cap ? blocks : t->grid_cap);
        if (vec)
            tseal_gpu_const_kernel<true><<<grid, TSEAL_GPU_CONST_THREADS, 0, s>>>(
                t->plane, (uint16_t *)dst, v->n_elems, v->const_exp);
        else
            tseal_gpu_const_kernel<false><<<grid, TSEAL_GPU_CONST_THREADS, 0, s>>>(
                t->plane, (uint16_t *)dst, v->n_elems, v->const_exp);
        CUDA_TRY(cudaGetLastError(), "tseal_gpu_tensor_decode: tseal_gpu_const_kernel launch");
    } else {
        tseal_gpu_huff_args a = t->huff;
        a.out = (uint16_t *)dst;
        /* staged stores need whole aligned chunks of 8 (decode.cuh) */
        const bool staged =
            vec && v->cols % 8 == 0 && __atomic_load_n(&g_stores, __ATOMIC_RELAXED) != 1;
        const unsigned cap = staged ? t->grid_cap_staged : t->grid_cap;
        const uint64_t blocks = (v->n_segs + TSEAL_GPU_HUFF_THREADS - 1) / TSEAL_GPU_HUFF_THREADS;
        const unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
        if (wait) CUDA_TRY(cudaMemsetAsync(a.err, 0, sizeof *a.err, s), what);
        if (staged)
            tseal_gpu_huff_kernel<true, true><<<grid, TSEAL_GPU_HUFF_THREADS, 0, s>>>(a);
        else if (vec)
            tseal_gpu_huff_kernel<true, false><<<grid, TSEAL_GPU_HUFF_THREADS, 0, s>>>(a);
        else
            tseal_gpu_huff_kernel<false, false><<<grid, TSEAL_GPU_HUFF_THREADS, 0, s>>>(a);
        CUDA_TRY(cudaGetLastError(), "tseal_gpu_tensor_decode: tseal_gpu_huff_kernel launch");
        if (wait)
            CUDA_TRY(cudaMemcpyAsync(&herr, a.err, sizeof herr, cudaMemcpyDeviceToHost, s), what);
    }
    if (!wait) return 0;
    CUDA_TRY(cudaStreamSynchronize(s), what);

    if (herr.flags) {
        const uint64_t j = ~(uint64_t)herr.seg_inv;
        const uint64_t row = j / v->segs_per_row, c0 = (j % v->segs_per_row) << v->seg_log2;
        return tseal_err(TSEAL_E_CORRUPT,
                         "coded tensor: %u of %llu segments do not decode exactly; first: segment "
                         "%llu (row %llu, column %llu): %s",
                         herr.n_bad, (unsigned long long)v->n_segs, (unsigned long long)j,
                         (unsigned long long)row, (unsigned long long)c0, err_text(herr.flags));
    }
    return 0;
}

int tseal_gpu_tensor_decode(const tseal_gpu_tensor *t, void *dst, void *stream) {
    static const char *what = "tseal_gpu_tensor_decode";
    if (!t) return tseal_err(TSEAL_E_INVAL, "%s: tensor is NULL", what);
    if (t->geo.n_elems == 0) return 0;
    if (!dst) return tseal_err(TSEAL_E_INVAL, "%s: dst is NULL", what);
    if (t->geo.mode != TSEAL_CT_MODE_RAW && ((uintptr_t)dst & 1))
        return tseal_err(TSEAL_E_INVAL, "%s: dst %p is not 2-byte aligned", what, dst);

    tseal_gpu_tensor *mt = (tseal_gpu_tensor *)t; /* the lock is the only mutable part */
    if (pthread_mutex_lock(&mt->lock) != 0)
        return tseal_err(TSEAL_E_INTERNAL, "%s: pthread_mutex_lock failed", what);
    int prev = 0;
    int rc = dev_enter(t->device, &prev, what);
    if (rc == 0) {
        rc = launch_and_wait(t, dst, (cudaStream_t)stream, true);
        dev_leave(t->device, prev);
    }
    pthread_mutex_unlock(&mt->lock);
    return rc;
}

/* ---- plain device memory --------------------------------------------------------------------- */

int tseal_gpu_malloc(int device, size_t bytes, void **out) {
    static const char *what = "tseal_gpu_malloc";
    if (!out) return tseal_err(TSEAL_E_INVAL, "%s: out is NULL", what);
    *out = NULL;
    const int n_dev = tseal_gpu_device_count();
    if (n_dev == 0) return TSEAL_E_NO_GPU;
    if (device < 0 || device >= n_dev)
        return tseal_err(TSEAL_E_INVAL, "%s: device %d does not exist", what, device);
    int prev = 0;
    int rc = dev_enter(device, &prev, what);
    if (rc) return rc;
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *out = NULL;
        rc = cuda_fail(e, "cudaMalloc", what);
    }
    dev_leave(device, prev);
    return rc;
}

void tseal_gpu_mem_free(void *ptr) {
    if (!ptr) return;
    (void)cudaFree(ptr);
    (void)cudaGetLastError();
}

int tseal_gpu_memcpy_h2d(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return 0;
    if (!dst || !src) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_memcpy_h2d: NULL pointer");
    CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "tseal_gpu_memcpy_h2d");
    return 0;
}

int tseal_gpu_memcpy_d2h(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return 0;
    if (!dst || !src) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_memcpy_d2h: NULL pointer");
    CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "tseal_gpu_memcpy_d2h");
    return 0;
}

int tseal_gpu_memset(void *ptr, int value, size_t bytes) {
    if (bytes == 0) return 0;
    if (!ptr) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_memset: NULL pointer");
    CUDA_TRY(cudaMemset(ptr, value, bytes), "tseal_gpu_memset");
    CUDA_TRY(cudaStreamSynchronize(0), "tseal_gpu_memset");
    return 0;
}

int tseal_gpu_tensor_decode_launch(const tseal_gpu_tensor *t, void *dst, void *stream) {
    static const char *what = "tseal_gpu_tensor_decode_launch";
    if (!t || !dst) return tseal_err(TSEAL_E_INVAL, "%s: NULL argument", what);
    if (t->geo.n_elems == 0) return 0;
    int prev = 0;
    int rc = dev_enter(t->device, &prev, what);
    if (rc == 0) {
        rc = launch_and_wait(t, dst, (cudaStream_t)stream, false);
        dev_leave(t->device, prev);
    }
    return rc;
}
