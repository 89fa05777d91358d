/*
 * test_tools.c - F32/F16 -> BF16 conversion (edge values, chunking, copying) and the
 * synthetic Llama model (layout, determinism, sharding, statistics).
 */
#include "st_testutil.h"

#include <cjson/cJSON.h>
#include <math.h>

TestSuite(convert, .init = tu_setup, .fini = tu_teardown);
TestSuite(synth, .init = tu_setup, .fini = tu_teardown);

static float f32_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Writes one-tensor files, converts, returns the output tensor bytes (caller frees). */
static uint8_t *convert_one(tseal_dtype dt, const void *data, size_t n, size_t *out_len) {
    const char *in = tu_path("in.safetensors"), *out = tu_path("out.safetensors");
    tseal_st_writer *w;
    uint64_t shape[1] = {n};
    cr_assert_eq(tseal_st_writer_open(in, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "t", dt, 1, shape), 0);
    cr_assert_eq(tseal_st_writer_write(w, data, n * tseal_dtype_size(dt)), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0);
    cr_assert_eq(tseal_convert_to_bf16(in, out), 0, "%s", tseal_errmsg());
    tseal_st *st;
    cr_assert_eq(tseal_st_open(out, &st), 0, "%s", tseal_errmsg());
    const tseal_st_tensor *t = tseal_st_get(st, 0);
    cr_assert_eq(t->dtype, TSEAL_DT_BF16);
    cr_assert_eq(t->shape[0], n);
    *out_len = t->end - t->begin;
    uint8_t *b = malloc(*out_len + 1);
    cr_assert_eq(tseal_st_read(st, 0, 0, b, *out_len), 0);
    tseal_st_close(st);
    return b;
}

static uint16_t le16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static bool bf16_is_nan(uint16_t h) {
    return (h & 0x7F80) == 0x7F80 && (h & 0x7F);
}

/* ---- convert ------------------------------------------------------------------------------- */

Test(convert, f32_edge_values) {
    static const struct {
        uint32_t in;
        uint16_t out;
        const char *what;
    } c[] = {
        {0x3F800000, 0x3F80, "1.0"},
        {0x3F808000, 0x3F80, "tie, even below: down"},
        {0x3F818000, 0x3F82, "tie, odd below: up to even"},
        {0x3F808001, 0x3F81, "just above the tie: up"},
        {0x3F807FFF, 0x3F80, "just below the tie: down"},
        {0xBF818000, 0xBF82, "negative tie to even"},
        {0x00000000, 0x0000, "+0"},
        {0x80000000, 0x8000, "-0"},
        {0x00000001, 0x0000, "smallest subnormal rounds to +0"},
        {0x80000001, 0x8000, "smallest negative subnormal rounds to -0"},
        {0x00010000, 0x0001, "subnormal, exact"},
        {0x00018000, 0x0002, "subnormal tie to even (up)"},
        {0x00028000, 0x0002, "subnormal tie to even (down)"},
        {0x007FFFFF, 0x0080, "largest subnormal rounds to the smallest normal"},
        {0x7F800000, 0x7F80, "+inf"},
        {0xFF800000, 0xFF80, "-inf"},
        {0x7F7FFFFF, 0x7F80, "max finite rounds to +inf"},
        {0xFF7FFFFF, 0xFF80, "-max finite rounds to -inf"},
        {0x7F7F7FFF, 0x7F7F, "largest value that stays finite"},
    };
    size_t n = sizeof c / sizeof c[0];
    uint32_t in[32];
    for (size_t i = 0; i < n; i++) in[i] = c[i].in;
    static const uint32_t nans[] = {0x7FC00000, 0x7F800001, 0xFFC00001, 0x7FFFFFFF};
    for (size_t i = 0; i < 4; i++) in[n + i] = nans[i];
    size_t len;
    uint8_t *b = convert_one(TSEAL_DT_F32, in, n + 4, &len);
    cr_assert_eq(len, 2 * (n + 4));
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(le16(b + 2 * i), c[i].out, "%s: 0x%08x -> 0x%04x, expected 0x%04x", c[i].what,
                     c[i].in, le16(b + 2 * i), c[i].out);
    for (size_t i = 0; i < 4; i++) {
        uint16_t h = le16(b + 2 * (n + i));
        cr_assert(bf16_is_nan(h), "NaN 0x%08x -> 0x%04x is not NaN", nans[i], h);
        cr_assert_eq(h >> 15, nans[i] >> 31, "NaN keeps its sign");
    }
    free(b);
}

