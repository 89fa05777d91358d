/*
 * test_gpu_decode.c - the GPU decoder (kernels/decode.cu) against the CPU reference decoder,
 * bit for bit, over many coded tensors: every shape class, segment size, code-length limit and
 * special value, RAW and CONST tensors, corrupt streams, API misuse.
 *
 * Every test skips when there is no CUDA device (or tseal was built without CUDA).
 * The destination is poisoned and surrounded by guard elements: a decode must write exactly its
 * n_elems values. Each tensor is decoded twice: into a 16-byte aligned destination (vector
 * stores) and into one that is only 2-byte aligned (scalar stores).
 *
 * TSEAL_GPU_TEST_HUGE=1 enables gpu_decode/huge (> 2^31 elements, ~12 GB of host memory).
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tseal.h"

#define GUARD  16   /* poisoned elements before and after the destination */
#define POISON 0xA5 /* byte value of unwritten destination memory */

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

static uint16_t *alloc_w(uint64_t n) {
    uint16_t *w = malloc((n ? n : 1) * sizeof *w);
    cr_assert_not_null(w, "out of host memory for %llu weights", (unsigned long long)n);
    return w;
}

/* N(0, sigma) weights, like a trained linear layer. */
static void gen_gauss(uint16_t *w, uint64_t n, double sigma, uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i += 2) {
        double r = sqrt(-2.0 * log(rng_unit(&s))), t = 2.0 * M_PI * rng_unit(&s);
        w[i] = tseal_f32_to_bf16((float)(sigma * r * cos(t)));
        if (i + 1 < n) w[i + 1] = tseal_f32_to_bf16((float)(sigma * r * sin(t)));
    }
}

/* Uniformly random bits: every exponent equally likely, incompressible (RAW). */
static void gen_bits(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i++) w[i] = (uint16_t)rng_next(&s);
}

/* One exponent, random sign and mantissa (CONST). */
static void gen_const(uint16_t *w, uint64_t n, unsigned exp, uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i++) {
        uint16_t r = (uint16_t)rng_next(&s);
        w[i] = (uint16_t)((r & 0x807Fu) | (exp << 7));
    }
}

/* Exponent 127 - k with probability ~2^-(k+1): a long tail of rare symbols, so the code-length
 * limit binds. */
static void gen_skewed(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        unsigned k = (unsigned)__builtin_ctzll(r | (1ull << 60));
        if (k > 100) k = 100;
        w[i] = (uint16_t)(((r >> 60) & 1u) << 15 | (127u - k) << 7 | ((r >> 40) & 0x7Fu));
    }
}

/* Special values: +-0, subnormals, +-inf, NaNs with payloads, the extreme normals. */
static const uint16_t specials[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080,
                                    0x7F7F, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81,
                                    0xFF81, 0x7FFF, 0xFFFF, 0x7FA5, 0x3F80, 0xBF80};

/* Gaussian body with every one of the 256 exponents and every special value sprinkled in. */
static void gen_all_exponents(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed ^ 0x5555;
    gen_gauss(w, n, 0.02, seed);
    for (unsigned e = 0; e < 256; e++) {
        uint64_t i = rng_next(&s) % n;
        w[i] = (uint16_t)((rng_next(&s) & 0x807Fu) | (e << 7));
    }
    for (unsigned k = 0; k < sizeof specials / sizeof *specials; k++)
        for (unsigned rep = 0; rep < 4; rep++) w[rng_next(&s) % n] = specials[k];
}

/* Mostly special values (zeros, subnormals, NaN payloads) over a Gaussian background. */
static void gen_specials(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed ^ 0xAAAA;
    gen_gauss(w, n, 1.0, seed);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        if (r % 3 == 0)
            w[i] = specials[(r >> 8) % (sizeof specials / sizeof *specials)];
        else if (r % 3 == 1)
            w[i] = (uint16_t)((r >> 16) & 0x807Fu); /* zero or subnormal */
    }
}

