/*
 * bench_codec.c - `tseal bench codec`: compression and speed of the exponent codec on real
 * models, next to zstd on the same bytes, in one process.
 *
 * Every figure counts everything a coded tensor stores (header, code table, group bases,
 * segment lengths, padding), and every tensor is checked bit-exact with both decoders.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>
#include <zstd.h>

#include "bench.h"
#include "internal.h"
#include "simt_model.h"

static const unsigned limits[] = {8, 9, 10, 11, 12, 13, 14, 16, TSEAL_HUFF_MAX_MEASURE_BITS};
#define NLIMITS (sizeof limits / sizeof limits[0])

typedef struct {
    char label[512];
    uint64_t tensors, bf16_tensors, weights, bf16_bytes, coded_bytes, other_bytes;
    uint64_t modes[3];
    double bound_bits;          /* sum over tensors of n * (8 + H) */
    double limit_bits[NLIMITS]; /* exponent bits under each length limit */
    double enc_s, ref_s, fast1_s, fastn_s, zstd3_s, zstd19_s;
    uint64_t zstd3_bytes, zstd19_bytes;
    int exact;
    tseal_simt_counts simt; /* warp model of the GPU decode loop (simt_model.h) */
    cJSON *tensor_list;     /* per-tensor objects when requested */
} acc_t;

void tseal_bench_codec_opts_default(tseal_bench_codec_opts *o) {
    memset(o, 0, sizeof *o);
    tseal_codec_params_default(&o->params);
    o->zstd3 = o->zstd19 = 1;
    o->repeat = 3;
}

static void acc_add(acc_t *a, const acc_t *b) {
    a->tensors += b->tensors;
    a->bf16_tensors += b->bf16_tensors;
    a->weights += b->weights;
    a->bf16_bytes += b->bf16_bytes;
    a->coded_bytes += b->coded_bytes;
    a->other_bytes += b->other_bytes;
    for (int i = 0; i < 3; i++) a->modes[i] += b->modes[i];
    a->bound_bits += b->bound_bits;
    for (size_t i = 0; i < NLIMITS; i++) a->limit_bits[i] += b->limit_bits[i];
    a->enc_s += b->enc_s;
    a->ref_s += b->ref_s;
    a->fast1_s += b->fast1_s;
    a->fastn_s += b->fastn_s;
    a->zstd3_s += b->zstd3_s;
    a->zstd19_s += b->zstd19_s;
    a->zstd3_bytes += b->zstd3_bytes;
    a->zstd19_bytes += b->zstd19_bytes;
    a->exact = a->exact && b->exact;
    a->simt.warps += b->simt.warps;
    a->simt.lane_chunks += b->simt.lane_chunks;
    a->simt.inline_lookups += b->simt.inline_lookups;
    a->simt.inline_bodies += b->simt.inline_bodies;
    a->simt.uniform_lookups += b->simt.uniform_lookups;
    a->simt.uniform_bodies += b->simt.uniform_bodies;
    a->simt.pair_lookups += b->simt.pair_lookups;
    a->simt.pair_lane_chunks += b->simt.pair_lane_chunks;
}

/* ---- one tensor ------------------------------------------------------------------------ */

static int zstd_size(const void *src, size_t n, int level, uint64_t *bytes, double *secs) {
    size_t cap = ZSTD_compressBound(n);
    void *dst = malloc(cap ? cap : 1);
    if (!dst) return tseal_err(TSEAL_E_NOMEM, "out of memory for zstd");
    double t0 = tseal_now();
    size_t r = ZSTD_compress(dst, cap, src, n, level);
    *secs += tseal_now() - t0;
    free(dst);
    if (ZSTD_isError(r)) return tseal_err(TSEAL_E_INTERNAL, "zstd: %s", ZSTD_getErrorName(r));
    *bytes += r;
    return 0;
}

/* Best-of-`repeat` fast decode into `dst`; returns seconds or < 0 on error. */
static double time_fast(const tseal_ct_view *v, uint16_t *dst, unsigned threads, unsigned repeat,
                        int *rc) {
    double best = INFINITY;
    for (unsigned k = 0; k < repeat; k++) {
        double t0 = tseal_now();
        *rc = tseal_codec_decode_fast(v, dst, threads);
        double t = tseal_now() - t0;
        if (*rc) return -1;
        if (t < best) best = t;
    }
    return best;
}

#define SIMT_WARPS_PER_TENSOR 2048 /* warps sampled per tensor by the warp model */

