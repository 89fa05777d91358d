/*
 * decode_fast.c - the fast CPU decoder.
 *
 * Per 64-bit big-endian window load, four lookups in a 4096-entry table whose entries hold up
 * to three whole codes (so ~3 exponents per lookup at ~2.6 bits each), written with one 4-byte
 * store. Four segments are decoded interleaved so their independent dependency chains overlap,
 * and ranges of segments run on several threads. Exponents go to a small per-segment buffer
 * that stays in L1, then one vectorised pass joins them with the plane into BF16.
 *
 * Safety: the fast step runs only while >= 12 weights remain and the position is >= 48 bits
 * before the segment's end, so it never overruns a segment (it consumes at most 48 bits);
 * the tail decodes one code at a time with explicit bounds, and each segment must end exactly.
 * Loads stay inside the stream thanks to its TSEAL_EXP_SLACK zero bytes.
 */
#include <stdlib.h>

#include "huffman.h"
#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "decode_fast.c assumes a little-endian host"
#endif

#define FAST_LOOKUPS  4
#define FAST_MAX_BITS (FAST_LOOKUPS * TSEAL_DTAB_BITS)
#define FAST_MAX_SYMS (FAST_LOOKUPS * TSEAL_DTAB_MAX_SYMS)
#define LANES         4
#define LANE_SLACK    16 /* bytes past a segment's exponents that 4-byte stores may touch */

typedef struct {
    uint32_t multi[TSEAL_DTAB_SIZE];
    uint16_t single[TSEAL_DTAB_SIZE];
} dtabs;

typedef struct {
    uint64_t pos, end;
    uint8_t *o;
    uint32_t left;
} lane;

static inline uint64_t load_be64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline int fast_ok(const lane *l) {
    return l->left >= FAST_MAX_SYMS && l->pos + FAST_MAX_BITS <= l->end;
}

static inline void fast_step(const uint32_t *T, const uint8_t *s, lane *l) {
    uint64_t w = load_be64(s + (l->pos >> 3)) << (l->pos & 7);
    unsigned used = 0, syms = 0;
    for (int k = 0; k < FAST_LOOKUPS; k++) {
        uint32_t e = T[w >> (64 - TSEAL_DTAB_BITS)];
        memcpy(l->o + syms, &e, 4);
        syms += TSEAL_DTAB_COUNT(e);
        used += TSEAL_DTAB_NBITS(e);
        w <<= TSEAL_DTAB_NBITS(e);
    }
    l->o += syms;
    l->pos += used;
    l->left -= syms;
}

/*
 * Finish a segment alone: fast steps while safe, then whole table entries while they fit in
 * the weights and bits left, then single codes; the segment must end exactly. State lives in
 * locals so the compiler keeps it in registers.
 */
static int finish_lane(const dtabs *t, const uint8_t *s, lane *ln, uint64_t seg) {
    lane l = *ln;
    while (fast_ok(&l)) fast_step(t->multi, s, &l);
    uint64_t pos = l.pos, end = l.end;
    uint8_t *o = l.o;
    uint32_t left = l.left;
    while (left) {
        uint64_t w = load_be64(s + (pos >> 3)) << (pos & 7);
        uint32_t e = t->multi[w >> (64 - TSEAL_DTAB_BITS)];
        if (TSEAL_DTAB_COUNT(e) <= left && pos + TSEAL_DTAB_NBITS(e) <= end) {
            memcpy(o, &e, 4);
            o += TSEAL_DTAB_COUNT(e);
            left -= TSEAL_DTAB_COUNT(e);
            pos += TSEAL_DTAB_NBITS(e);
            continue;
        }
        uint16_t e1 = t->single[w >> (64 - TSEAL_DTAB_BITS)];
        if (pos + TSEAL_STAB_LEN(e1) > end)
            return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segment %llu overruns its length",
                             (unsigned long long)seg);
        *o++ = (uint8_t)TSEAL_STAB_SYM(e1);
        pos += TSEAL_STAB_LEN(e1);
        left--;
    }
    if (pos != end)
        return tseal_err(TSEAL_E_CORRUPT, "coded tensor: segment %llu ends %llu bits early",
                         (unsigned long long)seg, (unsigned long long)(end - pos));
    return 0;
}

static void join_plane(const uint8_t *plane, const uint8_t *exps, uint16_t *out, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        out[i] =
            (uint16_t)(((plane[i] & 0x80u) << 8) | ((unsigned)exps[i] << 7) | (plane[i] & 0x7Fu));
}

typedef struct {
    const tseal_ct_view *v;
    const dtabs *t;
    uint16_t *out; /* receives elements from elem0 on */
    uint64_t elem0;
    uint64_t seg0, seg1; /* segments to decode */
    uint64_t segs_per_item;
} job;

