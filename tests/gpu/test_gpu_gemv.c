/*
 * test_gpu_gemv.c - the fused decode+GEMV kernels (kernels/gemv.cu) on a GPU: for many shapes,
 * segment sizes, batches and kinds of tensor (HUFF, CONST, RAW), special values, aligned and
 * unaligned buffers, the fused kernel (checked and asynchronous forms), the BF16 reference
 * kernel on the decoded weights and the C reference (kernels/gemv_ref.c) must all give the
 * same bits; results are the same run to run; y is written exactly (guards around it); corrupt
 * streams are reported as the decoder reports them; bad arguments are refused.
 *
 * Every test skips when there is no CUDA device (or tseal was built without CUDA).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemv_ref.h"
#include "tseal.h"

#define GUARD  16 /* poisoned BF16 elements around every output */
#define POISON 0xA5

static void need_gpu(void) {
    if (tseal_gpu_device_count() <= 0) cr_skip_test("%s", tseal_errmsg());
}

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
    cr_assert_not_null(p, "out of host memory");
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

enum { G_GAUSS, G_SKEWED, G_BITS, G_CONST, G_SPECIALS, G_COUNT };

static void gen(int kind, uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed * 131 + 7;
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
        for (uint64_t i = 0; i < n; i++) w[i] = (uint16_t)((rng_next(&s) & 0x807Fu) | (121u << 7));
        break;
    default:
        gen_gauss(w, n, 0.5, seed);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&s);
            if (r % 13 == 0)
                w[i] = specials[(r >> 8) % N_SPECIALS];
            else if (r % 13 == 1)
                w[i] = (uint16_t)((r >> 16) & 0x807Fu);
        }
        break;
    }
}

static uint16_t *gen_x(uint64_t n, int with_specials, uint64_t seed) {
    uint16_t *x = alloc16(n);
    gen_gauss(x, n, 1.0, seed ^ 0x5151);
    if (with_specials) {
        uint64_t s = seed;
        for (uint64_t i = 0; i < n; i++)
            if (rng_next(&s) % 89 == 0) x[i] = specials[rng_next(&s) % N_SPECIALS];
    }
    return x;
}

/* ---- device buffers with guards -------------------------------------------------------------- */

typedef struct {
    uint8_t *base; /* allocation */
    uint16_t *p;   /* the buffer: GUARD + shift elements into the allocation */
    uint64_t n;    /* elements */
} dbuf;

static void dbuf_new(dbuf *b, uint64_t n, unsigned shift) {
    const uint64_t total = (2 * GUARD + shift + n) * 2;
    cr_assert_eq(tseal_gpu_malloc(0, total, (void **)&b->base), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_memset(b->base, POISON, total), 0, "%s", tseal_errmsg());
    b->p = (uint16_t *)(void *)(b->base + (GUARD + shift) * 2);
    b->n = n;
}

static void dbuf_put(dbuf *b, const uint16_t *host) {
    cr_assert_eq(tseal_gpu_memcpy_h2d(b->p, host, b->n * 2), 0, "%s", tseal_errmsg());
}

/* Download, check the guards are untouched. */
static void dbuf_get(const dbuf *b, uint16_t *host, const char *label) {
    const uint64_t lead = (uint64_t)((uint8_t *)b->p - b->base), bytes = b->n * 2;
    uint8_t *all = malloc(lead + bytes + GUARD * 2);
    cr_assert_not_null(all);
    cr_assert_eq(tseal_gpu_memcpy_d2h(all, b->base, lead + bytes + GUARD * 2), 0, "%s",
                 tseal_errmsg());
    for (uint64_t i = 0; i < lead; i++)
        cr_assert_eq(all[i], POISON, "%s: byte %lld before y written", label,
                     (long long)i - (long long)lead);
    for (uint64_t i = 0; i < GUARD * 2; i++)
        cr_assert_eq(all[lead + bytes + i], POISON, "%s: byte %llu after y written", label,
                     (unsigned long long)i);
    memcpy(host, all + lead, bytes);
    free(all);
}

static void dbuf_free(dbuf *b) {
    tseal_gpu_mem_free(b->base);
    b->base = NULL;
}