Test(convert, f16_edge_values_exact) {
    static const struct {
        uint16_t in, out;
        const char *what;
    } c[] = {
        {0x3C00, 0x3F80, "1.0"},
        {0xC000, 0xC000, "-2.0"},
        {0x0000, 0x0000, "+0"},
        {0x8000, 0x8000, "-0"},
        {0x0001, 0x3380, "smallest subnormal 2^-24"},
        {0x03FF, 0x3880, "largest subnormal rounds up"},
        {0x0400, 0x3880, "smallest normal 2^-14"},
        {0x7BFF, 0x4780, "65504 rounds to 65536"},
        {0x3555, 0x3EAB, "0.333 rounds up"},
        {0x3C01, 0x3F80, "1 + 2^-10 rounds down to 1"},
        {0x7C00, 0x7F80, "+inf"},
        {0xFC00, 0xFF80, "-inf"},
    };
    size_t n = sizeof c / sizeof c[0];
    uint16_t in[16];
    for (size_t i = 0; i < n; i++) in[i] = c[i].in;
    in[n] = 0x7E00; /* NaN */
    in[n + 1] = 0xFC01;
    size_t len;
    uint8_t *b = convert_one(TSEAL_DT_F16, in, n + 2, &len);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(le16(b + 2 * i), c[i].out, "%s: 0x%04x -> 0x%04x, expected 0x%04x", c[i].what,
                     c[i].in, le16(b + 2 * i), c[i].out);
        /* and it is exactly the F32 rounding of the exact F16 value */
        cr_assert_eq(c[i].out, tseal_f32_to_bf16(tseal_f16_to_f32(c[i].in)));
    }
    cr_assert(bf16_is_nan(le16(b + 2 * n)));
    cr_assert(bf16_is_nan(le16(b + 2 * n + 2)));
    cr_assert_eq(le16(b + 2 * n + 2) >> 15, 1);
    free(b);
}

Test(convert, other_dtypes_metadata_and_order) {
    const char *in = tu_path("in.safetensors"), *out = tu_path("out.safetensors");
    tseal_st_writer *w;
    uint64_t s3[1] = {3}, s22[2] = {2, 2};
    cr_assert_eq(tseal_st_writer_open(in, &w), 0);
    cr_assert_eq(tseal_st_writer_meta(w, "format", "pt"), 0);
    cr_assert_eq(tseal_st_writer_meta(w, "source", "test"), 0);
    static const struct {
        const char *name;
        tseal_dtype dt, want;
    } t[] = {{"z.i32", TSEAL_DT_I32, TSEAL_DT_I32},    {"y.f32", TSEAL_DT_F32, TSEAL_DT_BF16},
             {"x.bf16", TSEAL_DT_BF16, TSEAL_DT_BF16}, {"w.u8", TSEAL_DT_U8, TSEAL_DT_U8},
             {"v.f16", TSEAL_DT_F16, TSEAL_DT_BF16},   {"u.f64", TSEAL_DT_F64, TSEAL_DT_F64},
             {"t.empty", TSEAL_DT_F32, TSEAL_DT_BF16}};
    size_t nt = sizeof t / sizeof t[0];
    for (size_t i = 0; i < nt - 1; i++)
        cr_assert_eq(tseal_st_writer_add(w, t[i].name, t[i].dt, i % 2 ? 1 : 2, i % 2 ? s3 : s22),
                     0);
    uint64_t s0[2] = {4, 0};
    cr_assert_eq(tseal_st_writer_add(w, t[nt - 1].name, TSEAL_DT_F32, 2, s0), 0);
    uint8_t data[256];
    size_t total = 0;
    for (size_t i = 0; i < nt - 1; i++) total += (i % 2 ? 3 : 4) * tseal_dtype_size(t[i].dt);
    for (size_t i = 0; i < total; i++) data[i] = (uint8_t)(i * 37 + 11);
    cr_assert_eq(tseal_st_writer_write(w, data, total), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0, "%s", tseal_errmsg());

    cr_assert_eq(tseal_convert_to_bf16(in, out), 0, "%s", tseal_errmsg());
    tseal_st *a, *b;
    cr_assert_eq(tseal_st_open(in, &a), 0);
    cr_assert_eq(tseal_st_open(out, &b), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_st_count(b), nt);
    cr_assert_eq(tseal_st_meta_count(b), 2);
    const char *k, *v;
    tseal_st_meta_get(b, 1, &k, &v);
    cr_assert_str_eq(k, "source");
    cr_assert_str_eq(v, "test");
    for (size_t i = 0; i < nt; i++) {
        const tseal_st_tensor *ta = tseal_st_get(a, i), *tb = tseal_st_get(b, i);
        cr_assert_str_eq(tb->name, t[i].name, "order preserved");
        cr_assert_eq(tb->dtype, t[i].want);
        cr_assert_eq(tb->rank, ta->rank);
        cr_assert_eq(memcmp(tb->shape, ta->shape, sizeof ta->shape), 0);
        uint8_t x[64], y[64];
        cr_assert_eq(tseal_st_read(a, i, 0, x, ta->end - ta->begin), 0);
        cr_assert_eq(tseal_st_read(b, i, 0, y, tb->end - tb->begin), 0);
        if (t[i].want == t[i].dt) {
            cr_assert_eq(ta->end - ta->begin, tb->end - tb->begin);
            cr_assert_eq(memcmp(x, y, ta->end - ta->begin), 0, "%s copied byte-exact", t[i].name);
        }
    }
    tseal_st_close(a);
    tseal_st_close(b);
    cr_assert_eq(tu_count_entries(), 2, "no temporary file left");
}

