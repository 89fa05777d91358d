/*
 * test_gemv.c - the fused decode+GEMV without a GPU:
 *   - the C reference (kernels/gemv_ref.c): its reduction order checked by hand on small cases,
 *     against a double-precision GEMV within a tolerance, and the fused reference over coded
 *     tensors bit for bit against the BF16 reference over the decoded weights;
 *   - the kernels' per-lane logic (kernels/gemv.cuh compiled as C): a warp is emulated by 32
 *     lanes in a loop, the shuffles (scan, tree) by arrays; the result must equal the C
 *     reference bit for bit for many shapes, segment sizes, batches, work plans, the vector
 *     and scalar load paths, RAW/CONST/HUFF tensors and special values (NaN results compare
 *     equal because both sides round every NaN to 0x7FC0);
 *   - start bits, plans (every segment covered once), rounding, corrupt streams, API errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemv.cuh"
#include "gemv_ref.h"
#include "huffman.h"
#include "internal.h"

/* ---- data ------------------------------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) {
    return ((double)(rng_next(s) >> 11) + 0.5) * 0x1p-53;
}

static uint16_t *alloc16(uint64_t n) {
    uint16_t *p = malloc((n ? n : 1) * 2);
    cr_assert_not_null(p);
    return p;
}

static void gen_gauss(uint16_t *w, uint64_t n, double sigma, uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i++) {
        double r = sqrt(-2.0 * log(rng_unit(&s))), t = 2.0 * M_PI * rng_unit(&s);
        w[i] = tseal_f32_to_bf16((float)(sigma * r * cos(t)));
    }
}

static const uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080,
                                    0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81,
                                    0xFF81, 0x7FFF, 0xFFFF, 0x7FA5, 0x3F80, 0xBF80};
#define N_SPECIALS (sizeof specials / sizeof *specials)

/* Every kind of tensor the encoder produces, plus special values. */
enum { G_GAUSS, G_SKEWED, G_BITS, G_CONST, G_SPECIALS, G_SPARSE, G_COUNT };

static void gen(int kind, uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed * 7919 + 11;
    switch (kind) {
    case G_GAUSS:
        gen_gauss(w, n, 0.02, seed);
        break;
    case G_SKEWED:
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            unsigned k = (unsigned)__builtin_ctzll(r | (1ull << 60));
            if (k > 100) k = 100;
            w[i] = (uint16_t)(((r >> 60) & 1u) << 15 | (127u - k) << 7 | ((r >> 40) & 0x7Fu));
        }
        break;
    case G_BITS:
        for (uint64_t i = 0; i < n; i++) w[i] = (uint16_t)rng_next(&s);
        break;
    case G_CONST:
        for (uint64_t i = 0; i < n; i++) w[i] = (uint16_t)((rng_next(&s) & 0x807Fu) | (120u << 7));
        break;
    case G_SPECIALS:
        gen_gauss(w, n, 0.5, seed);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            if (r % 17 == 0)
                w[i] = specials[(r >> 8) % N_SPECIALS];
            else if (r % 17 == 1)
                w[i] = (uint16_t)((r >> 16) & 0x807Fu); /* zero, subnormal */
        }
        break;
    default: /* sparse: 90% exact zeros */
        gen_gauss(w, n, 0.05, seed);
        for (uint64_t i = 0; i < n; i++)
            if (rng_next(&s) % 10) w[i] = (rng_next(&s) & 1) ? 0x8000 : 0;
        break;
    }
}

/* x: N(0, 1), optionally with special values (NaN, inf, zeros, subnormals). */
static uint16_t *gen_x(uint64_t n, int with_specials, uint64_t seed) {
    uint16_t *x = alloc16(n);
    gen_gauss(x, n, 1.0, seed ^ 0xABCDEF);
    if (with_specials) {
        uint64_t s = seed;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            if (r % 97 == 0) x[i] = specials[(r >> 8) % N_SPECIALS];
        }
    }
    return x;
}

typedef struct {
    tseal_buf blob;
    tseal_ct_view v;
    uint16_t *dec; /* decoded weights (tseal_codec_decode_ref), RAW: the element bytes */
} coded;

static void encode(const uint16_t *w, uint64_t rows, uint64_t cols, unsigned seg_log2,
                   unsigned limit, coded *c) {
    tseal_codec_params p = {.max_code_bits = (uint8_t)limit, .seg_log2 = (uint8_t)seg_log2};
    memset(c, 0, sizeof *c);
    int rc = tseal_codec_encode(w, rows, cols, &p, &c->blob, NULL);
    cr_assert_eq(rc, 0, "encode %llux%llu: %s", (unsigned long long)rows, (unsigned long long)cols,
                 tseal_errmsg());
    rc = tseal_codec_view(c->blob.data, c->blob.size, &c->v);
    cr_assert_eq(rc, 0, "view: %s", tseal_errmsg());
    c->dec = alloc16(rows * cols);
    rc = tseal_codec_decode_ref(&c->v, c->dec);
    cr_assert_eq(rc, 0, "decode: %s", tseal_errmsg());
    cr_assert(memcmp(c->dec, w, rows * cols * 2) == 0, "codec round trip not exact");
}

static void coded_free(coded *c) {
    tseal_buf_free(&c->blob);
    free(c->dec);
}

/* ---- the warp emulation ---------------------------------------------------------------------- */

typedef struct {
    tseal_gemv_args a;
    int kind;
    uint32_t dtab[TSEAL_DTAB_SIZE];
    uint16_t stab[TSEAL_DTAB_SIZE];
    int inline_chunks;  /* the kernel's TSEAL_GEMV_INLINE_CHUNKS (both forms give the same bits) */
    unsigned tile_log2; /* TILES tile width (0: automatic) */
    unsigned pair;      /* rows per lane asked of the plan (0: 1) */
} emu;