static int decode_range(void *arg, unsigned item) {
    const job *jb = arg;
    const tseal_ct_view *v = jb->v;
    uint64_t j0 = jb->seg0 + (uint64_t)item * jb->segs_per_item;
    uint64_t j1 = j0 + jb->segs_per_item < jb->seg1 ? j0 + jb->segs_per_item : jb->seg1;
    size_t stride = ((size_t)1 << v->seg_log2) + LANE_SLACK;
    uint8_t *buf = malloc(LANES * stride);
    if (!buf) return tseal_err(TSEAL_E_NOMEM, "out of memory in the decoder");
    uint64_t pos = tseal_ct_seg_start(v, j0);
    int r = 0;
    for (uint64_t j = j0; j < j1 && r == 0; j += LANES) {
        unsigned k = j1 - j < LANES ? (unsigned)(j1 - j) : LANES;
        lane ln[LANES];
        for (unsigned i = 0; i < k; i++) {
            ln[i].pos = pos;
            ln[i].end = pos = pos + tseal_ct_seg_bits(v, j + i);
            ln[i].o = buf + i * stride;
            ln[i].left = tseal_ct_seg_nsyms(v, j + i);
        }
        if (k == LANES) {
            while (fast_ok(&ln[0]) && fast_ok(&ln[1]) && fast_ok(&ln[2]) && fast_ok(&ln[3])) {
                fast_step(jb->t->multi, v->exp_stream, &ln[0]);
                fast_step(jb->t->multi, v->exp_stream, &ln[1]);
                fast_step(jb->t->multi, v->exp_stream, &ln[2]);
                fast_step(jb->t->multi, v->exp_stream, &ln[3]);
            }
        }
        for (unsigned i = 0; i < k && r == 0; i++) {
            r = finish_lane(jb->t, v->exp_stream, &ln[i], j + i);
            if (r == 0) {
                uint64_t first = tseal_ct_seg_first(v, j + i);
                join_plane(v->plane + first, buf + i * stride, jb->out + (first - jb->elem0),
                           tseal_ct_seg_nsyms(v, j + i));
            }
        }
    }
    free(buf);
    return r;
}

static void join_const(const tseal_ct_view *v, uint64_t first, uint64_t n, uint16_t *out) {
    const uint8_t *p = v->plane + first;
    unsigned e = (unsigned)v->const_exp << 7;
    for (uint64_t i = 0; i < n; i++)
        out[i] = (uint16_t)(((p[i] & 0x80u) << 8) | e | (p[i] & 0x7Fu));
}

int tseal_codec_decode_rows(const tseal_ct_view *v, uint64_t row_begin, uint64_t row_end, void *out,
                            unsigned nthreads) {
    if (row_begin > row_end || row_end > v->rows)
        return tseal_err(TSEAL_E_INVAL, "rows [%llu, %llu) outside the tensor's %llu rows",
                         (unsigned long long)row_begin, (unsigned long long)row_end,
                         (unsigned long long)v->rows);
    uint64_t first = row_begin * v->cols, n = (row_end - row_begin) * v->cols;
    switch (v->mode) {
    case TSEAL_CT_MODE_RAW:
        memcpy(out, v->raw + first * v->elem_size, n * v->elem_size);
        return 0;
    case TSEAL_CT_MODE_CONST:
        join_const(v, first, n, out);
        return 0;
    case TSEAL_CT_MODE_HUFF:
        break;
    default:
        return tseal_err(TSEAL_E_INVAL, "coded tensor: unknown mode %u", v->mode);
    }
    if (n == 0) return 0;
    dtabs *t = malloc(sizeof *t);
    if (!t) return tseal_err(TSEAL_E_NOMEM, "out of memory in the decoder");
    tseal_huff_build_dtab(v->code_len, t->multi, t->single);

    if (nthreads == 0) nthreads = tseal_cpu_count();
    if (n < (1u << 18)) nthreads = 1; /* thread start-up would cost more than it saves */
    /* Several items per thread balance uneven segments; items hold whole groups of lanes. */
    uint64_t seg0 = row_begin * v->segs_per_row, seg1 = row_end * v->segs_per_row;
    uint64_t items = (uint64_t)nthreads * 8;
    uint64_t spi = (seg1 - seg0 + items - 1) / items;
    spi = (spi + LANES - 1) / LANES * LANES;
    if (spi < 16) spi = 16;
    job jb = {v, t, out, first, seg0, seg1, spi};
    int r = tseal_parallel((unsigned)((seg1 - seg0 + spi - 1) / spi), nthreads, decode_range, &jb);
    free(t);
    return r;
}

int tseal_codec_decode_fast(const tseal_ct_view *v, void *out, unsigned nthreads) {
    return tseal_codec_decode_rows(v, 0, v->rows, out, nthreads);
}
