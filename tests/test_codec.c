/*
 * test_codec.c - the exponent codec: round trips on many shapes and parameters, every edge
 * value, adversarial distributions, the length limit, and rejection of corrupt blobs by the
 * parser and both decoders (which must always agree).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "huffman.h"
#include "internal.h"

/* ---- helpers --------------------------------------------------------------------------- */

static uint64_t rng_state = 1;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static double rnd_unit(void) {
    return ((double)(rnd() >> 11) + 0.5) / 9007199254740992.0;
}
static uint16_t rnd_normal_bf16(double sigma) {
    double r = sigma * sqrt(-2 * log(rnd_unit())), t = 6.283185307179586 * rnd_unit();
    return tseal_f32_to_bf16((float)(r * cos(t)));
}

static uint16_t *normal_tensor(uint64_t n, double sigma) {
    uint16_t *x = malloc(n ? 2 * n : 2);
    cr_assert_not_null(x);
    for (uint64_t i = 0; i < n; i++) x[i] = rnd_normal_bf16(sigma);
    return x;
}

/* Encode, parse, decode with the reference and the fast decoder (1 and 3 threads); compare. */
static uint8_t roundtrip_p(const uint16_t *x, uint64_t rows, uint64_t cols,
                           const tseal_codec_params *p) {
    uint64_t n = rows * cols;
    tseal_buf b;
    tseal_codec_stats st;
    int r = tseal_codec_encode(x, rows, cols, p, &b, &st);
    cr_assert_eq(r, 0, "encode %llux%llu: %s", (unsigned long long)rows, (unsigned long long)cols,
                 tseal_errmsg());
    cr_assert_eq(st.total_bytes, b.size);
    tseal_ct_view v;
    r = tseal_codec_view(b.data, b.size, &v);
    cr_assert_eq(r, 0, "view %llux%llu: %s", (unsigned long long)rows, (unsigned long long)cols,
                 tseal_errmsg());
    cr_assert_eq(v.n_elems, n);
    uint16_t *y = calloc(n + 1, 2);
    r = tseal_codec_decode_ref(&v, y);
    cr_assert_eq(r, 0, "ref decode: %s", tseal_errmsg());
    cr_assert(memcmp(x, y, 2 * n) == 0, "reference decode differs (%llux%llu)",
              (unsigned long long)rows, (unsigned long long)cols);
    for (unsigned th = 1; th <= 3; th += 2) {
        memset(y, 0xA5, 2 * n);
        r = tseal_codec_decode_fast(&v, y, th);
        cr_assert_eq(r, 0, "fast decode: %s", tseal_errmsg());
        cr_assert(memcmp(x, y, 2 * n) == 0, "fast decode differs (%llux%llu, %u threads)",
                  (unsigned long long)rows, (unsigned long long)cols, th);
    }
    free(y);
    uint8_t mode = st.mode;
    tseal_buf_free(&b);
    return mode;
}

static uint8_t roundtrip(const uint16_t *x, uint64_t rows, uint64_t cols) {
    tseal_codec_params p;
    tseal_codec_params_default(&p);
    return roundtrip_p(x, rows, cols, &p);
}

/* ---- round trips ----------------------------------------------------------------------- */

Test(codec, shapes_from_one_element_to_millions) {
    static const uint64_t shapes[][2] = {
        {1, 1},    {1, 2},      {1, 3},       {1, 63},     {1, 64},      {1, 65},      {2, 100},
        {3, 1000}, {7, 2047},   {5, 2048},    {5, 2049},   {1, 4097},    {1000, 1},    {33, 3},
        {64, 64},  {17, 30001}, {1, 1 << 20}, {256, 4100}, {2048, 1024}, {3, 1 << 21},
    };
    rng_state = 11;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        uint64_t n = shapes[i][0] * shapes[i][1];
        uint16_t *x = normal_tensor(n, 0.02);
        roundtrip(x, shapes[i][0], shapes[i][1]);
        free(x);
    }
}

