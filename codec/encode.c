/*
 * encode.c - BF16 tensor -> coded blob (layout: tseal_layout.h).
 *
 * Three passes over the input: the exponent histogram (which gives the code and the exact
 * stream size), the plane (vectorised, straight into the blob at its fixed offset), and the
 * exponent stream (into a buffer of exact size, copied in once the length width is known).
 * RAW, CONST or HUFF is chosen by size.
 */
#include <math.h>
#include <stdlib.h>

#include "huffman.h"
#include "internal.h"

typedef struct {
    uint64_t n, rows, cols;
    uint64_t hist[256];
    unsigned nsym;
    uint8_t len[256];
    uint16_t code[256];
    unsigned seg_log2, longest;
    uint64_t segs_per_row, n_segs, n_groups;
    uint32_t *seg_bits; /* n_segs */
    uint32_t seg_min, seg_max;
    unsigned width;
    uint64_t exp_bits;
} enc_state;

static void histogram(const uint16_t *x, uint64_t n, uint64_t hist[256]) {
    /* Four sub-histograms break the store-to-load dependency on repeated values. */
    uint32_t h[4][256];
    memset(h, 0, sizeof h); /* adds to hist: the streaming encoder calls this per chunk */
    uint64_t i = 0;
    while (i < n) {
        uint64_t stop = n - i > (1u << 30) ? i + (1u << 30) : n; /* flush before u32 overflow */
        for (; i + 4 <= stop; i += 4) {
            h[0][tseal_bf16_exp(x[i])]++;
            h[1][tseal_bf16_exp(x[i + 1])]++;
            h[2][tseal_bf16_exp(x[i + 2])]++;
            h[3][tseal_bf16_exp(x[i + 3])]++;
        }
        for (; i < stop; i++) h[0][tseal_bf16_exp(x[i])]++;
        for (unsigned s = 0; s < 256; s++) {
            hist[s] += (uint64_t)h[0][s] + h[1][s] + h[2][s] + h[3][s];
            h[0][s] = h[1][s] = h[2][s] = h[3][s] = 0;
        }
    }
}

static int check_args(uint64_t rows, uint64_t cols, const tseal_codec_params *p, uint64_t *n) {
    if (tseal_mul_ovf(rows, cols, n) || *n > (UINT64_MAX >> 8))
        return tseal_err(TSEAL_E_INVAL, "tensor of %llu x %llu elements is too large",
                         (unsigned long long)rows, (unsigned long long)cols);
    if (p->max_code_bits < 1 || p->max_code_bits > TSEAL_HUFF_MAX_BITS ||
        p->seg_log2 < TSEAL_SEG_LOG2_MIN || p->seg_log2 > TSEAL_SEG_LOG2_MAX)
        return tseal_err(TSEAL_E_INVAL, "codec parameters out of range (code bits %u, seg_log2 %u)",
                         p->max_code_bits, p->seg_log2);
    return 0;
}

static double entropy(const uint64_t hist[256], uint64_t n);

static void fill_stats(const enc_state *e, uint8_t mode, uint64_t total, tseal_codec_stats *st) {
    memset(st, 0, sizeof *st);
    st->mode = mode;
    st->n_elems = e->n;
    st->n_symbols = e->nsym;
    st->exp_entropy_bits = e->n ? entropy(e->hist, e->n) : 0;
    if (mode == TSEAL_CT_MODE_HUFF) {
        st->exp_stream_bits = e->exp_bits;
        st->index_bytes = 8 * e->n_groups + (e->n_segs * e->width + 7) / 8;
    }
    st->total_bytes = total;
}

