/*
 * slice.c - a rectangle of a coded tensor (rows [r0, r1), columns [c0, c1) on segment
 * boundaries) as a coded blob of its own, cut from the compressed sections without decoding:
 * segments are row-aligned, so each row's part is a contiguous run of segments, and their
 * codes a contiguous run of stream bits. The plane
 * is cut, the stream bits are shifted to start at bit 0, the group bases and length fields are
 * recomputed (tseal_layout.h); each row's bits are appended after the previous row's. The slice
 * keeps the tensor's code table; it decodes to exactly the tensor's rows (tests/test_loader.c
 * checks it, and that tseal_codec_view accepts it). Tensor-parallel loading uses it: a rank's rows
 * go to its GPU still compressed.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int slice_flat(const tseal_ct_view *v, uint64_t r0, uint64_t rows, uint64_t c0,
                      uint64_t cols, tseal_buf *out) {
    const uint64_t unit = v->mode == TSEAL_CT_MODE_RAW ? v->elem_size : 1;
    const uint64_t n = rows * cols, bytes = n * unit;
    const uint8_t *src = v->mode == TSEAL_CT_MODE_RAW ? v->raw : v->plane;
    if (!src) return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: the view has no data");
    uint64_t size = TSEAL_CT_HEADER_BYTES + tseal_align16(bytes);
    uint8_t *b = calloc(1, size);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    memcpy(b, TSEAL_CT_MAGIC, 4);
    b[4] = v->mode;
    tseal_store_le64(b + 8, n);
    tseal_store_le64(b + 16, rows);
    tseal_store_le64(b + 24, cols);
    b[44] = v->elem_size;
    b[45] = v->const_exp;
    for (uint64_t r = 0; r < rows; r++)
        memcpy(b + TSEAL_CT_HEADER_BYTES + r * cols * unit, src + ((r0 + r) * v->cols + c0) * unit,
               cols * unit);
    out->data = b;
    out->size = size;
    return 0;
}

/* Append bits [from, from + nbits) of the MSB-first stream `src` at bit `at` of `dst` (whose
 * bits from `at` on are zero). `src` may be read up to 2 bytes past the last bit (inside the
 * stream's slack). */
static void append_bits(uint8_t *dst, uint64_t at, const uint8_t *src, uint64_t from,
                        uint64_t nbits) {
    while (nbits) {
        const uint64_t b = from / 8;
        const unsigned k = nbits < 8 ? (unsigned)nbits : 8, sh = (unsigned)(from % 8);
        unsigned w = ((unsigned)src[b] << 8 | src[b + 1]) >> (8 - sh) & 0xFF; /* next 8 bits */
        w &= 0xFF00u >> k;                                                    /* keep k of them */
        const unsigned dsh = (unsigned)(at % 8);
        dst[at / 8] |= (uint8_t)(w >> dsh);
        if (dsh + k > 8) dst[at / 8 + 1] |= (uint8_t)(w << (8 - dsh));
        at += k, from += k, nbits -= k;
    }
}