Test(codec, every_segment_size_and_length_limit) {
    rng_state = 12;
    uint16_t *x = normal_tensor(9 * 3001, 0.05);
    for (uint8_t sl = TSEAL_SEG_LOG2_MIN; sl <= TSEAL_SEG_LOG2_MAX; sl++) {
        for (uint8_t L = 1; L <= TSEAL_HUFF_MAX_BITS; L++) {
            tseal_codec_params p = {.max_code_bits = L, .seg_log2 = sl};
            roundtrip_p(x, 9, 3001, &p);
        }
    }
    free(x);
}

Test(codec, scales_from_tiny_to_huge) {
    static const double sigmas[] = {1e-30, 1e-8, 1e-3, 0.02, 1.0, 300.0, 1e30};
    rng_state = 13;
    for (size_t i = 0; i < sizeof sigmas / sizeof sigmas[0]; i++) {
        uint16_t *x = normal_tensor(50000, sigmas[i]);
        cr_assert_eq(roundtrip(x, 50, 1000), TSEAL_CT_MODE_HUFF);
        free(x);
    }
}

Test(codec, edge_values) {
    /* +-0, smallest/largest subnormals, +-inf, NaN payloads (quiet and signalling), max finite. */
    static const uint16_t edges[] = {0x0000, 0x8000, 0x0001, 0x807F, 0x007F, 0x7F80,
                                     0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0xFFFF, 0x7FFF,
                                     0x7F7F, 0xFF7F, 0x0080, 0x8080, 0x3F80, 0xBF80};
    size_t ne = sizeof edges / sizeof edges[0];
    uint64_t n = 100003;
    uint16_t *x = normal_tensor(n, 0.02);
    for (uint64_t i = 0; i < n; i += 7) x[i] = edges[(i / 7) % ne];
    roundtrip(x, 1, n);
    roundtrip(x, 7, n / 7);
    /* The edges alone, too small to pay: stored raw, still exact. */
    cr_assert_eq(roundtrip(edges, 1, ne), TSEAL_CT_MODE_RAW);
    free(x);
}

Test(codec, all_256_exponents_and_nan_payloads) {
    uint64_t n = 256 * 128;
    uint16_t *x = malloc(2 * n);
    for (uint64_t i = 0; i < n; i++) { /* every exponent with every mantissa and both signs */
        unsigned e = (unsigned)(i % 256), m = (unsigned)(i / 256) % 128,
                 s = (unsigned)(i / 256 / 64) & 1;
        x[i] = (uint16_t)(s << 15 | e << 7 | m);
    }
    roundtrip(x, 1, n);
    roundtrip(x, 128, 256);
    free(x);
}

Test(codec, adversarial_distributions) {
    uint64_t n = 70001;
    uint16_t *x = malloc(2 * n);
    /* one symbol (CONST): every value a different mantissa/sign, same exponent */
    for (uint64_t i = 0; i < n; i++) x[i] = (uint16_t)(0x3F80 | (i & 0x7F) | ((i & 128) << 8));
    cr_assert_eq(roundtrip(x, 1, n), TSEAL_CT_MODE_CONST);
    /* two symbols */
    for (uint64_t i = 0; i < n; i++) x[i] = (uint16_t)((rnd() & 1) ? 0x3F80 : 0x4000);
    cr_assert_eq(roundtrip(x, 1, n), TSEAL_CT_MODE_HUFF);
    /* all 256 exponents, uniform: 8-bit codes, still exact (may be RAW or HUFF) */
    for (uint64_t i = 0; i < n; i++) x[i] = (uint16_t)rnd();
    roundtrip(x, 1, n);
    /* alternating extremes */
    for (uint64_t i = 0; i < n; i++) x[i] = (i & 1) ? 0xFFFF : 0x0000;
    roundtrip(x, 1, n);
    /* geometric exponent distribution: unlimited Huffman would need ~20-bit codes */
    for (uint64_t i = 0; i < n; i++) {
        unsigned e = 0;
        while (e < 254 && (rnd() & 1)) e++;
        x[i] = (uint16_t)(e << 7 | (rnd() & 0x807F));
    }
    cr_assert_eq(roundtrip(x, 1, n), TSEAL_CT_MODE_HUFF);
    /* a single rare symbol among many of one */
    for (uint64_t i = 0; i < n; i++) x[i] = 0x3C00;
    x[n / 2] = 0x0001;
    cr_assert_eq(roundtrip(x, 1, n), TSEAL_CT_MODE_HUFF);
    free(x);
}

