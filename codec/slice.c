/*
 * slice.c - a coded tensor's rows [r0, r1) as a coded blob of its own, cut from the compressed
 * sections without decoding: segments are row-aligned, so the slice's segments are a
 * contiguous run of the tensor's, and their codes a contiguous run of stream bits. The plane
 * is cut, the stream bits are shifted to start at bit 0, the group bases and length fields are
 * recomputed (tseal_layout.h). The slice keeps the tensor's code table; it decodes to exactly
 * the tensor's rows (tests/test_loader.c checks it, and that tseal_codec_view accepts it).
 * Tensor-parallel loading uses it: a rank's rows go to its GPU still compressed.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int slice_flat(const tseal_ct_view *v, uint64_t r0, uint64_t rows, tseal_buf *out) {
    const uint64_t unit = v->mode == TSEAL_CT_MODE_RAW ? v->elem_size : 1;
    const uint64_t n = rows * v->cols, bytes = n * unit;
    const uint8_t *src = v->mode == TSEAL_CT_MODE_RAW ? v->raw : v->plane;
    if (!src) return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: the view has no data");
    uint64_t size = TSEAL_CT_HEADER_BYTES + tseal_align16(bytes);
    uint8_t *b = calloc(1, size);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    memcpy(b, TSEAL_CT_MAGIC, 4);
    b[4] = v->mode;
    tseal_store_le64(b + 8, n);
    tseal_store_le64(b + 16, rows);
    tseal_store_le64(b + 24, v->cols);
    b[44] = v->elem_size;
    b[45] = v->const_exp;
    memcpy(b + TSEAL_CT_HEADER_BYTES, src + r0 * v->cols * unit, bytes);
    out->data = b;
    out->size = size;
    return 0;
}

/* Bits [from, from + nbits) of an MSB-first stream, to `dst` starting at bit 0; the bits after
 * the last one in its byte are zero. The source may be read up to 1 byte past the last bit
 * (inside the stream's slack). */
static void copy_bits(uint8_t *dst, const uint8_t *src, uint64_t from, uint64_t nbits) {
    const uint64_t nbytes = (nbits + 7) / 8, byte0 = from / 8;
    const unsigned sh = (unsigned)(from % 8);
    for (uint64_t i = 0; i < nbytes; i++) {
        unsigned w = (unsigned)src[byte0 + i] << 8 | src[byte0 + i + 1];
        dst[i] = (uint8_t)(w >> (8 - sh));
    }
    if (nbits % 8) dst[nbytes - 1] &= (uint8_t)(0xFF00u >> (nbits % 8));
}

static int slice_huff(const tseal_ct_view *v, uint64_t r0, uint64_t rows, tseal_buf *out) {
    if (!v->plane || !v->exp_stream || !v->group_base || !v->seg_lens)
        return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: the view lacks a section");
    tseal_ct_view s = *v; /* the slice's geometry */
    s.rows = rows;
    s.n_elems = rows * v->cols;
    s.n_segs = rows * v->segs_per_row;
    s.n_groups = (s.n_segs + TSEAL_SEGS_PER_GROUP - 1) / TSEAL_SEGS_PER_GROUP;
    const uint64_t j0 = r0 * v->segs_per_row;
    uint32_t *bits = malloc(s.n_segs * sizeof *bits);
    if (!bits) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    uint32_t lo = UINT32_MAX, hi = 0;
    uint64_t total = 0;
    for (uint64_t j = 0; j < s.n_segs; j++) {
        bits[j] = tseal_ct_seg_bits(v, j0 + j);
        lo = bits[j] < lo ? bits[j] : lo;
        hi = bits[j] > hi ? bits[j] : hi;
        total += bits[j];
    }
    const uint64_t start = tseal_ct_seg_start(v, j0);
    if (start + total > v->exp_bits) {
        free(bits);
        return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segments run past the stream");
    }
    s.seg_bits_min = lo;
    s.len_width = 0;
    while (s.len_width < 32 && ((hi - lo) >> s.len_width) != 0) s.len_width++;
    s.exp_bits = total;
    s.exp_bytes = (total + 7) / 8 + TSEAL_EXP_SLACK;
    uint64_t plane_off, bases_off, lens_off, exp_off;
    tseal_ct_huff_sections(&s, &plane_off, &bases_off, &lens_off, &exp_off);
    const uint64_t size = exp_off + tseal_align16(s.exp_bytes);
    uint8_t *b = calloc(1, size);
    if (!b) {
        free(bits);
        return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    }
    memcpy(b, TSEAL_CT_MAGIC, 4);
    b[4] = TSEAL_CT_MODE_HUFF;
    b[5] = v->max_code_bits;
    b[6] = v->seg_log2;
    b[7] = (uint8_t)s.len_width;
    tseal_store_le64(b + 8, s.n_elems);
    tseal_store_le64(b + 16, rows);
    tseal_store_le64(b + 24, v->cols);
    tseal_store_le64(b + 32, total);
    tseal_store_le32(b + 40, lo);
    b[44] = 2;
    for (unsigned k = 0; k < 256; k++)
        b[TSEAL_CT_HEADER_BYTES + k / 2] |= (uint8_t)(v->code_len[k] << (4 * (k & 1)));
    memcpy(b + plane_off, v->plane + r0 * v->cols, s.n_elems);
    uint64_t pos = 0;
    for (uint64_t j = 0; j < s.n_segs; j++) {
        if (j % TSEAL_SEGS_PER_GROUP == 0)
            tseal_store_le64(b + bases_off + 8 * (j / TSEAL_SEGS_PER_GROUP), pos);
        pos += bits[j];
        uint64_t field = bits[j] - lo, bit = j * s.len_width;
        for (unsigned k = 0; k < s.len_width; k++, bit++)
            if ((field >> k) & 1) b[lens_off + (bit >> 3)] |= (uint8_t)(1u << (bit & 7));
    }
    free(bits);
    copy_bits(b + exp_off, v->exp_stream, start, total);
    out->data = b;
    out->size = size;
    return 0;
}

int tseal_codec_slice_rows(const tseal_ct_view *v, uint64_t row_begin, uint64_t row_end,
                           tseal_buf *out) {
    if (!v || !out) return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: NULL argument");
    memset(out, 0, sizeof *out);
    if (row_begin >= row_end || row_end > v->rows || v->cols == 0)
        return tseal_err(TSEAL_E_INVAL,
                         "tseal_codec_slice_rows: rows [%llu, %llu) of a %llu x %llu tensor: "
                         "expected a non-empty range inside it",
                         (unsigned long long)row_begin, (unsigned long long)row_end,
                         (unsigned long long)v->rows, (unsigned long long)v->cols);
    const uint64_t rows = row_end - row_begin;
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
    case TSEAL_CT_MODE_CONST:
        return slice_flat(v, row_begin, rows, out);
    case TSEAL_CT_MODE_HUFF:
        return slice_huff(v, row_begin, rows, out);
    default:
        return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: mode %u", v->mode);
    }
}