static double entropy(const uint64_t hist[256], uint64_t n) {
    double h = 0;
    for (unsigned s = 0; s < 256; s++) {
        if (!hist[s]) continue;
        double p = (double)hist[s] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

static uint64_t raw_size(uint64_t n, unsigned elem) {
    return TSEAL_CT_HEADER_BYTES + tseal_align16(n * elem);
}
static uint64_t const_size(uint64_t n) {
    return TSEAL_CT_HEADER_BYTES + tseal_align16(n);
}

static uint64_t huff_size(const enc_state *e, uint64_t *bases_off, uint64_t *lens_off,
                          uint64_t *exp_off) {
    uint64_t plane_off = TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES;
    *bases_off = plane_off + tseal_align16(e->n);
    *lens_off = *bases_off + tseal_align16(8 * e->n_groups);
    *exp_off = *lens_off + tseal_align16((e->n_segs * e->width + 7) / 8);
    return *exp_off + tseal_align16((e->exp_bits + 7) / 8 + TSEAL_EXP_SLACK);
}

static void write_header(uint8_t *b, uint8_t mode, const enc_state *e, uint8_t elem, uint8_t cexp) {
    memset(b, 0, TSEAL_CT_HEADER_BYTES);
    memcpy(b, TSEAL_CT_MAGIC, 4);
    b[4] = mode;
    tseal_store_le64(b + 8, e->n);
    tseal_store_le64(b + 16, e->rows);
    tseal_store_le64(b + 24, e->cols);
    b[44] = elem;
    b[45] = cexp;
    if (mode == TSEAL_CT_MODE_HUFF) {
        b[5] = (uint8_t)e->longest;
        b[6] = (uint8_t)e->seg_log2;
        b[7] = (uint8_t)e->width;
        tseal_store_le64(b + 32, e->exp_bits);
        tseal_store_le32(b + 40, e->seg_min);
    }
}

static int encode_raw(const uint16_t *x, enc_state *e, tseal_buf *out) {
    uint64_t size = raw_size(e->n, 2);
    uint8_t *b = calloc(1, size);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    write_header(b, TSEAL_CT_MODE_RAW, e, 2, 0);
    for (uint64_t i = 0; i < e->n; i++) { /* little-endian regardless of the host */
        b[TSEAL_CT_HEADER_BYTES + 2 * i] = (uint8_t)x[i];
        b[TSEAL_CT_HEADER_BYTES + 2 * i + 1] = (uint8_t)(x[i] >> 8);
    }
    out->data = b;
    out->size = size;
    return 0;
}

static void write_plane(const uint16_t *x, uint64_t n, uint8_t *plane) {
    for (uint64_t i = 0; i < n; i++) plane[i] = tseal_bf16_sm(x[i]);
}

static int encode_const(const uint16_t *x, enc_state *e, tseal_buf *out) {
    uint64_t size = const_size(e->n);
    uint8_t *b = calloc(1, size);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)size);
    write_header(b, TSEAL_CT_MODE_CONST, e, 2, tseal_bf16_exp(x[0]));
    write_plane(x, e->n, b + TSEAL_CT_HEADER_BYTES);
    out->data = b;
    out->size = size;
    return 0;
}

static void width_from_lengths(enc_state *e) {
    e->seg_min = UINT32_MAX;
    e->seg_max = 0;
    for (uint64_t j = 0; j < e->n_segs; j++) {
        if (e->seg_bits[j] < e->seg_min) e->seg_min = e->seg_bits[j];
        if (e->seg_bits[j] > e->seg_max) e->seg_max = e->seg_bits[j];
    }
    uint32_t span = e->seg_max - e->seg_min;
    e->width = 0;
    while (e->width < 32 && (span >> e->width) != 0) e->width++;
}

