/*
 * gemv_ref.c - C reference of the GEMV kernels (see gemv_ref.h and the reduction order in
 * kernels/gemv.cuh). Deliberately simple: one row at a time, one segment at a time, a plain
 * loop per chunk, a recursive pairwise tree. Only fmaf() and plain additions touch the sums
 * (no a * b + c expression the compiler could contract into a different FMA; no -ffast-math).
 */
#include <math.h>
#include <stdlib.h>

#include "gemv_ref.h"
#include "internal.h"

#define CHUNK 8 /* order step 1: columns per FMA chain */

static float f32_of(uint16_t h) {
    return tseal_bf16_to_f32(h);
}

uint16_t tseal_gemv_ref_round(float f) {
    if (isnan(f)) return 0x7FC0u;
    return tseal_f32_to_bf16(f);
}

static float pairwise(const float *v, uint64_t lo, uint64_t size, uint64_t n) {
    if (lo >= n) return -0.0f; /* all padding */
    if (size == 1) return v[lo];
    const uint64_t half = size / 2;
    const float l = pairwise(v, lo, half, n);
    const float r = pairwise(v, lo + half, half, n);
    return l + r;
}

float tseal_gemv_ref_pairwise(const float *v, uint64_t n) {
    if (n == 0) return 0.0f;
    uint64_t size = 1;
    while (size < n) size <<= 1;
    return pairwise(v, 0, size, n);
}

unsigned tseal_gemv_ref_seg_log2(const tseal_ct_view *v) {
    return v->mode == TSEAL_CT_MODE_HUFF ? v->seg_log2 : TSEAL_GEMV_FLAT_SEG_LOG2;
}

/* A segment's weights (as FP32) and x[b] at the same columns: order steps 1 and 2. */
static float segment_dot(const float *w, const uint16_t *xb, uint32_t len) {
    float p = -0.0f;
    for (uint32_t c0 = 0; c0 < len; c0 += CHUNK) {
        float c = -0.0f;
        for (uint32_t i = c0; i < len && i < c0 + CHUNK; i++) c = fmaf(w[i], f32_of(xb[i]), c);
        p = p + c;
    }
    return p;
}

/* Rows in flight: the segment partials of one row, part[b * P + s]. */
typedef struct {
    uint64_t n, k, P, S;
    unsigned batch;
    float *part, *w; /* P * batch partials, S weights of the current segment */
} row_ctx;

static int ctx_init(row_ctx *c, uint64_t n, uint64_t k, unsigned seg_log2, unsigned batch) {
    c->n = n;
    c->k = k;
    c->S = (uint64_t)1 << seg_log2;
    c->P = k ? (k - 1) / c->S + 1 : 0;
    c->batch = batch;
    c->part = malloc((c->P ? c->P : 1) * batch * sizeof(float));
    c->w = malloc(c->S * sizeof(float));
    if (!c->part || !c->w) {
        free(c->part);
        free(c->w);
        return tseal_err(TSEAL_E_NOMEM, "gemv reference: out of memory");
    }
    return 0;
}

static void ctx_free(row_ctx *c) {
    free(c->part);
    free(c->w);
}

/* Segment s of row r has its weights in c->w: record its partial for every batch entry. */
static void ctx_segment(row_ctx *c, const uint16_t *x, uint64_t s, uint32_t len) {
    for (unsigned b = 0; b < c->batch; b++)
        c->part[b * c->P + s] = segment_dot(c->w, x + b * c->k + s * c->S, len);
}

static void ctx_row_done(row_ctx *c, uint16_t *y, uint64_t r) {
    for (unsigned b = 0; b < c->batch; b++)
        y[b * c->n + r] = tseal_gemv_ref_round(tseal_gemv_ref_pairwise(c->part + b * c->P, c->P));
}

static int check_args(const void *w, uint64_t n, uint64_t k, const uint16_t *x, uint16_t *y,
                      unsigned batch) {
    if (batch < 1 || batch > TSEAL_GEMV_MAX_BATCH)
        return tseal_err(TSEAL_E_INVAL, "gemv reference: batch %u out of range 1..%u", batch,
                         TSEAL_GEMV_MAX_BATCH);
    uint64_t nk = 0;
    if (__builtin_mul_overflow(n, k, &nk) || nk > (UINT64_MAX >> 1) / TSEAL_GEMV_MAX_BATCH)
        return tseal_err(TSEAL_E_INVAL, "gemv reference: %llu x %llu is too large",
                         (unsigned long long)n, (unsigned long long)k);
    if ((!w && nk) || (!x && k) || (!y && n))
        return tseal_err(TSEAL_E_INVAL, "gemv reference: NULL buffer");
    return 0;
}

int tseal_gemv_ref_bf16(const uint16_t *w, uint64_t n, uint64_t k, unsigned seg_log2,
                        const uint16_t *x, uint16_t *y, unsigned batch) {
    int rc = check_args(w, n, k, x, y, batch);
    if (rc) return rc;
    if (seg_log2 < TSEAL_SEG_LOG2_MIN || seg_log2 > TSEAL_SEG_LOG2_MAX)
        return tseal_err(TSEAL_E_INVAL, "gemv reference: seg_log2 %u out of range %u..%u", seg_log2,
                         TSEAL_SEG_LOG2_MIN, TSEAL_SEG_LOG2_MAX);
    row_ctx c;
    rc = ctx_init(&c, n, k, seg_log2, batch);
    if (rc) return rc;
    for (uint64_t r = 0; r < n; r++) {
        for (uint64_t s = 0; s < c.P; s++) {
            const uint64_t c0 = s * c.S, len = k - c0 < c.S ? k - c0 : c.S;
            for (uint64_t i = 0; i < len; i++) c.w[i] = f32_of(w[r * k + c0 + i]);
            ctx_segment(&c, x, s, (uint32_t)len);
        }
        ctx_row_done(&c, y, r);
    }
    ctx_free(&c);
    return 0;
}