static int bench_tensor(const char *name, const uint16_t *x, uint64_t rows, uint64_t cols,
                        const tseal_bench_codec_opts *o, acc_t *a) {
    uint64_t n = rows * cols, hist[256] = {0};
    for (uint64_t i = 0; i < n; i++) hist[tseal_bf16_exp(x[i])]++;
    double h = tseal_codec_exponent_entropy(x, n);
    for (size_t i = 0; i < NLIMITS; i++)
        a->limit_bits[i] += tseal_codec_limited_bits(hist, limits[i]) * (double)n;

    tseal_buf blob;
    tseal_codec_stats st;
    double t0 = tseal_now();
    int r = tseal_codec_encode(x, rows, cols, &o->params, &blob, &st);
    a->enc_s += tseal_now() - t0;
    if (r) {
        tseal_err_context("tensor '%s': ", name);
        return r;
    }
    tseal_ct_view v;
    uint16_t *y = malloc(n ? 2 * n : 2);
    if (!y) {
        tseal_buf_free(&blob);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    r = tseal_codec_view(blob.data, blob.size, &v);
    int exact = 0;
    if (!r) {
        t0 = tseal_now();
        r = tseal_codec_decode_ref(&v, y);
        a->ref_s += tseal_now() - t0;
        exact = !r && memcmp(x, y, 2 * n) == 0;
    }
    if (!r) {
        memset(y, 0, 2 * n);
        a->fast1_s += time_fast(&v, y, 1, o->repeat, &r);
        exact = exact && !r && memcmp(x, y, 2 * n) == 0;
    }
    if (!r) {
        memset(y, 0, 2 * n);
        a->fastn_s += time_fast(&v, y, o->threads, o->repeat, &r);
        exact = exact && !r && memcmp(x, y, 2 * n) == 0;
    }
    if (!r) r = tseal_simt_count(&v, SIMT_WARPS_PER_TENSOR, &a->simt);
    if (!r && o->zstd3) r = zstd_size(x, 2 * n, 3, &a->zstd3_bytes, &a->zstd3_s);
    if (!r && o->zstd19) r = zstd_size(x, 2 * n, 19, &a->zstd19_bytes, &a->zstd19_s);
    free(y);
    if (r) {
        tseal_buf_free(&blob);
        tseal_err_context("tensor '%s': ", name);
        return r;
    }
    a->tensors++;
    a->bf16_tensors++;
    a->weights += n;
    a->bf16_bytes += 2 * n;
    a->coded_bytes += blob.size;
    a->modes[st.mode]++;
    a->bound_bits += (8.0 + h) * (double)n;
    if (!exact) {
        fprintf(stderr, "tseal bench: tensor '%s' did NOT round-trip exactly\n", name);
        a->exact = 0;
    }
    if (a->tensor_list) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", name);
        cJSON_AddNumberToObject(t, "rows", (double)rows);
        cJSON_AddNumberToObject(t, "cols", (double)cols);
        cJSON_AddStringToObject(t, "mode",
                                st.mode == TSEAL_CT_MODE_HUFF    ? "huff"
                                : st.mode == TSEAL_CT_MODE_CONST ? "const"
                                                                 : "raw");
        cJSON_AddNumberToObject(t, "symbols", st.n_symbols);
        cJSON_AddNumberToObject(t, "bound_bits_per_weight", 8.0 + h);
        cJSON_AddNumberToObject(t, "bits_per_weight", n ? 8.0 * (double)blob.size / (double)n : 0);
        cJSON_AddItemToArray(a->tensor_list, t);
    }
    tseal_buf_free(&blob);
    return 0;
}

/* ---- models ---------------------------------------------------------------------------- */

static void progress(const tseal_bench_codec_opts *o, const char *label, size_t i, size_t n) {
    if (o->quiet || !isatty(2)) return;
    fprintf(stderr, "\r%s: tensor %zu/%zu ", label, i, n);
    if (i == n) fprintf(stderr, "\r\033[K");
}

