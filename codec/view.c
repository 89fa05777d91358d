/*
 * view.c - parse and validate a coded-tensor blob (layout: tseal_layout.h, docs/FORMAT.md).
 *
 * Every byte is hostile: each header field, the code table, each segment length and group
 * base, and every padding byte is checked, so that decoders only have to check that each
 * segment decodes to exactly its length.
 */
#include <math.h>
#include <stdlib.h>

#include "huffman.h"
#include "internal.h"

void tseal_codec_params_default(tseal_codec_params *p) {
    p->max_code_bits = TSEAL_HUFF_MAX_BITS;
    p->seg_log2 = TSEAL_SEG_LOG2_DEFAULT;
}

void tseal_buf_free(tseal_buf *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->size = 0;
}

double tseal_codec_exponent_entropy(const uint16_t *bf16, uint64_t n) {
    uint64_t hist[256] = {0};
    for (uint64_t i = 0; i < n; i++) hist[tseal_bf16_exp(bf16[i])]++;
    double h = 0;
    for (unsigned s = 0; s < 256; s++) {
        if (!hist[s]) continue;
        double p = (double)hist[s] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

double tseal_codec_limited_bits(const uint64_t hist[256], unsigned limit) {
    uint8_t len[256];
    uint64_t total = 0, bits = 0;
    unsigned nsym = 0;
    for (unsigned s = 0; s < 256; s++) {
        total += hist[s];
        nsym += hist[s] != 0;
    }
    if (total == 0) return 0;
    if (nsym == 1) return 0; /* CONST: no exponent bits at all */
    if (tseal_huff_lengths(hist, limit, len) != 0) return -1;
    for (unsigned s = 0; s < 256; s++) bits += hist[s] * len[s];
    return (double)bits / (double)total;
}

/* ---- parsing ------------------------------------------------------------------------- */

static int corrupt(const char *what, uint64_t offset) {
    return tseal_err(TSEAL_E_CORRUPT, "coded tensor: %s (offset %llu)", what,
                     (unsigned long long)offset);
}

/* The blob's bytes: one contiguous image, or the regions of it a streaming loader kept. */
typedef struct {
    const tseal_ct_region *regs;
    unsigned n;
} src_t;

/* Host pointer to blob bytes [off, off + len) if one region holds them all, else NULL. */
static const uint8_t *span(const src_t *b, uint64_t off, uint64_t len) {
    for (unsigned i = 0; i < b->n; i++) {
        const tseal_ct_region *g = &b->regs[i];
        if (off >= g->off && off - g->off <= g->len && len <= g->len - (off - g->off))
            return g->p + (off - g->off);
    }
    return NULL;
}

static int missing(uint64_t off, uint64_t len) {
    return tseal_err(TSEAL_E_INTERNAL, "coded tensor: bytes [%llu, +%llu) were not kept",
                     (unsigned long long)off, (unsigned long long)len);
}

/* Check the bytes [from, to) of the blob are zero. */
static int check_zero(const src_t *b, uint64_t from, uint64_t to, const char *what) {
    if (from >= to) return 0;
    const uint8_t *p = span(b, from, to - from);
    if (!p) return missing(from, to - from);
    for (uint64_t i = 0; i < to - from; i++)
        if (p[i]) return corrupt(what, from + i);
    return 0;
}

static int parse_raw_or_const(const src_t *b, uint64_t len, tseal_ct_view *v) {
    uint64_t bytes;
    if (v->max_code_bits || v->seg_log2 || v->len_width || v->exp_bits || v->seg_bits_min)
        return corrupt("codec fields set in a RAW/CONST tensor", 5);
    if (v->mode == TSEAL_CT_MODE_RAW) {
        if (v->elem_size < 1 || v->elem_size > 8) return corrupt("bad element size", 44);
        if (v->const_exp) return corrupt("constant exponent set in a RAW tensor", 45);
    } else {
        if (v->elem_size != 2) return corrupt("CONST tensor element size is not 2", 44);
        if (v->n_elems == 0) return corrupt("empty CONST tensor", 8);
    }
    uint64_t unit = v->mode == TSEAL_CT_MODE_RAW ? v->elem_size : 1;
    if (tseal_mul_ovf(v->n_elems, unit, &bytes) || bytes > UINT64_MAX - 256)
        return corrupt("tensor size overflows", 8);
    if (len != TSEAL_CT_HEADER_BYTES + tseal_align16(bytes))
        return corrupt("blob size does not match the header", len);
    /* NULL when a streaming loader did not keep the data (it lives on a device) */
    if (v->mode == TSEAL_CT_MODE_RAW)
        v->raw = span(b, TSEAL_CT_HEADER_BYTES, bytes);
    else
        v->plane = span(b, TSEAL_CT_HEADER_BYTES, bytes);
    v->blob_bytes = len;
    return check_zero(b, TSEAL_CT_HEADER_BYTES + bytes, len, "nonzero padding");
}

static int parse_code_lengths(const src_t *src, tseal_ct_view *v) {
    unsigned longest = 0;
    const uint8_t *b = span(src, TSEAL_CT_HEADER_BYTES, TSEAL_CT_LENS_BYTES);
    if (!b) return missing(TSEAL_CT_HEADER_BYTES, TSEAL_CT_LENS_BYTES);
    for (unsigned s = 0; s < 256; s++) {
        uint8_t byte = b[s / 2];
        v->code_len[s] = (s & 1) ? byte >> 4 : byte & 15;
        if (v->code_len[s] > longest) longest = v->code_len[s];
    }
    int r = tseal_huff_check(v->code_len);
    if (r) {
        tseal_err_context("coded tensor: ");
        return r;
    }
    if (longest != v->max_code_bits) return corrupt("max_code_bits is not the longest code", 5);
    return 0;
}

/* Segment lengths must chain into the group bases and sum to exp_bits. */
static int check_segments(tseal_ct_view *v, uint64_t bases_off, uint64_t lens_off) {
    uint64_t pos = 0;
    uint8_t minlen = TSEAL_HUFF_MAX_BITS;
    for (unsigned s = 0; s < 256; s++)
        if (v->code_len[s] && v->code_len[s] < minlen) minlen = v->code_len[s];
    for (uint64_t j = 0; j < v->n_segs; j++) {
        if (j % TSEAL_SEGS_PER_GROUP == 0 &&
            tseal_load_le64(v->group_base + 8 * (j / TSEAL_SEGS_PER_GROUP)) != pos)
            return corrupt("group base does not match the segment lengths",
                           bases_off + 8 * (j / TSEAL_SEGS_PER_GROUP));
        uint64_t bits = tseal_ct_seg_bits(v, j), nsyms = tseal_ct_seg_nsyms(v, j);
        if (bits < nsyms * minlen || bits > nsyms * v->max_code_bits)
            return corrupt("segment length impossible for its weight count",
                           lens_off + j * v->len_width / 8);
        pos += bits;
    }
    if (pos != v->exp_bits) return corrupt("segment lengths do not sum to exp_bits", 32);
    return 0;
}

static int parse_huff(const src_t *b, uint64_t len, tseal_ct_view *v) {
    if (v->elem_size != 2) return corrupt("HUFF tensor element size is not 2", 44);
    if (v->const_exp) return corrupt("constant exponent set in a HUFF tensor", 45);
    if (v->n_elems == 0) return corrupt("empty HUFF tensor", 8);
    if (v->max_code_bits < 1 || v->max_code_bits > TSEAL_HUFF_MAX_BITS)
        return corrupt("max_code_bits out of range", 5);
    if (v->seg_log2 < TSEAL_SEG_LOG2_MIN || v->seg_log2 > TSEAL_SEG_LOG2_MAX)
        return corrupt("seg_log2 out of range", 6);
    if (v->len_width > TSEAL_SEG_LEN_WIDTH_MAX) return corrupt("len_width out of range", 7);
    if (len < TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES)
        return corrupt("blob shorter than its code table", len);
    int r = parse_code_lengths(b, v);
    if (r) return r;

    uint64_t seg = (uint64_t)1 << v->seg_log2;
    v->segs_per_row = v->cols / seg + (v->cols % seg != 0);
    if (tseal_mul_ovf(v->rows, v->segs_per_row, &v->n_segs) || v->n_segs > (UINT64_MAX >> 8))
        return corrupt("segment count overflows", 16);
    v->n_groups = (v->n_segs + TSEAL_SEGS_PER_GROUP - 1) / TSEAL_SEGS_PER_GROUP;
    /* Bounding n_elems and exp_bits (<= 12 bits per weight) bounds every size below. */
    if (v->n_elems > (UINT64_MAX >> 8)) return corrupt("n_elems too large", 8);
    if (v->exp_bits > v->n_elems * (uint64_t)TSEAL_HUFF_MAX_BITS)
        return corrupt("exp_bits larger than possible", 32);
    if (v->seg_bits_min > seg * v->max_code_bits) return corrupt("seg_bits_min too large", 40);

    uint64_t lens_bits = v->n_segs * v->len_width;
    uint64_t plane_off = TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES;
    uint64_t bases_off = plane_off + tseal_align16(v->n_elems);
    uint64_t lens_off = bases_off + tseal_align16(8 * v->n_groups);
    uint64_t exp_off = lens_off + tseal_align16((lens_bits + 7) / 8);
    uint64_t exp_data = (v->exp_bits + 7) / 8;
    v->exp_bytes = exp_data + TSEAL_EXP_SLACK;
    if (len != exp_off + tseal_align16(v->exp_bytes))
        return corrupt("blob size does not match the header", len);
    /* The index must be on the host; the plane and the stream may live on a device only. */
    v->plane = span(b, plane_off, v->n_elems);
    v->group_base = span(b, bases_off, 8 * v->n_groups);
    v->seg_lens = span(b, lens_off, (lens_bits + 7) / 8);
    v->exp_stream = span(b, exp_off, v->exp_bytes);
    v->blob_bytes = len;
    if (!v->group_base) return missing(bases_off, 8 * v->n_groups);
    if (!v->seg_lens) return missing(lens_off, (lens_bits + 7) / 8);

    if ((r = check_zero(b, plane_off + v->n_elems, bases_off, "nonzero padding after the plane")) ||
        (r = check_zero(b, bases_off + 8 * v->n_groups, lens_off,
                        "nonzero padding after group bases")) ||
        (r = check_zero(b, exp_off + exp_data, len, "nonzero slack after the exponent stream")))
        return r;
    if (lens_bits % 8 && (v->seg_lens[lens_bits / 8] >> (lens_bits % 8)) != 0)
        return corrupt("nonzero bits after the last segment length", lens_off + lens_bits / 8);
    if ((r = check_zero(b, lens_off + (lens_bits + 7) / 8, exp_off,
                        "nonzero padding after segment lengths")))
        return r;
    if (v->exp_bits % 8) {
        const uint8_t *last = span(b, exp_off + v->exp_bits / 8, 1);
        if (!last) return missing(exp_off + v->exp_bits / 8, 1);
        if ((uint8_t)(*last << (v->exp_bits % 8)) != 0)
            return corrupt("nonzero bits after the end of the exponent stream",
                           exp_off + v->exp_bits / 8);
    }
    return check_segments(v, bases_off, lens_off);
}

static int view_src(const src_t *src, uint64_t len, tseal_ct_view *v) {
    memset(v, 0, sizeof *v);
    if (len < TSEAL_CT_HEADER_BYTES) return corrupt("blob shorter than its header", len);
    const uint8_t *b = span(src, 0, TSEAL_CT_HEADER_BYTES);
    if (!b) return missing(0, TSEAL_CT_HEADER_BYTES);
    if (memcmp(b, TSEAL_CT_MAGIC, 4) != 0) return corrupt("bad magic", 0);
    v->mode = b[4];
    v->max_code_bits = b[5];
    v->seg_log2 = b[6];
    v->len_width = b[7];
    v->n_elems = tseal_load_le64(b + 8);
    v->rows = tseal_load_le64(b + 16);
    v->cols = tseal_load_le64(b + 24);
    v->exp_bits = tseal_load_le64(b + 32);
    v->seg_bits_min = tseal_load_le32(b + 40);
    v->elem_size = b[44];
    v->const_exp = b[45];
    int r = check_zero(src, 46, TSEAL_CT_HEADER_BYTES, "nonzero reserved header bytes");
    if (r) return r;
    uint64_t n;
    if (tseal_mul_ovf(v->rows, v->cols, &n) || n != v->n_elems)
        return corrupt("rows * cols != n_elems", 16);
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
    case TSEAL_CT_MODE_CONST:
        return parse_raw_or_const(src, len, v);
    case TSEAL_CT_MODE_HUFF:
        return parse_huff(src, len, v);
    default:
        return corrupt("unknown mode", 4);
    }
}

int tseal_codec_view(const void *blob, size_t len, tseal_ct_view *v) {
    if (!blob) {
        memset(v, 0, sizeof *v);
        return corrupt("blob shorter than its header", 0);
    }
    tseal_ct_region all = {blob, 0, len};
    src_t src = {&all, 1};
    return view_src(&src, len, v);
}

int tseal_codec_view_regions(uint64_t blob_len, const tseal_ct_region *regs, unsigned n,
                             tseal_ct_view *v) {
    src_t src = {regs, n};
    return view_src(&src, blob_len, v);
}

int tseal_codec_kept_regions(const uint8_t head[TSEAL_CT_HEAD_BYTES], uint64_t blob_len,
                             tseal_ct_region regs[2]) {
    tseal_ct_region h = {head, 0, blob_len < TSEAL_CT_HEAD_BYTES ? blob_len : TSEAL_CT_HEAD_BYTES};
    src_t src = {&h, 1};
    tseal_ct_view v;
    memset(regs, 0, 2 * sizeof *regs);
    int r = view_src(&src, blob_len, &v);
    /* The header and code table parse; everything else is missing (an internal error) or
     * corrupt. Only the geometry matters here: recompute the sections from it. */
    if (r && r != TSEAL_E_INTERNAL) return r;
    if (blob_len < TSEAL_CT_HEADER_BYTES) return corrupt("blob shorter than its header", blob_len);
    tseal_err_clear();
    if (v.mode != TSEAL_CT_MODE_HUFF) {
        uint64_t unit = v.mode == TSEAL_CT_MODE_RAW ? v.elem_size : 1, bytes = v.n_elems * unit;
        regs[0].off = TSEAL_CT_HEADER_BYTES + bytes; /* the padding after the data */
        regs[0].len = blob_len - regs[0].off;
        return 0;
    }
    uint64_t plane_off = TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES;
    uint64_t bases_off = plane_off + tseal_align16(v.n_elems);
    uint64_t lens_off = bases_off + tseal_align16(8 * v.n_groups);
    uint64_t exp_off = lens_off + tseal_align16((v.n_segs * v.len_width + 7) / 8);
    regs[0].off = plane_off + v.n_elems; /* plane padding, group bases, segment lengths */
    regs[0].len = exp_off - regs[0].off;
    regs[1].off = exp_off + v.exp_bits / 8; /* last stream byte, slack and padding */
    regs[1].len = blob_len - regs[1].off;
    return 0;
}