/* 90% exact zeros (a pruned layer). */
static void gen_sparse(uint16_t *w, uint64_t n, uint64_t seed) {
    uint64_t s = seed ^ 0x1234;
    gen_gauss(w, n, 0.05, seed);
    for (uint64_t i = 0; i < n; i++)
        if (rng_next(&s) % 10 != 0) w[i] = 0;
}

/* ---- encode, decode on both sides, compare --------------------------------------------------- */

typedef struct {
    tseal_buf blob;
    tseal_ct_view view;
    tseal_codec_stats stats;
    uint16_t *ref; /* tseal_codec_decode_ref output */
} coded;

static void encode_or_die(const uint16_t *w, uint64_t rows, uint64_t cols, unsigned limit,
                          unsigned seg_log2, const char *label, coded *c) {
    tseal_codec_params p = {.max_code_bits = (uint8_t)limit, .seg_log2 = (uint8_t)seg_log2};
    memset(c, 0, sizeof *c);
    int rc = tseal_codec_encode(w, rows, cols, &p, &c->blob, &c->stats);
    cr_assert_eq(rc, 0, "%s: encode: %s", label, tseal_errmsg());
    rc = tseal_codec_view(c->blob.data, c->blob.size, &c->view);
    cr_assert_eq(rc, 0, "%s: view: %s", label, tseal_errmsg());
}

static void coded_free(coded *c) {
    tseal_buf_free(&c->blob);
    free(c->ref);
    c->ref = NULL;
}

/* Decode `t` on the GPU at element offset `shift` (0: 16-byte aligned) of a poisoned buffer
 * with guards, download, compare with `ref` and check the guards. */
static void gpu_check_at(const tseal_gpu_tensor *t, const tseal_ct_view *v, const uint8_t *ref,
                         unsigned shift, const char *label) {
    const uint64_t esz = v->mode == TSEAL_CT_MODE_RAW ? v->elem_size : 2;
    const uint64_t bytes = v->n_elems * esz;
    const uint64_t lead = (GUARD + shift) * 2; /* bytes before dst */
    const uint64_t total = lead + bytes + GUARD * 2;
    uint8_t *dev = NULL, *host = malloc(total);
    cr_assert_not_null(host);
    int rc = tseal_gpu_malloc(0, total, (void **)&dev);
    cr_assert_eq(rc, 0, "%s: tseal_gpu_malloc(%llu): %s", label, (unsigned long long)total,
                 tseal_errmsg());
    cr_assert_eq(tseal_gpu_memset(dev, POISON, total), 0, "%s: %s", label, tseal_errmsg());

    rc = tseal_gpu_tensor_decode(t, dev + lead, NULL);
    cr_assert_eq(rc, 0, "%s (dst offset %u): GPU decode: %s", label, shift, tseal_errmsg());
    cr_assert_eq(tseal_gpu_memcpy_d2h(host, dev, total), 0, "%s: %s", label, tseal_errmsg());

    for (uint64_t i = 0; i < lead; i++)
        cr_assert_eq(host[i], POISON, "%s (dst offset %u): byte %lld before dst overwritten", label,
                     shift, (long long)i - (long long)lead);
    for (uint64_t i = lead + bytes; i < total; i++)
        cr_assert_eq(host[i], POISON, "%s (dst offset %u): byte %llu after dst overwritten", label,
                     shift, (unsigned long long)(i - lead - bytes));
    if (memcmp(host + lead, ref, bytes) != 0) {
        uint64_t i = 0;
        while (i < bytes && host[lead + i] == ref[i]) i++;
        uint64_t e = i / esz;
        uint64_t row = v->cols ? e / v->cols : 0, col = v->cols ? e % v->cols : 0;
        cr_assert_fail("%s (dst offset %u, mode %u): element %llu (row %llu, col %llu) differs: "
                       "GPU byte 0x%02x, reference 0x%02x",
                       label, shift, v->mode, (unsigned long long)e, (unsigned long long)row,
                       (unsigned long long)col, host[lead + i], ref[i]);
    }
    tseal_gpu_mem_free(dev);
    free(host);
}