Test(convert, large_tensors_stream_in_chunks) {
    /* sizes that cross the 1 MiB read chunks at odd element counts */
    const char *in = tu_path("in.safetensors"), *out = tu_path("out.safetensors");
    size_t n32 = 700001, n16 = 600001;
    uint32_t *f = malloc(n32 * 4);
    uint16_t *h = malloc(n16 * 2);
    uint64_t x = 12345;
    for (size_t i = 0; i < n32; i++) f[i] = (uint32_t)((x = x * 6364136223846793005ull + 1) >> 32);
    for (size_t i = 0; i < n16; i++) h[i] = (uint16_t)((x = x * 6364136223846793005ull + 1) >> 48);
    tseal_st_writer *w;
    uint64_t s32[1] = {n32}, s16[2] = {1, n16};
    cr_assert_eq(tseal_st_writer_open(in, &w), 0);
    cr_assert_eq(tseal_st_writer_add(w, "a", TSEAL_DT_F32, 1, s32), 0);
    cr_assert_eq(tseal_st_writer_add(w, "b", TSEAL_DT_F16, 2, s16), 0);
    cr_assert_eq(tseal_st_writer_write(w, f, n32 * 4), 0);
    cr_assert_eq(tseal_st_writer_write(w, h, n16 * 2), 0);
    cr_assert_eq(tseal_st_writer_commit(w), 0);
    cr_assert_eq(tseal_convert_to_bf16(in, out), 0, "%s", tseal_errmsg());

    tseal_st *st;
    cr_assert_eq(tseal_st_open(out, &st), 0, "%s", tseal_errmsg());
    uint16_t *o = malloc(n32 * 2);
    cr_assert_eq(tseal_st_read(st, 0, 0, o, n32 * 2), 0);
    for (size_t i = 0; i < n32; i++) {
        uint16_t want = tseal_f32_to_bf16(f32_of(f[i]));
        if (o[i] != want) cr_assert_fail("F32 element %zu: 0x%04x != 0x%04x", i, o[i], want);
    }
    cr_assert_eq(tseal_st_read(st, 1, 0, o, n16 * 2), 0);
    for (size_t i = 0; i < n16; i++) {
        uint16_t want = tseal_f32_to_bf16(tseal_f16_to_f32(h[i]));
        if (o[i] != want) cr_assert_fail("F16 element %zu: 0x%04x != 0x%04x", i, o[i], want);
    }
    tseal_st_close(st);
    free(o);
    free(f);
    free(h);
}

