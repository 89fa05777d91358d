/*
 * tseal.c - the `tseal` command: argument parsing and dispatch only; the work is done by the
 * library (libtseal) and the benchmark module.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 3 verification failed (corrupt or
 * mismatching data), 4 I/O error, 5 no GPU.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "tseal.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_VERIFY = 3, EXIT_IO = 4, EXIT_NOGPU = 5 };

static int exit_code(int err) {
    switch (err) {
    case TSEAL_OK:
        return 0;
    case TSEAL_E_INVAL:
        return EXIT_USAGE;
    case TSEAL_E_CORRUPT:
    case TSEAL_E_VERIFY:
    case TSEAL_E_LIMIT:
    case TSEAL_E_DENIED:
        return EXIT_VERIFY;
    case TSEAL_E_IO:
    case TSEAL_E_NOTFOUND:
        return EXIT_IO;
    case TSEAL_E_NO_GPU:
        return EXIT_NOGPU;
    default:
        return EXIT_FAIL;
    }
}

static int fail(int err) {
    fprintf(stderr, "tseal: error: %s\n", tseal_errmsg());
    return exit_code(err);
}

static int usage_error(const char *cmd, const char *msg) {
    fprintf(stderr, "tseal %s: %s\nTry 'tseal %s --help'.\n", cmd, msg, cmd);
    return EXIT_USAGE;
}

static const char *main_help =
    "tseal - secure, lossless model artifacts: pack, verify, load and audit BF16 models\n"
    "\n"
    "Usage: tseal <command> [options]\n"
    "\n"
    "Commands:\n"
    "  bench codec PATH...   compression and speed of the exponent codec (vs zstd)\n"
    "  check PATH            strictly validate a safetensors file, sharded checkpoint or folder\n"
    "  convert IN -o OUT     copy a safetensors file with F32/F16 tensors converted to BF16\n"
    "  synth -o DIR          write a deterministic synthetic Llama-shaped BF16 model\n"
    "  version               print the version\n"
    "\n"
    "Run 'tseal <command> --help' for the options of a command.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage, 3 verification failed, 4 I/O error, 5 no GPU.\n";

/* ---- bench ----------------------------------------------------------------------------- */

static const char *bench_help =
    "Usage: tseal bench codec [options] [PATH...]\n"
    "\n"
    "Encode every BF16 tensor of each model (a .safetensors file, a sharded index or a folder)\n"
    "with the exponent codec, decode it with the reference and the fast decoder, check the\n"
    "round trip is bit-exact, and print per model and in total: the Shannon bound\n"
    "(8 + exponent entropy), bits per weight with everything stored, the ratio to BF16,\n"
    "zstd -3/-19 on the same bytes, encode/decode GB/s per core and with all cores, and the\n"
    "cost of each code-length limit.\n"
    "\n"
    "Options:\n"
    "  --json               one JSON object (params, bits_per_weight, bound_bits_per_weight,\n"
    "                       ratio, decode_gbps_per_core, decode_gbps_all_cores,\n"
    "                       encode_gbps_per_core, zstd3_ratio, zstd19_ratio, roundtrip_exact,\n"
    "                       per-model objects in 'models')\n"
    "  --json-out FILE      print the tables and also write that JSON object to FILE\n"
    "  --normal RxC[:S]     also bench an in-memory R x C tensor of N(0, S) (default S 0.02)\n"
    "  --threads N          threads for the all-cores decode (default: all online CPUs)\n"
    "  --max-code-bits L    Huffman code-length limit, 1..12 (default 12)\n"
    "  --segment N          weights per independently decodable segment, a power of two\n"
    "                       64..16384 (default 2048)\n"
    "  --repeat N           timed repetitions per decode, best kept (default 3)\n"
    "  --no-zstd            skip both zstd baselines    --no-zstd19  skip zstd -19 only\n"
    "  --tensors            per-tensor figures in the JSON output\n"
    "  -q, --quiet          no progress on stderr\n";

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out) {
    char *end;
    if (!s || !*s || *s == '-') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max) return -1;
    *out = v;
    return 0;
}