/* Encode, check the CPU reference is lossless, decode on the GPU twice, compare. */
static int roundtrip(const uint16_t *w, uint64_t rows, uint64_t cols, unsigned limit,
                     unsigned seg_log2, int expect_mode, const char *what) {
    char label[256];
    snprintf(label, sizeof label, "%s [%llu x %llu, L=%u, S=2^%u]", what, (unsigned long long)rows,
             (unsigned long long)cols, limit, seg_log2);
    coded c;
    encode_or_die(w, rows, cols, limit, seg_log2, label, &c);
    const tseal_ct_view *v = &c.view;
    if (expect_mode >= 0)
        cr_assert_eq(v->mode, expect_mode, "%s: encoder chose mode %u, test expects %d", label,
                     v->mode, expect_mode);
    if (v->mode == TSEAL_CT_MODE_HUFF)
        cr_assert_leq(v->max_code_bits, limit < 8 ? 8 : limit, "%s: code longer than the limit",
                      label);

    const uint64_t bytes = v->n_elems * 2;
    c.ref = alloc_w(v->n_elems);
    cr_assert_eq(tseal_codec_decode_ref(v, c.ref), 0, "%s: reference decode: %s", label,
                 tseal_errmsg());
    cr_assert(memcmp(c.ref, w, bytes) == 0, "%s: reference decode is not lossless", label);

    tseal_gpu_tensor *t = NULL;
    int rc = tseal_gpu_tensor_upload(v, 0, &t);
    cr_assert_eq(rc, 0, "%s: upload: %s", label, tseal_errmsg());
    cr_assert_not_null(t);
    if (v->n_elems) cr_assert_geq(tseal_gpu_tensor_device_bytes(t), v->n_elems, "%s", label);

    gpu_check_at(t, v, (const uint8_t *)c.ref, 0, label);
    if (v->n_elems <= (8u << 20)) gpu_check_at(t, v, (const uint8_t *)c.ref, 1, label);
    /* A second decode of the same upload gives the same bytes (no state left behind), here
     * with the other way of storing (staged by default where chunks are whole and aligned). */
    char l2[300];
    snprintf(l2, sizeof l2, "%s, direct stores", label);
    tseal_gpu_decode_tune(1);
    gpu_check_at(t, v, (const uint8_t *)c.ref, 0, l2);
    tseal_gpu_decode_tune(0);

    tseal_gpu_tensor_free(t);
    const int mode = v->mode;
    coded_free(&c);
    return mode;
}

typedef void (*gen_fn)(uint16_t *w, uint64_t n, uint64_t seed);

static void gen_gauss002(uint16_t *w, uint64_t n, uint64_t seed) {
    gen_gauss(w, n, 0.02, seed);
}
static void gen_const_127(uint16_t *w, uint64_t n, uint64_t seed) {
    gen_const(w, n, 127, seed);
}
static void gen_const_0(uint16_t *w, uint64_t n, uint64_t seed) {
    gen_const(w, n, 0, seed);
}
static void gen_const_255(uint16_t *w, uint64_t n, uint64_t seed) {
    gen_const(w, n, 255, seed);
}

static int roundtrip_gen(gen_fn gen, uint64_t rows, uint64_t cols, unsigned limit,
                         unsigned seg_log2, int expect_mode, const char *what) {
    const uint64_t n = rows * cols;
    uint16_t *w = alloc_w(n);
    gen(w, n, rows * 1000003u + cols * 7919u + limit * 31u + seg_log2);
    const int mode = roundtrip(w, rows, cols, limit, seg_log2, expect_mode, what);
    free(w);
    return mode;
}

#define HUFF  TSEAL_CT_MODE_HUFF
#define CONST TSEAL_CT_MODE_CONST
#define RAW   TSEAL_CT_MODE_RAW
#define ANY   (-1)

/* ---- tests ----------------------------------------------------------------------------------- */