/* Kernel arguments over a host view (the device copy has the same bytes). */
static void emu_init(emu *e, const tseal_ct_view *v, const uint16_t *x, uint16_t *y,
                     unsigned batch) {
    memset(&e->a, 0, sizeof e->a);
    tseal_gemv_args *a = &e->a;
    if (v->mode == TSEAL_CT_MODE_HUFF) {
        e->kind = TSEAL_GEMV_KIND_HUFF;
        tseal_huff_build_dtab(v->code_len, e->dtab, e->stab);
        a->dtab = e->dtab;
        a->code_len = v->code_len;
        a->group_base = (const uint64_t *)(const void *)v->group_base;
        a->seg_lens = (const uint32_t *)(const void *)v->seg_lens;
        a->exp_words = (const uint32_t *)(const void *)v->exp_stream;
        a->plane = v->plane;
        a->n_segs = v->n_segs;
        a->exp_bits = v->exp_bits;
        a->seg_bits_min = v->seg_bits_min;
        a->len_width = v->len_width;
        a->plan.seg_log2 = v->seg_log2;
    } else if (v->mode == TSEAL_CT_MODE_CONST) {
        e->kind = TSEAL_GEMV_KIND_CONST;
        a->plane = v->plane;
        a->const_exp = v->const_exp;
        a->plan.seg_log2 = TSEAL_GEMV_FLAT_SEG_LOG2;
    } else {
        e->kind = TSEAL_GEMV_KIND_BF16;
        a->w = (const uint16_t *)(const void *)v->raw;
        a->plan.seg_log2 = TSEAL_GEMV_FLAT_SEG_LOG2;
    }
    a->plan.n = v->rows;
    a->plan.k = v->cols;
    a->x = x;
    a->y = y;
    a->batch = batch;
}

#define MAXB TSEAL_GEMV_MAX_BATCH

/* Start bits and lengths of the lanes' segments (HUFF; others: 0). The scan of the lengths is
 * emulated with arrays, once per run of consecutive segments (ROWS: the row group; TILES: each
 * row's tile), as the kernel runs one warp scan per run. */
static void emu_starts(const emu *e, const tseal_gemv_slot sl[32], uint64_t starts[32],
                       uint32_t lens[32]) {
    const tseal_gemv_args *a = &e->a;
    for (unsigned l = 0; l < 32; l++) {
        starts[l] = 0;
        lens[l] = 0;
        if (!sl[l].active) continue;
        const uint64_t j0 = sl[l].j0;
        const uint32_t count = sl[l].count;
        const uint64_t j = sl[l].row * a->plan.segs_per_row + sl[l].i;
        cr_assert(j >= j0 && j < j0 + count, "lane %u outside its run", l);
        if (e->kind != TSEAL_GEMV_KIND_HUFF) continue;
        uint32_t len_lo[32], len_hi[32], inc_lo[32], inc_hi[32];
        const int two = tseal_gemv_scan_two(j0, count);
        for (unsigned m = 0; m < 32; m++) {
            len_lo[m] = tseal_gemv_scan_len(a, j0, m, 0);
            len_hi[m] = two ? tseal_gemv_scan_len(a, j0, m, 1) : 0;
            inc_lo[m] = len_lo[m] + (m ? inc_lo[m - 1] : 0);
            inc_hi[m] = len_hi[m] + (m ? inc_hi[m - 1] : 0);
        }
        const unsigned src = tseal_gemv_scan_src(j0, j);
        tseal_gemv_scan_pick(a, j0, j, inc_lo[src] - len_lo[src], len_lo[src],
                             inc_hi[src] - len_hi[src], len_hi[src], &starts[l], &lens[l]);
    }
}

/* One warp step of a task of `pair` row groups: sl[h][l] is lane l's segment in group h; with
 * two groups every lane runs the kernel's pair path (tseal_gemv_segment2). */
static void emu_lanes(emu *e, unsigned pair, tseal_gemv_slot sl[2][32], int vec, unsigned nb,
                      tseal_gemv_err *err, float p[2][32][MAXB], uint64_t starts[2][32],
                      uint32_t lens[2][32]) {
    const tseal_gemv_args *a = &e->a;
    for (unsigned h = 0; h < pair; h++) emu_starts(e, sl[h], starts[h], lens[h]);
    for (unsigned l = 0; l < 32; l++) {
        uint32_t f[2] = {0, 0};
        for (unsigned h = 0; h < 2; h++)
            for (unsigned b = 0; b < MAXB; b++) p[h][l][b] = -0.0f;
        if (pair == 1) {
            if (sl[0][l].active)
                f[0] = tseal_gemv_segment(a, e->kind, vec, nb, e->inline_chunks, &sl[0][l],
                                          starts[0][l], lens[0][l], e->dtab, a->code_len, p[0][l]);
        } else {
            const tseal_gemv_slot s2[2] = {sl[0][l], sl[1][l]};
            const uint64_t st2[2] = {starts[0][l], starts[1][l]};
            const uint32_t len2[2] = {lens[0][l], lens[1][l]};
            cr_assert(s2[0].active || !s2[1].active, "lane %u: second row without a first", l);
            if (s2[1].active)
                cr_assert_eq(s2[0].i, s2[1].i, "lane %u: the rows' columns differ", l);
            tseal_gemv_segment2(a, e->kind, vec, nb, s2, st2, len2, e->dtab, a->code_len, p[0][l],
                                p[1][l], f);
        }
        for (unsigned h = 0; h < pair; h++)
            if (f[h]) tseal_gemv_flag(err, sl[h][l].row * a->plan.segs_per_row + sl[h][l].i, f[h]);
    }
}

/* The tree of shfl_down steps h = 1, 2, ... < hmax (a lane past 31 reads its own value). */
static void emu_tree(const tseal_gemv_slot sl[32], uint32_t hmax, unsigned batch,
                     float p[32][MAXB]) {
    for (uint32_t h = 1; h < hmax; h <<= 1) {
        float o[32][MAXB];
        memcpy(o, p, sizeof o);
        for (unsigned l = 0; l < 32; l++) {
            const unsigned src = l + h < 32 ? l + h : l;
            if (!sl[l].active || !tseal_gemv_tree_take(sl[l].rel, h, sl[l].lim)) continue;
            for (unsigned b = 0; b < batch; b++) p[l][b] = tseal_gemv_add(p[l][b], o[src][b]);
        }
    }
}