static int bench_model(const char *path, const tseal_bench_codec_opts *o, acc_t *a) {
    tseal_model *m;
    int r = tseal_model_open(path, &m);
    if (r) return r;
    size_t nt = tseal_model_tensor_count(m);
    for (size_t i = 0; i < nt && r == 0; i++) {
        progress(o, path, i, nt);
        size_t fi;
        const tseal_st_tensor *t = tseal_model_tensor(m, i, &fi);
        uint64_t bytes = t->end - t->begin;
        if (t->dtype != TSEAL_DT_BF16) {
            a->tensors++;
            a->other_bytes += bytes;
            continue;
        }
        uint16_t *x = malloc(bytes ? bytes : 2);
        if (!x) {
            r = tseal_err(TSEAL_E_NOMEM, "tensor '%s': out of memory (%llu bytes)", t->name,
                          (unsigned long long)bytes);
            break;
        }
        r = tseal_model_read(m, i, 0, x, bytes);
        uint64_t cols = t->rank ? t->shape[t->rank - 1] : 1;
        uint64_t rows = cols ? t->n_elems / cols : 0;
        if (t->rank < 2) { /* vectors: one row */
            rows = t->n_elems ? 1 : 0;
            cols = t->n_elems;
        }
        if (!r) r = bench_tensor(t->name, x, rows, cols, o, a);
        free(x);
    }
    progress(o, path, nt, nt);
    tseal_model_close(m);
    return r;
}