static int cmd_bench_codec(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"normal", required_argument, 0, 'n'},
                                         {"json-out", required_argument, 0, 'J'},
                                         {"threads", required_argument, 0, 't'},
                                         {"max-code-bits", required_argument, 0, 'L'},
                                         {"segment", required_argument, 0, 's'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {"no-zstd", no_argument, 0, 'Z'},
                                         {"no-zstd19", no_argument, 0, 'z'},
                                         {"tensors", no_argument, 0, 'T'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    tseal_bench_codec_opts o;
    tseal_bench_codec_opts_default(&o);
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = 1;
            break;
        case 'J':
            o.json_path = optarg;
            break;
        case 'n':
            o.normal = optarg;
            break;
        case 't':
            if (parse_uint(optarg, 1024, &v))
                return usage_error("bench codec", "--threads: expected 0..1024");
            o.threads = (unsigned)v;
            break;
        case 'L':
            if (parse_uint(optarg, TSEAL_HUFF_MAX_BITS, &v) || v < 1)
                return usage_error("bench codec", "--max-code-bits: expected 1..12");
            o.params.max_code_bits = (uint8_t)v;
            break;
        case 's': {
            if (parse_uint(optarg, 1u << TSEAL_SEG_LOG2_MAX, &v) ||
                v < (1u << TSEAL_SEG_LOG2_MIN) || (v & (v - 1)))
                return usage_error("bench codec", "--segment: expected a power of two, 64..16384");
            uint8_t l = 0;
            while ((1ull << l) < v) l++;
            o.params.seg_log2 = l;
            break;
        }
        case 'r':
            if (parse_uint(optarg, 1000, &v) || v < 1)
                return usage_error("bench codec", "--repeat: expected 1..1000");
            o.repeat = (unsigned)v;
            break;
        case 'Z':
            o.zstd3 = o.zstd19 = 0;
            break;
        case 'z':
            o.zstd19 = 0;
            break;
        case 'T':
            o.per_tensor = 1;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'h':
            fputs(bench_help, stdout);
            return 0;
        default:
            return usage_error("bench codec", "unknown option");
        }
    }
    if (optind >= argc && !o.normal)
        return usage_error("bench codec", "no model given (PATH or --normal)");
    int r = tseal_bench_codec((const char *const *)argv + optind, argc - optind, &o, stdout);
    return r ? fail(r) : 0;
}

static int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(bench_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "codec")) return cmd_bench_codec(argc - 1, argv + 1);
    fprintf(stderr, "tseal bench: unknown benchmark '%s' (available: codec)\n", argv[1]);
    return EXIT_USAGE;
}

/* ---- check ----------------------------------------------------------------------------- */

static const char *check_help =
    "Usage: tseal check [--json] [-q] PATH\n"
    "\n"
    "Strictly validate a safetensors file, a sharded checkpoint (its index .json) or a model\n"
    "folder: header length and JSON, UTF-8, dtypes, shapes (checked products), offsets\n"
    "covering the data exactly, shard index consistency. Lists the tensors unless -q.\n"
    "Exit code 0 if valid, 3 if malformed, 4 if unreadable.\n";

