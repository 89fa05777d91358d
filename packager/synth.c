/*
 * synth.c - deterministic synthetic Llama checkpoints (Hugging Face layout, BF16).
 *
 * Output depends only on (preset, seed, shards): every tensor gets its own seed
 * (hash of the model seed and the tensor name), and every chunk of SYNTH_CHUNK elements its
 * own xoshiro256** stream seeded from (tensor seed, chunk number) through splitmix64. Chunks
 * are therefore independent: they are generated on all cores and written in order, straight
 * into the streaming safetensors writer, so the "1b" preset (2.5 GB) needs ~16 MB of memory.
 * Values are N(mean, sigma) by Box-Muller in double, rounded to BF16.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "model_internal.h"

#define SYNTH_CHUNK (1u << 20) /* elements per PRNG stream (part of the output's definition) */
#define SYNTH_BATCH 8          /* chunks generated in parallel between writes */
#define SYNTH_NAME  96

typedef struct {
    const char *name;
    uint64_t vocab, hidden, inter;
    unsigned layers, heads, kv_heads;
    bool tied;
} synth_preset;

static const synth_preset presets[] = {
    {"tiny", 1024, 256, 704, 2, 8, 4, false},
    {"small", 8192, 1024, 2816, 4, 16, 4, false},
    {"1b", 128256, 2048, 8192, 16, 32, 8, true}, /* Llama-3.2-1B geometry */
};

typedef struct {
    char name[SYNTH_NAME];
    uint32_t rank;
    uint64_t shape[2];
    uint64_t n;
    double mean, sigma;
    unsigned shard;
} synth_tensor;

/* ---- PRNG --------------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

typedef struct {
    uint64_t s[4];
} xoshiro;

static uint64_t xo_next(xoshiro *x) {
    uint64_t *s = x->s, r = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return r;
}

static uint64_t synth_tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xCBF29CE484222325ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001B3ull;
    uint64_t x = seed;
    x = splitmix64(&x) ^ h;
    return splitmix64(&x);
}

/* ---- the model plan ----------------------------------------------------------------------- */

static void plan_add(synth_tensor *t, size_t *n, const char *name, uint64_t rows, uint64_t cols,
                     double mean, double sigma) {
    synth_tensor *e = &t[(*n)++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->rank = cols ? 2 : 1;
    e->shape[0] = rows;
    e->shape[1] = cols;
    e->n = cols ? rows * cols : rows;
    e->mean = mean;
    e->sigma = sigma;
}

/* Tensors in Hugging Face Llama order with their distributions. */
static synth_tensor *synth_plan(const synth_preset *p, size_t *count) {
    size_t cap = 3 + 9 * (size_t)p->layers;
    synth_tensor *t = calloc(cap, sizeof *t);
    if (!t) return NULL;
    size_t n = 0;
    uint64_t V = p->vocab, H = p->hidden, I = p->inter, L = p->layers;
    uint64_t kv = p->kv_heads * (p->hidden / p->heads);
    char nm[SYNTH_NAME];
    plan_add(t, &n, "model.embed_tokens.weight", V, H, 0, 0.02);
    for (unsigned i = 0; i < p->layers; i++) {
        double s = 0.02 * (0.8 + 0.4 * i / (double)L); /* mild per-layer variation */
        double sd = 0.02 / sqrt(2.0 * (double)L);      /* residual-scaled output projection */
        static const struct {
            const char *suffix;
            int kind; /* 0 norm, 1 [H,H], 2 [KV,H], 3 [I,H], 4 [H,I] */
        } layer[] = {
            {"input_layernorm", 0},  {"self_attn.q_proj", 1}, {"self_attn.k_proj", 2},
            {"self_attn.v_proj", 2}, {"self_attn.o_proj", 1}, {"post_attention_layernorm", 0},
            {"mlp.gate_proj", 3},    {"mlp.up_proj", 3},      {"mlp.down_proj", 4},
        };
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            snprintf(nm, sizeof nm, "model.layers.%u.%s.weight", i, layer[k].suffix);
            switch (layer[k].kind) {
            case 0:
                plan_add(t, &n, nm, H, 0, 1.0, 0.1);
                break;
            case 1:
                plan_add(t, &n, nm, H, H, 0, s);
                break;
            case 2:
                plan_add(t, &n, nm, kv, H, 0, s);
                break;
            case 3:
                plan_add(t, &n, nm, I, H, 0, s);
                break;
            default:
                plan_add(t, &n, nm, H, I, 0, sd);
                break;
            }
        }
    }
    plan_add(t, &n, "model.norm.weight", H, 0, 1.0, 0.1);
    if (!p->tied) plan_add(t, &n, "lm_head.weight", V, H, 0, 0.02);
    *count = n;
    return t;
}

