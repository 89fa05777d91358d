/*
 * gemv_bench.cu - `tseal bench gemv`: the fused decode+GEMV (tseal_gpu_gemv_async) against
 * cuBLAS (cublasGemmEx, BF16 in and out, FP32 compute) on the original weights, the project's
 * BF16 reference kernel (tseal_gpu_gemv_ref, same reduction order), decode-to-BF16 + cuBLAS, and
 * a device-to-device copy of the BF16 bytes (the copy rate). Synthetic N(0, 0.02) weights, all
 * shapes in one process; every figure is the median of --repeat runs timed with CUDA events,
 * with the L2 cache flushed before each run (a memset of twice the L2 size).
 *
 * Exactness checked on every shape and batch: fused == reference kernel (bit for bit, and
 * fused == fused on a second run), decode + cuBLAS == cuBLAS on the original weights;
 * --cpu-check also compares the fused result with the C reference (kernels/gemv_ref.c).
 */
#include <algorithm>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "bench.h"
#include "gemv.cuh"
#include "gemv_ref.h"
#include "gpu_internal.h"
#include "gpu_tensor.cuh"

static const char *gemv_help =
    "Usage: tseal bench gemv [options]\n"
    "Fused decode+GEMV on compressed weights (tseal_gpu_gemv) against cuBLAS on the BF16\n"
    "weights, the BF16 reference kernel, decode + cuBLAS and a device copy (docs/GEMV.md).\n"
    "Synthetic N(0, 0.02) weights; medians with the L2 cache flushed before every run.\n"
    "\n"
    "  --shapes LIST   NxK,... (N outputs x K inputs, as nn.Linear.weight); default: the\n"
    "                  Llama-3-8B shapes 4096x14336,14336x4096,4096x4096,1024x4096,128256x4096\n"
    "  --batch LIST    batch sizes 1..16 (default 1,4,8,16)\n"
    "  --segment N     weights per segment of the coded tensor, a power of two 64..16384\n"
    "                  (default 256); the size cost against the default 2048 is reported\n"
    "  --tile C        tile width of rows longer than 32 segments: 8, 16 or 32 segments\n"
    "                  (default: the one that leaves the fewest lanes idle; same bits)\n"
    "  --pair N        rows per lane, 1 or 2 (default: 2 at batch 3..8 where the plan allows;\n"
    "                  same bits)\n"
    "  --repeat N      timed runs per figure, 1..10000 (default 50)\n"
    "  --cpu-check     also compare batch 1 with the C reference (slow on large shapes)\n"
    "  --json          one JSON object on stdout instead of the table\n"
    "  -h, --help      this help\n"
    "Exit status: 0 ok, 1 failure or a result that is not bit-exact, 2 usage, 5 no GPU.\n";

#define MAX_SHAPES  32
#define MAX_BATCHES 16

typedef struct {
    int json, cpu_check;
    unsigned seg_log2, repeat, tile_log2, pair;
    unsigned batches[MAX_BATCHES], n_batches;
    uint64_t shapes[MAX_SHAPES][2];
    unsigned n_shapes;
} gemv_opts;

static int usage(const char *msg, const char *arg) {
    fprintf(stderr, "tseal bench gemv: %s%s%s (see --help)\n", msg, arg ? ": " : "",
            arg ? arg : "");
    return 2;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out, const char **end) {
    char *e = NULL;
    if (*s < '0' || *s > '9') return -1;
    unsigned long long v = strtoull(s, &e, 10);
    if (e == s || v < lo || v > hi) return -1;
    *out = v;
    *end = e;
    return 0;
}