Test(codec, empty_tensor) {
    uint16_t dummy = 0;
    cr_assert_eq(roundtrip(&dummy, 0, 5), TSEAL_CT_MODE_RAW);
    cr_assert_eq(roundtrip(&dummy, 3, 0), TSEAL_CT_MODE_RAW);
}

Test(codec, compresses_normal_weights_near_the_bound) {
    rng_state = 14;
    uint64_t rows = 512, cols = 4096, n = rows * cols;
    uint16_t *x = normal_tensor(n, 0.02);
    tseal_buf b;
    tseal_codec_stats st;
    cr_assert_eq(tseal_codec_encode(x, rows, cols, NULL, &b, &st), 0);
    double bpw = 8.0 * (double)b.size / (double)n, bound = 8 + st.exp_entropy_bits;
    cr_assert(bound > 10.50 && bound < 10.59, "bound %.4f", bound);
    cr_assert(bpw < bound * 1.01, "stored %.4f bits/weight vs bound %.4f", bpw, bound);
    tseal_buf_free(&b);
    free(x);
}

Test(codec, bad_parameters) {
    uint16_t x[4] = {1, 2, 3, 4};
    tseal_buf b;
    tseal_codec_params p = {.max_code_bits = 13, .seg_log2 = 11};
    cr_assert_eq(tseal_codec_encode(x, 1, 4, &p, &b, NULL), TSEAL_E_INVAL);
    p = (tseal_codec_params){.max_code_bits = 12, .seg_log2 = 5};
    cr_assert_eq(tseal_codec_encode(x, 1, 4, &p, &b, NULL), TSEAL_E_INVAL);
    cr_assert_eq(tseal_codec_encode(x, UINT64_MAX, 2, NULL, &b, NULL), TSEAL_E_INVAL);
}

/* ---- Huffman code construction ---------------------------------------------------------- */

static uint64_t cost(const uint64_t h[256], const uint8_t len[256]) {
    uint64_t c = 0;
    for (int s = 0; s < 256; s++) c += h[s] * len[s];
    return c;
}

/* Plain (unlimited) Huffman cost by repeated merging of the two lightest weights. */
static uint64_t huffman_cost(const uint64_t h[256]) {
    uint64_t w[256];
    int n = 0;
    uint64_t total = 0;
    for (int s = 0; s < 256; s++)
        if (h[s]) w[n++] = h[s];
    while (n > 1) {
        int a = 0, b = 1;
        if (w[b] < w[a]) a = 1, b = 0;
        for (int i = 2; i < n; i++) {
            if (w[i] < w[a])
                b = a, a = i;
            else if (w[i] < w[b])
                b = i;
        }
        uint64_t m = w[a] + w[b];
        total += m;
        w[a] = m;
        w[b] = w[--n];
    }
    return total;
}