static void write_index(const enc_state *e, uint8_t *bases, uint8_t *lens) {
    uint64_t pos = 0;
    for (uint64_t j = 0; j < e->n_segs; j++) {
        if (j % TSEAL_SEGS_PER_GROUP == 0)
            tseal_store_le64(bases + 8 * (j / TSEAL_SEGS_PER_GROUP), pos);
        pos += e->seg_bits[j];
        uint64_t field = e->seg_bits[j] - e->seg_min, bit = j * e->width;
        for (unsigned k = 0; k < e->width; k++, bit++)
            if ((field >> k) & 1) lens[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

static inline void store_be64(uint8_t *p, uint64_t v) {
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

/*
 * MSB-first bit writer: `acc` holds `nacc` (< 8 after a flush) pending bits left-aligned, so
 * four codes (<= 48 bits) are appended between two flushes. A flush stores 8 bytes and
 * advances by the whole bytes; the stream buffer has 8 bytes of slack for that store.
 */
typedef struct {
    uint8_t *out;
    uint64_t acc;
    unsigned nacc;
    uint64_t flushed; /* bytes completed */
} bitwriter;

static inline void bw_put(bitwriter *w, uint64_t code, unsigned len) {
    w->acc |= (uint64_t)code << (64 - w->nacc - len);
    w->nacc += len;
}

static inline void bw_flush(bitwriter *w) {
    store_be64(w->out + w->flushed, w->acc);
    unsigned bytes = w->nacc >> 3;
    w->flushed += bytes;
    w->acc <<= 8 * bytes; /* bytes <= 6: at most 7 + 48 bits are pending */
    w->nacc &= 7;
}

/* Encode one segment's exponents: four codes are chained into one value first, so the
 * writer's position advances once per four weights. */
static void encode_segment(const uint16_t *x, uint32_t cnt, const uint32_t *tab, bitwriter *w) {
    uint32_t k = 0;
    for (; k + 4 <= cnt; k += 4) {
        uint32_t t0 = tab[tseal_bf16_exp(x[k])], t1 = tab[tseal_bf16_exp(x[k + 1])];
        uint32_t t2 = tab[tseal_bf16_exp(x[k + 2])], t3 = tab[tseal_bf16_exp(x[k + 3])];
        uint64_t v = t0 >> 4;
        v = (v << (t1 & 15)) | (t1 >> 4);
        v = (v << (t2 & 15)) | (t2 >> 4);
        v = (v << (t3 & 15)) | (t3 >> 4);
        bw_put(w, v, (t0 & 15) + (t1 & 15) + (t2 & 15) + (t3 & 15));
        bw_flush(w);
    }
    for (; k < cnt; k++) {
        uint32_t t = tab[tseal_bf16_exp(x[k])];
        bw_put(w, t >> 4, t & 15);
        bw_flush(w);
    }
}

/* Pass 2: the exponent stream; segment lengths from the writer's positions. */
static void encode_all(const uint16_t *x, enc_state *e, uint8_t *stream) {
    uint32_t tab[256];
    for (unsigned s = 0; s < 256; s++) tab[s] = (uint32_t)e->code[s] << 4 | e->len[s];
    uint64_t seg = (uint64_t)1 << e->seg_log2, prev = 0;
    bitwriter w = {stream, 0, 0, 0};
    for (uint64_t j = 0; j < e->n_segs; j++) {
        uint64_t row = j / e->segs_per_row, c0 = (j % e->segs_per_row) * seg;
        uint32_t cnt = (uint32_t)(e->cols - c0 < seg ? e->cols - c0 : seg);
        uint64_t first = row * e->cols + c0;
        encode_segment(x + first, cnt, tab, &w);
        uint64_t pos = 8 * w.flushed + w.nacc;
        e->seg_bits[j] = (uint32_t)(pos - prev);
        prev = pos;
    }
}

static int encode_huff(const uint16_t *x, enc_state *e, tseal_buf *out) {
    uint64_t bases_off, lens_off, exp_off;
    uint64_t stream_bytes = (e->exp_bits + 7) / 8 + TSEAL_EXP_SLACK;
    uint8_t *stream = calloc(1, stream_bytes);
    e->width = TSEAL_SEG_LEN_WIDTH_MAX; /* upper bound until the lengths are known */
    uint64_t max_size = huff_size(e, &bases_off, &lens_off, &exp_off);
    uint8_t *b = calloc(1, max_size);
    if (!b || !stream) {
        free(b);
        free(stream);
        return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)max_size);
    }
    write_plane(x, e->n, b + TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES);
    encode_all(x, e, stream);
    width_from_lengths(e);
    uint64_t size = huff_size(e, &bases_off, &lens_off, &exp_off);
    write_header(b, TSEAL_CT_MODE_HUFF, e, 2, 0);
    for (unsigned s = 0; s < 256; s++)
        b[TSEAL_CT_HEADER_BYTES + s / 2] |= (uint8_t)(e->len[s] << (4 * (s & 1)));
    write_index(e, b + bases_off, b + lens_off);
    memcpy(b + exp_off, stream, stream_bytes);
    free(stream);
    uint64_t written = 0;
    for (uint64_t j = 0; j < e->n_segs; j++) written += e->seg_bits[j];
    if (written != e->exp_bits) {
        free(b);
        return tseal_err(TSEAL_E_INTERNAL, "encoder wrote %llu bits, planned %llu",
                         (unsigned long long)written, (unsigned long long)e->exp_bits);
    }
    uint8_t *shrunk = realloc(b, size);
    out->data = shrunk ? shrunk : b;
    out->size = size;
    return 0;
}

static int plan_huff(enc_state *e, unsigned limit) {
    while (limit < 8 && (1u << limit) < e->nsym) limit++; /* never fail: raise the limit */
    int r = tseal_huff_lengths(e->hist, limit, e->len);
    if (r) return r;
    tseal_huff_codes(e->len, e->code);
    e->longest = 0;
    e->exp_bits = 0;
    for (unsigned s = 0; s < 256; s++) {
        if (e->len[s] > e->longest) e->longest = e->len[s];
        e->exp_bits += e->hist[s] * e->len[s];
    }
    uint64_t seg = (uint64_t)1 << e->seg_log2;
    e->segs_per_row = e->cols / seg + (e->cols % seg != 0);
    e->n_segs = e->rows * e->segs_per_row;
    e->n_groups = (e->n_segs + TSEAL_SEGS_PER_GROUP - 1) / TSEAL_SEGS_PER_GROUP;
    e->seg_bits = malloc(e->n_segs * sizeof *e->seg_bits);
    if (!e->seg_bits)
        return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu segments)",
                         (unsigned long long)e->n_segs);
    /* Estimate the index with the widest fields: the real width is known after encoding. */
    e->width = TSEAL_SEG_LEN_WIDTH_MAX;
    return 0;
}