/*
 * Splits the tensors, in order, into `shards` runs of roughly equal bytes: a shard is closed
 * once it reaches its share of the total, or when the tensors left are just enough for one
 * per remaining shard.
 */
static void synth_assign_shards(synth_tensor *t, size_t n, unsigned shards) {
    uint64_t total = 0, cum = 0;
    for (size_t j = 0; j < n; j++) total += 2 * t[j].n;
    unsigned k = 0;
    for (size_t j = 0; j < n; j++) {
        t[j].shard = k;
        cum += 2 * t[j].n;
        unsigned after = shards - k - 1; /* shards still to fill */
        if (after == 0) continue;
        if (n - j - 1 == after || (double)cum * shards >= (double)(k + 1) * (double)total) k++;
    }
}

/* ---- generation --------------------------------------------------------------------------- */

typedef struct {
    const synth_tensor *t;
    uint64_t seed;        /* the tensor's seed */
    uint64_t first_chunk; /* chunk number of buf's first chunk */
    uint8_t *buf;         /* SYNTH_BATCH * SYNTH_CHUNK little-endian BF16 values */
} synth_batch;

static int synth_gen_chunk(void *arg, unsigned i) {
    const synth_batch *b = arg;
    uint64_t c = b->first_chunk + i, start = c * SYNTH_CHUNK;
    uint64_t count = b->t->n - start < SYNTH_CHUNK ? b->t->n - start : SYNTH_CHUNK;
    uint64_t x = b->seed ^ (c * 0xD1B54A32D192ED03ull);
    xoshiro r;
    for (int k = 0; k < 4; k++) r.s[k] = splitmix64(&x);
    uint8_t *out = b->buf + (size_t)i * SYNTH_CHUNK * 2;
    for (uint64_t j = 0; j < count; j += 2) {
        double u1 = (double)((xo_next(&r) >> 11) + 1) * 0x1.0p-53; /* (0, 1]: log is finite */
        double u2 = (double)(xo_next(&r) >> 11) * 0x1.0p-53;
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        double z[2] = {rad * cos(th), rad * sin(th)};
        for (uint64_t k = 0; k < 2 && j + k < count; k++) {
            uint16_t h = tseal_f32_to_bf16((float)(b->t->mean + b->t->sigma * z[k]));
            out[2 * (j + k)] = (uint8_t)h;
            out[2 * (j + k) + 1] = (uint8_t)(h >> 8);
        }
    }
    return 0;
}

static int synth_write_tensor(tseal_st_writer *w, const synth_tensor *t, uint64_t seed,
                              uint8_t *buf) {
    uint64_t chunks = (t->n + SYNTH_CHUNK - 1) / SYNTH_CHUNK;
    synth_batch b = {t, synth_tensor_seed(seed, t->name), 0, buf};
    while (b.first_chunk < chunks) {
        unsigned nb =
            (unsigned)(chunks - b.first_chunk < SYNTH_BATCH ? chunks - b.first_chunk : SYNTH_BATCH);
        int rc = tseal_parallel(nb, 0, synth_gen_chunk, &b);
        if (rc) return rc;
        uint64_t start = b.first_chunk * SYNTH_CHUNK;
        uint64_t end = start + (uint64_t)nb * SYNTH_CHUNK;
        if (end > t->n) end = t->n;
        if ((rc = tseal_st_writer_write(w, buf, (size_t)(end - start) * 2))) return rc;
        b.first_chunk += nb;
    }
    return 0;
}

/* ---- files -------------------------------------------------------------------------------- */

/* Files committed so far, removed again if a later step fails. */
typedef struct {
    const char *dir;
    char **paths; /* room for every file of the model */
    size_t n;
    char **shards; /* shard file names */
    unsigned n_shards;
} synth_out;