Test(convert, corrupt_input_leaves_no_output) {
    const char *in = tu_path("in.safetensors"), *out = tu_path("out.safetensors");
    tu_write_st(in, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", "abcd", 4);
    tu_assert_err(tseal_convert_to_bf16(in, out), TSEAL_E_CORRUPT, "in.safetensors: tensor 'a'");
    cr_assert(!tu_exists(out));
    cr_assert_eq(tu_count_entries(), 1);
}

Test(convert, missing_input) {
    tu_assert_err(tseal_convert_to_bf16(tu_path("none.safetensors"), tu_path("o.safetensors")),
                  TSEAL_E_NOTFOUND, "none.safetensors: cannot open");
    cr_assert_eq(tu_count_entries(), 0);
}

Test(convert, output_directory_missing) {
    const char *in = tu_path("in.safetensors");
    tu_write_st(in, "{}", NULL, 0);
    tu_assert_err(tseal_convert_to_bf16(in, tu_path("no/out.safetensors")), TSEAL_E_IO,
                  "cannot create temporary file");
}

/* ---- synth --------------------------------------------------------------------------------- */

static const char *synth_dir(const char *name, const char *preset, uint64_t seed, unsigned shards) {
    const char *dir = tu_path(name);
    tseal_synth_opts o = {.preset = preset, .seed = seed, .shards = shards};
    cr_assert_eq(tseal_synth_model(dir, &o), 0, "%s", tseal_errmsg());
    return dir;
}

static uint8_t *read_in(const char *dir, const char *name, size_t *len) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    uint8_t *b = tu_read(p, len);
    cr_assert_not_null(b, "%s missing", p);
    return b;
}

static bool same_file(const char *d1, const char *d2, const char *name) {
    size_t la, lb;
    uint8_t *a = read_in(d1, name, &la), *b = read_in(d2, name, &lb);
    bool same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    return same;
}

Test(synth, tiny_layout) {
    const char *dir = synth_dir("m", NULL, 7, 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tseal_st *st;
    cr_assert_eq(tseal_st_open(p, &st), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_st_count(st), 21);
    static const struct {
        const char *name;
        uint64_t r, c;
    } want[] = {
        {"model.embed_tokens.weight", 1024, 256},
        {"model.layers.0.input_layernorm.weight", 256, 0},
        {"model.layers.0.self_attn.q_proj.weight", 256, 256},
        {"model.layers.0.self_attn.k_proj.weight", 128, 256},
        {"model.layers.0.self_attn.v_proj.weight", 128, 256},
        {"model.layers.0.self_attn.o_proj.weight", 256, 256},
        {"model.layers.0.post_attention_layernorm.weight", 256, 0},
        {"model.layers.0.mlp.gate_proj.weight", 704, 256},
        {"model.layers.0.mlp.up_proj.weight", 704, 256},
        {"model.layers.0.mlp.down_proj.weight", 256, 704},
    };
    for (size_t i = 0; i < 10; i++) {
        const tseal_st_tensor *t = tseal_st_get(st, i);
        cr_assert_str_eq(t->name, want[i].name);
        cr_assert_eq(t->dtype, TSEAL_DT_BF16);
        cr_assert_eq(t->rank, want[i].c ? 2u : 1u);
        cr_assert_eq(t->shape[0], want[i].r);
        cr_assert_eq(t->shape[1], want[i].c);
    }
    cr_assert_str_eq(tseal_st_get(st, 10)->name, "model.layers.1.input_layernorm.weight");
    cr_assert_str_eq(tseal_st_get(st, 19)->name, "model.norm.weight");
    cr_assert_str_eq(tseal_st_get(st, 20)->name, "lm_head.weight");
    cr_assert_eq(tseal_st_get(st, 20)->shape[0], 1024);
    const char *k, *v;
    cr_assert_eq(tseal_st_meta_get(st, 0, &k, &v), 0);
    cr_assert_str_eq(k, "format");
    cr_assert_str_eq(v, "pt");
    tseal_st_close(st);

    size_t len;
    char *cfg = (char *)read_in(dir, "config.json", &len);
    cJSON *c = cJSON_Parse(cfg);
    cr_assert_not_null(c);
    cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "architectures"), 0)->valuestring,
                     "LlamaForCausalLM");
    cr_assert_str_eq(cJSON_GetObjectItem(c, "model_type")->valuestring, "llama");
    cr_assert_str_eq(cJSON_GetObjectItem(c, "torch_dtype")->valuestring, "bfloat16");
    cr_assert_str_eq(cJSON_GetObjectItem(c, "hidden_act")->valuestring, "silu");
    static const struct {
        const char *key;
        double v;
    } num[] = {{"hidden_size", 256},       {"intermediate_size", 704},
               {"num_hidden_layers", 2},   {"num_attention_heads", 8},
               {"num_key_value_heads", 4}, {"head_dim", 32},
               {"vocab_size", 1024},       {"max_position_embeddings", 2048},
               {"rms_norm_eps", 1e-5},     {"rope_theta", 500000.0},
               {"bos_token_id", 1},        {"eos_token_id", 2}};
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) {
        cJSON *it = cJSON_GetObjectItem(c, num[i].key);
        cr_assert(cJSON_IsNumber(it), "%s", num[i].key);
        cr_assert_eq(it->valuedouble, num[i].v, "%s", num[i].key);
    }
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(c, "tie_word_embeddings")));
    cJSON_Delete(c);
    free(cfg);
    char *gen = (char *)read_in(dir, "generation_config.json", &len);
    cJSON *g = cJSON_Parse(gen);
    cr_assert_eq(cJSON_GetObjectItem(g, "eos_token_id")->valuedouble, 2);
    cJSON_Delete(g);
    free(gen);
}