/* Run the kernel's algorithm on the CPU: plan with min_tasks, every task, the combine step. */
static void emu_run(emu *e, int vec, unsigned nb, uint64_t min_tasks, tseal_gemv_err *err) {
    tseal_gemv_args *a = &e->a;
    const uint64_t n = a->plan.n, k = a->plan.k;
    tseal_gemv_plan_make_tile(n, k, a->plan.seg_log2, min_tasks, e->tile_log2,
                              e->pair ? e->pair : 1, &a->plan);
    const tseal_gemv_plan *pl = &a->plan;
    const unsigned pair = pl->pair;
    if (n == 0) return;
    if (k == 0) {
        memset(a->y, 0, n * a->batch * 2);
        return;
    }
    float *pieces = NULL;
    if (pl->pieces > 1) {
        pieces = malloc(n * pl->pieces * a->batch * sizeof(float));
        cr_assert_not_null(pieces);
    }
    a->pieces = pieces;
    static float p[2][32][MAXB];
    uint64_t starts[2][32];
    uint32_t lens[2][32];
    tseal_gemv_slot sl[2][32];
    for (uint64_t task = 0; task < pl->n_tasks; task++) {
        if (pl->mode == TSEAL_GEMV_MODE_ROWS) {
            for (unsigned h = 0; h < pair; h++)
                for (unsigned l = 0; l < 32; l++)
                    tseal_gemv_rows_slot(pl, task * pair + h, l, &sl[h][l]);
            emu_lanes(e, pair, sl, vec, nb, err, p, starts, lens);
            for (unsigned h = 0; h < pair; h++) {
                emu_tree(sl[h], (uint32_t)pl->segs_per_row, a->batch, p[h]);
                for (unsigned l = 0; l < 32; l++)
                    if (sl[h][l].active && sl[h][l].i == 0)
                        for (unsigned b = 0; b < a->batch; b++)
                            a->y[b * n + sl[h][l].row] = tseal_gemv_bf16_out(p[h][l][b]);
            }
        } else {
            float stack[2 * TSEAL_GEMV_TILE_ROWS_MAX][TSEAL_GEMV_STACK_LEVELS * MAXB];
            const uint64_t pg = task / pl->pieces, piece = task % pl->pieces;
            const uint64_t t0 = piece * pl->piece_tiles;
            const uint64_t t1 = t0 + pl->piece_tiles < pl->tiles ? t0 + pl->piece_tiles : pl->tiles;
            const unsigned C = 1u << pl->tile_log2, R = pl->rows_per_warp;
            for (uint64_t t = t0; t < t1; t++) {
                for (unsigned h = 0; h < pair; h++)
                    for (unsigned l = 0; l < 32; l++)
                        tseal_gemv_tile_slot(pl, pg * pair + h, t, l, &sl[h][l]);
                emu_lanes(e, pair, sl, vec, nb, err, p, starts, lens);
                for (unsigned h = 0; h < pair; h++) {
                    emu_tree(sl[h], C, a->batch, p[h]);
                    for (unsigned l = 0; l < 32; l += C)
                        if (sl[h][l].row < n)
                            tseal_gemv_stack_push(stack[h * R + l / C], nb, t - t0, p[h][l]);
                }
            }
            for (unsigned h = 0; h < pair; h++)
                for (unsigned r = 0; r < R; r++) {
                    const uint64_t row = (pg * pair + h) * R + r;
                    if (row >= n) break;
                    float y[MAXB];
                    tseal_gemv_stack_fold(stack[h * R + r], nb, t1 - t0, y);
                    for (unsigned b = 0; b < a->batch; b++) {
                        if (pl->pieces == 1)
                            a->y[b * n + row] = tseal_gemv_bf16_out(y[b]);
                        else
                            a->pieces[(row * pl->pieces + piece) * a->batch + b] = y[b];
                    }
                }
        }
    }
    if (pl->pieces > 1) {
        for (uint64_t row = 0; row < n; row++)
            for (unsigned b = 0; b < a->batch; b++) {
                float st[64], r = 0.0f;
                for (uint64_t pc = 0; pc < pl->pieces; pc++) {
                    float v = pieces[(row * pl->pieces + pc) * a->batch + b];
                    tseal_gemv_stack_push(st, 1, pc, &v);
                }
                tseal_gemv_stack_fold(st, 1, pl->pieces, &r);
                a->y[b * n + row] = tseal_gemv_bf16_out(r);
            }
    }
    free(pieces);
}

/* ---- comparisons ----------------------------------------------------------------------------- */

static void assert_same(const uint16_t *got, const uint16_t *want, uint64_t n, unsigned batch,
                        const char *label) {
    for (unsigned b = 0; b < batch; b++)
        for (uint64_t r = 0; r < n; r++)
            if (got[b * n + r] != want[b * n + r])
                cr_assert_fail("%s: y[%u][%llu] = 0x%04x, reference 0x%04x", label, b,
                               (unsigned long long)r, got[b * n + r], want[b * n + r]);
}

/* Encode W, then: fused reference == BF16 reference on the decoded weights, and the emulated
 * kernel (both load paths, several plans, nb == batch and the kernel's power-of-two bound)
 * == the reference. Returns the mode the encoder chose. */
static unsigned g_limit = 12;     /* code-length limit of the encodes */
static unsigned g_pair_huff_runs; /* emulated HUFF runs with two rows per lane */

