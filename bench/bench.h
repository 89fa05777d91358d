/*
 * bench.h - benchmarks behind `tseal bench` and `make bench` (compiled into libtseal so the
 * CLI stays argument parsing only).
 */
#ifndef TSEAL_BENCH_H
#define TSEAL_BENCH_H

#include <stdio.h>

#include "tseal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    tseal_codec_params params;
    unsigned threads;      /* decoder threads for the all-cores figure; 0 = all online CPUs */
    int json;              /* one JSON object on `out` instead of tables */
    const char *json_path; /* also write the JSON object to this file (tables stay on `out`) */
    int zstd3, zstd19;     /* run the zstd baselines (level 3, level 19) */
    int per_tensor;        /* list every tensor */
    unsigned repeat;       /* timed repetitions of each decode (best is kept), >= 1 */
    const char *normal; /* extra in-memory model: "ROWSxCOLS" or "ROWSxCOLS:SIGMA" of N(0,sigma) */
    int quiet;          /* no progress on stderr */
} tseal_bench_codec_opts;

void tseal_bench_codec_opts_default(tseal_bench_codec_opts *o);

/*
 * Encode and decode (reference, fast on 1 thread, fast on all threads) every tensor of each
 * model, check bit-exactness, and print per model and in total: exponent entropy (the Shannon
 * bound), achieved bits per weight with everything stored, the ratio to BF16, GB/s, the cost
 * of the code-length limit, and zstd -3/-19 on the same bytes.
 * Returns 0, or a negative TSEAL_E_* (TSEAL_E_VERIFY if any round trip was not exact).
 */
int tseal_bench_codec(const char *const *paths, int npaths, const tseal_bench_codec_opts *o,
                      FILE *out);

typedef struct {
    unsigned threads; /* all-cores figure; 0 = all online CPUs */
    int json;
    unsigned repeat;
} tseal_bench_pack_opts;

void tseal_bench_pack_opts_default(tseal_bench_pack_opts *o);

/*
 * Pack `model` with fresh keys, then verify (hashes only), verify with the key and unpack
 * (1 core and all cores), and print GB/s of model bytes next to SHA-256, ChaCha20-Poly1305
 * and the codec alone, plus the container's size and overhead.
 */
int tseal_bench_pack(const char *model, const tseal_bench_pack_opts *o, FILE *out);

/*
 * `tseal bench gemv [--json] [--segment N] [--batch LIST] [--shapes LIST] [--repeat N]`
 * (kernels/gemv_bench.cu): fused decode+GEMV against cuBLAS, the BF16 reference kernel,
 * decode + cuBLAS and a device-to-device copy, on synthetic N(0, 0.02) weights; argv[0] is
 * the subcommand name. Handles --help itself. Returns a process exit code: 0 ok, 2 usage,
 * 5 no GPU (or built without CUDA; message on stderr), 1 failure (including a result that is
 * not bit-exact).
 */
int tseal_bench_gemv_main(int argc, char **argv);

/* ---- tseal bench gpu ---------------------------------------------------------------------- */

typedef struct {
    uint64_t n, k;
    uint64_t bf16_bytes, coded_bytes;
    double copy_us;   /* device-to-device copy of the BF16 bytes (median, L2 flushed) */
    double decode_us; /* decode kernel into a BF16 buffer (median, L2 flushed) */
    int exact;        /* the decoded tensor equals the original, bit for bit */
} tseal_gpu_decode_row;

/* One shape: synthetic N(0, 0.02) weights, encoded with segments of 2^seg_log2 (0 = default),
 * uploaded, checked and timed (kernels/bench_decode.cu). */
int tseal_bench_gpu_decode_shape(uint64_t n, uint64_t k, unsigned seg_log2, unsigned repeat,
                                 int device, tseal_gpu_decode_row *row);

/* `tseal bench gpu` (bench/bench_gpu.c): returns a process exit code (0, 1, 2 usage, 5 no GPU). */
int tseal_bench_gpu_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