Test(synth, deterministic) {
    const char *a = synth_dir("a", "tiny", 42, 0), *b = synth_dir("b", "tiny", 42, 0);
    cr_assert(same_file(a, b, "model.safetensors"));
    cr_assert(same_file(a, b, "config.json"));
    cr_assert(same_file(a, b, "generation_config.json"));
}

Test(synth, seed_changes_weights) {
    const char *a = synth_dir("a", "tiny", 1, 0), *b = synth_dir("b", "tiny", 2, 0);
    cr_assert(!same_file(a, b, "model.safetensors"));
    cr_assert(same_file(a, b, "config.json"));
}

Test(synth, sharded_equals_unsharded) {
    const char *one = synth_dir("one", "tiny", 5, 1), *three = synth_dir("three", "tiny", 5, 3);
    size_t len;
    char *ix = (char *)read_in(three, "model.safetensors.index.json", &len);
    cJSON *j = cJSON_Parse(ix);
    cr_assert_not_null(j);
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "total_size")->valuedouble,
                 4000256.0);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "weight_map")), 21);
    cJSON_Delete(j);
    free(ix);

    tseal_model *a, *b;
    cr_assert_eq(tseal_model_open(one, &a), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_open(three, &b), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_file_count(b), 3);
    cr_assert_not_null(
        strstr(tseal_st_path(tseal_model_file(b, 2)), "model-00003-of-00003.safetensors"));
    cr_assert_eq(tseal_model_tensor_count(a), tseal_model_tensor_count(b));
    size_t used[3] = {0};
    for (size_t i = 0; i < tseal_model_tensor_count(a); i++) {
        size_t fb;
        const tseal_st_tensor *ta = tseal_model_tensor(a, i, NULL),
                              *tb = tseal_model_tensor(b, i, &fb);
        cr_assert_str_eq(ta->name, tb->name);
        cr_assert_eq(memcmp(ta->shape, tb->shape, sizeof ta->shape), 0);
        size_t n = ta->end - ta->begin;
        uint8_t *x = malloc(n), *y = malloc(n);
        cr_assert_eq(tseal_model_read(a, i, 0, x, n), 0);
        cr_assert_eq(tseal_model_read(b, i, 0, y, n), 0);
        cr_assert_eq(memcmp(x, y, n), 0, "tensor %s differs", ta->name);
        used[fb] += n;
        free(x);
        free(y);
    }
    /* roughly equal shards: none over half of the total */
    for (int s = 0; s < 3; s++) cr_assert(used[s] > 0 && used[s] < 4000256 / 2, "%zu", used[s]);
    tseal_model_close(a);
    tseal_model_close(b);
}