static void assert_same(const uint16_t *got, const uint16_t *want, uint64_t n, unsigned batch,
                        const char *label) {
    for (unsigned b = 0; b < batch; b++)
        for (uint64_t r = 0; r < n; r++)
            if (got[b * n + r] != want[b * n + r])
                cr_assert_fail("%s: y[%u][%llu] = 0x%04x, expected 0x%04x", label, b,
                               (unsigned long long)r, got[b * n + r], want[b * n + r]);
}

/* ---- the comparison -------------------------------------------------------------------------- */

/*
 * Encode W; C reference on the coded tensor; on the GPU: the checked fused GEMV (x and y 16-byte
 * aligned, then both shifted by `shift` elements), the asynchronous form, a second run, and the
 * BF16 reference kernel on the decoded weights. All must equal the C reference.
 */
static int gpu_check(const uint16_t *w, uint64_t n, uint64_t k, unsigned seg_log2, unsigned batch,
                     int x_specials, unsigned shift, uint64_t seed, const char *what) {
    char label[256];
    snprintf(label, sizeof label, "%s [%llu x %llu, S=2^%u, batch %u, shift %u]", what,
             (unsigned long long)n, (unsigned long long)k, seg_log2, batch, shift);
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = (uint8_t)seg_log2};
    tseal_buf blob;
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_encode(w, n, k, &p, &blob, NULL), 0, "%s: %s", label, tseal_errmsg());
    cr_assert_eq(tseal_codec_view(blob.data, blob.size, &v), 0, "%s: %s", label, tseal_errmsg());
    uint16_t *x = gen_x((uint64_t)batch * k, x_specials, seed);
    uint16_t *want = alloc16((uint64_t)batch * n), *got = alloc16((uint64_t)batch * n);
    cr_assert_eq(tseal_gemv_ref_ct(&v, x, want, batch), 0, "%s: %s", label, tseal_errmsg());

    tseal_gpu_tensor *t = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&v, 0, &t), 0, "%s: upload: %s", label, tseal_errmsg());
    cr_assert_eq(tseal_gpu_gemv_seg_log2(t), tseal_gemv_ref_seg_log2(&v));
    dbuf dx, dy, dw;
    dbuf_new(&dx, (uint64_t)batch * k, shift);
    dbuf_new(&dy, (uint64_t)batch * n, shift);
    dbuf_put(&dx, x);

    cr_assert_eq(tseal_gpu_gemv(t, dx.p, dy.p, batch, NULL), 0, "%s: %s", label, tseal_errmsg());
    dbuf_get(&dy, got, label);
    assert_same(got, want, n, batch, label);

    char l2[512];
    snprintf(l2, sizeof l2, "%s (async, second run)", label);
    cr_assert_eq(tseal_gpu_gemv_async(t, dx.p, dy.p, batch, NULL), 0, "%s: %s", l2, tseal_errmsg());
    dbuf_get(&dy, got, l2); /* cudaMemcpy on the legacy stream waits for the kernel */
    assert_same(got, want, n, batch, l2);

    /* the BF16 reference kernel on the decoded weights */
    uint16_t *dec = alloc16(n * k);
    cr_assert_eq(tseal_codec_decode_ref(&v, dec), 0, "%s: %s", label, tseal_errmsg());
    dbuf_new(&dw, n * k, shift);
    dbuf_put(&dw, dec);
    snprintf(l2, sizeof l2, "%s (BF16 reference kernel)", label);
    cr_assert_eq(tseal_gpu_memset(dy.p, POISON, dy.n * 2), 0);
    cr_assert_eq(
        tseal_gpu_gemv_ref(dw.p, n, k, tseal_gpu_gemv_seg_log2(t), dx.p, dy.p, batch, NULL), 0,
        "%s: %s", l2, tseal_errmsg());
    dbuf_get(&dy, got, l2);
    assert_same(got, want, n, batch, l2);

    const int mode = v.mode;
    dbuf_free(&dw);
    dbuf_free(&dx);
    dbuf_free(&dy);
    tseal_gpu_tensor_free(t);
    free(dec);
    free(x);
    free(want);
    free(got);
    tseal_buf_free(&blob);
    return mode;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static const uint64_t shapes[][2] = {
    {1, 1},    {1, 7},   {3, 64},    {2, 65},   {5, 100},   {1, 2048},  {7, 200},
    {33, 130}, {4, 520}, {2, 2049},  {9, 2111}, {1, 2112},  {3, 4104},  {2, 4200},
    {1, 9001}, {40, 64}, {300, 256}, {77, 768}, {1000, 96}, {2, 40000}, {129, 1030},
};