/* Small HUFF tensors around the segment and chunk boundaries (the compute-sanitizer case). */
Test(gpu_decode, small) {
    need_gpu();
    static const uint64_t shapes[][2] = {{1, 2000}, {1, 4097}, {3, 1000}, {7, 129},
                                         {50, 7},   {33, 64},  {2, 4095}, {1000, 3},
                                         {17, 63},  {5, 65},   {9, 200},  {4, 1031}};
    unsigned huff = 0, total = 0;
    for (unsigned k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (unsigned sl = 6; sl <= 7; sl++, total++)
            huff += roundtrip_gen(gen_gauss002, shapes[k][0], shapes[k][1], 12, sl, ANY,
                                  "small gauss") == HUFF;
    /* Tiny tensors may be stored RAW when coding does not pay; most of these must be coded. */
    cr_assert_geq(huff, total - 4, "only %u of %u small tensors were HUFF", huff, total);
    roundtrip_gen(gen_specials, 3, 1000, 12, 6, ANY, "small specials");
    roundtrip_gen(gen_const_127, 3, 1000, 12, 6, CONST, "small const");
}

/* Every segment size, with rows whose length is not a multiple of the segment size. */
Test(gpu_decode, segment_sizes) {
    need_gpu();
    for (unsigned sl = TSEAL_SEG_LOG2_MIN; sl <= TSEAL_SEG_LOG2_MAX; sl++) {
        const uint64_t s = 1ull << sl;
        roundtrip_gen(gen_gauss002, 5, 3 * s + 17, 12, sl, HUFF, "gauss, odd cols");
        roundtrip_gen(gen_gauss002, s < 4096 ? 4096 / s : 2, s, 12, sl, HUFF, "gauss, cols == S");
        roundtrip_gen(gen_gauss002, 1, 100003, 12, sl, HUFF, "gauss, one row");
        roundtrip_gen(gen_gauss002, 257, 67, 12, sl, HUFF, "gauss, cols < S");
        roundtrip_gen(gen_skewed, 3, 5 * s - 1, 10, sl, HUFF, "skewed, odd cols");
    }
}

/* Code-length limits 1..12 (the encoder raises infeasible ones) over a long-tailed source. */
Test(gpu_decode, code_limits) {
    need_gpu();
    for (unsigned limit = 1; limit <= TSEAL_HUFF_MAX_BITS; limit++) {
        roundtrip_gen(gen_skewed, 7, 40000 + limit, limit, 6, HUFF, "skewed");
        roundtrip_gen(gen_skewed, 3, 100001, limit, 11, HUFF, "skewed");
        roundtrip_gen(gen_gauss002, 2, 65537, limit, 9, HUFF, "gauss");
    }
}

/* All 256 exponents, NaN payloads, infinities, +-0 and subnormals in one HUFF tensor. */
Test(gpu_decode, all_exponents) {
    need_gpu();
    /* L=8 with 256 symbols means 8 bits for every exponent: RAW is smaller then. */
    static const unsigned limits[] = {8, 9, 10, 12};
    static const unsigned segs[] = {6, 8, 11, 14};
    for (unsigned a = 0; a < 4; a++)
        for (unsigned b = 0; b < 4; b++)
            roundtrip_gen(gen_all_exponents, 3, 333337, limits[a], segs[b],
                          limits[a] == 8 ? ANY : HUFF, "all exponents");
    roundtrip_gen(gen_specials, 101, 9999, 12, 6, ANY, "specials");
    roundtrip_gen(gen_specials, 1, 1000003, 12, 12, ANY, "specials");
    roundtrip_gen(gen_sparse, 64, 10007, 12, 8, HUFF, "sparse");
}

/* Several million elements in various geometries. */
Test(gpu_decode, large) {
    need_gpu();
    roundtrip_gen(gen_gauss002, 3, 1234567, 12, 11, HUFF, "large gauss");
    roundtrip_gen(gen_gauss002, 2048, 2049, 12, 14, HUFF, "large gauss");
    roundtrip_gen(gen_gauss002, 1, 5000001, 12, 6, HUFF, "large gauss");
    roundtrip_gen(gen_gauss002, 4096, 1031, 9, 10, HUFF, "large gauss");
    roundtrip_gen(gen_skewed, 11, 500001, 12, 13, HUFF, "large skewed");
    roundtrip_gen(gen_all_exponents, 1, 6000011, 12, 7, HUFF, "large all exponents");
}

Test(gpu_decode, const_tensor) {
    need_gpu();
    roundtrip_gen(gen_const_127, 1, 1, 12, 11, CONST, "const 1 element");
    roundtrip_gen(gen_const_127, 1, 17, 12, 11, CONST, "const");
    roundtrip_gen(gen_const_0, 3, 5, 12, 11, CONST, "const exponent 0 (zeros, subnormals)");
    roundtrip_gen(gen_const_255, 7, 1001, 12, 11, CONST, "const exponent 255 (inf, NaN)");
    roundtrip_gen(gen_const_127, 1024, 1027, 12, 11, CONST, "const large");
}

Test(gpu_decode, raw_tensor) {
    need_gpu();
    roundtrip_gen(gen_bits, 1, 1, 12, 11, ANY, "raw 1 element");
    roundtrip_gen(gen_bits, 1, 33, 12, 11, RAW, "raw");
    roundtrip_gen(gen_gauss002, 1, 5, 12, 11, RAW, "raw: too small to code");
    roundtrip_gen(gen_bits, 1000, 1003, 12, 11, RAW, "raw large");
}

/* rows * cols == 0: encodes as an empty RAW tensor; decode is a no-op, even with dst NULL. */
Test(gpu_decode, empty) {
    need_gpu();
    coded c;
    encode_or_die(NULL, 0, 5, 12, 11, "empty", &c);
    tseal_gpu_tensor *t = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, 0, &t), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_tensor_decode(t, NULL, NULL), 0, "%s", tseal_errmsg());
    tseal_gpu_tensor_free(t);
    coded_free(&c);
}