static int check_x(const uint16_t *w, uint64_t n, uint64_t k, unsigned seg_log2, unsigned batch,
                   const uint16_t *x_in, int x_specials, uint64_t seed, uint16_t *out,
                   const char *what) {
    char label[256];
    snprintf(label, sizeof label, "%s [%llu x %llu, S=2^%u, L=%u, batch %u]", what,
             (unsigned long long)n, (unsigned long long)k, seg_log2, g_limit, batch);
    coded c;
    encode(w, n, k, seg_log2, g_limit, &c);
    uint16_t *x = gen_x(batch * k, x_specials, seed);
    if (x_in) memcpy(x, x_in, batch * k * 2);
    uint16_t *want = alloc16(batch * n), *got = alloc16(batch * n);

    const unsigned order = tseal_gemv_ref_seg_log2(&c.v);
    cr_assert_eq(tseal_gemv_ref_bf16(c.dec, n, k, order, x, want, batch), 0, "%s: %s", label,
                 tseal_errmsg());
    memset(got, 0xA5, batch * n * 2);
    cr_assert_eq(tseal_gemv_ref_ct(&c.v, x, got, batch), 0, "%s: %s", label, tseal_errmsg());
    assert_same(got, want, n, batch, label);

    static emu e;
    const uint64_t plans[] = {1, 1000000000ull, 7 + seed % 300};
    for (int vec = 0; vec <= (k % 8 == 0); vec++)
        for (unsigned pi = 0; pi < sizeof plans / sizeof *plans; pi++) {
            const unsigned nb = (pi & 1) ? (unsigned)tseal_gemv_pow2_ceil(batch) : batch;
            memset(got, 0xA5, batch * n * 2);
            emu_init(&e, &c.v, x, got, batch);
            e.inline_chunks = pi == 1;
            static const unsigned tile_log2s[] = {0, 3, 4, 5};
            e.tile_log2 = tile_log2s[(vec * 3 + pi) % 4];
            e.pair = pi == 1 || (vec && pi == 2) ? 1 : 2;
            tseal_gemv_err err = {0, 0, 0};
            emu_run(&e, vec, nb, plans[pi], &err);
            cr_assert_eq(err.flags, 0u, "%s: emulated kernel flagged segment %llu", label,
                         (unsigned long long)~err.seg_inv);
            char l2[512];
            snprintf(l2, sizeof l2,
                     "%s (emulated kernel, vec %d, plan %llu: %llu pieces, tile 2^%u, pair %u, "
                     "inline chunks %d)",
                     label, vec, (unsigned long long)plans[pi], (unsigned long long)e.a.plan.pieces,
                     e.a.plan.tile_log2, e.a.plan.pair, e.inline_chunks);
            assert_same(got, want, n, batch, l2);
            g_pair_huff_runs += e.a.plan.pair == 2 && e.kind == TSEAL_GEMV_KIND_HUFF;
        }
    const int mode = c.v.mode;
    if (out) memcpy(out, want, batch * n * 2);
    free(x);
    free(want);
    free(got);
    coded_free(&c);
    return mode;
}

static int check_all(const uint16_t *w, uint64_t n, uint64_t k, unsigned seg_log2, unsigned batch,
                     int x_specials, uint64_t seed, const char *what) {
    return check_x(w, n, k, seg_log2, batch, NULL, x_specials, seed, NULL, what);
}

/* ---- the reference ----------------------------------------------------------------------------
 */

static float to_f32(uint16_t h) {
    return tseal_bf16_to_f32(h);
}

Test(gemv_ref, pairwise_tree) {
    const float v[7] = {1e8f, 1.0f, -1e8f, 1.0f, 3.0f, -0.0f, 0.5f};
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 0), 0.0f);
    cr_assert(!signbit(tseal_gemv_ref_pairwise(v, 0)), "empty sum must be +0");
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 1), v[0]);
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 2), v[0] + v[1]);
    volatile float a = v[0] + v[1], b = v[2] + v[3], c = v[4] + v[5];
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 3), a + v[2]);
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 4), a + b);
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 5), (a + b) + v[4]);
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 6), (a + b) + c);
    cr_assert_eq(tseal_gemv_ref_pairwise(v, 7), (a + b) + (c + v[6]));
    /* left to right would give a different value here: the order is really a tree */
    cr_assert_neq(tseal_gemv_ref_pairwise(v, 4), ((v[0] + v[1]) + v[2]) + v[3]);
    const float z[3] = {-0.0f, -0.0f, -0.0f};
    cr_assert(signbit(tseal_gemv_ref_pairwise(z, 3)), "-0 sums stay -0");
}

Test(gemv_ref, rounding) {
    cr_assert_eq(tseal_gemv_ref_round(NAN), 0x7FC0);
    cr_assert_eq(tseal_gemv_ref_round(-NAN), 0x7FC0);
    cr_assert_eq(tseal_gemv_ref_round(INFINITY), 0x7F80);
    cr_assert_eq(tseal_gemv_ref_round(-INFINITY), 0xFF80);
    cr_assert_eq(tseal_gemv_ref_round(-0.0f), 0x8000);
    cr_assert_eq(tseal_gemv_ref_round(3.4e38f), 0x7F80); /* rounds up past the largest BF16 */
    cr_assert_eq(tseal_gemv_ref_round(1.0f + 0x1p-8f), 0x3F80);           /* tie to even (down) */
    cr_assert_eq(tseal_gemv_ref_round(1.0f + 0x1p-8f + 0x1p-7f), 0x3F82); /* tie to even (up) */
    uint64_t s = 5;
    for (unsigned i = 0; i < 200000; i++) {
        const uint32_t u = (uint32_t)rng_next(&s);
        float x;
        memcpy(&x, &u, 4);
        cr_assert_eq(tseal_gemv_bf16_out(x), tseal_gemv_ref_round(x), "0x%08x", u);
    }
}

/* The reduction order spelled out once more, by hand, on a small case where it matters. */
Test(gemv_ref, order_by_hand) {
    enum { K = 200, S_LOG2 = 6, S = 64, P = 4 };
    uint16_t w[K], x[K], y;
    uint64_t s = 3;
    for (unsigned i = 0; i < K; i++) {
        /* large values that cancel, so that any other order rounds differently */
        w[i] = tseal_f32_to_bf16((float)((rng_next(&s) & 1 ? 1 : -1) * ldexp(1.0, i % 37)));
        x[i] = tseal_f32_to_bf16((float)(1.0 + rng_unit(&s)));
    }
    float part[P];
    for (unsigned sg = 0; sg < P; sg++) {
        float p = -0.0f;
        for (unsigned c0 = sg * S; c0 < (sg + 1) * S && c0 < K; c0 += 8) {
            float c = -0.0f;
            for (unsigned i = c0; i < c0 + 8 && i < K; i++) c = fmaf(to_f32(w[i]), to_f32(x[i]), c);
            p = p + c;
        }
        part[sg] = p;
    }
    volatile float l = part[0] + part[1], r = part[2] + part[3];
    const uint16_t want = tseal_f32_to_bf16(l + r);
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, K, S_LOG2, x, &y, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(y, want, "got 0x%04x, by hand 0x%04x", y, want);
}