Test(gpu_gemv, shapes_and_kinds) {
    need_gpu();
    const unsigned segs[] = {6, 8, 11};
    unsigned modes[3] = {0, 0, 0};
    for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (unsigned gi = 0; gi < sizeof segs / sizeof *segs; gi++) {
            const uint64_t n = shapes[si][0], k = shapes[si][1];
            const int kind = (int)((si + gi) % G_COUNT);
            uint16_t *w = alloc16(n * k);
            gen(kind, w, n * k, si * 3 + gi);
            char what[64];
            snprintf(what, sizeof what, "generator %d", kind);
            modes[gpu_check(w, n, k, segs[gi], 1 + (si * 7 + gi) % 16, 0, 0, si + gi, what)]++;
            free(w);
        }
    cr_assert(modes[0] && modes[1] && modes[2], "modes seen: RAW %u CONST %u HUFF %u", modes[0],
              modes[1], modes[2]);
}

Test(gpu_gemv, every_batch) {
    need_gpu();
    const uint64_t n = 70, k = 4096;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 1);
    for (unsigned batch = 1; batch <= TSEAL_GEMV_MAX_BATCH; batch++)
        gpu_check(w, n, k, 8, batch, 0, 0, batch, "batches");
    free(w);
}

/* 2-byte aligned buffers take the scalar loads; K % 8 != 0 too. Same bits. */
Test(gpu_gemv, unaligned_buffers) {
    need_gpu();
    const uint64_t ks[] = {512, 1000, 1001};
    for (unsigned i = 0; i < 3; i++)
        for (unsigned shift = 0; shift < 3; shift++) {
            uint16_t *w = alloc16(9 * ks[i]);
            gen(G_GAUSS, w, 9 * ks[i], i);
            gpu_check(w, 9, ks[i], 6, 3 + shift, 0, shift, i * 3 + shift, "alignment");
            free(w);
        }
}

Test(gpu_gemv, special_values) {
    need_gpu();
    for (unsigned si = 0; si < sizeof shapes / sizeof *shapes; si += 3) {
        const uint64_t n = shapes[si][0], k = shapes[si][1];
        uint16_t *w = alloc16(n * k);
        gen(G_SPECIALS, w, n * k, si);
        gpu_check(w, n, k, 6 + si % 4, 1 + si % 16, 1, 0, si, "specials in W and x");
        free(w);
    }
}

Test(gpu_gemv, segment_sizes) {
    need_gpu();
    const uint64_t n = 20, k = 20000;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 11);
    for (unsigned s = TSEAL_SEG_LOG2_MIN; s <= TSEAL_SEG_LOG2_MAX; s++)
        gpu_check(w, n, k, s, 4, 0, 0, s, "segment sizes");
    free(w);
}

/* Short and wide: few rows of many tiles, split in pieces to fill the SMs. */
Test(gpu_gemv, short_and_wide) {
    need_gpu();
    const uint64_t cases[][3] = {{1, 1 << 20, 6}, {3, 300000, 6}, {8, 1 << 18, 8}, {1, 65536, 6}};
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        const uint64_t n = cases[i][0], k = cases[i][1];
        uint16_t *w = alloc16(n * k);
        gen(G_GAUSS, w, n * k, 40 + i);
        gpu_check(w, n, k, (unsigned)cases[i][2], 1 + i * 5, 0, 0, i, "short and wide");
        free(w);
    }
}