/* ---- corrupt streams ------------------------------------------------------------------------- */

static uint32_t field_get(const uint8_t *p, uint64_t j, unsigned w) {
    uint32_t v = 0;
    for (unsigned b = 0; b < w; b++) {
        uint64_t bit = j * w + b;
        v |= (uint32_t)((p[bit / 8] >> (bit % 8)) & 1u) << b;
    }
    return v;
}

static void field_set(uint8_t *p, uint64_t j, unsigned w, uint32_t v) {
    for (unsigned b = 0; b < w; b++) {
        uint64_t bit = j * w + b;
        p[bit / 8] = (uint8_t)((p[bit / 8] & ~(1u << (bit % 8))) | (((v >> b) & 1u) << (bit % 8)));
    }
}

/* Decode a (possibly corrupt) blob on both sides: both must reject it, or both must accept it
 * with identical output. Returns 1 if rejected. */
static int compare_corrupt(const uint8_t *blob, size_t len, const char *label) {
    tseal_ct_view v;
    int rc = tseal_codec_view(blob, len, &v);
    cr_assert_eq(rc, 0, "%s: view: %s", label, tseal_errmsg());
    uint16_t *ref = alloc_w(v.n_elems), *got = alloc_w(v.n_elems);
    int rc_ref = tseal_codec_decode_ref(&v, ref);
    cr_assert(rc_ref == 0 || rc_ref == TSEAL_E_CORRUPT, "%s: reference: %s", label, tseal_errmsg());

    tseal_gpu_tensor *t = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&v, 0, &t), 0, "%s: upload: %s", label, tseal_errmsg());
    void *dev = NULL;
    cr_assert_eq(tseal_gpu_malloc(0, v.n_elems * 2, &dev), 0, "%s", tseal_errmsg());
    int rc_gpu = tseal_gpu_tensor_decode(t, dev, NULL);
    cr_assert_eq(rc_gpu, rc_ref, "%s: GPU returned %d (%s), reference %d", label, rc_gpu,
                 tseal_errmsg(), rc_ref);
    if (rc_gpu == TSEAL_E_CORRUPT)
        cr_assert(strstr(tseal_errmsg(), "segment") != NULL, "%s: message names no segment: %s",
                  label, tseal_errmsg());
    if (rc_gpu == 0) {
        cr_assert_eq(tseal_gpu_memcpy_d2h(got, dev, v.n_elems * 2), 0, "%s", tseal_errmsg());
        cr_assert(memcmp(got, ref, v.n_elems * 2) == 0, "%s: outputs differ", label);
    }
    tseal_gpu_mem_free(dev);
    tseal_gpu_tensor_free(t);
    free(ref);
    free(got);
    return rc_gpu == TSEAL_E_CORRUPT;
}