/* Deterministic N(0, sigma) BF16 tensor (xorshift64* + Box-Muller). */
static int bench_normal(const char *spec, const tseal_bench_codec_opts *o, acc_t *a) {
    unsigned long long rows, cols;
    double sigma = 0.02;
    char tail[64] = "";
    if (sscanf(spec, "%llux%llu%63s", &rows, &cols, tail) < 2 || rows == 0 || cols == 0 ||
        (tail[0] && (tail[0] != ':' || sscanf(tail + 1, "%lf", &sigma) != 1 || !(sigma > 0))) ||
        rows > (1ull << 20) || cols > (1ull << 20) || rows * cols > (1ull << 31))
        return tseal_err(TSEAL_E_INVAL,
                         "--normal %s: expected ROWSxCOLS[:SIGMA] (at most 2^31 weights)", spec);
    uint64_t n = rows * cols, s = 0x9E3779B97F4A7C15ull;
    uint16_t *x = malloc(2 * n);
    if (!x) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
            u[k] = ((double)((s * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
        }
        double rr = sigma * sqrt(-2 * log(u[0])), th = 6.283185307179586 * u[1];
        x[i] = tseal_f32_to_bf16((float)(rr * cos(th)));
        if (i + 1 < n) x[i + 1] = tseal_f32_to_bf16((float)(rr * sin(th)));
    }
    int r = bench_tensor(spec, x, rows, cols, o, a);
    free(x);
    return r;
}

/* ---- reporting ------------------------------------------------------------------------- */

static double gbps(uint64_t bytes, double s) {
    return s > 0 ? (double)bytes / s / 1e9 : 0;
}
static double per_weight(const acc_t *a, double bits) {
    return a->weights ? bits / (double)a->weights : 0;
}

/* Warp issues per warp-wide chunk (32 lane chunks) of the warp model. */
static double simt_per_chunk(const acc_t *a, uint64_t issues) {
    return a->simt.lane_chunks ? 32.0 * (double)issues / (double)a->simt.lane_chunks : 0;
}

/* Pair form: lookup issues per 32 chunks of either row (a warp-wide chunk of one row). */
static double simt_pair_per_chunk(const acc_t *a) {
    return a->simt.pair_lane_chunks
               ? 32.0 * (double)a->simt.pair_lookups / (double)a->simt.pair_lane_chunks
               : 0;
}

static void print_text(FILE *out, const acc_t *a, const tseal_bench_codec_opts *o,
                       unsigned threads) {
    double bpw = per_weight(a, 8.0 * (double)a->coded_bytes), bound = per_weight(a, a->bound_bits);
    fprintf(out, "%s\n", a->label);
    fprintf(
        out,
        "  tensors                    %llu BF16 (%llu huff, %llu const, %llu raw), %llu other\n",
        (unsigned long long)a->bf16_tensors, (unsigned long long)a->modes[TSEAL_CT_MODE_HUFF],
        (unsigned long long)a->modes[TSEAL_CT_MODE_CONST],
        (unsigned long long)a->modes[TSEAL_CT_MODE_RAW],
        (unsigned long long)(a->tensors - a->bf16_tensors));
    fprintf(out, "  BF16 weights               %.3f M (%.1f MB)%s\n", (double)a->weights / 1e6,
            (double)a->bf16_bytes / 1e6, a->other_bytes ? " + other dtypes carried raw" : "");
    fprintf(out, "  Shannon bound              %.4f bits/weight (8 + exponent entropy)\n", bound);
    fprintf(out, "  stored, all included       %.4f bits/weight (+%.3f%% over the bound)\n", bpw,
            bound > 0 ? 100.0 * (bpw - bound) / bound : 0);
    fprintf(out, "  ratio to BF16              %.4f",
            a->bf16_bytes ? (double)a->coded_bytes / (double)a->bf16_bytes : 0);
    if (o->zstd3) fprintf(out, "   zstd-3 %.4f", (double)a->zstd3_bytes / (double)a->bf16_bytes);
    if (o->zstd19) fprintf(out, "   zstd-19 %.4f", (double)a->zstd19_bytes / (double)a->bf16_bytes);
    fprintf(out, "\n");
    fprintf(out, "  encode                     %.3f GB/s per core (BF16 input)\n",
            gbps(a->bf16_bytes, a->enc_s));
    fprintf(out, "  decode reference           %.3f GB/s (BF16 output)\n",
            gbps(a->bf16_bytes, a->ref_s));
    fprintf(out, "  decode fast, 1 thread      %.3f GB/s per core\n",
            gbps(a->bf16_bytes, a->fast1_s));
    fprintf(out, "  decode fast, %2u threads    %.3f GB/s\n", threads,
            gbps(a->bf16_bytes, a->fastn_s));
    if (o->zstd3)
        fprintf(out, "  zstd -3 compress           %.3f GB/s\n", gbps(a->bf16_bytes, a->zstd3_s));
    if (o->zstd19)
        fprintf(out, "  zstd -19 compress          %.3f GB/s\n", gbps(a->bf16_bytes, a->zstd19_s));
    fprintf(out, "  round trip                 %s\n",
            a->exact ? "exact (reference and fast decoders)" : "NOT EXACT");
    fprintf(out, "  exponent bits/weight by code-length limit (unlimited = %u):\n   ",
            TSEAL_HUFF_MAX_MEASURE_BITS);
    for (size_t i = 0; i < NLIMITS; i++)
        fprintf(out, " L=%u %.4f", limits[i], per_weight(a, a->limit_bits[i]));
    fprintf(out, "\n");
    if (a->simt.warps)
        fprintf(out,
                "  GPU warp model (issues per 32 lane chunks, %llu warps): lookups inline %.2f, "
                "uniform %.2f, pair %.2f; chunk bodies inline %.2f, uniform %.2f\n",
                (unsigned long long)a->simt.warps, simt_per_chunk(a, a->simt.inline_lookups),
                simt_per_chunk(a, a->simt.uniform_lookups), simt_pair_per_chunk(a),
                simt_per_chunk(a, a->simt.inline_bodies),
                simt_per_chunk(a, a->simt.uniform_bodies));
}

static cJSON *to_json(const acc_t *a, const tseal_bench_codec_opts *o) {
    cJSON *j = cJSON_CreateObject();
    double bpw = per_weight(a, 8.0 * (double)a->coded_bytes), bound = per_weight(a, a->bound_bits);
    double bf16 = (double)a->bf16_bytes;
    cJSON_AddStringToObject(j, "label", a->label);
    cJSON_AddNumberToObject(j, "tensors", (double)a->tensors);
    cJSON_AddNumberToObject(j, "n_weights", (double)a->weights);
    cJSON_AddNumberToObject(j, "bf16_bytes", bf16);
    cJSON_AddNumberToObject(j, "coded_bytes", (double)a->coded_bytes);
    cJSON_AddNumberToObject(j, "other_bytes", (double)a->other_bytes);
    cJSON_AddNumberToObject(j, "bits_per_weight", bpw);
    cJSON_AddNumberToObject(j, "bound_bits_per_weight", bound);
    cJSON_AddNumberToObject(j, "overhead_vs_bound_pct",
                            bound > 0 ? 100.0 * (bpw - bound) / bound : 0);
    cJSON_AddNumberToObject(j, "ratio", bf16 > 0 ? (double)a->coded_bytes / bf16 : 0);
    cJSON_AddNumberToObject(j, "decode_gbps_per_core", gbps(a->bf16_bytes, a->fast1_s));
    cJSON_AddNumberToObject(j, "decode_gbps_all_cores", gbps(a->bf16_bytes, a->fastn_s));
    cJSON_AddNumberToObject(j, "decode_ref_gbps", gbps(a->bf16_bytes, a->ref_s));
    cJSON_AddNumberToObject(j, "encode_gbps_per_core", gbps(a->bf16_bytes, a->enc_s));
    if (o->zstd3 && bf16 > 0)
        cJSON_AddNumberToObject(j, "zstd3_ratio", (double)a->zstd3_bytes / bf16);
    else
        cJSON_AddNullToObject(j, "zstd3_ratio");
    if (o->zstd19 && bf16 > 0)
        cJSON_AddNumberToObject(j, "zstd19_ratio", (double)a->zstd19_bytes / bf16);
    else
        cJSON_AddNullToObject(j, "zstd19_ratio");
    cJSON_AddBoolToObject(j, "roundtrip_exact", a->exact);
    cJSON *lc = cJSON_AddArrayToObject(j, "limit_cost");
    for (size_t i = 0; i < NLIMITS; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "max_code_bits", limits[i]);
        cJSON_AddNumberToObject(e, "exp_bits_per_weight", per_weight(a, a->limit_bits[i]));
        cJSON_AddItemToArray(lc, e);
    }
    if (a->simt.warps) {
        cJSON *m = cJSON_AddObjectToObject(j, "gpu_warp_model");
        cJSON_AddNumberToObject(m, "warps", (double)a->simt.warps);
        cJSON_AddNumberToObject(m, "inline_lookups_per_chunk",
                                simt_per_chunk(a, a->simt.inline_lookups));
        cJSON_AddNumberToObject(m, "uniform_lookups_per_chunk",
                                simt_per_chunk(a, a->simt.uniform_lookups));
        cJSON_AddNumberToObject(m, "inline_bodies_per_chunk",
                                simt_per_chunk(a, a->simt.inline_bodies));
        cJSON_AddNumberToObject(m, "uniform_bodies_per_chunk",
                                simt_per_chunk(a, a->simt.uniform_bodies));
        cJSON_AddNumberToObject(m, "pair_lookups_per_chunk", simt_pair_per_chunk(a));
    }
    if (a->tensor_list) cJSON_AddItemToObject(j, "tensor_list", cJSON_Duplicate(a->tensor_list, 1));
    return j;
}