/* Mean and standard deviation of a BF16 tensor. */
static void tensor_stats(const tseal_st *st, const char *name, double *mean, double *sd) {
    size_t i;
    cr_assert_eq(tseal_st_find(st, name, &i), 0, "%s", name);
    const tseal_st_tensor *t = tseal_st_get(st, i);
    uint16_t *v = malloc(t->end - t->begin);
    cr_assert_eq(tseal_st_read(st, i, 0, v, t->end - t->begin), 0);
    double s = 0, s2 = 0;
    for (uint64_t k = 0; k < t->n_elems; k++) {
        double x = tseal_bf16_to_f32(v[k]);
        s += x;
        s2 += x * x;
    }
    *mean = s / (double)t->n_elems;
    *sd = sqrt(s2 / (double)t->n_elems - *mean * *mean);
    free(v);
}

Test(synth, statistics) {
    const char *dir = synth_dir("m", "tiny", 3, 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tseal_st *st;
    cr_assert_eq(tseal_st_open(p, &st), 0);
    static const struct {
        const char *name;
        double mean, sd;
    } want[] = {
        {"model.layers.0.self_attn.q_proj.weight", 0, 0.02 * 0.8},
        {"model.layers.1.self_attn.q_proj.weight", 0, 0.02 * 1.0},
        {"model.layers.1.mlp.gate_proj.weight", 0, 0.02 * 1.0},
        {"model.layers.0.mlp.down_proj.weight", 0, 0.01},
        {"model.embed_tokens.weight", 0, 0.02},
        {"lm_head.weight", 0, 0.02},
        {"model.layers.0.input_layernorm.weight", 1.0, 0.1},
        {"model.norm.weight", 1.0, 0.1},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double m, sd;
        tensor_stats(st, want[i].name, &m, &sd);
        cr_assert(fabs(sd - want[i].sd) < 0.1 * want[i].sd, "%s: std %g, expected %g", want[i].name,
                  sd, want[i].sd);
        cr_assert(fabs(m - want[i].mean) < 0.2 * want[i].sd, "%s: mean %g, expected %g",
                  want[i].name, m, want[i].mean);
    }
    tseal_st_close(st);
}

Test(synth, unknown_preset) {
    tseal_synth_opts o = {.preset = "huge"};
    tu_assert_err(tseal_synth_model(tu_path("m"), &o), TSEAL_E_INVAL,
                  "unknown preset 'huge' (valid: tiny, small, 1b)");
    cr_assert(!tu_exists(tu_path("m")));
}

Test(synth, refuses_non_empty_directory) {
    const char *dir = tu_path("m");
    cr_assert_eq(mkdir(dir, 0755), 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/keep.txt", dir);
    tu_write_str(p, "mine");
    tu_assert_err(tseal_synth_model(dir, NULL), TSEAL_E_INVAL, "exists and is not empty");
    size_t len;
    uint8_t *b = tu_read(p, &len);
    cr_assert_eq(len, 4, "existing file untouched");
    free(b);
}

Test(synth, accepts_empty_directory) {
    const char *dir = tu_path("m");
    cr_assert_eq(mkdir(dir, 0755), 0);
    tseal_synth_opts o = {.preset = "tiny", .seed = 9};
    cr_assert_eq(tseal_synth_model(dir, &o), 0, "%s", tseal_errmsg());
    tseal_model *m;
    cr_assert_eq(tseal_model_open(dir, &m), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_tensor_count(m), 21);
    tseal_model_close(m);
}

Test(synth, too_many_shards) {
    tseal_synth_opts o = {.preset = "tiny", .shards = 22};
    tu_assert_err(tseal_synth_model(tu_path("m"), &o), TSEAL_E_INVAL, "22 shards for 21 tensors");
    cr_assert(!tu_exists(tu_path("m")));
}

Test(synth, one_shard_per_tensor) {
    tseal_synth_opts o = {.preset = "tiny", .shards = 21};
    cr_assert_eq(tseal_synth_model(tu_path("m"), &o), 0, "%s", tseal_errmsg());
    tseal_model *m;
    cr_assert_eq(tseal_model_open(tu_path("m"), &m), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_model_file_count(m), 21);
    tseal_model_close(m);
}

Test(synth, parent_missing_leaves_nothing) {
    tu_assert_err(tseal_synth_model(tu_path("no/m"), NULL), TSEAL_E_IO, "cannot create");
    cr_assert_eq(tu_count_entries(), 0);
}