/* Move one bit of length from segment j + 1 to segment j (same group): the group bases and the
 * total still match, so the view accepts it, but neither segment ends exactly. */
Test(gpu_decode, corrupt_segment_length) {
    need_gpu();
    const uint64_t rows = 4, cols = 64 * 64 + 5;
    uint16_t *w = alloc_w(rows * cols);
    gen_gauss(w, rows * cols, 0.02, 42);
    coded c;
    encode_or_die(w, rows, cols, 12, 6, "corrupt", &c);
    cr_assert_eq(c.view.mode, HUFF);
    const unsigned lw = c.view.len_width;
    cr_assert_gt(lw, 0, "test needs segments of different lengths");
    uint8_t *lens = c.blob.data + (c.view.seg_lens - c.blob.data);
    unsigned tried = 0, rejected = 0;
    for (uint64_t j = 0; j + 1 < c.view.n_segs && tried < 8; j++) {
        if (j % TSEAL_SEGS_PER_GROUP == TSEAL_SEGS_PER_GROUP - 1) continue;
        uint32_t a = field_get(lens, j, lw), b = field_get(lens, j + 1, lw);
        if (b == 0 || a + 1 >= (1u << lw)) continue;
        field_set(lens, j, lw, a + 1);
        field_set(lens, j + 1, lw, b - 1);
        tseal_ct_view v;
        if (tseal_codec_view(c.blob.data, c.blob.size, &v) == 0) {
            char label[64];
            snprintf(label, sizeof label, "segment %llu one bit longer", (unsigned long long)j);
            rejected += compare_corrupt(c.blob.data, c.blob.size, label);
            tried++;
        }
        field_set(lens, j, lw, a);
        field_set(lens, j + 1, lw, b);
    }
    cr_assert_gt(tried, 0, "no segment pair could be altered");
    cr_assert_eq(rejected, tried, "every altered segment must be rejected");
    /* The same upload path still works after corrupt decodes. */
    roundtrip(w, rows, cols, 12, 6, HUFF, "after corrupt");
    coded_free(&c);
    free(w);
}

/* Single bit flips in the exponent stream: the GPU must agree with the reference each time. */
Test(gpu_decode, corrupt_bit_flips) {
    need_gpu();
    const uint64_t rows = 5, cols = 3000;
    uint16_t *w = alloc_w(rows * cols);
    gen_skewed(w, rows * cols, 7);
    coded c;
    encode_or_die(w, rows, cols, 12, 7, "bit flips", &c);
    cr_assert_eq(c.view.mode, HUFF);
    uint8_t *exp = c.blob.data + (c.view.exp_stream - c.blob.data);
    uint64_t s = 99;
    unsigned rejected = 0;
    for (unsigned k = 0; k < 64; k++) {
        uint64_t bit = rng_next(&s) % c.view.exp_bits;
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
        char label[80];
        snprintf(label, sizeof label, "stream bit %llu flipped, %s stores", (unsigned long long)bit,
                 k & 1 ? "staged" : "direct");
        tseal_gpu_decode_tune(1 + (k & 1)); /* K = 3000: whole chunks, so both ways run */
        rejected += compare_corrupt(c.blob.data, c.blob.size, label);
        exp[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    }
    tseal_gpu_decode_tune(0);
    cr_assert_gt(rejected, 0, "no flip was detected at all");
    coded_free(&c);
    free(w);
}

/* ---- API misuse ------------------------------------------------------------------------------ */

Test(gpu_decode, api_errors) {
    need_gpu();
    uint16_t *w = alloc_w(4000);
    gen_gauss(w, 4000, 0.02, 3);
    coded c;
    encode_or_die(w, 2, 2000, 12, 6, "api", &c);
    tseal_gpu_tensor *t = (tseal_gpu_tensor *)1;
    cr_assert_eq(tseal_gpu_tensor_upload(NULL, 0, &t), TSEAL_E_INVAL);
    cr_assert_null(t);
    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, 0, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, -1, &t), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, 1 << 20, &t), TSEAL_E_INVAL);
    cr_assert(strstr(tseal_errmsg(), "device") != NULL, "%s", tseal_errmsg());

    tseal_ct_view bad = c.view;
    bad.n_segs++;
    cr_assert_eq(tseal_gpu_tensor_upload(&bad, 0, &t), TSEAL_E_INVAL, "%s", tseal_errmsg());

    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, 0, &t), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_tensor_decode(NULL, NULL, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_tensor_decode(t, NULL, NULL), TSEAL_E_INVAL);
    uint8_t *dev = NULL;
    cr_assert_eq(tseal_gpu_malloc(0, 4000 * 2 + 2, (void **)&dev), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_gpu_tensor_decode(t, dev + 1, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_gpu_tensor_decode(t, dev, NULL), 0, "%s", tseal_errmsg());
    tseal_gpu_mem_free(dev);
    tseal_gpu_tensor_free(t);
    tseal_gpu_tensor_free(NULL);
    tseal_gpu_mem_free(NULL);
    cr_assert_eq(tseal_gpu_tensor_device_bytes(NULL), 0);
    coded_free(&c);
    free(w);
}