static int parse_opts(int argc, char **argv, gemv_opts *o) {
    memset(o, 0, sizeof *o);
    o->seg_log2 = 8;
    o->repeat = 50;
    const unsigned def_batches[] = {1, 4, 8, 16};
    for (unsigned b : def_batches) o->batches[o->n_batches++] = b;
    const uint64_t def_shapes[][2] = {
        {4096, 14336}, {14336, 4096}, {4096, 4096}, {1024, 4096}, {128256, 4096}};
    for (const auto &sh : def_shapes) {
        o->shapes[o->n_shapes][0] = sh[0];
        o->shapes[o->n_shapes++][1] = sh[1];
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        const char *end = NULL;
        uint64_t v = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(gemv_help, stdout);
            return 1;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--cpu-check")) {
            o->cpu_check = 1;
        } else if (!strcmp(a, "--segment")) {
            if (!val || parse_u64(val, 64, 16384, &v, &end) || *end || (v & (v - 1)))
                return usage("--segment: expected a power of two, 64..16384", val);
            o->seg_log2 = (unsigned)__builtin_ctzll(v);
            i++;
        } else if (!strcmp(a, "--tile")) {
            if (!val || parse_u64(val, 8, 32, &v, &end) || *end || (v & (v - 1)))
                return usage("--tile: expected 8, 16 or 32", val);
            o->tile_log2 = (unsigned)__builtin_ctzll(v);
            i++;
        } else if (!strcmp(a, "--pair")) {
            if (!val || parse_u64(val, 1, 2, &v, &end) || *end)
                return usage("--pair: expected 1 or 2", val);
            o->pair = (unsigned)v;
            i++;
        } else if (!strcmp(a, "--repeat")) {
            if (!val || parse_u64(val, 1, 10000, &v, &end) || *end)
                return usage("--repeat: expected 1..10000", val);
            o->repeat = (unsigned)v;
            i++;
        } else if (!strcmp(a, "--batch")) {
            if (!val) return usage("--batch: expected a list of 1..16", NULL);
            o->n_batches = 0;
            const char *p = val;
            for (;;) {
                if (o->n_batches == MAX_BATCHES || parse_u64(p, 1, TSEAL_GEMV_MAX_BATCH, &v, &end))
                    return usage("--batch: expected a list of 1..16", val);
                o->batches[o->n_batches++] = (unsigned)v;
                if (*end == 0) break;
                if (*end != ',') return usage("--batch: expected a list of 1..16", val);
                p = end + 1;
            }
            i++;
        } else if (!strcmp(a, "--shapes")) {
            if (!val) return usage("--shapes: expected NxK,...", NULL);
            o->n_shapes = 0;
            const char *p = val;
            for (;;) {
                uint64_t n = 0, k = 0;
                if (o->n_shapes == MAX_SHAPES || parse_u64(p, 1, 0x7FFFFFFF, &n, &end) ||
                    *end != 'x' || parse_u64(end + 1, 1, 0x7FFFFFFF, &k, &end) ||
                    n * k > (1ull << 34))
                    return usage("--shapes: expected NxK,... (N, K >= 1, N * K <= 2^34)", val);
                o->shapes[o->n_shapes][0] = n;
                o->shapes[o->n_shapes++][1] = k;
                if (*end == 0) break;
                if (*end != ',') return usage("--shapes: expected NxK,...", val);
                p = end + 1;
            }
            i++;
        } else {
            return usage("unknown option", a);
        }
    }
    return 0;
}

/* ---- helpers --------------------------------------------------------------------------------- */

#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "tseal bench gemv: %s failed: %s\n", #call, cudaGetErrorString(e_));   \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define CKB(call)                                                                                  \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                         \
            fprintf(stderr, "tseal bench gemv: %s failed: cuBLAS status %d\n", #call, (int)s_);    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define CKT(call)                                                                                  \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "tseal bench gemv: %s failed: %s\n", #call, tseal_errmsg());           \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* N(0, sigma) BF16 values: a table of 65536 exact Box-Muller draws, indexed at random (the
 * exponent distribution of a trained linear layer at a fraction of the cost). */
static void gen_normal(uint16_t *w, uint64_t n, double sigma, uint64_t seed) {
    std::vector<uint16_t> table(65536);
    uint64_t s = seed;
    for (unsigned i = 0; i < 65536; i += 2) {
        const double u1 = ((double)(rng_next(&s) >> 11) + 0.5) * 0x1p-53;
        const double u2 = ((double)(rng_next(&s) >> 11) + 0.5) * 0x1p-53;
        const double r = sqrt(-2.0 * log(u1)), t = 6.283185307179586 * u2;
        table[i] = tseal_f32_to_bf16((float)(sigma * r * cos(t)));
        table[i + 1] = tseal_f32_to_bf16((float)(sigma * r * sin(t)));
    }
    for (uint64_t i = 0; i < n; i += 4) {
        const uint64_t r = rng_next(&s);
        for (unsigned q = 0; q < 4 && i + q < n; q++) w[i + q] = table[(r >> (16 * q)) & 0xFFFF];
    }
}