/* A Llama-like layer at the recommended serving segment size. */
Test(gpu_gemv, layer_shapes, .timeout = 600) {
    need_gpu();
    const uint64_t cases[][2] = {{1024, 4096}, {512, 14336}, {4096, 512}};
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        const uint64_t n = cases[i][0], k = cases[i][1];
        uint16_t *w = alloc16(n * k);
        gen(G_GAUSS, w, n * k, 60 + i);
        gpu_check(w, n, k, 8, 1, 0, 0, i, "layer");
        gpu_check(w, n, k, 8, 16, 0, 0, i + 9, "layer");
        free(w);
    }
    /* enough rows that a TILES plan keeps whole rows (pieces == 1) */
    const uint64_t n = 2200, k = 2112;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 70);
    gpu_check(w, n, k, 6, 3, 0, 0, 70, "tiles, whole rows");
    free(w);
}

/* Two rows per lane (pair tasks), forced at every batch bound they exist for: ROWS and TILES
 * plans, every tile width, vector and byte-wise loads, a last task with rows missing. */
Test(gpu_gemv, two_rows_per_lane) {
    need_gpu();
    const uint64_t cases[][4] = {{70, 4096, 8, 0}, {33, 1000, 6, 0}, {9, 2111, 6, 3},
                                 {300, 256, 6, 0}, {2, 40000, 6, 5}, {13, 3000, 6, 4}};
    const unsigned batches[] = {1, 2, 3, 8};
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        const uint64_t n = cases[i][0], k = cases[i][1];
        tseal_gpu_gemv_tune((unsigned)cases[i][3], 2);
        uint16_t *w = alloc16(n * k);
        gen(G_GAUSS, w, n * k, 80 + i);
        for (unsigned b = 0; b < sizeof batches / sizeof *batches; b++)
            gpu_check(w, n, k, (unsigned)cases[i][2], batches[b], 0, (i + b) % 2, i * 4 + b,
                      "two rows per lane");
        free(w);
    }
    tseal_gpu_gemv_tune(0, 0);
}

/* Single bit flips: the checked call fails exactly when the reference decoder does; the
 * asynchronous call then gives 0x7FC0 on the bad rows. seg_log2 7: a ROWS plan (P = 24); 6: a
 * TILES plan (P = 47, tiles of 16 segments, 2 rows per warp). Every other flip runs with two
 * rows per lane. */
static void corrupt_streams(unsigned seg_log2) {
    const uint64_t n = 5, k = 3000;
    uint16_t *w = alloc16(n * k), *dec = alloc16(n * k);
    gen(G_SKEWED, w, n * k, 7);
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = (uint8_t)seg_log2};
    tseal_buf blob;
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_encode(w, n, k, &p, &blob, NULL), 0);
    cr_assert_eq(tseal_codec_view(blob.data, blob.size, &v), 0);
    cr_assert_eq(v.mode, TSEAL_CT_MODE_HUFF);
    uint8_t *exp = blob.data + (v.exp_stream - blob.data);
    uint16_t *x = gen_x(2 * k, 0, 3), want[10], got[10];
    dbuf dx, dy;
    dbuf_new(&dx, 2 * k, 0);
    dbuf_new(&dy, 2 * n, 0);
    dbuf_put(&dx, x);
    uint64_t s = 99;
    unsigned rejected = 0;
    for (unsigned it = 0; it < 48; it++) {
        const uint64_t bit = rng_next(&s) % v.exp_bits;
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        tseal_gpu_tensor *t = NULL;
        cr_assert_eq(tseal_gpu_tensor_upload(&v, 0, &t), 0, "%s", tseal_errmsg());
        const int dec_rc = tseal_codec_decode_ref(&v, dec);
        tseal_gpu_gemv_tune(0, 1 + (it & 1));
        const int rc = tseal_gpu_gemv(t, dx.p, dy.p, 2, NULL);
        if (dec_rc) {
            rejected++;
            cr_assert_eq(rc, TSEAL_E_CORRUPT, "bit %llu: %d (%s)", (unsigned long long)bit, rc,
                         tseal_errmsg());
            cr_assert(strstr(tseal_errmsg(), "segment") != NULL, "%s", tseal_errmsg());
            cr_assert_eq(tseal_gpu_gemv_async(t, dx.p, dy.p, 2, NULL), 0, "%s", tseal_errmsg());
            dbuf_get(&dy, got, "corrupt, async");
            unsigned nan_rows = 0;
            for (uint64_t r = 0; r < n; r++) nan_rows += got[r] == 0x7FC0 && got[n + r] == 0x7FC0;
            cr_assert_gt(nan_rows, 0, "bit %llu: no row reads NaN", (unsigned long long)bit);
        } else {
            cr_assert_eq(rc, 0, "bit %llu: GPU rejects a decodable stream: %s",
                         (unsigned long long)bit, tseal_errmsg());
            cr_assert_eq(tseal_gemv_ref_bf16(dec, n, k, seg_log2, x, want, 2), 0);
            dbuf_get(&dy, got, "corrupt, decodable");
            assert_same(got, want, n, 2, "flipped but decodable stream");
        }
        tseal_gpu_tensor_free(t);
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    cr_assert_gt(rejected, 0, "no flip was detected at all");
    tseal_gpu_gemv_tune(0, 0);
    dbuf_free(&dx);
    dbuf_free(&dy);
    free(x);
    free(dec);
    free(w);
    tseal_buf_free(&blob);
}