/* Sanity: the FP32 result is close to a double-precision GEMV. */
Test(gemv_ref, close_to_double) {
    const uint64_t shapes[][2] = {{1, 1}, {3, 7}, {17, 300}, {64, 1000}, {5, 4096}, {2, 9000}};
    for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const uint64_t n = shapes[si][0], k = shapes[si][1];
        for (unsigned batch = 1; batch <= 16; batch += 5) {
            uint16_t *w = alloc16(n * k), *x = gen_x(batch * k, 0, si * 31 + batch);
            uint16_t *y = alloc16(batch * n);
            gen_gauss(w, n * k, 0.02, si + 100);
            for (unsigned seg_log2 = 6; seg_log2 <= 14; seg_log2 += 4) {
                cr_assert_eq(tseal_gemv_ref_bf16(w, n, k, seg_log2, x, y, batch), 0);
                for (unsigned b = 0; b < batch; b++)
                    for (uint64_t r = 0; r < n; r++) {
                        double d = 0, mag = 0;
                        for (uint64_t i = 0; i < k; i++) {
                            const double t = (double)to_f32(w[r * k + i]) * to_f32(x[b * k + i]);
                            d += t;
                            mag += fabs(t);
                        }
                        const double got = to_f32(y[b * n + r]);
                        const double tol = fabs(d) * 0x1p-8 + mag * (double)k * 0x1p-24 + 1e-30;
                        cr_assert_leq(fabs(got - d), tol,
                                      "%llux%llu S=2^%u y[%u][%llu] = %.9g, double %.9g",
                                      (unsigned long long)n, (unsigned long long)k, seg_log2, b,
                                      (unsigned long long)r, got, d);
                    }
            }
            free(w);
            free(x);
            free(y);
        }
    }
}

Test(gemv_ref, bad_arguments) {
    uint16_t w[64] = {0}, x[64] = {0}, y[16];
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 64, 6, x, y, 0), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 64, 6, x, y, 17), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 64, 5, x, y, 1), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 64, 15, x, y, 1), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_bf16(NULL, 1, 64, 6, x, y, 1), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 64, 6, x, NULL, 1), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gemv_ref_ct(NULL, x, y, 1), TSEAL_E_INVAL);
    /* K == 0: +0; N == 0: nothing */
    y[0] = 0x1234;
    cr_assert_eq(tseal_gemv_ref_bf16(w, 1, 0, 6, NULL, y, 1), 0);
    cr_assert_eq(y[0], 0);
    cr_assert_eq(tseal_gemv_ref_bf16(NULL, 0, 64, 6, x, NULL, 1), 0);
    /* a RAW tensor of 4-byte elements is not a BF16 matrix */
    tseal_ct_view v;
    memset(&v, 0, sizeof v);
    v.mode = TSEAL_CT_MODE_RAW;
    v.elem_size = 4;
    v.rows = 1;
    v.cols = 4;
    v.n_elems = 4;
    cr_assert_eq(tseal_gemv_ref_ct(&v, x, y, 1), TSEAL_E_UNSUPPORTED);
}

/* ---- reference and emulated kernel, every kind of tensor --------------------------------------
 */

/* Shapes around every boundary of the plan: P = 1 (K < S), P = 32 / 33, K % 8 != 0, N = 1,
 * rows straddling groups of 32 segments, many tiles per row. */
static const uint64_t shapes[][2] = {
    {1, 1},   {1, 7},    {3, 64},   {2, 65},   {5, 100},  {1, 2048}, {7, 200},  {33, 130},
    {4, 520}, {2, 2049}, {9, 2111}, {1, 2112}, {3, 4104}, {2, 4200}, {1, 9001}, {40, 64},
};

Test(gemv_lane, emulated_equals_reference) {
    const unsigned segs[] = {6, 7, 8, 11};
    unsigned n_modes[3] = {0, 0, 0};
    for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (unsigned gi = 0; gi < sizeof segs / sizeof *segs; gi++) {
            const uint64_t n = shapes[si][0], k = shapes[si][1];
            const int kind = (int)((si + gi) % G_COUNT);
            uint16_t *w = alloc16(n * k);
            gen(kind, w, n * k, si * 10 + gi);
            const unsigned batch = 1 + (si * 5 + gi * 3) % 16;
            char what[64];
            snprintf(what, sizeof what, "generator %d", kind);
            n_modes[check_all(w, n, k, segs[gi], batch, 0, si + gi, what)]++;
            free(w);
        }
    cr_assert(n_modes[TSEAL_CT_MODE_HUFF] > 0 && n_modes[TSEAL_CT_MODE_RAW] > 0 &&
                  n_modes[TSEAL_CT_MODE_CONST] > 0,
              "modes seen: RAW %u, CONST %u, HUFF %u", n_modes[0], n_modes[1], n_modes[2]);
}

Test(gemv_lane, random_cases) {
    uint64_t s = 2024;
    for (unsigned it = 0; it < 60; it++) {
        const uint64_t n = 1 + rng_next(&s) % 40;
        uint64_t k = 1 + rng_next(&s) % 6000;
        const unsigned seg_log2 = 6 + (unsigned)(rng_next(&s) % 6);
        const unsigned batch = 1 + (unsigned)(rng_next(&s) % 16);
        const int kind = (int)(rng_next(&s) % G_COUNT);
        g_limit = 8 + (unsigned)(rng_next(&s) % 5);
        if (rng_next(&s) % 3 == 0) k = (k + 7) / 8 * 8; /* the vector path */
        uint16_t *w = alloc16(n * k);
        gen(kind, w, n * k, it);
        char what[64];
        snprintf(what, sizeof what, "random case %u, generator %d", it, kind);
        check_all(w, n, k, seg_log2, batch, (int)(it & 1), it, what);
        free(w);
    }
    g_limit = 12;
    cr_assert_gt(g_pair_huff_runs, 20, "two rows per lane ran %u times", g_pair_huff_runs);
}

Test(gemv_lane, every_batch) {
    const uint64_t n = 6, k = 1000;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 77);
    for (unsigned batch = 1; batch <= TSEAL_GEMV_MAX_BATCH; batch++)
        check_all(w, n, k, 6, batch, 0, batch, "batches");
    free(w);
}

Test(gemv_lane, special_values) {
    for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si += 2) {
        const uint64_t n = shapes[si][0], k = shapes[si][1];
        uint16_t *w = alloc16(n * k);
        gen(G_SPECIALS, w, n * k, si);
        check_all(w, n, k, 6 + si % 3, 1 + si % 16, 1, si, "specials in W and x");
        free(w);
    }
    /* NaN in x gives 0x7FC0 in every row; inf * 0 too */
    const uint64_t n = 4, k = 300;
    uint16_t *w = alloc16(n * k), *x = gen_x(k, 0, 1), y[4];
    gen(G_GAUSS, w, n * k, 9);
    x[123] = 0xFFA5; /* negative NaN with a payload */
    cr_assert_eq(tseal_gemv_ref_bf16(w, n, k, 6, x, y, 1), 0);
    for (unsigned r = 0; r < n; r++) cr_assert_eq(y[r], 0x7FC0);
    x[123] = 0x7F80; /* +inf, and a zero weight in that column of row 0 */
    w[0 * k + 123] = 0x8000;
    cr_assert_eq(tseal_gemv_ref_bf16(w, n, k, 6, x, y, 1), 0);
    cr_assert_eq(y[0], 0x7FC0);
    free(w);
    free(x);
}

