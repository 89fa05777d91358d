/*
 * tseal_layout.h - the single source of truth for the coded-tensor stream layout.
 *
 * Included by the C library, the CPU decoders and the CUDA kernels; docs/FORMAT.md describes
 * the same layout in prose. Everything here is plain C99 that nvcc also compiles; the inline
 * helpers are __host__ __device__ under nvcc.
 *
 * A BF16 weight w (bits s eeeeeeee mmmmmmm) is split into
 *   - the sign+mantissa byte  sm = (s << 7) | mmmmmmm   (kept raw, one byte per weight), and
 *   - the exponent byte       e  = eeeeeeee             (Huffman-coded per tensor).
 *
 * Coded tensor blob (all integers little-endian; every section starts 16-byte aligned and every
 * padding byte is zero):
 *
 *   offset size  field
 *   0      4     magic "TSC1"
 *   4      1     mode: 0 RAW, 1 CONST, 2 HUFF
 *   5      1     max_code_bits L (HUFF: longest code length, 1..12; else 0)
 *   6      1     seg_log2: weights per segment S = 2^seg_log2 (HUFF: 6..14; else 0)
 *   7      1     len_width w: bits per segment-length field (HUFF: 0..24; else 0)
 *   8      8     n_elems
 *   16     8     rows    (segmentation geometry: rows * cols == n_elems; cols = last dim)
 *   24     8     cols
 *   32     8     exp_bits: bits in the exponent stream (HUFF; else 0)
 *   40     4     seg_bits_min: shortest segment in bits (HUFF; else 0)
 *   44     1     elem_size: bytes per element (RAW: 1..8; CONST, HUFF: 2)
 *   45     1     const_exp: the exponent of every weight (CONST; else 0)
 *   46     18    reserved, zero
 *   64     128   HUFF only: code length of symbol s (0 = absent) in the low nibble of byte
 *                64 + s/2 for even s, high nibble for odd s
 *
 *   RAW   : at 64: raw element bytes (n_elems * elem_size), padded to 16
 *   CONST : at 64: plane (n_elems bytes), padded to 16
 *   HUFF  : at 192: plane | group bases | segment lengths | exponent stream, each padded to 16:
 *     plane        n_elems sign+mantissa bytes in element order
 *     group bases  n_groups u64: bit offset of the first segment of each group of
 *                  TSEAL_SEGS_PER_GROUP consecutive segments (n_groups = ceil(n_segs / 32))
 *     seg lengths  n_segs fields of w bits, LSB-first (field j is bits [j*w, j*w+w) where bit
 *                  b is bit b%8 of byte b/8); segment j is seg_bits_min + field j bits long
 *     exp stream   the segments' codes back to back, MSB-first (bit p is bit 7-p%8 of byte
 *                  p/8), then zero bits to a byte boundary, then exactly TSEAL_EXP_SLACK zero
 *                  bytes (so decoders may load 8 bytes at any position inside the stream),
 *                  then zero padding to 16
 * The blob ends right after its last section's padding: its size is determined by the header.
 *
 * Segments: each row of `cols` weights is cut into ceil(cols / S) segments of S weights (the
 * last one of a row may be shorter); segment j covers row j / segs_per_row, columns
 * (j % segs_per_row) * S onwards. Every segment is decodable on its own from its start bit
 * (group base + lengths of the earlier segments of its group), so a GPU thread, a CPU thread
 * or a warp multiplying a row can start anywhere. A segment must decode to exactly its weight
 * count in exactly its length in bits.
 *
 * Codes are canonical: symbols sorted by (length, value) get consecutive codes; the code
 * lengths must satisfy Kraft's equality (sum 2^-len == 1) and there must be >= 2 symbols
 * (one-symbol tensors use CONST).
 */
#ifndef TSEAL_LAYOUT_H
#define TSEAL_LAYOUT_H

#include <stdint.h>

#if defined(__CUDACC__)
#define TSEAL_HD static inline __host__ __device__
#else
#define TSEAL_HD static inline
#endif

#define TSEAL_CT_MAGIC        "TSC1"
#define TSEAL_CT_HEADER_BYTES 64
#define TSEAL_CT_LENS_BYTES   128 /* 256 code lengths, 4 bits each */
#define TSEAL_CT_ALIGN        16
#define TSEAL_CT_MODE_RAW     0
#define TSEAL_CT_MODE_CONST   1
#define TSEAL_CT_MODE_HUFF    2

#define TSEAL_HUFF_MAX_BITS     12 /* longest code: the decode table has 2^12 entries */
#define TSEAL_SEG_LOG2_MIN      6
#define TSEAL_SEG_LOG2_MAX      14
#define TSEAL_SEG_LOG2_DEFAULT  11
#define TSEAL_SEG_LEN_WIDTH_MAX 24
#define TSEAL_SEGS_PER_GROUP    32 /* one warp's worth of segments per group base */
#define TSEAL_EXP_SLACK         8  /* zero bytes guaranteed after the exponent stream */

/*
 * Multi-symbol decode table entry (decoders build it from the code lengths; not stored):
 * indexed by the next TSEAL_HUFF_MAX_BITS stream bits, it holds up to 3 symbols whose codes
 * fit entirely in those bits.
 *   bits 0..23  symbols (first symbol in bits 0..7)
 *   bits 24..25 symbol count (1..3)
 *   bits 26..29 bits consumed (sum of the code lengths, 1..12)
 */