typedef struct {
    cudaStream_t s;
    cudaEvent_t e0, e1;
    void *flush;
    size_t flush_bytes;
    unsigned repeat;
} timer;

/* Median time in microseconds of fn() over t->repeat runs, L2 flushed before each. */
template <class F> static int time_median(timer *t, F fn, double *us) {
    std::vector<float> ms(t->repeat);
    if (fn()) return -1; /* warm-up: lazy module loading, cuBLAS heuristics */
    if (cudaStreamSynchronize(t->s) != cudaSuccess) return -1;
    for (unsigned r = 0; r < t->repeat; r++) {
        if (cudaMemsetAsync(t->flush, (int)(r & 0xFF), t->flush_bytes, t->s) != cudaSuccess ||
            cudaEventRecord(t->e0, t->s) != cudaSuccess || fn() ||
            cudaEventRecord(t->e1, t->s) != cudaSuccess ||
            cudaEventSynchronize(t->e1) != cudaSuccess ||
            cudaEventElapsedTime(&ms[r], t->e0, t->e1) != cudaSuccess)
            return -1;
    }
    std::sort(ms.begin(), ms.end());
    const unsigned m = t->repeat / 2;
    *us = 1000.0 * (t->repeat % 2 ? ms[m] : 0.5 * (ms[m - 1] + ms[m]));
    return 0;
}

static cublasStatus_t gemm(cublasHandle_t h, const void *w, const void *x, void *y, uint64_t n,
                           uint64_t k, unsigned batch) {
    /* Row-major W (n x k) is column-major W^T (k x n): y (n x batch, column-major) = op(W^T) x */
    const float alpha = 1.0f, beta = 0.0f;
    return cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)n, (int)batch, (int)k, &alpha, w,
                        CUDA_R_16BF, (int)k, x, CUDA_R_16BF, (int)k, &beta, y, CUDA_R_16BF, (int)n,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

static int same_dev(const void *a, const void *b, size_t bytes, std::vector<uint8_t> &ha,
                    std::vector<uint8_t> &hb) {
    ha.resize(bytes);
    hb.resize(bytes);
    if (cudaMemcpy(ha.data(), a, bytes, cudaMemcpyDeviceToHost) != cudaSuccess ||
        cudaMemcpy(hb.data(), b, bytes, cudaMemcpyDeviceToHost) != cudaSuccess)
        return -1;
    return memcmp(ha.data(), hb.data(), bytes) == 0;
}

/* ---- the benchmark --------------------------------------------------------------------------- */

/* The fused kernel's work plan, as the JSON `plan` field and the table's last column show it:
 * ROWS "rows:R/warp,tasks:T", TILES "tiles:TxC,rows:R,pieces:P,tasks:T" (R rows per row group),
 * then ",pair" when a lane works on two rows (a task covers two row groups). */
static unsigned plan_text(const tseal_gpu_tensor *t, unsigned batch, int sms, char *buf,
                          size_t size) {
    tseal_gemv_plan plan;
    tseal_gemv_plan_for(t, batch, sms, &plan);
    int len;
    if (plan.mode == TSEAL_GEMV_MODE_ROWS)
        len = snprintf(buf, size, "rows:%u/warp,tasks:%llu", plan.rows_per_warp,
                       (unsigned long long)plan.n_tasks);
    else
        len = snprintf(buf, size, "tiles:%llux%u,rows:%u,pieces:%llu,tasks:%llu",
                       (unsigned long long)plan.tiles, 1u << plan.tile_log2, plan.rows_per_warp,
                       (unsigned long long)plan.pieces, (unsigned long long)plan.n_tasks);
    if (plan.pair == 2 && len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, ",pair");
    return plan.pair;
}