int tseal_codec_encode(const uint16_t *bf16, uint64_t rows, uint64_t cols,
                       const tseal_codec_params *params, tseal_buf *out, tseal_codec_stats *stats) {
    tseal_codec_params def;
    if (!params) {
        tseal_codec_params_default(&def);
        params = &def;
    }
    out->data = NULL;
    out->size = 0;
    enc_state e;
    memset(&e, 0, sizeof e);
    e.rows = rows;
    e.cols = cols;
    int bad = check_args(rows, cols, params, &e.n);
    if (bad) return bad;
    if (e.n > 0 && !bf16) return tseal_err(TSEAL_E_INVAL, "NULL input");
    e.seg_log2 = params->seg_log2;

    histogram(bf16, e.n, e.hist); /* e.hist starts zeroed */
    for (unsigned s = 0; s < 256; s++) e.nsym += e.hist[s] != 0;

    int r;
    uint8_t mode;
    if (e.n == 0) {
        mode = TSEAL_CT_MODE_RAW;
        r = encode_raw(bf16, &e, out);
    } else if (e.nsym == 1) {
        mode = TSEAL_CT_MODE_CONST;
        r = encode_const(bf16, &e, out);
    } else {
        r = plan_huff(&e, params->max_code_bits);
        mode = TSEAL_CT_MODE_HUFF;
        if (r == 0) r = encode_huff(bf16, &e, out);
        if (r == 0 && out->size >= raw_size(e.n, 2)) { /* coding does not pay */
            tseal_buf_free(out);
            mode = TSEAL_CT_MODE_RAW;
            r = encode_raw(bf16, &e, out);
        }
    }
    if (r == 0 && stats) {
        fill_stats(&e, mode, out->size, stats);
    }
    free(e.seg_bits);
    return r;
}

/* ---- streaming encoder ------------------------------------------------------------------- */

/*
 * Same blob, byte for byte, as tseal_codec_encode, for tensors too large to hold twice in
 * memory: the input is read through `rd` in chunks (four passes: histogram, segment lengths,
 * plane, exponent stream) and the blob leaves through `wr` in order. Memory: one input chunk,
 * one output buffer and the segment lengths (4 bytes per segment).
 */
#define STREAM_CHUNK ((uint64_t)1 << 20) /* elements per read */
#define STREAM_OUT   ((size_t)1 << 20)   /* bytes per write */

typedef struct {
    tseal_read_fn rd;
    void *rctx;
    tseal_write_fn wr;
    void *wctx;
    uint16_t *in;
    uint8_t *out; /* STREAM_OUT + 16 bytes */
    uint64_t written;
} stream_io;

static int s_emit(stream_io *io, const void *p, size_t n) {
    int r = n ? io->wr(io->wctx, p, n) : 0;
    io->written += n;
    return r;
}

static int s_zeros(stream_io *io, uint64_t n) {
    static const uint8_t z[64];
    int r = 0;
    while (n && r == 0) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        r = s_emit(io, z, k);
        n -= k;
    }
    return r;
}

/* Read elements [first, first + n) (n <= STREAM_CHUNK) into io->in. */
static int s_read(stream_io *io, uint64_t first, uint64_t n) {
    return io->rd(io->rctx, first, io->in, n);
}