static int cmd_check(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int json = 0, quiet = 0, c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(check_help, stdout);
            return 0;
        default:
            return usage_error("check", "unknown option");
        }
    }
    if (optind + 1 != argc) return usage_error("check", "expected exactly one PATH");
    tseal_model *m;
    int r = tseal_model_open(argv[optind], &m);
    if (r) return fail(r);
    size_t nt = tseal_model_tensor_count(m);
    cJSON *j = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    uint64_t bytes = 0;
    if (j) {
        cJSON_AddStringToObject(j, "path", argv[optind]);
        cJSON_AddBoolToObject(j, "valid", 1);
        cJSON_AddNumberToObject(j, "files", (double)tseal_model_file_count(m));
        arr = cJSON_AddArrayToObject(j, "tensors");
    }
    for (size_t i = 0; i < nt; i++) {
        size_t fi;
        const tseal_st_tensor *t = tseal_model_tensor(m, i, &fi);
        bytes += t->end - t->begin;
        if (j) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "dtype", tseal_dtype_name(t->dtype));
            cJSON *sh = cJSON_AddArrayToObject(o, "shape");
            for (uint32_t k = 0; k < t->rank; k++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[k]));
            cJSON_AddStringToObject(o, "file", tseal_st_path(tseal_model_file(m, fi)));
            cJSON_AddItemToArray(arr, o);
        } else if (!quiet) {
            printf("%-60s %-5s [", t->name, tseal_dtype_name(t->dtype));
            for (uint32_t k = 0; k < t->rank; k++)
                printf("%s%llu", k ? ", " : "", (unsigned long long)t->shape[k]);
            printf("]\n");
        }
    }
    if (j) {
        cJSON_AddNumberToObject(j, "tensor_count", (double)nt);
        cJSON_AddNumberToObject(j, "tensor_bytes", (double)bytes);
        char *s = cJSON_Print(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else {
        printf("%s: valid: %zu tensors, %llu bytes of tensor data in %zu file(s)\n", argv[optind],
               nt, (unsigned long long)bytes, tseal_model_file_count(m));
    }
    tseal_model_close(m);
    return 0;
}

/* ---- convert, synth -------------------------------------------------------------------- */

static const char *convert_help =
    "Usage: tseal convert IN.safetensors -o OUT.safetensors\n"
    "\n"
    "Copy a safetensors file with every F32 and F16 tensor converted to BF16 (round to nearest,\n"
    "ties to even; NaN stays NaN). Other dtypes and __metadata__ are copied unchanged. The\n"
    "output is written to a temporary file and renamed only on success.\n";

static int cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *outp = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outp = optarg;
            break;
        case 'h':
            fputs(convert_help, stdout);
            return 0;
        default:
            return usage_error("convert", "unknown option");
        }
    }
    if (optind + 1 != argc || !outp) return usage_error("convert", "expected IN and -o OUT");
    int r = tseal_convert_to_bf16(argv[optind], outp);
    if (r) return fail(r);
    fprintf(stderr, "tseal convert: wrote %s\n", outp);
    return 0;
}

static const char *synth_help =
    "Usage: tseal synth -o DIR [--preset tiny|small|1b] [--seed N] [--shards N]\n"
    "\n"
    "Write a deterministic synthetic Llama-architecture model folder (config.json, BF16\n"
    "safetensors; sharded with an index when --shards > 1). Weights are N(0, sigma) with\n"
    "realistic per-layer sigmas; the same preset and seed always give the same bytes.\n"
    "Presets: tiny (~2M parameters), small (~60M), 1b (~1.2B, like Llama-3.2-1B).\n";

static int cmd_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"preset", required_argument, 0, 'p'},
        {"seed", required_argument, 0, 's'},   {"shards", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    tseal_synth_opts so = {.preset = "tiny", .seed = 1, .shards = 1};
    const char *dir = NULL;
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            dir = optarg;
            break;
        case 'p':
            so.preset = optarg;
            break;
        case 's':
            if (parse_uint(optarg, UINT64_MAX, &v))
                return usage_error("synth", "--seed: expected an integer");
            so.seed = v;
            break;
        case 'n':
            if (parse_uint(optarg, 999, &v))
                return usage_error("synth", "--shards: expected 0..999");
            so.shards = (unsigned)v;
            break;
        case 'h':
            fputs(synth_help, stdout);
            return 0;
        default:
            return usage_error("synth", "unknown option");
        }
    }
    if (!dir || optind != argc) return usage_error("synth", "expected -o DIR");
    int r = tseal_synth_model(dir, &so);
    if (r) return fail(r);
    fprintf(stderr, "tseal synth: wrote %s (preset %s, seed %llu)\n", dir, so.preset,
            (unsigned long long)so.seed);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (argc > 2 && strcmp(cmd, "help") == 0) {
            char *sub[] = {argv[2], "--help", NULL};
            optind = 1;
            if (!strcmp(argv[2], "bench")) return cmd_bench(2, sub);
            if (!strcmp(argv[2], "check")) return cmd_check(2, sub);
            if (!strcmp(argv[2], "convert")) return cmd_convert(2, sub);
            if (!strcmp(argv[2], "synth")) return cmd_synth(2, sub);
        }
        fputs(main_help, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("tseal %s (CUDA %s)\n", TSEAL_VERSION_STRING,
               tseal_gpu_built() ? "built" : "not built");
        return 0;
    }
    optind = 1;
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc - 1, argv + 1);
    fprintf(stderr, "tseal: unknown command '%s'\n\n%s", cmd, main_help);
    return EXIT_USAGE;
}