Test(huffman, package_merge_is_optimal_and_limited) {
    rng_state = 15;
    for (int trial = 0; trial < 300; trial++) {
        uint64_t h[256] = {0};
        int nsym = 2 + (int)(rnd() % 60);
        for (int i = 0; i < nsym; i++)
            h[rnd() % 256] += 1 + (rnd() % 4 ? rnd() % 1000 : rnd() % 10000000);
        uint8_t len[256];
        cr_assert_eq(tseal_huff_lengths(h, 24, len), 0);
        cr_assert_eq(cost(h, len), huffman_cost(h), "trial %d: not optimal", trial);
        for (unsigned L = 6; L <= 12; L++) {
            int present = 0;
            for (int s = 0; s < 256; s++) present += h[s] != 0;
            if ((1 << L) < present) continue;
            cr_assert_eq(tseal_huff_lengths(h, L, len), 0);
            for (int s = 0; s < 256; s++) cr_assert(len[s] <= L && (len[s] != 0) == (h[s] != 0));
            cr_assert_eq(tseal_huff_check(len), 0, "%s", tseal_errmsg());
        }
    }
}

Test(huffman, limit_is_respected_on_skewed_counts) {
    uint64_t h[256] = {0};
    for (int s = 0; s < 40; s++) h[s] = 1ull << (40 - s); /* Fibonacci-like skew */
    uint8_t len[256];
    cr_assert_eq(tseal_huff_lengths(h, 24, len), 0);
    int longest = 0;
    for (int s = 0; s < 256; s++) longest = len[s] > longest ? len[s] : longest;
    cr_assert(longest > 12);
    cr_assert_eq(tseal_huff_lengths(h, 12, len), 0);
    for (int s = 0; s < 256; s++) cr_assert(len[s] <= 12);
    cr_assert_eq(tseal_huff_check(len), 0);
    cr_assert(tseal_codec_limited_bits(h, 12) >= tseal_codec_limited_bits(h, 24));
}

Test(huffman, impossible_requests) {
    uint64_t h[256] = {0};
    uint8_t len[256];
    h[3] = 10;
    cr_assert_eq(tseal_huff_lengths(h, 12, len), TSEAL_E_INVAL); /* one symbol */
    for (int s = 0; s < 256; s++) h[s] = 1;
    cr_assert_eq(tseal_huff_lengths(h, 7, len), TSEAL_E_INVAL); /* 256 symbols in 7 bits */
    cr_assert_eq(tseal_huff_lengths(h, 8, len), 0);
}

Test(huffman, check_rejects_bad_lengths) {
    uint8_t len[256] = {0};
    len[0] = 1;
    cr_assert_eq(tseal_huff_check(len), TSEAL_E_CORRUPT); /* one symbol */
    len[1] = 2;
    cr_assert_eq(tseal_huff_check(len), TSEAL_E_CORRUPT); /* Kraft sum 3/4 */
    len[2] = 2;
    cr_assert_eq(tseal_huff_check(len), 0);
    len[3] = 3;
    cr_assert_eq(tseal_huff_check(len), TSEAL_E_CORRUPT); /* Kraft sum > 1 */
    memset(len, 0, sizeof len);
    len[0] = 1;
    len[1] = 13;
    cr_assert_eq(tseal_huff_check(len), TSEAL_E_CORRUPT); /* over the limit */
}

Test(huffman, decode_tables_agree_with_codes) {
    uint64_t h[256] = {0};
    rng_state = 16;
    for (int s = 100; s < 140; s++) h[s] = 1 + rnd() % 100000;
    uint8_t len[256];
    uint16_t code[256];
    cr_assert_eq(tseal_huff_lengths(h, 12, len), 0);
    tseal_huff_codes(len, code);
    static uint32_t multi[TSEAL_DTAB_SIZE];
    static uint16_t single[TSEAL_DTAB_SIZE];
    tseal_huff_build_dtab(len, multi, single);
    for (int s = 0; s < 256; s++) {
        if (!len[s]) continue;
        unsigned idx = (unsigned)code[s] << (12 - len[s]);
        cr_assert_eq(TSEAL_STAB_SYM(single[idx]), (unsigned)s);
        cr_assert_eq(TSEAL_STAB_LEN(single[idx]), len[s]);
        cr_assert_eq(multi[idx] & 0xFF, (unsigned)s);
    }
    for (unsigned i = 0; i < TSEAL_DTAB_SIZE; i++) {
        unsigned c = TSEAL_DTAB_COUNT(multi[i]), nb = TSEAL_DTAB_NBITS(multi[i]);
        cr_assert(c >= 1 && c <= 3 && nb >= 1 && nb <= 12);
    }
}