#define TSEAL_DTAB_BITS     TSEAL_HUFF_MAX_BITS
#define TSEAL_DTAB_SIZE     (1u << TSEAL_DTAB_BITS)
#define TSEAL_DTAB_MAX_SYMS 3
#define TSEAL_DTAB_COUNT(e) (((e) >> 24) & 3u)
#define TSEAL_DTAB_NBITS(e) (((e) >> 26) & 15u)
#define TSEAL_DTAB_MAKE(syms, count, nbits)                                                        \
    ((uint32_t)(syms) | ((uint32_t)(count) << 24) | ((uint32_t)(nbits) << 26))
/* Single-symbol entry (tails, references): symbol in bits 0..7, code length in bits 8..11. */
#define TSEAL_STAB_SYM(e) ((e)&0xFFu)
#define TSEAL_STAB_LEN(e) (((e) >> 8) & 15u)

/* Parsed view of a coded blob (pointers into the blob; see tseal_codec_view). */
typedef struct tseal_ct_view {
    uint8_t mode;
    uint8_t max_code_bits;
    uint8_t seg_log2;
    uint8_t len_width;
    uint8_t elem_size;
    uint8_t const_exp;
    uint32_t seg_bits_min;
    uint64_t n_elems;
    uint64_t rows, cols;
    uint64_t segs_per_row;
    uint64_t n_segs;
    uint64_t n_groups;
    uint64_t exp_bits;
    uint64_t exp_bytes; /* stream bytes including the zero slack */
    uint8_t code_len[256];
    const uint8_t *group_base; /* n_groups little-endian u64 */
    const uint8_t *seg_lens;   /* packed fields */
    const uint8_t *exp_stream;
    const uint8_t *plane; /* CONST, HUFF */
    const uint8_t *raw;   /* RAW */
    uint64_t blob_bytes;
} tseal_ct_view;

TSEAL_HD uint8_t tseal_bf16_sm(uint16_t w) {
    return (uint8_t)(((w >> 8) & 0x80u) | (w & 0x7Fu));
}
TSEAL_HD uint8_t tseal_bf16_exp(uint16_t w) {
    return (uint8_t)((w >> 7) & 0xFFu);
}
TSEAL_HD uint16_t tseal_bf16_join(uint8_t sm, uint8_t e) {
    return (uint16_t)(((uint32_t)(sm & 0x80u) << 8) | ((uint32_t)e << 7) | (sm & 0x7Fu));
}

TSEAL_HD uint64_t tseal_align16(uint64_t x) {
    return (x + 15u) & ~(uint64_t)15u;
}

TSEAL_HD uint64_t tseal_load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Offsets of a HUFF blob's sections (the view's geometry fields must be set). */
TSEAL_HD void tseal_ct_huff_sections(const tseal_ct_view *v, uint64_t *plane_off,
                                     uint64_t *bases_off, uint64_t *lens_off, uint64_t *exp_off) {
    *plane_off = 64 + 128; /* header + code lengths */
    *bases_off = *plane_off + tseal_align16(v->n_elems);
    *lens_off = *bases_off + tseal_align16(8 * v->n_groups);
    *exp_off = *lens_off + tseal_align16((v->n_segs * v->len_width + 7) / 8);
}

/* Segment geometry. */
TSEAL_HD uint64_t tseal_ct_seg_row(const tseal_ct_view *v, uint64_t j) {
    return j / v->segs_per_row;
}
TSEAL_HD uint64_t tseal_ct_seg_first(const tseal_ct_view *v, uint64_t j) {
    uint64_t row = j / v->segs_per_row, c = j % v->segs_per_row;
    return row * v->cols + (c << v->seg_log2);
}
TSEAL_HD uint32_t tseal_ct_seg_nsyms(const tseal_ct_view *v, uint64_t j) {
    uint64_t c0 = (j % v->segs_per_row) << v->seg_log2;
    uint64_t left = v->cols - c0, s = (uint64_t)1 << v->seg_log2;
    return (uint32_t)(left < s ? left : s);
}
/* Length in bits of segment j. */
TSEAL_HD uint32_t tseal_ct_seg_bits(const tseal_ct_view *v, uint64_t j) {
    uint32_t w = v->len_width;
    if (w == 0) return v->seg_bits_min;
    uint64_t bit = j * w;
    const uint8_t *p = v->seg_lens + (bit >> 3);
    uint32_t sh = (uint32_t)(bit & 7), need = (sh + w + 7) >> 3;
    uint64_t acc = 0;
    for (uint32_t i = 0; i < need; i++) acc |= (uint64_t)p[i] << (8 * i);
    return v->seg_bits_min + (uint32_t)((acc >> sh) & ((1u << w) - 1u));
}
/* Starting bit of segment j: its group's base plus the lengths of the group's earlier ones. */
TSEAL_HD uint64_t tseal_ct_seg_start(const tseal_ct_view *v, uint64_t j) {
    uint64_t g = j / TSEAL_SEGS_PER_GROUP;
    uint64_t pos = tseal_load_le64(v->group_base + 8 * g);
    for (uint64_t k = g * TSEAL_SEGS_PER_GROUP; k < j; k++) pos += tseal_ct_seg_bits(v, k);
    return pos;
}

#endif /* TSEAL_LAYOUT_H */