/* Signed zeros: sums start from -0, so a row of -0 products is -0 and one +0 product makes
 * it +0, in every implementation. */
Test(gemv_lane, signed_zeros) {
    const uint64_t n = 3, k = 700;
    uint16_t *w = alloc16(n * k), *x = alloc16(k), y[3];
    for (uint64_t i = 0; i < k; i++) x[i] = 0x3F80; /* 1.0 */
    for (uint64_t i = 0; i < n * k; i++) w[i] = 0x8000;
    w[2 * k + 650] = 0x0000; /* row 2: one +0 product */
    const int mode = check_x(w, n, k, 6, 1, x, 0, 1, y, "signed zeros");
    cr_assert_eq(mode, TSEAL_CT_MODE_CONST);
    cr_assert_eq(y[0], 0x8000);
    cr_assert_eq(y[1], 0x8000);
    cr_assert_eq(y[2], 0x0000);
    free(w);
    free(x);
}

Test(gemv_lane, segment_sizes) {
    const uint64_t n = 3, k = 20000;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 5);
    for (unsigned seg_log2 = TSEAL_SEG_LOG2_MIN; seg_log2 <= TSEAL_SEG_LOG2_MAX; seg_log2++)
        check_all(w, n, k, seg_log2, 2, 0, seg_log2, "segment sizes");
    free(w);
}

/* Short and wide: rows of many tiles, so small plans split them into pieces. */
Test(gemv_lane, wide_rows_in_pieces) {
    const uint64_t n = 2, k = 64 * 32 * 9 + 40; /* S = 64: P = 289, 10 tiles */
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 8);
    coded c;
    encode(w, n, k, 6, 12, &c);
    uint16_t *x = gen_x(3 * k, 0, 4), want[6], got[6];
    cr_assert_eq(tseal_gemv_ref_bf16(c.dec, n, k, 6, x, want, 3), 0);
    static emu e;
    unsigned seen_pieces = 0;
    for (uint64_t min_tasks = 1; min_tasks <= 64; min_tasks *= 2) {
        emu_init(&e, &c.v, x, got, 3);
        e.tile_log2 = 3 + (unsigned)(__builtin_ctzll(min_tasks) % 3);
        emu_run(&e, 1, 4, min_tasks, NULL);
        cr_assert_eq(e.a.plan.mode, TSEAL_GEMV_MODE_TILES);
        seen_pieces |= 1u << (e.a.plan.pieces > 1);
        char label[64];
        snprintf(label, sizeof label, "min_tasks %llu, %llu pieces, tile 2^%u",
                 (unsigned long long)min_tasks, (unsigned long long)e.a.plan.pieces,
                 e.a.plan.tile_log2);
        assert_same(got, want, n, 3, label);
    }
    cr_assert_eq(seen_pieces, 3u, "both whole rows and pieces must be exercised");
    free(x);
    coded_free(&c);
    free(w);
}

/* ---- pieces of the kernels ----------------------------------------------------------------------
 */

/* The warp scan gives every segment the start bit and length of the layout's helpers. */
Test(gemv_lane, start_bits) {
    const uint64_t cases[][3] = {{5, 3000, 6}, {7, 14336, 8}, {3, 200, 6}, {50, 64, 6}};
    for (unsigned ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const uint64_t n = cases[ci][0], k = cases[ci][1];
        uint16_t *w = alloc16(n * k);
        gen(G_SKEWED, w, n * k, ci);
        coded c;
        encode(w, n, k, (unsigned)cases[ci][2], 12, &c);
        cr_assert_eq(c.v.mode, TSEAL_CT_MODE_HUFF);
        static emu e;
        uint16_t *y = alloc16(n);
        emu_init(&e, &c.v, w, y, 1);
        tseal_gemv_plan_make(n, k, c.v.seg_log2, 1, &e.a.plan);
        const tseal_gemv_plan *pl = &e.a.plan;
        uint64_t starts[32];
        uint32_t lens[32];
        tseal_gemv_slot sl[32];
        uint64_t checked = 0;
        for (uint64_t task = 0; task < pl->n_tasks; task++) {
            const uint64_t ntiles = pl->mode == TSEAL_GEMV_MODE_ROWS ? 1 : pl->tiles;
            for (uint64_t t = 0; t < ntiles; t++) {
                for (unsigned l = 0; l < 32; l++) {
                    if (pl->mode == TSEAL_GEMV_MODE_ROWS)
                        tseal_gemv_rows_slot(pl, task, l, &sl[l]);
                    else
                        tseal_gemv_tile_slot(pl, task, t, l, &sl[l]);
                }
                emu_starts(&e, sl, starts, lens);
                for (unsigned l = 0; l < 32; l++) {
                    if (!sl[l].active) continue;
                    const uint64_t j = sl[l].row * pl->segs_per_row + sl[l].i;
                    cr_assert_eq(starts[l], tseal_ct_seg_start(&c.v, j), "segment %llu",
                                 (unsigned long long)j);
                    cr_assert_eq(lens[l], tseal_ct_seg_bits(&c.v, j));
                    checked++;
                }
            }
        }
        cr_assert_eq(checked, c.v.n_segs);
        free(y);
        coded_free(&c);
        free(w);
    }
}

/* Every plan covers every segment of every row exactly once, within its limits; with two rows
 * per lane, a lane's two segments have the same columns. */