/* ---- coded tensors: decode a segment bit by bit ------------------------------------------- */

typedef struct {
    uint32_t first_code[TSEAL_HUFF_MAX_BITS + 1];
    uint32_t count[TSEAL_HUFF_MAX_BITS + 1];
    uint32_t offset[TSEAL_HUFF_MAX_BITS + 1];
    uint8_t sorted[256];
} canon;

static void canon_build(const uint8_t len[256], canon *t) {
    memset(t, 0, sizeof *t);
    for (unsigned s = 0; s < 256; s++)
        if (len[s] <= TSEAL_HUFF_MAX_BITS) t->count[len[s]]++;
    t->count[0] = 0;
    uint32_t code = 0, idx = 0;
    for (unsigned l = 1; l <= TSEAL_HUFF_MAX_BITS; l++) {
        code = (code + t->count[l - 1]) << 1;
        t->first_code[l] = code;
        t->offset[l] = idx;
        for (unsigned s = 0; s < 256; s++)
            if (len[s] == l) t->sorted[idx++] = (uint8_t)s;
    }
}

/* Exponents of segment j into e[]; TSEAL_E_CORRUPT unless it decodes exactly. */
static int decode_segment(const tseal_ct_view *v, const canon *t, uint64_t j, uint8_t *e,
                          uint32_t nsyms) {
    const uint64_t start = tseal_ct_seg_start(v, j), bits = tseal_ct_seg_bits(v, j);
    if (start > v->exp_bits || bits > v->exp_bits - start)
        return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segment %llu lies outside the stream",
                         (unsigned long long)j);
    uint64_t pos = start;
    const uint64_t end = start + bits;
    for (uint32_t i = 0; i < nsyms; i++) {
        uint32_t code = 0, l = 0;
        for (;;) {
            if (pos >= end || l == TSEAL_HUFF_MAX_BITS)
                return tseal_err(TSEAL_E_CORRUPT,
                                 "coded tensor: segment %llu overruns its %llu bits at weight %u",
                                 (unsigned long long)j, (unsigned long long)bits, i);
            code = (code << 1) | ((v->exp_stream[pos >> 3] >> (7 - (pos & 7))) & 1u);
            pos++;
            l++;
            if (code - t->first_code[l] < t->count[l]) break;
        }
        e[i] = t->sorted[t->offset[l] + code - t->first_code[l]];
    }
    if (pos != end)
        return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segment %llu ends %llu bits early",
                         (unsigned long long)j, (unsigned long long)(end - pos));
    return 0;
}

int tseal_gemv_ref_ct(const tseal_ct_view *v, const uint16_t *x, uint16_t *y, unsigned batch) {
    if (!v) return tseal_err(TSEAL_E_INVAL, "gemv reference: view is NULL");
    if (v->mode == TSEAL_CT_MODE_RAW && v->elem_size != 2)
        return tseal_err(TSEAL_E_UNSUPPORTED,
                         "gemv reference: RAW tensor of %u-byte elements (need BF16)",
                         v->elem_size);
    if (v->mode > TSEAL_CT_MODE_HUFF)
        return tseal_err(TSEAL_E_INVAL, "gemv reference: unknown mode %u", v->mode);
    const uint64_t n = v->rows, k = v->cols;
    int rc = check_args(v->n_elems ? (const void *)v : NULL, n, k, x, y, batch);
    if (rc) return rc;
    const unsigned seg_log2 = tseal_gemv_ref_seg_log2(v);
    row_ctx c;
    rc = ctx_init(&c, n, k, seg_log2, batch);
    if (rc) return rc;
    canon t;
    uint8_t *e = malloc(c.S);
    if (!e) {
        ctx_free(&c);
        return tseal_err(TSEAL_E_NOMEM, "gemv reference: out of memory");
    }
    if (v->mode == TSEAL_CT_MODE_HUFF) canon_build(v->code_len, &t);
    for (uint64_t r = 0; r < n && rc == 0; r++) {
        for (uint64_t s = 0; s < c.P; s++) {
            const uint64_t c0 = s * c.S, len = k - c0 < c.S ? k - c0 : c.S, first = r * k + c0;
            if (v->mode == TSEAL_CT_MODE_HUFF) {
                rc = decode_segment(v, &t, r * c.P + s, e, (uint32_t)len);
                if (rc) break;
                for (uint64_t i = 0; i < len; i++)
                    c.w[i] = f32_of(tseal_bf16_join(v->plane[first + i], e[i]));
            } else if (v->mode == TSEAL_CT_MODE_CONST) {
                for (uint64_t i = 0; i < len; i++)
                    c.w[i] = f32_of(tseal_bf16_join(v->plane[first + i], v->const_exp));
            } else {
                for (uint64_t i = 0; i < len; i++)
                    c.w[i] = f32_of((uint16_t)(v->raw[2 * (first + i)] |
                                               (unsigned)v->raw[2 * (first + i) + 1] << 8));
            }
            ctx_segment(&c, x, s, (uint32_t)len);
        }
        if (rc == 0) ctx_row_done(&c, y, r);
    }
    free(e);
    ctx_free(&c);
    return rc;
}