extern "C" int tseal_bench_gemv_main(int argc, char **argv) {
    gemv_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc == 1) return 0; /* --help */
    if (rc) return rc;
    tseal_gpu_gemv_tune(o.tile_log2, o.pair);
    if (tseal_gpu_device_count() <= 0) {
        fprintf(stderr, "tseal bench gemv: %s\n", tseal_errmsg());
        return 5;
    }

    int status = 1, all_exact = 1;
    const int dev = 0;
    cudaDeviceProp prop;
    timer tm;
    memset(&tm, 0, sizeof tm);
    tm.repeat = o.repeat;
    cublasHandle_t h = NULL;
    unsigned max_batch = 1;
    for (unsigned i = 0; i < o.n_batches; i++) max_batch = std::max(max_batch, o.batches[i]);
    std::vector<uint8_t> ha, hb;
    uint16_t *w = NULL, *xh = NULL;
    void *d_w = NULL, *d_dec = NULL, *d_x = NULL, *d_y[5] = {NULL, NULL, NULL, NULL, NULL};
    tseal_gpu_tensor *t = NULL;
    tseal_buf blob = {NULL, 0};
    int first_result = 1;

    CK(cudaSetDevice(dev));
    CK(cudaGetDeviceProperties(&prop, dev));
    CK(cudaStreamCreateWithFlags(&tm.s, cudaStreamNonBlocking));
    CK(cudaEventCreate(&tm.e0));
    CK(cudaEventCreate(&tm.e1));
    tm.flush_bytes = 2 * (size_t)(prop.l2CacheSize > 0 ? prop.l2CacheSize : 64 << 20);
    CK(cudaMalloc(&tm.flush, tm.flush_bytes));
    CKB(cublasCreate(&h));
    CKB(cublasSetStream(h, tm.s));

    if (o.json)
        printf("{\"bench\": \"gemv\", \"device\": \"%s\", \"sms\": %d, \"l2_bytes\": %d, "
               "\"segment\": %u, \"repeat\": %u, \"results\": [",
               prop.name, prop.multiProcessorCount, prop.l2CacheSize, 1u << o.seg_log2, o.repeat);
    else
        printf("tseal bench gemv: %s, %d SMs, L2 %d MiB; segment %u; median of %u runs, L2 "
               "flushed\n\n"
               "%-14s %5s %9s %9s %9s %9s %9s %7s %9s %6s %10s %6s %s\n",
               prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, 1u << o.seg_log2,
               o.repeat, "shape NxK", "batch", "comp_MB", "bf16_MB", "cublas_us", "ref_us",
               "fused_us", "f/cublas", "comp_GB/s", "%copy", "dec+cub_us", "exact", "plan");

    for (unsigned si = 0; si < o.n_shapes; si++) {
        const uint64_t n = o.shapes[si][0], k = o.shapes[si][1], ne = n * k;
        tseal_codec_params p;
        tseal_codec_params_default(&p);
        tseal_codec_stats st, st_def;
        tseal_ct_view v;
        double copy_us = 0, size_cost = 0;

        if (!o.json)
            fprintf(stderr, "  %llux%llu: synthesising and encoding...\r", (unsigned long long)n,
                    (unsigned long long)k);
        w = (uint16_t *)malloc(ne * 2);
        xh = (uint16_t *)malloc((size_t)max_batch * k * 2);
        if (!w || !xh) {
            fprintf(stderr, "tseal bench gemv: out of host memory\n");
            goto out;
        }
        gen_normal(w, ne, 0.02, 1000 + si);
        gen_normal(xh, (uint64_t)max_batch * k, 1.0, 2000 + si);
        if (o.seg_log2 != TSEAL_SEG_LOG2_DEFAULT) {
            p.seg_log2 = TSEAL_SEG_LOG2_DEFAULT;
            CKT(tseal_codec_encode(w, n, k, &p, &blob, &st_def));
            tseal_buf_free(&blob);
        }
        p.seg_log2 = (uint8_t)o.seg_log2;
        CKT(tseal_codec_encode(w, n, k, &p, &blob, &st));
        if (o.seg_log2 == TSEAL_SEG_LOG2_DEFAULT) st_def = st;
        size_cost = (double)st.total_bytes / (double)st_def.total_bytes - 1.0;
        CKT(tseal_codec_view(blob.data, blob.size, &v));
        CKT(tseal_gpu_tensor_upload(&v, dev, &t));

        {
            /* Bytes the fused kernel reads from memory for W: plane, stream, index. */
            const uint64_t comp =
                v.mode == TSEAL_CT_MODE_HUFF
                    ? v.n_elems + v.exp_bytes + (v.n_segs * v.len_width + 7) / 8 + v.n_groups * 8
                    : (v.mode == TSEAL_CT_MODE_CONST ? v.n_elems : ne * 2);
            const uint64_t bf16 = ne * 2;

            CK(cudaMalloc(&d_w, bf16));
            CK(cudaMalloc(&d_dec, bf16));
            CK(cudaMalloc(&d_x, (size_t)max_batch * k * 2));
            for (int i = 0; i < 5; i++) CK(cudaMalloc(&d_y[i], (size_t)max_batch * n * 2));
            CK(cudaMemcpy(d_w, w, bf16, cudaMemcpyHostToDevice));
            CK(cudaMemcpy(d_x, xh, (size_t)max_batch * k * 2, cudaMemcpyHostToDevice));
            if (time_median(
                    &tm,
                    [&]() {
                        return (int)cudaMemcpyAsync(d_dec, d_w, bf16, cudaMemcpyDeviceToDevice,
                                                    tm.s);
                    },
                    &copy_us)) {
                fprintf(stderr, "tseal bench gemv: copy timing failed\n");
                goto out;
            }
            const double copy_gbps = 2.0 * (double)bf16 / (copy_us * 1e3);

            for (unsigned bi = 0; bi < o.n_batches; bi++) {
                const unsigned batch = o.batches[bi];
                const size_t ybytes = (size_t)batch * n * 2;
                double cublas_us = 0, ref_us = 0, fused_us = 0, dec_us = 0;
                auto run_cublas = [&]() { return (int)gemm(h, d_w, d_x, d_y[0], n, k, batch); };
                auto run_ref = [&]() {
                    return tseal_gpu_gemv_ref(d_w, n, k, tseal_gpu_gemv_seg_log2(t), d_x, d_y[1],
                                              batch, tm.s);
                };
                auto run_fused = [&]() {
                    return tseal_gpu_gemv_async(t, d_x, d_y[2], batch, tm.s);
                };
                auto run_dec = [&]() {
                    int r = tseal_gpu_tensor_decode_launch(t, d_dec, tm.s);
                    return r ? r : (int)gemm(h, d_dec, d_x, d_y[3], n, k, batch);
                };
                if (time_median(&tm, run_cublas, &cublas_us) ||
                    time_median(&tm, run_ref, &ref_us) || time_median(&tm, run_fused, &fused_us) ||
                    time_median(&tm, run_dec, &dec_us)) {
                    fprintf(stderr, "tseal bench gemv: %llux%llu batch %u: a run failed: %s\n",
                            (unsigned long long)n, (unsigned long long)k, batch, tseal_errmsg());
                    goto out;
                }
                /* Exactness: the checked synchronous call, a second fused run, the others. */
                CKT(tseal_gpu_gemv(t, d_x, d_y[4], batch, tm.s));
                CK(cudaStreamSynchronize(tm.s));
                const int fused_exact = same_dev(d_y[2], d_y[1], ybytes, ha, hb);
                const int deterministic = same_dev(d_y[2], d_y[4], ybytes, ha, hb);
                int cpu_exact = -1; /* not checked */
                if (o.cpu_check && batch == 1 && deterministic >= 0) {
                    std::vector<uint16_t> yc(n);
                    CKT(tseal_gemv_ref_ct(&v, xh, yc.data(), 1));
                    cpu_exact = memcmp(yc.data(), ha.data(), n * 2) == 0; /* ha: d_y[2] */
                }
                const int dec_exact = same_dev(d_y[3], d_y[0], ybytes, ha, hb);
                if (fused_exact < 0 || deterministic < 0 || dec_exact < 0) {
                    fprintf(stderr, "tseal bench gemv: reading results back failed\n");
                    goto out;
                }
                const int exact = fused_exact && deterministic && dec_exact && cpu_exact != 0;
                char plan_s[112];
                const unsigned rows_per_lane =
                    plan_text(t, batch, prop.multiProcessorCount, plan_s, sizeof plan_s);
                all_exact &= exact;
                const double gbps = (double)comp / (fused_us * 1e3);
                if (o.json) {
                    printf("%s\n  {\"n\": %llu, \"k\": %llu, \"batch\": %u, \"cublas_us\": %.2f, "
                           "\"ref_bf16_us\": %.2f, \"fused_us\": %.2f, \"fused_over_cublas\": "
                           "%.4f, \"compressed_gbps\": %.1f, \"exact\": %s, "
                           "\"decode_cublas_us\": %.2f, \"fused_exact\": %s, \"deterministic\": "
                           "%s, \"decode_cublas_exact\": %s, \"cpu_exact\": %s, "
                           "\"compressed_bytes\": %llu, \"bf16_bytes\": %llu, \"copy_us\": %.2f, "
                           "\"copy_gbps\": %.1f, \"size_vs_segment_2048\": %.5f, \"plan\": "
                           "\"%s\", \"rows_per_lane\": %u}",
                           first_result ? "" : ",", (unsigned long long)n, (unsigned long long)k,
                           batch, cublas_us, ref_us, fused_us, fused_us / cublas_us, gbps,
                           exact ? "true" : "false", dec_us, fused_exact ? "true" : "false",
                           deterministic ? "true" : "false", dec_exact ? "true" : "false",
                           cpu_exact < 0 ? "null"
                           : cpu_exact   ? "true"
                                         : "false",
                           (unsigned long long)comp, (unsigned long long)bf16, copy_us, copy_gbps,
                           size_cost, plan_s, rows_per_lane);
                    first_result = 0;
                } else {
                    char shape[32];
                    snprintf(shape, sizeof shape, "%llux%llu", (unsigned long long)n,
                             (unsigned long long)k);
                    printf("%-14s %5u %9.1f %9.1f %9.1f %9.1f %9.1f %7.3f %9.0f %5.0f%% %10.1f "
                           "%6s %s\n",
                           shape, batch, comp / 1e6, bf16 / 1e6, cublas_us, ref_us, fused_us,
                           fused_us / cublas_us, gbps, 100.0 * gbps / copy_gbps, dec_us,
                           exact ? "yes" : "NO", plan_s);
                }
            }
            if (!o.json)
                printf("%-14s copy %.1f us = %.0f GB/s (D2D of the BF16 bytes, read + written); "
                       "segment %u costs %+.2f%% size vs 2048\n",
                       "", copy_us, copy_gbps, 1u << o.seg_log2, 100.0 * size_cost);
        }
        tseal_gpu_tensor_free(t);
        t = NULL;
        tseal_buf_free(&blob);
        free(w);
        free(xh);
        w = xh = NULL;
        cudaFree(d_w);
        cudaFree(d_dec);
        cudaFree(d_x);
        d_w = d_dec = d_x = NULL;
        for (int i = 0; i < 5; i++) {
            cudaFree(d_y[i]);
            d_y[i] = NULL;
        }
    }
    if (o.json)
        printf("\n], \"all_exact\": %s}\n", all_exact ? "true" : "false");
    else
        printf("\nexact: fused == BF16 reference kernel (and run to run), decode+cuBLAS == cuBLAS"
               "%s: %s\n",
               o.cpu_check ? ", batch 1 == C reference" : "", all_exact ? "all yes" : "NO");
    status = all_exact ? 0 : 1;
    if (!all_exact) fprintf(stderr, "tseal bench gemv: some results are not bit-exact\n");

out:
    tseal_gpu_tensor_free(t);
    tseal_buf_free(&blob);
    free(w);
    free(xh);
    cudaFree(d_w);
    cudaFree(d_dec);
    cudaFree(d_x);
    for (int i = 0; i < 5; i++) cudaFree(d_y[i]);
    if (h) cublasDestroy(h);
    if (tm.flush) cudaFree(tm.flush);
    if (tm.e0) cudaEventDestroy(tm.e0);
    if (tm.e1) cudaEventDestroy(tm.e1);
    if (tm.s) cudaStreamDestroy(tm.s);
    return status;
}