static void check_cover(uint64_t n, uint64_t k, uint64_t min_tasks, unsigned tile_log2,
                        unsigned pair) {
    tseal_gemv_plan pl;
    tseal_gemv_plan_make_tile(n, k, 6, min_tasks, tile_log2, pair, &pl);
    const uint64_t P = pl.segs_per_row;
    cr_assert_eq(P, (k + 63) / 64);
    cr_assert(pl.pair == 1 || (pl.pair == 2 && pair >= 2));
    uint8_t *seen = calloc(n * P, 1);
    cr_assert_not_null(seen);
    for (uint64_t task = 0; task < pl.n_tasks; task++) {
        tseal_gemv_slot s, s0;
        if (pl.mode == TSEAL_GEMV_MODE_ROWS) {
            cr_assert_leq(pl.rows_per_warp * P, 32);
            if (pl.pair == 2 && pair == TSEAL_GEMV_PAIR_IF_FILLED)
                cr_assert_geq(pl.n_tasks, min_tasks, "pairs left SMs idle");
            for (unsigned h = 0; h < pl.pair; h++)
                for (unsigned l = 0; l < 32; l++) {
                    tseal_gemv_rows_slot(&pl, task * pl.pair + h, l, &s);
                    tseal_gemv_rows_slot(&pl, task * pl.pair, l, &s0);
                    if (!s.active) continue;
                    cr_assert(s0.active && s0.i == s.i);
                    cr_assert_lt(s.row, n);
                    cr_assert_eq(s.j0 + l, s.row * P + s.i, "lanes are contiguous");
                    seen[s.row * P + s.i]++;
                }
        } else {
            cr_assert(pl.piece_tiles && !(pl.piece_tiles & (pl.piece_tiles - 1)));
            cr_assert_leq(pl.piece_tiles, TSEAL_GEMV_PIECE_TILES_MAX);
            if (tile_log2) cr_assert_eq(pl.tile_log2, tile_log2);
            cr_assert_eq(pl.rows_per_warp << pl.tile_log2, 32);
            const uint64_t pg = task / pl.pieces, pc = task % pl.pieces;
            const unsigned C = 1u << pl.tile_log2;
            for (unsigned h = 0; h < pl.pair; h++) {
                const uint64_t group = pg * pl.pair + h;
                for (uint64_t t = pc * pl.piece_tiles;
                     t < (pc + 1) * pl.piece_tiles && t < pl.tiles; t++)
                    for (unsigned l = 0; l < 32; l++) {
                        tseal_gemv_tile_slot(&pl, group, t, l, &s);
                        tseal_gemv_tile_slot(&pl, pg * pl.pair, t, l, &s0);
                        if (!s.active) continue;
                        cr_assert(s0.active && s0.i == s.i);
                        cr_assert_lt(s.row, n);
                        cr_assert_eq(s.row, group * pl.rows_per_warp + l / C);
                        cr_assert_eq(s.j0 + (l % C), s.row * P + s.i);
                        seen[s.row * P + s.i]++;
                    }
            }
        }
    }
    for (uint64_t i = 0; i < n * P; i++)
        cr_assert_eq(seen[i], 1,
                     "n %llu k %llu min %llu tile 2^%u pair %u: segment %llu seen %u times",
                     (unsigned long long)n, (unsigned long long)k, (unsigned long long)min_tasks,
                     tile_log2, pair, (unsigned long long)i, seen[i]);
    free(seen);
}

Test(gemv_lane, plans_cover_every_segment) {
    const uint64_t ns[] = {1, 2, 3, 31, 100};
    const uint64_t ks[] = {1, 63, 64, 65, 2048, 2049, 64 * 33, 64 * 32 * 5 + 1, 100000};
    const uint64_t mins[] = {0, 1, 5, 1000, 1ull << 40};
    for (unsigned a = 0; a < sizeof ns / sizeof *ns; a++)
        for (unsigned b = 0; b < sizeof ks / sizeof *ks; b++)
            for (unsigned m = 0; m < sizeof mins / sizeof *mins * 4; m++)
                for (unsigned pair = 1; pair <= 3; pair++) /* tiles: auto, then 8, 16, 32 */
                    check_cover(ns[a], ks[b], mins[m % 5], m / 5 ? 2 + m / 5 : 0, pair);
}

/* Two rows per lane: by default (IF_FILLED) ROWS plans take them only while every SM still gets
 * enough tasks; asked for outright, wherever there are two row groups. */
Test(gemv_lane, pair_plans) {
    const unsigned fill = TSEAL_GEMV_PAIR_IF_FILLED;
    tseal_gemv_plan pl;
    tseal_gemv_plan_make_tile(14336, 4096, 8, 132 * 16, 0, fill, &pl); /* 7168 groups of 2 rows */
    cr_assert_eq(pl.mode, TSEAL_GEMV_MODE_ROWS);
    cr_assert_eq(pl.pair, 2);
    cr_assert_eq(pl.n_tasks, 3584);
    tseal_gemv_plan_make_tile(4096, 4096, 8, 132 * 16, 0, fill, &pl); /* 2048 groups: too few */
    cr_assert_eq(pl.pair, 1);
    cr_assert_eq(pl.n_tasks, 2048);
    tseal_gemv_plan_make_tile(4096, 4096, 8, 132 * 16, 0, 2, &pl);
    cr_assert_eq(pl.pair, 2);
    cr_assert_eq(pl.n_tasks, 1024);
    tseal_gemv_plan_make_tile(4096, 14336, 8, 132 * 16, 0, fill, &pl); /* TILES: pieces make up */
    cr_assert_eq(pl.mode, TSEAL_GEMV_MODE_TILES);
    cr_assert_eq(pl.pair, 2);
    cr_assert_eq(pl.tile_log2, 3);
    cr_assert_geq(pl.n_tasks, 132 * 16);
    tseal_gemv_plan_make_tile(1, 14336, 8, 132 * 16, 0, 2, &pl); /* one row group */
    cr_assert_eq(pl.pair, 1);
    tseal_gemv_plan_make_tile(2, 4096, 8, 1, 0, fill, &pl); /* ROWS, one group of 2 rows */
    cr_assert_eq(pl.pair, 1);
    tseal_gemv_plan_make_tile(4096, 14336, 8, 132 * 16, 0, 1, &pl);
    cr_assert_eq(pl.pair, 1);
}

/* The automatic tile width idles the fewest lanes, counting rows and segments. */
Test(gemv_lane, tile_width) {
    cr_assert_eq(tseal_gemv_tile_log2_auto(4096, 56), 3); /* 7 tiles of 8 vs 2 of 32 (24 idle) */
    cr_assert_eq(tseal_gemv_tile_log2_auto(1, 391), 5);   /* 1 row: 4 rows per warp idle 3 */
    cr_assert_eq(tseal_gemv_tile_log2_auto(5, 47), 4);    /* 3 x 2 rows, 3 tiles of 16 */
    cr_assert_eq(tseal_gemv_tile_log2_auto(64, 64), 5);   /* no idle lane at any width: widest */
    cr_assert_eq(tseal_gemv_tile_log2_auto(2, 40), 4);    /* 2 rows x 3 tiles of 16 = 96 slots */
}