static char *synth_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int synth_write_json(synth_out *o, const char *name, cJSON *obj, bool built) {
    char *text = built ? cJSON_Print(obj) : NULL;
    char *path = synth_path(o->dir, name);
    int rc = 0;
    tseal_atomic_file f;
    if (!text || !path) {
        rc = tseal_err(TSEAL_E_NOMEM, "%s/%s: out of memory", o->dir, name);
    } else if (!(rc = tseal_atomic_open(&f, path, 0644))) {
        rc = tseal_write_full(f.fd, text, strlen(text), path);
        if (!rc) rc = tseal_write_full(f.fd, "\n", 1, path);
        if (rc)
            tseal_atomic_abort(&f);
        else
            rc = tseal_atomic_commit(&f);
    }
    if (!rc) {
        o->paths[o->n++] = path;
        path = NULL;
    }
    free(path);
    free(text);
    return rc;
}

static int synth_config(synth_out *o, const synth_preset *p) {
    cJSON *c = cJSON_CreateObject(), *arch = c ? cJSON_AddArrayToObject(c, "architectures") : NULL;
    cJSON *name = arch ? cJSON_CreateString("LlamaForCausalLM") : NULL;
    bool ok = name && cJSON_AddItemToArray(arch, name);
    if (!ok) cJSON_Delete(name);
    ok = ok && cJSON_AddFalseToObject(c, "attention_bias");
    ok = ok && cJSON_AddNumberToObject(c, "attention_dropout", 0.0);
    ok = ok && cJSON_AddNumberToObject(c, "bos_token_id", 1);
    ok = ok && cJSON_AddNumberToObject(c, "eos_token_id", 2);
    ok = ok && cJSON_AddNumberToObject(c, "head_dim", (double)(p->hidden / p->heads));
    ok = ok && cJSON_AddStringToObject(c, "hidden_act", "silu");
    ok = ok && cJSON_AddNumberToObject(c, "hidden_size", (double)p->hidden);
    ok = ok && cJSON_AddNumberToObject(c, "initializer_range", 0.02);
    ok = ok && cJSON_AddNumberToObject(c, "intermediate_size", (double)p->inter);
    ok = ok && cJSON_AddNumberToObject(c, "max_position_embeddings", 2048);
    ok = ok && cJSON_AddFalseToObject(c, "mlp_bias");
    ok = ok && cJSON_AddStringToObject(c, "model_type", "llama");
    ok = ok && cJSON_AddNumberToObject(c, "num_attention_heads", p->heads);
    ok = ok && cJSON_AddNumberToObject(c, "num_hidden_layers", p->layers);
    ok = ok && cJSON_AddNumberToObject(c, "num_key_value_heads", p->kv_heads);
    ok = ok && cJSON_AddNumberToObject(c, "pretraining_tp", 1);
    ok = ok && cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
    ok = ok && cJSON_AddNullToObject(c, "rope_scaling");
    ok = ok && cJSON_AddNumberToObject(c, "rope_theta", 500000.0);
    ok = ok && cJSON_AddBoolToObject(c, "tie_word_embeddings", p->tied);
    ok = ok && cJSON_AddStringToObject(c, "torch_dtype", "bfloat16");
    ok = ok && cJSON_AddTrueToObject(c, "use_cache");
    ok = ok && cJSON_AddNumberToObject(c, "vocab_size", (double)p->vocab);
    int rc = synth_write_json(o, "config.json", c, ok);
    cJSON_Delete(c);
    if (rc) return rc;

    cJSON *g = cJSON_CreateObject();
    ok = g && cJSON_AddTrueToObject(g, "_from_model_config");
    ok = ok && cJSON_AddNumberToObject(g, "bos_token_id", 1);
    ok = ok && cJSON_AddNumberToObject(g, "eos_token_id", 2);
    rc = synth_write_json(o, "generation_config.json", g, ok);
    cJSON_Delete(g);
    return rc;
}

/* model.safetensors.index.json: total tensor bytes and the shard of every tensor. */
static int synth_index(synth_out *o, const synth_tensor *t, size_t n) {
    uint64_t total = 0;
    for (size_t j = 0; j < n; j++) total += 2 * t[j].n;
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = root ? cJSON_AddObjectToObject(root, "metadata") : NULL;
    cJSON *map = root ? cJSON_AddObjectToObject(root, "weight_map") : NULL;
    bool ok = meta && map && cJSON_AddNumberToObject(meta, "total_size", (double)total);
    for (size_t j = 0; ok && j < n; j++)
        ok = cJSON_AddStringToObject(map, t[j].name, o->shards[t[j].shard]) != NULL;
    int rc = synth_write_json(o, "model.safetensors.index.json", root, ok);
    cJSON_Delete(root);
    return rc;
}