/* ---- corrupt blobs ---------------------------------------------------------------------- */

typedef struct {
    uint16_t *x;
    tseal_buf b;
    uint64_t rows, cols;
} fixture;

static fixture make_fixture(uint64_t rows, uint64_t cols, uint8_t seg_log2) {
    fixture f = {.rows = rows, .cols = cols};
    rng_state = 17;
    f.x = normal_tensor(rows * cols, 0.02);
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = seg_log2};
    cr_assert_eq(tseal_codec_encode(f.x, rows, cols, &p, &f.b, NULL), 0);
    return f;
}

static void free_fixture(fixture *f) {
    free(f->x);
    tseal_buf_free(&f->b);
}

static void expect_view_error(const uint8_t *blob, size_t len, const char *needle) {
    tseal_ct_view v;
    int r = tseal_codec_view(blob, len, &v);
    cr_assert_eq(r, TSEAL_E_CORRUPT, "expected corruption (%s), got %d", needle, r);
    cr_assert(strstr(tseal_errmsg(), needle), "message '%s' lacks '%s'", tseal_errmsg(), needle);
}

/* Both decoders must reject (never crash, never disagree). */
static void expect_decode_error(const uint8_t *blob, size_t len, uint64_t n) {
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(blob, len, &v), 0, "%s", tseal_errmsg());
    uint16_t *y = malloc(2 * n);
    cr_assert_eq(tseal_codec_decode_ref(&v, y), TSEAL_E_CORRUPT);
    cr_assert(strstr(tseal_errmsg(), "segment"), "%s", tseal_errmsg());
    cr_assert_eq(tseal_codec_decode_fast(&v, y, 1), TSEAL_E_CORRUPT);
    cr_assert_eq(tseal_codec_decode_fast(&v, y, 3), TSEAL_E_CORRUPT);
    free(y);
}

Test(codec_corrupt, header_fields) {
    fixture f = make_fixture(4, 3000, 10);
    uint8_t *c = malloc(f.b.size);
#define MUTATE(stmt, needle)                                                                       \
    do {                                                                                           \
        memcpy(c, f.b.data, f.b.size);                                                             \
        stmt;                                                                                      \
        expect_view_error(c, f.b.size, needle);                                                    \
    } while (0)
    MUTATE(c[0] = 'X', "bad magic");
    MUTATE(c[4] = 7, "unknown mode");
    MUTATE(c[5] = 13, "max_code_bits");
    MUTATE(c[5] = (uint8_t)(c[5] - 1), "max_code_bits is not the longest");
    MUTATE(c[6] = 5, "seg_log2");
    MUTATE(c[6] = 15, "seg_log2");
    MUTATE(c[7] = 25, "len_width");
    MUTATE(c[8] ^= 1, "rows * cols");
    MUTATE(c[16] ^= 1, "rows * cols");
    MUTATE(c[32] ^= 8, "");
    MUTATE(c[44] = 4, "element size");
    MUTATE(c[45] = 1, "constant exponent");
    MUTATE(c[50] = 1, "reserved");
    MUTATE(c[TSEAL_CT_HEADER_BYTES + 60] ^= 0x01, "Kraft");
    expect_view_error(f.b.data, f.b.size - 16, "size");
    expect_view_error(f.b.data, 10, "shorter");
    expect_view_error(NULL, 0, "shorter");
#undef MUTATE
    free(c);
    free_fixture(&f);
}