/* The stack of the tiles and pieces is the pairwise tree of the reference. */
Test(gemv_lane, stack_is_pairwise) {
    uint64_t s = 17;
    float v[300], st[TSEAL_GEMV_STACK_LEVELS * 2 + 64];
    for (unsigned i = 0; i < 300; i++)
        v[i] = (float)((rng_unit(&s) - 0.5) * ldexp(1.0, (int)(rng_next(&s) % 60) - 30));
    for (unsigned cnt = 1; cnt <= 300; cnt++) {
        for (unsigned i = 0; i < cnt; i++) {
            float t = v[i];
            tseal_gemv_stack_push(st, 1, i, &t);
        }
        float r;
        tseal_gemv_stack_fold(st, 1, cnt, &r);
        const float want = tseal_gemv_ref_pairwise(v, cnt);
        cr_assert(memcmp(&r, &want, 4) == 0, "%u values: stack %a, pairwise %a", cnt, r, want);
    }
}

Test(gemv_lane, join4) {
    uint64_t s = 3;
    for (unsigned it = 0; it < 100000; it++) {
        const uint32_t sm = (uint32_t)rng_next(&s), e4 = (uint32_t)rng_next(&s);
        float w[4];
        tseal_gemv_join4(sm, e4, w);
        for (unsigned i = 0; i < 4; i++) {
            const uint16_t want =
                tseal_bf16_join((uint8_t)(sm >> (8 * i)), (uint8_t)(e4 >> (8 * i)));
            const uint32_t got = tseal_gemv_bits(w[i]);
            cr_assert_eq(got, (uint32_t)want << 16, "sm 0x%08x e 0x%08x weight %u", sm, e4, i);
        }
    }
}

/* Corrupt streams: the emulated kernel flags exactly the tensors the reference decoder
 * rejects (rows with a bad segment read 0x7FC0), and the fused reference agrees. */
static void corrupt_streams(unsigned seg_log2, int want_mode) {
    const uint64_t n = 5, k = 3000;
    uint16_t *w = alloc16(n * k), *dec = alloc16(n * k);
    gen(G_SKEWED, w, n * k, 7);
    coded c;
    encode(w, n, k, seg_log2, 12, &c);
    cr_assert_eq(c.v.mode, TSEAL_CT_MODE_HUFF);
    uint8_t *exp = c.blob.data + (c.v.exp_stream - c.blob.data);
    uint16_t *x = gen_x(2 * k, 0, 3), y_ref[10], y_emu[10];
    uint64_t s = 99;
    unsigned rejected = 0;
    static emu e;
    for (unsigned it = 0; it < 64; it++) {
        const uint64_t bit = rng_next(&s) % c.v.exp_bits;
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        const int dec_rc = tseal_codec_decode_ref(&c.v, dec);
        const int ref_rc = tseal_gemv_ref_ct(&c.v, x, y_ref, 2);
        emu_init(&e, &c.v, x, y_emu, 2);
        e.inline_chunks = (int)(it & 1);
        e.pair = 1 + ((it >> 1) & 1);
        tseal_gemv_err err = {0, 0, 0};
        emu_run(&e, 1, 2, 1, &err);
        if (dec_rc) {
            rejected++;
            cr_assert_eq(ref_rc, TSEAL_E_CORRUPT, "bit %llu", (unsigned long long)bit);
            cr_assert_neq(err.flags, 0u, "bit %llu: decoder rejects, emulated kernel does not",
                          (unsigned long long)bit);
            const uint64_t j = ~(uint64_t)err.seg_inv, row = j / c.v.segs_per_row;
            cr_assert_eq(y_emu[row], 0x7FC0);
            cr_assert_eq(y_emu[n + row], 0x7FC0);
        } else {
            cr_assert_eq(ref_rc, 0);
            cr_assert_eq(err.flags, 0u, "bit %llu: kernel rejects a decodable stream",
                         (unsigned long long)bit);
            uint16_t want[10];
            cr_assert_eq(tseal_gemv_ref_bf16(dec, n, k, seg_log2, x, want, 2), 0);
            assert_same(y_ref, want, n, 2, "fused reference, flipped stream");
            assert_same(y_emu, want, n, 2, "emulated kernel, flipped stream");
        }
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    cr_assert_eq(e.a.plan.mode, want_mode);
    cr_assert_eq(e.a.plan.pair, 2, "the pair path was not run");
    cr_assert_gt(rejected, 0, "no flip was detected at all");
    free(x);
    free(dec);
    coded_free(&c);
    free(w);
}

Test(gemv_lane, corrupt_streams) {
    corrupt_streams(7, TSEAL_GEMV_MODE_ROWS); /* P = 24 */
}

Test(gemv_lane, corrupt_streams_tiles) {
    corrupt_streams(6, TSEAL_GEMV_MODE_TILES); /* P = 47: tiles of 16, 2 rows per warp */
}

/* ---- API without a GPU -------------------------------------------------------------------------
 */

Test(gemv_api, arguments_and_no_gpu) {
    uint16_t buf[64] = {0};
    cr_assert_eq(tseal_gpu_gemv(NULL, buf, buf + 32, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_async(NULL, buf, buf + 32, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_seg_log2(NULL), 0u);
    cr_assert_eq(tseal_gpu_gemv_ref(buf, 1, 8, 5, buf + 8, buf + 16, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_ref(buf, 1, 8, 6, buf + 8, buf + 16, 0, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_ref(buf, 1, 8, 6, buf + 8, buf + 16, 17, NULL), TSEAL_E_INVAL);
    if (tseal_gpu_device_count() > 0) return; /* the GPU suite covers the rest */
    cr_assert_eq(tseal_gpu_gemv_ref(buf, 1, 8, 6, buf + 8, buf + 16, 1, NULL), TSEAL_E_NO_GPU, "%s",
                 tseal_errmsg());
}

/* `tseal bench gemv` without a GPU (exit 5) is checked by tests/cli.sh: calling it here would
 * link cuBLAS into the test program. */