static int slice_huff(const tseal_ct_view *v, uint64_t r0, uint64_t rows, uint64_t c0,
                      uint64_t cols, tseal_buf *out) {
    if (!v->plane || !v->exp_stream || !v->group_base || !v->seg_lens)
        return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice: the view lacks a section");
    const uint64_t seg = (uint64_t)1 << v->seg_log2, s0 = c0 >> v->seg_log2;
    tseal_ct_view s = *v; /* the slice's geometry */
    s.rows = rows;
    s.cols = cols;
    s.n_elems = rows * cols;
    s.segs_per_row = cols / seg + (cols % seg != 0);
    s.n_segs = rows * s.segs_per_row;
    s.n_groups = (s.n_segs + TSEAL_SEGS_PER_GROUP - 1) / TSEAL_SEGS_PER_GROUP;
    uint32_t *bits = malloc((s.n_segs ? s.n_segs : 1) * sizeof *bits);
    uint64_t *from = malloc((rows ? rows : 1) * sizeof *from); /* each row's first stream bit */
    if (!bits || !from) {
        free(bits);
        free(from);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    uint32_t lo = UINT32_MAX, hi = 0;
    uint64_t total = 0;
    for (uint64_t r = 0; r < rows; r++) {
        const uint64_t j0 = (r0 + r) * v->segs_per_row + s0;
        from[r] = tseal_ct_seg_start(v, j0);
        for (uint64_t k = 0; k < s.segs_per_row; k++) {
            uint32_t nb = tseal_ct_seg_bits(v, j0 + k);
            bits[r * s.segs_per_row + k] = nb;
            lo = nb < lo ? nb : lo;
            hi = nb > hi ? nb : hi;
            total += nb;
        }
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
        free(from);
        return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    }
    memcpy(b, TSEAL_CT_MAGIC, 4);
    b[4] = TSEAL_CT_MODE_HUFF;
    b[5] = v->max_code_bits;
    b[6] = v->seg_log2;
    b[7] = (uint8_t)s.len_width;
    tseal_store_le64(b + 8, s.n_elems);
    tseal_store_le64(b + 16, rows);
    tseal_store_le64(b + 24, cols);
    tseal_store_le64(b + 32, total);
    tseal_store_le32(b + 40, lo);
    b[44] = 2;
    for (unsigned k = 0; k < 256; k++)
        b[TSEAL_CT_HEADER_BYTES + k / 2] |= (uint8_t)(v->code_len[k] << (4 * (k & 1)));
    uint64_t pos = 0;
    for (uint64_t r = 0; r < rows; r++) {
        memcpy(b + plane_off + r * cols, v->plane + (r0 + r) * v->cols + c0, cols);
        uint64_t row_bits = 0;
        for (uint64_t k = 0; k < s.segs_per_row; k++) {
            const uint64_t j = r * s.segs_per_row + k;
            if (j % TSEAL_SEGS_PER_GROUP == 0)
                tseal_store_le64(b + bases_off + 8 * (j / TSEAL_SEGS_PER_GROUP), pos + row_bits);
            row_bits += bits[j];
            uint64_t field = bits[j] - lo, bit = j * s.len_width;
            for (unsigned q = 0; q < s.len_width; q++, bit++)
                if ((field >> q) & 1) b[lens_off + (bit >> 3)] |= (uint8_t)(1u << (bit & 7));
        }
        if (from[r] + row_bits > v->exp_bits) {
            free(bits);
            free(from);
            free(b);
            return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segments run past the stream");
        }
        append_bits(b + exp_off, pos, v->exp_stream, from[r], row_bits);
        pos += row_bits;
    }
    free(bits);
    free(from);
    out->data = b;
    out->size = size;
    return 0;
}

int tseal_codec_slice(const tseal_ct_view *v, uint64_t row_begin, uint64_t row_end,
                      uint64_t col_begin, uint64_t col_end, tseal_buf *out) {
    if (!v || !out) return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice: NULL argument");
    memset(out, 0, sizeof *out);
    if (row_begin >= row_end || row_end > v->rows || col_begin >= col_end || col_end > v->cols)
        return tseal_err(TSEAL_E_INVAL,
                         "tseal_codec_slice: rows [%llu, %llu), columns [%llu, %llu) of a %llu x "
                         "%llu tensor: expected a non-empty range inside it",
                         (unsigned long long)row_begin, (unsigned long long)row_end,
                         (unsigned long long)col_begin, (unsigned long long)col_end,
                         (unsigned long long)v->rows, (unsigned long long)v->cols);
    const uint64_t rows = row_end - row_begin, cols = col_end - col_begin;
    const uint64_t seg = (uint64_t)1 << v->seg_log2;
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
    case TSEAL_CT_MODE_CONST:
        return slice_flat(v, row_begin, rows, col_begin, cols, out);
    case TSEAL_CT_MODE_HUFF:
        if (col_begin % seg || (col_end % seg && col_end != v->cols))
            return tseal_err(TSEAL_E_INVAL,
                             "tseal_codec_slice: columns [%llu, %llu) do not start and end on "
                             "segment boundaries (%llu weights; pack with a smaller --segment)",
                             (unsigned long long)col_begin, (unsigned long long)col_end,
                             (unsigned long long)seg);
        return slice_huff(v, row_begin, rows, col_begin, cols, out);
    default:
        return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice: mode %u", v->mode);
    }
}

int tseal_codec_slice_rows(const tseal_ct_view *v, uint64_t row_begin, uint64_t row_end,
                           tseal_buf *out) {
    if (!v || !out) return tseal_err(TSEAL_E_INVAL, "tseal_codec_slice_rows: NULL argument");
    return tseal_codec_slice(v, row_begin, row_end, 0, v->cols, out);
}