Test(codec_corrupt, index_and_padding) {
    fixture f = make_fixture(4, 3001, 8); /* 12 segments per row: 48 segments, 2 groups */
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(f.b.data, f.b.size, &v), 0);
    uint64_t bases = (uint64_t)(v.group_base - f.b.data), lens = (uint64_t)(v.seg_lens - f.b.data);
    uint64_t exp = (uint64_t)(v.exp_stream - f.b.data);
    uint8_t *c = malloc(f.b.size);
    memcpy(c, f.b.data, f.b.size);
    c[bases + 8] ^= 1; /* second group base */
    expect_view_error(c, f.b.size, "group base");
    memcpy(c, f.b.data, f.b.size);
    c[bases] = 1; /* first base must be 0 */
    expect_view_error(c, f.b.size, "group base");
    memcpy(c, f.b.data, f.b.size);
    c[exp + v.exp_bytes - 1] = 1; /* slack */
    expect_view_error(c, f.b.size, "slack");
    memcpy(c, f.b.data, f.b.size);
    c[TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES + v.n_elems] =
        1; /* plane padding (12004 % 16 = 4) */
    expect_view_error(c, f.b.size, "padding");
    memcpy(c, f.b.data, f.b.size);
    c[lens] ^= 0xFF; /* segment lengths no longer chain into the bases */
    tseal_ct_view v2;
    cr_assert_eq(tseal_codec_view(c, f.b.size, &v2), TSEAL_E_CORRUPT);
    free(c);
    free_fixture(&f);
}

/* Move one bit of length from segment 0 to segment 1: the index stays consistent, so the
 * parser accepts it, but the segments no longer end where they should. */
Test(codec_corrupt, segment_not_ending_exactly) {
    fixture f = make_fixture(1, 4096, 8);
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(f.b.data, f.b.size, &v), 0);
    uint8_t *c = malloc(f.b.size);
    memcpy(c, f.b.data, f.b.size);
    uint64_t lens = (uint64_t)(v.seg_lens - f.b.data);
    uint32_t w = v.len_width, l0 = tseal_ct_seg_bits(&v, 0) - v.seg_bits_min,
             l1 = tseal_ct_seg_bits(&v, 1) - v.seg_bits_min;
    int dir = l0 > 0 ? -1 : 1; /* shorten 0 and lengthen 1, or the reverse */
    cr_assert((dir < 0 && l1 + 1 < (1u << w)) || (dir > 0 && l1 > 0),
              "fixture has no room to move a bit");
    uint32_t n0 = l0 + dir, n1 = l1 - dir;
    for (uint32_t k = 0; k < 2 * w; k++) { /* rewrite fields 0 and 1 */
        uint32_t bit = k, val = k < w ? (n0 >> k) & 1 : (n1 >> (k - w)) & 1;
        c[lens + bit / 8] =
            (uint8_t)((c[lens + bit / 8] & ~(1u << (bit % 8))) | (val << (bit % 8)));
    }
    expect_decode_error(c, f.b.size, 4096);
    free(c);
    free_fixture(&f);
}

/* Every single-bit flip of a small blob: parse or decode fails cleanly, or both decoders
 * agree (a flipped plane bit is legal data). Never a crash (run under ASan by asan-test). */
Test(codec_corrupt, every_bit_flip) {
    fixture f = make_fixture(3, 200, 6);
    uint8_t *c = malloc(f.b.size);
    uint16_t *y1 = malloc(2 * 600), *y2 = malloc(2 * 600);
    unsigned accepted = 0, rejected = 0;
    for (size_t bit = 0; bit < 8 * f.b.size; bit++) {
        memcpy(c, f.b.data, f.b.size);
        c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        tseal_ct_view v;
        if (tseal_codec_view(c, f.b.size, &v) != 0) {
            rejected++;
            continue;
        }
        int r1 = tseal_codec_decode_ref(&v, y1), r2 = tseal_codec_decode_fast(&v, y2, 1);
        cr_assert_eq(r1, r2, "bit %zu: decoders disagree (%d vs %d)", bit, r1, r2);
        if (r1 == 0) {
            cr_assert(memcmp(y1, y2, 2 * v.n_elems) == 0, "bit %zu: outputs differ", bit);
            accepted++;
        } else {
            rejected++;
        }
    }
    cr_assert(accepted > 0 && rejected > 0);
    free(c);
    free(y1);
    free(y2);
    free_fixture(&f);
}