static int synth_shard(synth_out *o, unsigned s, const synth_tensor *t, size_t n, uint64_t seed,
                       uint8_t *buf) {
    char *path = synth_path(o->dir, o->shards[s]);
    tseal_st_writer *w = NULL;
    if (!path) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int rc = tseal_st_writer_open(path, &w);
    if (!rc) rc = tseal_st_writer_meta(w, "format", "pt"); /* transformers requires it */
    for (size_t j = 0; j < n && !rc; j++)
        if (t[j].shard == s)
            rc = tseal_st_writer_add(w, t[j].name, TSEAL_DT_BF16, t[j].rank, t[j].shape);
    for (size_t j = 0; j < n && !rc; j++)
        if (t[j].shard == s) rc = synth_write_tensor(w, &t[j], seed, buf);
    if (w) {
        if (rc)
            tseal_st_writer_abort(w);
        else
            rc = tseal_st_writer_commit(w);
    }
    if (!rc) {
        o->paths[o->n++] = path; /* shards are tracked after the JSON files */
        path = NULL;
    }
    free(path);
    return rc;
}

/* Creates `dir`, or accepts it if it is an empty directory. */
static int synth_mkdir(const char *dir, bool *created) {
    *created = false;
    if (mkdir(dir, 0755) == 0) {
        *created = true;
        return 0;
    }
    if (errno != EEXIST)
        return tseal_err(TSEAL_E_IO, "%s: cannot create: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d) return tseal_err(TSEAL_E_INVAL, "%s: exists and is not a directory", dir);
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? 0 : tseal_err(TSEAL_E_INVAL, "%s: exists and is not empty", dir);
}

static const synth_preset *synth_find_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name, presets[i].name) == 0) return &presets[i];
    return NULL;
}

static void synth_cleanup(synth_out *o, bool remove_files) {
    for (size_t i = 0; i < o->n; i++) {
        if (remove_files) unlink(o->paths[i]);
        free(o->paths[i]);
    }
    for (unsigned i = 0; o->shards && i < o->n_shards; i++) free(o->shards[i]);
    free(o->paths);
    free(o->shards);
}

static int synth_name_shards(synth_out *o, unsigned shards) {
    o->paths = calloc(shards + 4, sizeof *o->paths);
    o->shards = calloc(shards, sizeof *o->shards);
    if (!o->paths || !o->shards) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (unsigned s = 0; s < shards; s++, o->n_shards++) {
        char name[64];
        if (shards == 1)
            snprintf(name, sizeof name, "model.safetensors");
        else
            snprintf(name, sizeof name, "model-%05u-of-%05u.safetensors", s + 1, shards);
        if (!(o->shards[s] = strdup(name))) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    return 0;
}

int tseal_synth_model(const char *dir, const tseal_synth_opts *opts) {
    static const tseal_synth_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!dir || !*dir) return tseal_err(TSEAL_E_INVAL, "synth: no output directory");
    const char *pname = opts->preset ? opts->preset : "tiny";
    const synth_preset *p = synth_find_preset(pname);
    if (!p) {
        char q[TSEAL_QUOTE_MAX];
        return tseal_err(TSEAL_E_INVAL, "synth: unknown preset '%s' (valid: tiny, small, 1b)",
                         tseal_quote(pname, q));
    }
    size_t n = 0;
    synth_tensor *t = synth_plan(p, &n);
    if (!t) return tseal_err(TSEAL_E_NOMEM, "synth: out of memory");
    unsigned shards = opts->shards ? opts->shards : 1;
    if (shards > n || shards > TSEAL_MODEL_MAX_FILES) {
        free(t);
        return tseal_err(TSEAL_E_INVAL, "synth: %u shards for %zu tensors (at most one per tensor)",
                         shards, n);
    }
    synth_assign_shards(t, n, shards);

    synth_out o = {.dir = dir};
    bool created = false;
    uint8_t *buf = malloc((size_t)SYNTH_BATCH * SYNTH_CHUNK * 2);
    int rc = buf ? synth_name_shards(&o, shards) : tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!rc) rc = synth_mkdir(dir, &created);
    if (!rc) rc = synth_config(&o, p);
    for (unsigned s = 0; s < shards && !rc; s++) rc = synth_shard(&o, s, t, n, opts->seed, buf);
    if (!rc && shards > 1) rc = synth_index(&o, t, n);
    synth_cleanup(&o, rc != 0); /* no partial model */
    if (rc && created) rmdir(dir);
    free(buf);
    free(t);
    return rc;
}