static int s_histogram(stream_io *io, enc_state *e) {
    for (uint64_t i = 0; i < e->n; i += STREAM_CHUNK) {
        uint64_t k = e->n - i < STREAM_CHUNK ? e->n - i : STREAM_CHUNK;
        int r = s_read(io, i, k);
        if (r) return r;
        histogram(io->in, k, e->hist);
    }
    return 0;
}

/* Plane (CONST, HUFF) or raw little-endian values (RAW), then padding to 16. */
static int s_elements(stream_io *io, const enc_state *e, int raw) {
    for (uint64_t i = 0; i < e->n; i += STREAM_CHUNK) {
        uint64_t k = e->n - i < STREAM_CHUNK ? e->n - i : STREAM_CHUNK;
        int r = s_read(io, i, k);
        for (uint64_t done = 0; r == 0 && done < k;) {
            uint64_t m = k - done;
            if (raw && m > STREAM_OUT / 2) m = STREAM_OUT / 2;
            if (!raw && m > STREAM_OUT) m = STREAM_OUT;
            for (uint64_t j = 0; j < m; j++) {
                uint16_t v = io->in[done + j];
                if (raw) {
                    io->out[2 * j] = (uint8_t)v;
                    io->out[2 * j + 1] = (uint8_t)(v >> 8);
                } else {
                    io->out[j] = tseal_bf16_sm(v);
                }
            }
            r = s_emit(io, io->out, raw ? 2 * m : m);
            done += m;
        }
        if (r) return r;
    }
    uint64_t bytes = raw ? 2 * e->n : e->n;
    return s_zeros(io, tseal_align16(bytes) - bytes);
}

/* Pass 2: segment lengths from the code lengths, chunk by chunk in element order. */
static int s_measure(stream_io *io, enc_state *e) {
    uint64_t seg = (uint64_t)1 << e->seg_log2;
    memset(e->seg_bits, 0, e->n_segs * sizeof *e->seg_bits);
    for (uint64_t i = 0; i < e->n; i += STREAM_CHUNK) {
        uint64_t k = e->n - i < STREAM_CHUNK ? e->n - i : STREAM_CHUNK;
        int r = s_read(io, i, k);
        if (r) return r;
        for (uint64_t j = 0; j < k;) {
            uint64_t g = i + j, row = g / e->cols, col = g % e->cols;
            uint64_t sj = row * e->segs_per_row + col / seg;
            uint64_t run = seg - col % seg; /* elements left in this segment */
            if (run > e->cols - col) run = e->cols - col;
            if (run > k - j) run = k - j;
            uint32_t bits = 0;
            for (uint64_t t = 0; t < run; t++) bits += e->len[tseal_bf16_exp(io->in[j + t])];
            e->seg_bits[sj] += bits;
            j += run;
        }
    }
    width_from_lengths(e);
    return 0;
}

/* Pass 4: the exponent stream through a bounded buffer. Segments are contiguous in element
 * order, so one bit writer runs across the whole tensor. */
static int s_stream(stream_io *io, const enc_state *e) {
    uint32_t tab[256];
    for (unsigned s = 0; s < 256; s++) tab[s] = (uint32_t)e->code[s] << 4 | e->len[s];
    bitwriter w = {io->out, 0, 0, 0};
    for (uint64_t i = 0; i < e->n; i += STREAM_CHUNK) {
        uint64_t k = e->n - i < STREAM_CHUNK ? e->n - i : STREAM_CHUNK;
        int r = s_read(io, i, k);
        if (r) return r;
        for (uint64_t j = 0; j < k;) {
            uint64_t m = k - j < 4096 ? k - j : 4096; /* <= 4096 * 12 bits before a drain */
            uint32_t cnt = (uint32_t)(m & ~(uint64_t)3);
            encode_segment(io->in + j, cnt, tab, &w);
            for (uint64_t t = cnt; t < m; t++) {
                uint32_t c = tab[tseal_bf16_exp(io->in[j + t])];
                bw_put(&w, c >> 4, c & 15);
                bw_flush(&w);
            }
            j += m;
            if (w.flushed > STREAM_OUT - 8192) {
                r = s_emit(io, io->out, w.flushed);
                if (r) return r;
                w.flushed = 0;
            }
        }
    }
    /* Last partial byte: the pending bits are left-aligned in acc. */
    unsigned tail = (w.nacc + 7) / 8;
    for (unsigned b = 0; b < tail; b++) io->out[w.flushed + b] = (uint8_t)(w.acc >> (56 - 8 * b));
    int r = s_emit(io, io->out, w.flushed + tail);
    uint64_t exp_bytes = (e->exp_bits + 7) / 8 + TSEAL_EXP_SLACK;
    return r ? r : s_zeros(io, tseal_align16(exp_bytes) - (exp_bytes - TSEAL_EXP_SLACK));
}