Test(gpu_gemv, corrupt_streams) {
    need_gpu();
    corrupt_streams(7);
}

Test(gpu_gemv, corrupt_streams_tiles) {
    need_gpu();
    corrupt_streams(6);
}

Test(gpu_gemv, api_errors) {
    need_gpu();
    const uint64_t n = 4, k = 256;
    uint16_t *w = alloc16(n * k);
    gen(G_GAUSS, w, n * k, 3);
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = 6};
    tseal_buf blob;
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_encode(w, n, k, &p, &blob, NULL), 0);
    cr_assert_eq(tseal_codec_view(blob.data, blob.size, &v), 0);
    tseal_gpu_tensor *t = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&v, 0, &t), 0, "%s", tseal_errmsg());
    uint8_t *dev = NULL;
    cr_assert_eq(tseal_gpu_malloc(0, (16 * k + 16 * n) * 2 + 64, (void **)&dev), 0);
    uint16_t *dx = (uint16_t *)(void *)dev, *dy = dx + 16 * k;

    cr_assert_eq(tseal_gpu_gemv(NULL, dx, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, NULL, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, dx, NULL, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, dx, dy, 0, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, dx, dy, 17, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "batch") != NULL, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_gemv(t, dev + 1, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, dx, dev + 16 * k * 2 + 1, 1, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "aligned") != NULL, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_gemv(t, dx, dx + 100, 1, NULL), TSEAL_E_INVAL); /* overlap */
    cr_assert(strstr(tseal_errmsg(), "overlap") != NULL, "%s", tseal_errmsg());
    uint16_t host_x[256] = {0}, host_y[4];
    cr_assert_eq(tseal_gpu_gemv(t, host_x, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "device memory") != NULL, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_gemv(t, dx, host_y, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_async(NULL, dx, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_async(t, dx, dy, 99, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv(t, dx, dy, 1, NULL), 0, "%s", tseal_errmsg());

    cr_assert_eq(tseal_gpu_gemv_ref(dx, 1, 8, 5, dx + 8, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_ref(NULL, 1, 8, 6, dx + 8, dy, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_ref(dx, 1, 8, 6, dx + 8, dx + 4, 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_gemv_ref(dev + 1, 1, 8, 6, dx + 8, dy, 1, NULL), TSEAL_E_INVAL);

    /* a RAW tensor of 4-byte elements is not a BF16 matrix */
    uint32_t raw[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tseal_ct_view rv;
    memset(&rv, 0, sizeof rv);
    rv.mode = TSEAL_CT_MODE_RAW;
    rv.elem_size = 4;
    rv.rows = 2;
    rv.cols = 4;
    rv.n_elems = 8;
    rv.raw = (const uint8_t *)raw;
    tseal_gpu_tensor *rt = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&rv, 0, &rt), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_gemv(rt, dx, dy, 1, NULL), TSEAL_E_UNSUPPORTED);
    cr_assert_eq(tseal_gpu_gemv_async(rt, dx, dy, 1, NULL), TSEAL_E_UNSUPPORTED);
    tseal_gpu_tensor_free(rt);

    tseal_gpu_mem_free(dev);
    tseal_gpu_tensor_free(t);
    tseal_buf_free(&blob);
    free(w);
}
