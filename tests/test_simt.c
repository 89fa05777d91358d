/*
 * test_simt.c - the warp model of the GPU decode loop (bench/simt_model.c): its counts on
 * tensors whose answer is known.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "simt_model.h"

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* rows x cols N(0, 0.02) weights; with same_rows, every row is row 0. */
static uint16_t *weights(uint64_t rows, uint64_t cols, int same_rows, uint64_t seed) {
    uint16_t *w = malloc(rows * cols * 2);
    cr_assert_not_null(w);
    uint64_t s = seed;
    for (uint64_t i = 0; i < rows * cols; i++) {
        if (same_rows && i >= cols) {
            w[i] = w[i % cols];
            continue;
        }
        const double u1 = ((double)(mix(&s) >> 11) + 0.5) * 0x1p-53;
        const double u2 = ((double)(mix(&s) >> 11) + 0.5) * 0x1p-53;
        w[i] = tseal_f32_to_bf16((float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2)));
    }
    return w;
}

static void count(const uint16_t *w, uint64_t rows, uint64_t cols, unsigned seg_log2,
                  tseal_simt_counts *c, tseal_buf *blob) {
    tseal_codec_params p;
    tseal_codec_params_default(&p);
    p.seg_log2 = (uint8_t)seg_log2;
    tseal_codec_stats st;
    cr_assert_eq(tseal_codec_encode(w, rows, cols, &p, blob, &st), 0, "%s", tseal_errmsg());
    cr_assert_eq(st.mode, TSEAL_CT_MODE_HUFF);
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(blob->data, blob->size, &v), 0, "%s", tseal_errmsg());
    memset(c, 0, sizeof *c);
    cr_assert_eq(tseal_simt_count(&v, 0, c), 0, "%s", tseal_errmsg());
}

/* Identical lanes never diverge: every form issues one body per chunk and the same lookups. */
Test(simt, identical_lanes_do_not_diverge) {
    const uint64_t rows = 64, cols = 256;
    uint16_t *w = weights(rows, cols, 1, 5);
    tseal_simt_counts c;
    tseal_buf blob;
    count(w, rows, cols, 8, &c, &blob);
    cr_assert_eq(c.warps, 2);
    cr_assert_eq(c.inline_lookups, c.uniform_lookups);
    cr_assert_eq(c.inline_bodies, c.uniform_bodies);
    cr_assert_eq(c.inline_bodies * 32, c.lane_chunks);
    cr_assert_geq(c.lane_chunks, rows * (cols / 8 - 1)); /* all but the tail's last chunk */
    cr_assert_eq(c.pair_lane_chunks, c.lane_chunks);     /* both warps in one pair */
    cr_assert_eq(c.pair_lookups, c.uniform_lookups);     /* 2 issues per iteration, 2 rows */
    tseal_buf_free(&blob);
    free(w);
}

/* Independent lanes: the uniform form runs one body per chunk index, at most the lanes'
 * largest chunk count, and no fewer lookups than the inline form. */
Test(simt, divergent_lanes) {
    const uint64_t rows = 96, cols = 1000; /* 4 segments of 256 (the last of 232) per row */
    uint16_t *w = weights(rows, cols, 0, 9);
    tseal_simt_counts c;
    tseal_buf blob;
    count(w, rows, cols, 8, &c, &blob);
    cr_assert_eq(c.warps, rows * 4 / 32);
    cr_assert_leq(c.uniform_bodies, c.warps * 32);
    cr_assert_geq(c.uniform_bodies * 32, c.lane_chunks);
    cr_assert_lt(c.uniform_bodies, c.inline_bodies);
    cr_assert_geq(c.uniform_lookups, c.inline_lookups);
    /* pairs (warps 0+1, 2+3, ...: all of them) wait for the slowest of 64 streams, not 32 */
    cr_assert_eq(c.pair_lane_chunks, c.lane_chunks);
    cr_assert_geq(c.pair_lookups, c.uniform_lookups);
    tseal_buf_free(&blob);
    free(w);
}

/* Sampling: max_warps bounds the warps counted. */
Test(simt, sampling) {
    const uint64_t rows = 256, cols = 512;
    uint16_t *w = weights(rows, cols, 0, 13);
    tseal_simt_counts c;
    tseal_buf blob;
    count(w, rows, cols, 8, &c, &blob);
    cr_assert_eq(c.warps, 16);
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(blob.data, blob.size, &v), 0);
    tseal_simt_counts s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(tseal_simt_count(&v, 4, &s), 0);
    cr_assert_eq(s.warps, 4);
    tseal_buf_free(&blob);
    free(w);
}