Test(codec_corrupt, truncation_at_every_length) {
    fixture f = make_fixture(2, 300, 6);
    for (size_t len = 0; len < f.b.size; len++) {
        uint8_t *c = malloc(len ? len : 1); /* exact-size copy so ASan sees any over-read */
        memcpy(c, f.b.data, len);
        tseal_ct_view v;
        cr_assert_eq(tseal_codec_view(c, len, &v), TSEAL_E_CORRUPT, "length %zu accepted", len);
        free(c);
    }
    free_fixture(&f);
}

/* ---- streaming encoder ------------------------------------------------------------------ */

typedef struct {
    const uint16_t *x;
    uint8_t *out;
    size_t len, cap;
    unsigned reads;
} stream_ctx;

static int mem_read(void *ctx, uint64_t first, uint16_t *buf, uint64_t n) {
    stream_ctx *c = ctx;
    memcpy(buf, c->x + first, 2 * n);
    c->reads++;
    return 0;
}

static int mem_write(void *ctx, const void *buf, size_t len) {
    stream_ctx *c = ctx;
    if (c->len + len > c->cap) {
        c->cap = 2 * (c->len + len);
        c->out = realloc(c->out, c->cap);
    }
    memcpy(c->out + c->len, buf, len);
    c->len += len;
    return 0;
}

static void expect_stream_equal(const uint16_t *x, uint64_t rows, uint64_t cols, uint8_t seg_log2) {
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = seg_log2};
    tseal_buf b;
    tseal_codec_stats s1, s2;
    cr_assert_eq(tseal_codec_encode(x, rows, cols, &p, &b, &s1), 0);
    stream_ctx c = {.x = x};
    uint64_t size = 0;
    cr_assert_eq(tseal_codec_encode_stream(mem_read, &c, rows, cols, &p, mem_write, &c, &size, &s2),
                 0, "%s", tseal_errmsg());
    cr_assert_eq(size, b.size);
    cr_assert_eq(c.len, b.size, "stream wrote %zu bytes, in-memory %zu", c.len, b.size);
    cr_assert(memcmp(c.out, b.data, b.size) == 0, "streamed blob differs (%llux%llu)",
              (unsigned long long)rows, (unsigned long long)cols);
    cr_assert_eq(s1.mode, s2.mode);
    free(c.out);
    tseal_buf_free(&b);
}

Test(codec, streaming_encoder_matches_in_memory) {
    rng_state = 18;
    uint64_t n = 3 * 700001; /* chunks of 2^20 elements end mid-segment and mid-row */
    uint16_t *x = normal_tensor(n, 0.02);
    expect_stream_equal(x, 3, 700001, 11);
    expect_stream_equal(x, 1, n, 6);
    expect_stream_equal(x, 7, 5, 11);
    expect_stream_equal(x, 1, 1, 11);
    for (uint64_t i = 0; i < 5000; i++) x[i] = (uint16_t)(0x3F80 | (i & 0x7F)); /* CONST */
    expect_stream_equal(x, 1, 5000, 11);
    for (uint64_t i = 0; i < 300; i++) x[i] = (uint16_t)rnd(); /* RAW */
    expect_stream_equal(x, 1, 300, 11);
    uint16_t dummy = 0;
    expect_stream_equal(&dummy, 0, 4, 11); /* empty */
    free(x);
}