int tseal_bench_codec(const char *const *paths, int npaths, const tseal_bench_codec_opts *o,
                      FILE *out) {
    unsigned threads = o->threads ? o->threads : tseal_cpu_count();
    tseal_bench_codec_opts eff = *o;
    eff.threads = threads;
    if (eff.repeat < 1) eff.repeat = 1;
    acc_t total = {.exact = 1};
    snprintf(total.label, sizeof total.label, "total (%d model%s)", npaths + (o->normal != NULL),
             npaths + (o->normal != NULL) == 1 ? "" : "s");
    cJSON *models = cJSON_CreateArray();
    int r = 0, nmodels = npaths + (o->normal != NULL);
    for (int i = 0; i < nmodels && r == 0; i++) {
        acc_t a = {.exact = 1};
        if (o->per_tensor) a.tensor_list = cJSON_CreateArray();
        if (i < npaths) {
            snprintf(a.label, sizeof a.label, "%s", paths[i]);
            r = bench_model(paths[i], &eff, &a);
        } else {
            snprintf(a.label, sizeof a.label, "normal(0,sigma) %s", o->normal);
            r = bench_normal(o->normal, &eff, &a);
        }
        if (r == 0) {
            if (!o->json) print_text(out, &a, &eff, threads);
            cJSON_AddItemToArray(models, to_json(&a, &eff));
            acc_add(&total, &a);
        }
        cJSON_Delete(a.tensor_list);
    }
    if (r == 0) {
        if (!o->json && nmodels > 1) print_text(out, &total, &eff, threads);
        if (o->json || o->json_path) {
            cJSON *j = to_json(&total, &eff);
            cJSON *p = cJSON_CreateObject();
            cJSON_AddNumberToObject(p, "max_code_bits", eff.params.max_code_bits);
            cJSON_AddNumberToObject(p, "seg_log2", eff.params.seg_log2);
            cJSON_AddNumberToObject(p, "segment_weights", 1u << eff.params.seg_log2);
            cJSON_AddNumberToObject(p, "threads", threads);
            cJSON_AddNumberToObject(p, "repeat", eff.repeat);
            cJSON_AddItemToObjectCS(j, "params", p);
            cJSON_AddItemToObject(j, "models", models);
            models = NULL;
            char *s = cJSON_Print(j);
            if (o->json) fprintf(out, "%s\n", s ? s : "{}");
            if (o->json_path) {
                FILE *f = fopen(o->json_path, "w");
                int ok = f && fprintf(f, "%s\n", s ? s : "{}") >= 0;
                if (f && fclose(f) != 0) ok = 0;
                if (!ok)
                    r = tseal_err(TSEAL_E_IO, "%s: cannot write the JSON report", o->json_path);
            }
            free(s);
            cJSON_Delete(j);
        }
        if (r == 0 && !total.exact)
            r = tseal_err(TSEAL_E_VERIFY, "some tensors did not round-trip exactly");
    }
    cJSON_Delete(models);
    return r;
}