static int s_huff(stream_io *io, enc_state *e, uint64_t *size) {
    uint64_t bases_off, lens_off, exp_off;
    *size = huff_size(e, &bases_off, &lens_off, &exp_off);
    uint8_t hdr[TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES] = {0};
    write_header(hdr, TSEAL_CT_MODE_HUFF, e, 2, 0);
    for (unsigned s = 0; s < 256; s++)
        hdr[TSEAL_CT_HEADER_BYTES + s / 2] |= (uint8_t)(e->len[s] << (4 * (s & 1)));
    uint64_t index_bytes = exp_off - bases_off;
    uint8_t *index = calloc(1, index_bytes ? index_bytes : 1);
    if (!index) return tseal_err(TSEAL_E_NOMEM, "out of memory (segment index)");
    write_index(e, index, index + (lens_off - bases_off));
    int r = s_emit(io, hdr, sizeof hdr);
    if (!r) r = s_elements(io, e, 0);
    if (!r) r = s_emit(io, index, index_bytes);
    free(index);
    if (!r) r = s_stream(io, e);
    return r;
}

int tseal_codec_encode_stream(tseal_read_fn rd, void *rctx, uint64_t rows, uint64_t cols,
                              const tseal_codec_params *params, tseal_write_fn wr, void *wctx,
                              uint64_t *blob_size, tseal_codec_stats *stats) {
    tseal_codec_params def;
    if (!params) {
        tseal_codec_params_default(&def);
        params = &def;
    }
    enc_state e;
    memset(&e, 0, sizeof e);
    e.rows = rows;
    e.cols = cols;
    int bad = check_args(rows, cols, params, &e.n);
    if (bad) return bad;
    e.seg_log2 = params->seg_log2;
    stream_io io = {rd, rctx, wr, wctx, malloc(STREAM_CHUNK * 2), malloc(STREAM_OUT + 16), 0};
    int r = (!io.in || !io.out) ? tseal_err(TSEAL_E_NOMEM, "out of memory (encoder buffers)") : 0;
    if (!r) r = s_histogram(&io, &e);
    for (unsigned s = 0; s < 256; s++) e.nsym += e.hist[s] != 0;
    uint8_t mode = TSEAL_CT_MODE_RAW, hdr[TSEAL_CT_HEADER_BYTES];
    uint64_t size = 0;
    if (!r && e.nsym >= 2) {
        r = plan_huff(&e, params->max_code_bits);
        if (!r) r = s_measure(&io, &e);
        uint64_t a, b, c;
        if (!r && huff_size(&e, &a, &b, &c) < raw_size(e.n, 2)) {
            mode = TSEAL_CT_MODE_HUFF;
            r = s_huff(&io, &e, &size);
        }
    } else if (!r && e.nsym == 1) {
        mode = TSEAL_CT_MODE_CONST;
        r = s_read(&io, 0, 1);
        if (!r) {
            write_header(hdr, mode, &e, 2, tseal_bf16_exp(io.in[0]));
            size = const_size(e.n);
            r = s_emit(&io, hdr, sizeof hdr);
        }
        if (!r) r = s_elements(&io, &e, 0);
    }
    if (!r && mode == TSEAL_CT_MODE_RAW) {
        write_header(hdr, mode, &e, 2, 0);
        size = raw_size(e.n, 2);
        r = s_emit(&io, hdr, sizeof hdr);
        if (!r) r = s_elements(&io, &e, 1);
    }
    if (!r && io.written != size)
        r = tseal_err(TSEAL_E_INTERNAL, "streaming encoder wrote %llu bytes, planned %llu",
                      (unsigned long long)io.written, (unsigned long long)size);
    if (!r && blob_size) *blob_size = size;
    if (!r && stats) {
        fill_stats(&e, mode, size, stats);
    }
    free(io.in);
    free(io.out);
    free(e.seg_bits);
    return r;
}