/* ---- > 2^31 elements (opt-in: ~12 GB of host memory, ~7 GB of device memory) ----------------- */

static void gen_fast6(uint16_t *w, uint64_t n, uint64_t seed) {
    /* 6 exponents, 2.5 bits of entropy: > 2^32 stream bits for 2^31 weights; fast to make. */
    static const uint8_t exps[8] = {118, 119, 120, 120, 121, 121, 122, 123};
    uint64_t s = seed;
    for (uint64_t i = 0; i < n; i += 4) {
        uint64_t r = rng_next(&s);
        for (unsigned k = 0; k < 4 && i + k < n; k++) {
            uint64_t q = r >> (16 * k);
            w[i + k] = (uint16_t)((q & 0x807Fu) | (uint16_t)exps[(q >> 7) & 7] << 7);
        }
    }
}

Test(gpu_decode, huge) {
    need_gpu();
    const char *env = getenv("TSEAL_GPU_TEST_HUGE");
    if (!env || strcmp(env, "1") != 0) cr_skip_test("set TSEAL_GPU_TEST_HUGE=1 to run");
    const uint64_t rows = 2, cols = (1ull << 30) + 2053, n = rows * cols; /* 2^31 + 4106 */
    uint16_t *w = alloc_w(n);
    gen_fast6(w, n, 2024);
    coded c;
    encode_or_die(w, rows, cols, 12, 11, "huge", &c);
    cr_assert_eq(c.view.mode, HUFF);
    cr_assert_gt(c.view.exp_bits, 1ull << 32, "the stream should exceed 2^32 bits");
    tseal_gpu_tensor *t = NULL;
    cr_assert_eq(tseal_gpu_tensor_upload(&c.view, 0, &t), 0, "%s", tseal_errmsg());
    tseal_buf_free(&c.blob); /* the device copy is independent of the blob */
    uint16_t *dev = NULL, *got = alloc_w(n);
    cr_assert_eq(tseal_gpu_malloc(0, n * 2, (void **)&dev), 0, "%s", tseal_errmsg());
    double t0 = tseal_now();
    cr_assert_eq(tseal_gpu_tensor_decode(t, dev, NULL), 0, "%s", tseal_errmsg());
    double dt = tseal_now() - t0;
    cr_log_info("huge: %llu elements decoded in %.3f s (%.1f GB/s of BF16, incl. sync)",
                (unsigned long long)n, dt, (double)n * 2 / dt / 1e9);
    cr_assert_eq(tseal_gpu_memcpy_d2h(got, dev, n * 2), 0, "%s", tseal_errmsg());
    if (memcmp(got, w, n * 2) != 0) {
        uint64_t i = 0;
        while (got[i] == w[i]) i++;
        cr_assert_fail("huge: element %llu differs: GPU 0x%04x, input 0x%04x",
                       (unsigned long long)i, got[i], w[i]);
    }
    tseal_gpu_mem_free(dev);
    tseal_gpu_tensor_free(t);
    free(got);
    free(w);
}
