/*
 * decode_ref.c - the reference decoder: one bit at a time, canonical Huffman by first-code
 * comparison. Deliberately simple; it is the oracle of the tests for the fast CPU decoder and
 * the CUDA kernels.
 */
#include "huffman.h"
#include "internal.h"

typedef struct {
    uint32_t
        first_code[TSEAL_HUFF_MAX_BITS + 1];  /* canonical code of the first symbol of a length */
    uint32_t count[TSEAL_HUFF_MAX_BITS + 1];  /* symbols of each length */
    uint32_t offset[TSEAL_HUFF_MAX_BITS + 1]; /* index of that first symbol in `sorted` */
    uint8_t sorted[256];                      /* symbols by (length, value) */
} canon_table;

static void canon_build(const uint8_t len[256], canon_table *t) {
    memset(t, 0, sizeof *t);
    for (unsigned s = 0; s < 256; s++) t->count[len[s]]++;
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

static unsigned get_bit(const uint8_t *stream, uint64_t pos) {
    return (stream[pos >> 3] >> (7 - (pos & 7))) & 1u;
}

static void store_le16(uint8_t *out, uint64_t i, uint16_t v) {
    out[2 * i] = (uint8_t)v;
    out[2 * i + 1] = (uint8_t)(v >> 8);
}

static int decode_segment(const tseal_ct_view *v, const canon_table *t, uint64_t j, uint64_t pos,
                          uint8_t *out) {
    uint64_t end = pos + tseal_ct_seg_bits(v, j), first = tseal_ct_seg_first(v, j);
    uint32_t nsyms = tseal_ct_seg_nsyms(v, j);
    for (uint32_t k = 0; k < nsyms; k++) {
        uint32_t code = 0, l = 0;
        for (;;) {
            if (pos >= end || l == TSEAL_HUFF_MAX_BITS)
                return tseal_err(TSEAL_E_CORRUPT,
                                 "coded tensor: segment %llu overruns its %u bits at weight %u",
                                 (unsigned long long)j, tseal_ct_seg_bits(v, j), k);
            code = (code << 1) | get_bit(v->exp_stream, pos++);
            l++;
            if (code - t->first_code[l] < t->count[l]) break;
        }
        uint8_t e = t->sorted[t->offset[l] + code - t->first_code[l]];
        store_le16(out, first + k, tseal_bf16_join(v->plane[first + k], e));
    }
    if (pos != end)
        return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segment %llu ends %llu bits early",
                         (unsigned long long)j, (unsigned long long)(end - pos));
    return 0;
}

int tseal_codec_decode_ref(const tseal_ct_view *v, void *out) {
    uint8_t *o = out;
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
        memcpy(o, v->raw, v->n_elems * v->elem_size);
        return 0;
    case TSEAL_CT_MODE_CONST:
        for (uint64_t i = 0; i < v->n_elems; i++)
            store_le16(o, i, tseal_bf16_join(v->plane[i], v->const_exp));
        return 0;
    case TSEAL_CT_MODE_HUFF:
        break;
    default:
        return tseal_err(TSEAL_E_INVAL, "coded tensor: unknown mode %u", v->mode);
    }
    canon_table t;
    canon_build(v->code_len, &t);
    uint64_t pos = 0;
    for (uint64_t j = 0; j < v->n_segs; j++) {
        int r = decode_segment(v, &t, j, pos, o);
        if (r) return r;
        pos += tseal_ct_seg_bits(v, j);
    }
    return 0;
}
