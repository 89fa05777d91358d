/*
 * tseal.c - the `tseal` command: argument parsing and dispatch only; the work is done by the
 * library (libtseal) and the benchmark module.
 *
 * Exit codes: 0 success, 1 failure, 2 usage error, 3 verification failed (corrupt,
 * mismatching or unsupported data, or denied by policy), 4 I/O error, 5 no GPU.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "tseal.h"
#include "tseal_crypto.h"
#include "tseal_fips.h"
#include "tseal_policy.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_VERIFY = 3, EXIT_IO = 4, EXIT_NOGPU = 5 };

static int exit_code(int err) {
    switch (err) {
    case TSEAL_OK:
        return 0;
    case TSEAL_E_INVAL:
        return EXIT_USAGE;
    case TSEAL_E_CORRUPT:
    case TSEAL_E_UNSUPPORTED: /* unknown version, suite, dtype: cannot be verified */
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
    "  keygen --sign NAME | --recipient NAME   create a signing or recipient key pair\n"
    "  pack INPUT -o OUT ... pack a model file or folder into a signed, encrypted container\n"
    "  inspect FILE          show a container's public header (no key needed)\n"
    "  verify FILE --trust PUB [--key KEY]     check signature, every chunk (and with a key,\n"
    "                        every tensor and file digest)\n"
    "  unpack FILE --key KEY -o DIR            restore the original files byte for byte\n"
    "  load FILE --key KEY --trust PUB [--device N]  verify and load onto a GPU (compressed)\n"
    "  sign --add FILE --sign-key KEY          add a signature (k-of-n signing)\n"
    "  policy init|show|sign                   deployment policies (who and what may load)\n"
    "  audit FILE --key K --policy P --report R --audit-key A   decode, check, signed report\n"
    "  audit-verify REPORT --trust AUDITOR.pub                  check an audit report\n"
    "  bench codec PATH...   compression and speed of the exponent codec (vs zstd)\n"
    "  bench pack MODEL      pack/verify/unpack throughput, both cipher suites\n"
    "  bench gpu | gemv      GPU decode/load and fused decode+GEMV against copies and cuBLAS\n"
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
    "       tseal bench pack | gpu | gemv ...   (each with its own --help)\n"
    "\n"
    "  codec  compression and CPU speed of the exponent codec (below)\n"
    "  pack   pack, verify and unpack throughput of both cipher suites\n"
    "  gpu    GPU decode vs a BF16 copy per shape; loading plain safetensors vs an artifact\n"
    "  gemv   fused decode+GEMV vs cuBLAS and the BF16 reference kernel, batch 1..16\n"
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

/* --segment N: a power of two in the codec's range, as log2. */
static int parse_segment(const char *s, uint8_t *log2) {
    unsigned long long v;
    if (parse_uint(s, 1u << TSEAL_SEG_LOG2_MAX, &v) || v < (1u << TSEAL_SEG_LOG2_MIN) ||
        (v & (v - 1)))
        return -1;
    uint8_t l = 0;
    while ((1ull << l) < v) l++;
    *log2 = l;
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
        case 's':
            if (parse_segment(optarg, &o.params.seg_log2))
                return usage_error("bench codec", "--segment: expected a power of two, 64..16384");
            break;
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

static const char *bench_pack_help =
    "Usage: tseal bench pack [--json] [--threads N] MODEL\n"
    "\n"
    "Pack MODEL (a .safetensors file or folder) with fresh keys into a temporary folder, then\n"
    "verify it (signature and hashes), verify it with the key (decrypt and decode everything)\n"
    "and unpack it, on 1 core and on all cores; print GB/s of model bytes next to SHA-256,\n"
    "ChaCha20-Poly1305 and the codec alone measured in the same process, and the container's\n"
    "size and overhead (header, signatures, tags, hash lists, manifest) relative to the data.\n";

static int cmd_bench_pack(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"threads", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    tseal_bench_pack_opts o;
    tseal_bench_pack_opts_default(&o);
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = 1;
            break;
        case 't':
            if (parse_uint(optarg, 1024, &v))
                return usage_error("bench pack", "--threads: expected 0..1024");
            o.threads = (unsigned)v;
            break;
        case 'h':
            fputs(bench_pack_help, stdout);
            return 0;
        default:
            return usage_error("bench pack", "unknown option");
        }
    }
    if (optind + 1 != argc) return usage_error("bench pack", "expected exactly one MODEL");
    int r = tseal_bench_pack(argv[optind], &o, stdout);
    return r ? fail(r) : 0;
}

static int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(bench_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "codec")) return cmd_bench_codec(argc - 1, argv + 1);
    if (!strcmp(argv[1], "pack")) return cmd_bench_pack(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gpu")) return tseal_bench_gpu_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gemv")) return tseal_bench_gemv_main(argc - 1, argv + 1);
    fprintf(stderr, "tseal bench: unknown benchmark '%s' (available: codec, pack, gpu, gemv)\n",
            argv[1]);
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

/* ---- progress ---------------------------------------------------------------------------- */

typedef struct {
    int quiet, tty;
    double start, last;
} progress_state;

static void print_progress(void *ctx, const tseal_progress *p) {
    progress_state *ps = ctx;
    if (ps->quiet) return;
    double now = tseal_now();
    if (now - ps->last < (ps->tty ? 0.1 : 5.0)) return;
    ps->last = now;
    double rate = now > ps->start ? (double)p->done_bytes / (now - ps->start) / 1e6 : 0;
    fprintf(stderr, "%s%s: %u/%u items, %.1f/%.1f MB, %.0f MB/s  %.40s%s",
            ps->tty ? "\r\033[K" : "", p->stage, p->done_items, p->total_items,
            (double)p->done_bytes / 1e6, (double)p->total_bytes / 1e6, rate, p->item ? p->item : "",
            ps->tty ? "" : "\n");
}

static void end_progress(progress_state *ps) {
    if (!ps->quiet && ps->tty && ps->last > 0) fprintf(stderr, "\r\033[K");
}

static progress_state make_progress(int quiet) {
    progress_state ps = {quiet, isatty(2), tseal_now(), 0};
    if (!ps.tty) ps.last = ps.start; /* logs: first line after 5 s */
    return ps;
}

/* ---- keygen ------------------------------------------------------------------------------ */

static const char *keygen_help =
    "Usage: tseal keygen (--sign NAME | --recipient NAME) [--suite default|fips]\n"
    "                    [--passphrase-file F] [--force] [--json]\n"
    "\n"
    "Create a key pair:\n"
    "  --sign NAME        Ed25519 signing key: NAME.sign.key (secret) and NAME.sign.pub\n"
    "  --recipient NAME   X25519 recipient key: NAME.key (secret) and NAME.pub\n"
    "With --suite fips both are P-256 keys in standard PEM (secret: PKCS#8, encrypted with\n"
    "PBES2/AES-256 under --passphrase-file; public: SPKI) for the FIPS suite. A FIPS signer\n"
    "also needs an X.509 certificate for its key, issued by the site's CA (openssl req -new\n"
    "-key NAME.sign.key ... makes the request); recipients need none.\n"
    "NAME may include a folder (keys/vendor). The secret key file gets mode 0600. It is\n"
    "written unencrypted unless --passphrase-file F is given (first line of F; the key is\n"
    "then sealed with Argon2id + XSalsa20-Poly1305). Existing files are never overwritten\n"
    "unless --force. The key id printed is what containers, policies and errors show.\n";

/* --suite: "default" (Ed25519/X25519/ChaCha20) or "fips" (P-256/AES-256-GCM), or the full
 * suite names inspect prints. */
static int parse_suite(const char *s, unsigned *suite) {
    if (!strcmp(s, "default") || !strcmp(s, TSEAL_SUITE_NAME_V1))
        *suite = TSEAL_SUITE_V1;
    else if (!strcmp(s, "fips") || !strcmp(s, TSEAL_SUITE_NAME_FIPS))
        *suite = TSEAL_SUITE_FIPS;
    else
        return -1;
    return 0;
}

static int keygen_write(tseal_key_kind kind, unsigned suite, const char *base, const char *skp,
                        const char *pkp, const char *pass, size_t pass_len, int force,
                        char id[33]) {
    tseal_seckey *sk = NULL;
    int r = suite == TSEAL_SUITE_FIPS ? tseal_p256_keygen(kind, base, &sk)
                                      : tseal_keygen(kind, base, NULL, &sk);
    if (!r)
        r = suite == TSEAL_SUITE_FIPS ? tseal_p256_seckey_write_pem(sk, skp, pass, pass_len, force)
                                      : tseal_seckey_write(sk, skp, pass, pass_len, force);
    if (!r)
        r = suite == TSEAL_SUITE_FIPS ? tseal_p256_pubkey_write_pem(&sk->pub, pkp, force)
                                      : tseal_pubkey_write(&sk->pub, pkp, force);
    if (r && sk && access(skp, F_OK) == 0 && access(pkp, F_OK) != 0) unlink(skp); /* no half pair */
    if (!r) tseal_key_id_hex(sk->pub.key_id, id);
    tseal_seckey_free(sk);
    return r;
}

static int cmd_keygen(int argc, char **argv) {
    static const struct option opts[] = {{"sign", required_argument, 0, 's'},
                                         {"suite", required_argument, 0, 'S'},
                                         {"recipient", required_argument, 0, 'r'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"force", no_argument, 0, 'f'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *name = NULL, *passfile = NULL;
    tseal_key_kind kind = 0;
    unsigned suite = TSEAL_SUITE_V1;
    int force = 0, json = 0, quiet = 0, c;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            name = optarg, kind = kind ? (tseal_key_kind)-1 : TSEAL_KEY_SIGN;
            break;
        case 'S':
            if (parse_suite(optarg, &suite))
                return usage_error("keygen", "--suite: expected default or fips");
            break;
        case 'r':
            name = optarg, kind = kind ? (tseal_key_kind)-1 : TSEAL_KEY_RECIPIENT;
            break;
        case 'p':
            passfile = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(keygen_help, stdout);
            return 0;
        default:
            return usage_error("keygen", "unknown option");
        }
    }
    if (optind != argc || !name || !*name ||
        (kind != TSEAL_KEY_SIGN && kind != TSEAL_KEY_RECIPIENT))
        return usage_error("keygen", "expected exactly one of --sign NAME or --recipient NAME");
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(name) + 16;
    char *skp = malloc(n), *pkp = malloc(n);
    if (!skp || !pkp) return fail(tseal_err(TSEAL_E_NOMEM, "out of memory"));
    snprintf(skp, n, "%s%s", name, kind == TSEAL_KEY_SIGN ? ".sign.key" : ".key");
    snprintf(pkp, n, "%s%s", name, kind == TSEAL_KEY_SIGN ? ".sign.pub" : ".pub");
    char *pass = NULL;
    size_t pass_len = 0;
    char id[33] = "";
    int r = passfile ? tseal_passphrase_read(passfile, &pass, &pass_len) : 0;
    if (!r) r = keygen_write(kind, suite, base, skp, pkp, pass, pass_len, force, id);
    tseal_secure_free(pass);
    if (!r) {
        if (json)
            printf("{\"secret_key\": \"%s\", \"public_key\": \"%s\", \"key_id\": \"%s\", \"kind\": "
                   "\"%s\", \"suite\": \"%s\", \"format\": \"%s\", "
                   "\"passphrase_protected\": %s}\n",
                   skp, pkp, id, kind == TSEAL_KEY_SIGN ? "sign" : "recipient",
                   suite == TSEAL_SUITE_FIPS ? "fips" : "default",
                   suite == TSEAL_SUITE_FIPS ? "pem" : "tseal", passfile ? "true" : "false");
        else if (!quiet)
            fprintf(stderr, "tseal keygen: wrote %s (secret, mode 0600, %s) and %s\n  key id %s\n",
                    skp,
                    passfile ? "passphrase-protected"
                             : "NOT passphrase-protected: use --passphrase-file to protect it",
                    pkp, id);
    }
    free(skp);
    free(pkp);
    return r ? fail(r) : 0;
}

/* ---- pack -------------------------------------------------------------------------------- */

static const char *pack_help =
    "Usage: tseal pack INPUT -o OUT.tseal --sign-key KEY -r RECIPIENT.pub [-r ...]\n"
    "                  --model-id ID --version N [options]\n"
    "\n"
    "Pack a model (a .safetensors file, or a folder: every *.safetensors file is coded tensor\n"
    "by tensor, every other file - config.json, tokenizer files, a shard index - is carried\n"
    "as an opaque blob) into one signed, encrypted container. Each original file is restored\n"
    "byte for byte by 'tseal unpack'. The output appears only when packing succeeded.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE        container to write (required)\n"
    "  --sign-key KEY           signer's secret key (tseal keygen --sign; with --suite fips a\n"
    "                           P-256 PKCS#8 PEM key, e.g. issued by the site's PKI)\n"
    "  --passphrase-file F      passphrase of the signing key, if it is protected\n"
    "  -r, --recipient PUB      recipient public key (tseal keygen --recipient; with --suite\n"
    "                           fips a P-256 SPKI PEM key); 1..64\n"
    "  --suite default|fips     cipher suite (default: Ed25519/X25519/ChaCha20-Poly1305;\n"
    "                           fips: ECDSA P-256 + X.509, ECDH P-256, AES-256-GCM, all via\n"
    "                           OpenSSL 3 so a FIPS provider uses only approved algorithms)\n"
    "  --sign-cert CERT.pem     fips: the signer's X.509 certificate (its key = --sign-key);\n"
    "                           carried in the container so verifiers need only the CA root\n"
    "  --chain CHAIN.pem        fips: intermediate CA certificates, leaf's issuer first\n"
    "  --model-id ID            model identifier, e.g. acme/credit-7b (required)\n"
    "  --version N              model version, a non-negative integer (required)\n"
    "  --expires DATE           YYYY-MM-DD (valid through that day, UTC), an ISO time\n"
    "                           YYYY-MM-DDTHH:MM:SSZ, or @UNIXSECONDS\n"
    "  --chunk-size N           encryption chunk in bytes, power of two 4096..16777216\n"
    "                           (default 65536)\n"
    "  --segment N              codec segment size in weights (default 2048)\n"
    "  -q, --quiet              no progress     --json   print the report as JSON\n";

static int parse_time(const char *s, int64_t *out) {
    unsigned long long v;
    if (s[0] == '@') {
        if (parse_uint(s + 1, (1ull << 62), &v)) return -1;
        *out = (int64_t)v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (!end) return -1;
    if (*end == 0) {
        tm.tm_hour = 23, tm.tm_min = 59, tm.tm_sec = 59;
    } else {
        end = strptime(end, "T%H:%M:%SZ", &tm);
        if (!end || *end) return -1;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    *out = (int64_t)t;
    return 0;
}

static int cmd_pack(int argc, char **argv) {
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"sign-key", required_argument, 0, 'k'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"recipient", required_argument, 0, 'r'},
                                         {"model-id", required_argument, 0, 'm'},
                                         {"version", required_argument, 0, 'v'},
                                         {"expires", required_argument, 0, 'e'},
                                         {"chunk-size", required_argument, 0, 'c'},
                                         {"segment", required_argument, 0, 's'},
                                         {"suite", required_argument, 0, 'S'},
                                         {"sign-cert", required_argument, 0, 'C'},
                                         {"chain", required_argument, 0, 'H'},
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    tseal_pack_opts o;
    memset(&o, 0, sizeof o);
    tseal_codec_params_default(&o.codec);
    const char *outp = NULL, *recips[64];
    unsigned nr = 0;
    int json = 0, quiet = 0, have_version = 0, c;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "o:r:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outp = optarg;
            break;
        case 'k':
            o.sign_key = optarg;
            break;
        case 'p':
            o.sign_passphrase_file = optarg;
            break;
        case 'r':
            if (nr >= 64) return usage_error("pack", "at most 64 recipients");
            recips[nr++] = optarg;
            break;
        case 'm':
            o.model_id = optarg;
            break;
        case 'v':
            if (parse_uint(optarg, UINT64_MAX, &v))
                return usage_error("pack", "--version: expected a non-negative integer");
            o.version = v;
            have_version = 1;
            break;
        case 'e':
            if (parse_time(optarg, &o.expires))
                return usage_error(
                    "pack", "--expires: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or @SECONDS");
            break;
        case 'c':
            if (parse_uint(optarg, 1u << 24, &v) || v < 4096 || (v & (v - 1)))
                return usage_error("pack", "--chunk-size: expected a power of two, 4096..16777216");
            o.chunk_size = (uint32_t)v;
            break;
        case 's':
            if (parse_segment(optarg, &o.codec.seg_log2))
                return usage_error("pack", "--segment: expected a power of two, 64..16384");
            break;
        case 'S':
            if (parse_suite(optarg, &o.suite))
                return usage_error("pack", "--suite: expected default or fips");
            break;
        case 'C':
            o.sign_cert = optarg;
            break;
        case 'H':
            o.sign_chain = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(pack_help, stdout);
            return 0;
        default:
            return usage_error("pack", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("pack", "expected exactly one INPUT (a .safetensors file or a folder)");
    if (!outp || !o.sign_key || !nr || !o.model_id || !have_version)
        return usage_error("pack", "-o, --sign-key, -r, --model-id and --version are required");
    if (o.suite != TSEAL_SUITE_FIPS && (o.sign_cert || o.sign_chain))
        return usage_error("pack", "--sign-cert and --chain need --suite fips");
    if (o.sign_chain && !o.sign_cert) return usage_error("pack", "--chain needs --sign-cert");
    o.recipients = recips;
    o.n_recipients = nr;
    progress_state ps = make_progress(quiet || json);
    o.progress = print_progress;
    o.progress_ctx = &ps;
    tseal_pack_report rep;
    int r = tseal_pack(argv[optind], outp, &o, &rep);
    end_progress(&ps);
    if (r) return fail(r);
    double secs = tseal_now() - ps.start;
    if (json) {
        printf(
            "{\"output\": \"%s\", \"files\": %u, \"tensors\": %u, \"coded_tensors\": %u, "
            "\"segments\": %u, "
            "\"original_bytes\": %llu, \"payload_bytes\": %llu, \"container_bytes\": %llu, "
            "\"ratio\": %.6f, \"suite\": \"%s\", \"signer_key_id\": \"%s\", \"seconds\": %.3f}\n",
            outp, rep.files, rep.tensors, rep.coded_tensors, rep.segments,
            (unsigned long long)rep.original_bytes, (unsigned long long)rep.payload_bytes,
            (unsigned long long)rep.container_bytes,
            rep.original_bytes ? (double)rep.container_bytes / (double)rep.original_bytes : 0,
            o.suite == TSEAL_SUITE_FIPS ? TSEAL_SUITE_NAME_FIPS : TSEAL_SUITE_NAME_V1,
            rep.signer_key_id, secs);
    } else if (!quiet) {
        fprintf(stderr,
                "tseal pack: wrote %s: %u files, %u tensors (%u coded), %.1f MB -> %.1f MB "
                "(%.2f%%), %u "
                "recipient(s), signed by %s, %.1f s\n",
                outp, rep.files, rep.tensors, rep.coded_tensors, (double)rep.original_bytes / 1e6,
                (double)rep.container_bytes / 1e6,
                rep.original_bytes
                    ? 100.0 * (double)rep.container_bytes / (double)rep.original_bytes
                    : 0,
                nr, rep.signer_key_id, secs);
    }
    return 0;
}

/* ---- inspect ----------------------------------------------------------------------------- */

static const char *inspect_help =
    "Usage: tseal inspect FILE [--json]\n"
    "\n"
    "Print a container's public header: format, cipher suite, model id and version, times,\n"
    "signer and recipient key ids, sizes. Needs no key and verifies nothing (use verify).\n"
    "--json fields: format_version, suite, model_id, version, signer_key_ids,\n"
    "signer_certificates (FIPS suite: subject, issuer, not_after of each, unverified),\n"
    "recipient_count, payload_bytes, container_bytes, original_bytes, and more.\n";

static void fmt_time(int64_t t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "never");
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static int cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(inspect_help, stdout);
            return 0;
        default:
            return usage_error("inspect", "unknown option");
        }
    }
    if (optind + 1 != argc) return usage_error("inspect", "expected exactly one FILE");
    tseal_container_info *in = malloc(sizeof *in);
    if (!in) return fail(tseal_err(TSEAL_E_NOMEM, "out of memory"));
    int r = tseal_inspect(argv[optind], in);
    if (r) {
        free(in);
        return fail(r);
    }
    char created[40], expires[40];
    fmt_time(in->created, created, sizeof created);
    fmt_time(in->expires, expires, sizeof expires);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "path", argv[optind]);
        cJSON_AddNumberToObject(j, "format_version", in->format_version);
        cJSON_AddStringToObject(j, "suite", in->suite_name);
        cJSON_AddNumberToObject(j, "suite_id", in->suite);
        cJSON_AddStringToObject(j, "model_id", in->model_id);
        cJSON_AddNumberToObject(j, "version", (double)in->version);
        cJSON_AddStringToObject(j, "created", created);
        if (in->expires)
            cJSON_AddStringToObject(j, "expires", expires);
        else
            cJSON_AddNullToObject(j, "expires");
        cJSON_AddStringToObject(j, "container_id", in->container_id);
        cJSON_AddStringToObject(j, "artifact_digest", in->artifact_digest);
        cJSON_AddStringToObject(j, "signer_key_id", in->primary_signer_key_id);
        cJSON *a = cJSON_AddArrayToObject(j, "signer_key_ids");
        for (uint32_t i = 0; i < in->signature_count; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(in->signer_key_ids[i]));
        if (in->suite == TSEAL_SUITE_FIPS) { /* what each certificate claims, unverified */
            a = cJSON_AddArrayToObject(j, "signer_certificates");
            for (uint32_t i = 0; i < in->signature_count; i++) {
                cJSON *o = cJSON_CreateObject();
                char na[40];
                fmt_time(in->signer_not_after[i], na, sizeof na);
                cJSON_AddStringToObject(o, "key_id", in->signer_key_ids[i]);
                cJSON_AddStringToObject(o, "subject", in->signer_subjects[i]);
                cJSON_AddStringToObject(o, "issuer", in->signer_issuers[i]);
                cJSON_AddStringToObject(o, "not_after", na);
                cJSON_AddItemToArray(a, o);
            }
        }
        cJSON_AddNumberToObject(j, "recipient_count", in->recipient_count);
        a = cJSON_AddArrayToObject(j, "recipient_key_ids");
        for (uint32_t i = 0; i < in->recipient_count; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(in->recipient_key_ids[i]));
        cJSON_AddNumberToObject(j, "chunk_size", in->chunk_size);
        cJSON_AddNumberToObject(j, "segment_count", in->segment_count);
        cJSON_AddNumberToObject(j, "payload_bytes", (double)in->payload_bytes);
        cJSON_AddNumberToObject(j, "container_bytes", (double)in->container_bytes);
        cJSON_AddNumberToObject(j, "original_bytes", (double)in->original_bytes);
        char *s = cJSON_Print(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    } else {
        printf("container      %s\n", argv[optind]);
        printf("format         version %u, suite %s\n", in->format_version, in->suite_name);
        printf("model          %s, version %llu\n", in->model_id, (unsigned long long)in->version);
        printf("created        %s\nexpires        %s\n", created, expires);
        printf("artifact       sha256:%s (what policies pin and audit reports name)\n",
               in->artifact_digest);
        printf("signed by      %s (%u signature%s; not verified here: use tseal verify)\n",
               in->primary_signer_key_id, in->signature_count, in->signature_count == 1 ? "" : "s");
        for (uint32_t i = 0; i < in->signature_count; i++) {
            printf("  signer       %s\n", in->signer_key_ids[i]);
            if (in->signer_subjects[i][0]) {
                char na[40];
                fmt_time(in->signer_not_after[i], na, sizeof na);
                printf("    certificate  %s\n    issued by    %s\n    valid until  %s\n",
                       in->signer_subjects[i], in->signer_issuers[i], na);
            }
        }
        printf("recipients     %u\n", in->recipient_count);
        for (uint32_t i = 0; i < in->recipient_count; i++)
            printf("  recipient    %s\n", in->recipient_key_ids[i]);
        printf("segments       %u in chunks of %u bytes\n", in->segment_count, in->chunk_size);
        printf("sizes          original %llu, payload %llu, container %llu bytes (%.2f%% of the "
               "original)\n",
               (unsigned long long)in->original_bytes, (unsigned long long)in->payload_bytes,
               (unsigned long long)in->container_bytes,
               in->original_bytes ? 100.0 * (double)in->container_bytes / (double)in->original_bytes
                                  : 0);
    }
    free(in);
    return 0;
}

/* ---- verify, unpack ---------------------------------------------------------------------- */

/* The trust options shared by verify, unpack, audit and load: --trust and --policy-key key
 * lists, --trust-ca / --crl / --identity. */
typedef struct {
    const char *cas[16], *crls[16], *ids[32], *trust[16], *pkeys[16];
    unsigned n_cas, n_crls, n_ids, n_trust, n_pkeys;
} ca_args;

#define CA_OPTIONS                                                                                 \
    {"trust-ca", required_argument, 0, 1001}, {"crl", required_argument, 0, 1002},                 \
        {"identity", required_argument, 0, 1003}, {                                                \
        "certificate-identity", required_argument, 0, 1003                                         \
    }

#define CA_HELP                                                                                    \
    "\n"                                                                                           \
    "FIPS-suite containers are signed by X.509 certificates: --trust-ca ROOT.pem trusts\n"         \
    "signers whose certificate chain (carried in the container) leads to that root, valid at\n"    \
    "the current time and with a key usage that allows signing; --crl CRL.pem checks\n"            \
    "revocation (every certificate must then be covered by its issuer's CRL); --identity P\n"      \
    "(also --certificate-identity) requires the signer certificate to match P: subject:TEXT\n"     \
    "(the subject or its CN), email:TEXT, uri:TEXT or dns:TEXT (a SAN), one '*' wildcard.\n"

/* 1 if c was a trust option (consumed: 't' --trust, 'K' --policy-key, or a CA option), 0 if
 * not, -1 on a usage error (printed). */
static int ca_option(ca_args *a, int c, const char *cmd) {
    const char **list = c == 1001   ? a->cas
                        : c == 1002 ? a->crls
                        : c == 1003 ? a->ids
                        : c == 't'  ? a->trust
                        : c == 'K'  ? a->pkeys
                                    : NULL;
    unsigned *n = c == 1001   ? &a->n_cas
                  : c == 1002 ? &a->n_crls
                  : c == 1003 ? &a->n_ids
                  : c == 't'  ? &a->n_trust
                              : &a->n_pkeys;
    unsigned cap = c == 1003 ? 32 : 16;
    if (!list) return 0;
    if (*n >= cap) {
        usage_error(cmd, c == 1001   ? "at most 16 --trust-ca roots"
                         : c == 1002 ? "at most 16 --crl files"
                         : c == 1003 ? "at most 32 --identity patterns"
                         : c == 't'  ? "at most 16 --trust keys"
                                     : "at most 16 --policy-key keys");
        return -1;
    }
    list[(*n)++] = optarg;
    return 1;
}

/* The lists into the library's options (tseal_verify_opts and tseal_audit_opts share them). */
#define CA_ARGS_APPLY(o, a)                                                                        \
    do {                                                                                           \
        (o).trust = (a).trust, (o).n_trust = (a).n_trust;                                          \
        (o).trust_cas = (a).cas, (o).n_trust_cas = (a).n_cas;                                      \
        (o).crls = (a).crls, (o).n_crls = (a).n_crls;                                              \
        (o).identities = (a).ids, (o).n_identities = (a).n_ids;                                    \
        (o).policy_keys = (a).pkeys, (o).n_policy_keys = (a).n_pkeys;                              \
    } while (0)

static int ca_args_check(const ca_args *a, const char *cmd) {
    if ((a->n_crls || a->n_ids) && !a->n_cas)
        return usage_error(cmd, "--crl and --identity need --trust-ca");
    return 0;
}

static const char *verify_help =
    "Usage: tseal verify FILE (--trust SIGNER.pub ... | --trust-ca ROOT.pem [--crl CRL.pem]\n"
    "                    [--identity P] | --policy P [--policy-key K] [--state S]\n"
    "                    [--attestation REPORT]) [--key KEY] [--passphrase-file F] [--json] [-q]\n"
    "\n"
    "Verify a container: every signature valid and one by a trusted key, not expired, and every\n"
    "chunk of every segment equal to its signed SHA-256. With --key (a recipient secret key):\n"
    "also unwrap the content key, check the key commitment, authenticate and decrypt every\n"
    "chunk, parse the manifest, decode every tensor and check every tensor's and file's\n"
    "signed digest. Exit code 0 if everything verified, 3 if anything did not.\n"
    "\n"
    "With --policy (docs/POLICY.md) the site policy decides trust instead of --trust: trusted\n"
    "and revoked signers, k-of-n threshold, allowed suites and models (minimum version,\n"
    "pinned digests), limits, required audit reports (--attestation) and rollback protection\n"
    "(--state FILE: the highest version accepted per model and signer, raised only after\n"
    "full verification). Every reason for a denial is printed. --policy-key K requires the\n"
    "policy itself to be signed by K.\n" CA_HELP;

static const char *unpack_help =
    "Usage: tseal unpack FILE --key KEY -o DIR [--trust SIGNER.pub ... | --trust-ca ROOT.pem ...\n"
    "                    | --policy P ...]\n"
    "                    [--passphrase-file F] [--json] [-q]\n"
    "\n"
    "Verify and restore every original file of the model under DIR (which must not exist or be\n"
    "empty), byte for byte: each file is checked against its signed SHA-256. The files are\n"
    "written into a temporary folder renamed to DIR only when everything verified, so a failure\n"
    "leaves no output. Without --trust, --trust-ca or --policy the signature is checked for\n"
    "consistency only and a warning says the signer was not authenticated. The options are\n"
    "those of 'tseal verify'.\n" CA_HELP;

static int verify_or_unpack(int argc, char **argv, int unpack) {
    static const struct option opts[] = {{"trust", required_argument, 0, 't'},
                                         {"key", required_argument, 0, 'k'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"output", required_argument, 0, 'o'},
                                         {"policy", required_argument, 0, 'P'},
                                         {"policy-key", required_argument, 0, 'K'},
                                         {"state", required_argument, 0, 'S'},
                                         {"attestation", required_argument, 0, 'A'},
                                         CA_OPTIONS,
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cmd = unpack ? "unpack" : "verify", *outp = NULL, *att[16];
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    unsigned na = 0;
    ca_args ca = {0};
    int json = 0, quiet = 0, c, k;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        if ((k = ca_option(&ca, c, cmd)) != 0) {
            if (k < 0) return 2;
            continue;
        }
        switch (c) {
        case 'k':
            o.key = optarg;
            break;
        case 'p':
            o.passphrase_file = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'P':
            o.policy = optarg;
            break;
        case 'S':
            o.state = optarg;
            break;
        case 'A':
            if (na >= 16) return usage_error(cmd, "at most 16 --attestation reports");
            att[na++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(unpack ? unpack_help : verify_help, stdout);
            return 0;
        default:
            return usage_error(cmd, "unknown option");
        }
    }
    if (optind + 1 != argc) return usage_error(cmd, "expected exactly one FILE");
    if (unpack && (!o.key || !outp)) return usage_error(cmd, "--key and -o DIR are required");
    if (!unpack && outp) return usage_error(cmd, "-o is for unpack");
    if (!unpack && !ca.n_trust && !ca.n_cas && !o.policy)
        return usage_error(cmd,
                           "--trust SIGNER.pub, --trust-ca ROOT.pem or --policy P is required");
    if ((ca.n_pkeys || o.state || na) && !o.policy)
        return usage_error(cmd, "--policy-key, --state and --attestation need --policy");
    if (ca_args_check(&ca, cmd)) return 2;
    CA_ARGS_APPLY(o, ca);
    o.attestations = att;
    o.n_attestations = na;
    progress_state ps = make_progress(quiet || json);
    o.progress = print_progress;
    o.progress_ctx = &ps;
    tseal_verify_report rep;
    int r =
        unpack ? tseal_unpack(argv[optind], outp, &o, &rep) : tseal_verify(argv[optind], &o, &rep);
    end_progress(&ps);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "path", argv[optind]);
        cJSON_AddBoolToObject(j, "ok", r == 0);
        cJSON_AddBoolToObject(j, "signature_ok", rep.signature_ok);
        cJSON_AddNumberToObject(j, "trusted_signatures", rep.trusted_signatures);
        cJSON_AddBoolToObject(j, "signer_authenticated", rep.trusted_signatures > 0);
        cJSON_AddBoolToObject(j, "decrypted", rep.decrypted);
        cJSON_AddNumberToObject(j, "segments_checked", rep.segments_checked);
        cJSON_AddNumberToObject(j, "tensors_checked", rep.tensors_checked);
        cJSON_AddNumberToObject(j, "files_checked", rep.files_checked);
        cJSON_AddNumberToObject(j, "bytes_checked", (double)rep.bytes_checked);
        if (o.policy) {
            cJSON_AddStringToObject(j, "policy_id", rep.policy_id);
            cJSON_AddBoolToObject(j, "policy_allowed", rep.policy_allowed);
            cJSON_AddBoolToObject(j, "state_updated", rep.state_updated);
        }
        if (unpack && r == 0) cJSON_AddStringToObject(j, "output", outp);
        if (r) {
            cJSON_AddStringToObject(j, "error", tseal_errmsg());
            cJSON_AddNumberToObject(j, "exit_code", exit_code(r));
        }
        char *s = cJSON_Print(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    }
    if (r) return json ? exit_code(r) : fail(r);
    if (!json && !quiet && rep.policy_allowed)
        fprintf(stderr, "tseal %s: policy %s allows this artifact%s\n", cmd, rep.policy_id,
                rep.state_updated ? "; rollback state raised" : "");
    if (unpack && !ca.n_trust && !ca.n_cas && !o.policy)
        fprintf(stderr, "tseal unpack: warning: no --trust key given: the signature is intact but "
                        "the signer is NOT "
                        "authenticated\n");
    if (!json && !quiet) {
        if (unpack)
            fprintf(stderr,
                    "tseal unpack: restored %u files (%u tensors, %.1f MB) into %s; every file "
                    "matches its signed "
                    "SHA-256\n",
                    rep.files_checked, rep.tensors_checked, (double)rep.bytes_checked / 1e6, outp);
        else if (o.key)
            fprintf(stderr,
                    "tseal verify: OK: %u trusted signature(s), %u segments authenticated and "
                    "decrypted, %u "
                    "tensors and %u files match their signed SHA-256\n",
                    rep.trusted_signatures, rep.segments_checked, rep.tensors_checked,
                    rep.files_checked);
        else
            fprintf(stderr,
                    "tseal verify: OK: %u trusted signature(s), every chunk of %u segments "
                    "matches its "
                    "signed hash (%.1f MB); add --key to decrypt and check every tensor\n",
                    rep.trusted_signatures, rep.segments_checked, (double)rep.bytes_checked / 1e6);
    }
    return 0;
}

/* ---- load ------------------------------------------------------------------------------- */

static const char *load_help =
    "Usage: tseal load FILE --key KEY (--trust SIGNER.pub ... | --trust-ca ROOT.pem ...\n"
    "                  | --policy P [--policy-key K] [--state S]) [--device N]\n"
    "                  [--staging MiB] [--check] [--gpu-decrypt] [--passphrase-file F]\n"
    "                  [--json] [-q]\n"
    "\n"
    "Load a container onto a GPU the way a serving process does: verify the signature(s) (or\n"
    "the policy), expiry and key, then stream every segment: each chunk is checked against its\n"
    "signed hash and decrypted (all CPU cores) into one of two pinned staging buffers while the\n"
    "other is copied to the GPU. Tensors stay compressed on the GPU; host memory never holds a\n"
    "decoded BF16 weight, and the staging buffers are wiped. Prints the timings and a summary.\n"
    "\n"
    "  --device N      CUDA device ordinal (default 0)\n"
    "  --staging MiB   size of each of the two pinned staging buffers (default 64)\n"
    "  --check         then decode every tensor on the GPU and check it against its signed\n"
    "                  digest (decoded bytes come back 16 MiB at a time into locked memory)\n"
    "  --gpu-decrypt   copy the checked ciphertext and decrypt it on the GPU (ChaCha20\n"
    "                  kernel; default suite): the host never holds the model's plaintext,\n"
    "                  only the few chunks holding each tensor's header and index\n"
    "\n"
    "Without a CUDA device (or a build without CUDA) it says so and exits with code 5. A policy's\n"
    "rollback state is checked, never raised ('tseal verify --state' raises it).\n" CA_HELP;

static void load_json(const char *path, int r, const tseal_gpu_load_report *rep, int device,
                      int checked, uint32_t n_checked, double open_s, double check_s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", path);
    cJSON_AddBoolToObject(j, "ok", r == 0);
    cJSON_AddNumberToObject(j, "device", device);
    cJSON_AddNumberToObject(j, "tensors", rep->tensors);
    cJSON_AddNumberToObject(j, "compressed_bytes", (double)rep->compressed_bytes);
    cJSON_AddNumberToObject(j, "original_bytes", (double)rep->original_bytes);
    cJSON_AddNumberToObject(j, "device_bytes", (double)rep->device_bytes);
    cJSON_AddNumberToObject(j, "staging_bytes", (double)rep->staging_bytes);
    cJSON_AddNumberToObject(j, "open_seconds", open_s);
    cJSON_AddNumberToObject(j, "load_seconds", rep->seconds);
    cJSON_AddNumberToObject(j, "decrypt_seconds", rep->decrypt_seconds);
    cJSON_AddNumberToObject(j, "copy_wait_seconds", rep->copy_wait_seconds);
    if (checked) {
        cJSON_AddNumberToObject(j, "tensors_checked", n_checked);
        cJSON_AddNumberToObject(j, "check_seconds", check_s);
    }
    if (r) {
        cJSON_AddStringToObject(j, "error", tseal_errmsg());
        cJSON_AddNumberToObject(j, "exit_code", exit_code(r));
    }
    char *txt = cJSON_Print(j);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    cJSON_Delete(j);
}

static int cmd_load(int argc, char **argv) {
    static const struct option opts[] = {{"trust", required_argument, 0, 't'},
                                         {"key", required_argument, 0, 'k'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"policy", required_argument, 0, 'P'},
                                         {"policy-key", required_argument, 0, 'K'},
                                         {"state", required_argument, 0, 'S'},
                                         {"device", required_argument, 0, 'd'},
                                         {"staging", required_argument, 0, 's'},
                                         {"check", no_argument, 0, 'c'},
                                         {"gpu-decrypt", no_argument, 0, 'g'},
                                         CA_OPTIONS,
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    tseal_verify_opts o;
    memset(&o, 0, sizeof o);
    tseal_gpu_load_opts lo;
    memset(&lo, 0, sizeof lo);
    ca_args ca = {0};
    int json = 0, quiet = 0, check = 0, c, k;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        if ((k = ca_option(&ca, c, "load")) != 0) {
            if (k < 0) return 2;
            continue;
        }
        switch (c) {
        case 'k':
            o.key = optarg;
            break;
        case 'p':
            o.passphrase_file = optarg;
            break;
        case 'P':
            o.policy = optarg;
            break;
        case 'S':
            o.state = optarg;
            break;
        case 'd':
            if (parse_uint(optarg, 1023, &v))
                return usage_error("load", "--device: expected 0..1023");
            lo.device = (int)v;
            break;
        case 's':
            if (parse_uint(optarg, 4096, &v) || v == 0)
                return usage_error("load", "--staging: expected 1..4096 (MiB)");
            lo.staging_bytes = v << 20;
            break;
        case 'c':
            check = 1;
            break;
        case 'g':
            lo.decrypt_on_gpu = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(load_help, stdout);
            return 0;
        default:
            return usage_error("load", "unknown option");
        }
    }
    if (optind + 1 != argc) return usage_error("load", "expected exactly one FILE");
    if (!o.key) return usage_error("load", "--key is required");
    if (!ca.n_trust && !ca.n_cas && !o.policy)
        return usage_error("load",
                           "--trust SIGNER.pub, --trust-ca ROOT.pem or --policy P is required");
    if ((ca.n_pkeys || o.state) && !o.policy)
        return usage_error("load", "--policy-key and --state need --policy");
    if (ca_args_check(&ca, "load")) return 2;
    CA_ARGS_APPLY(o, ca);
    progress_state ps = make_progress(quiet || json);
    lo.progress = print_progress;
    lo.progress_ctx = &ps;

    tseal_gpu_load_report rep;
    memset(&rep, 0, sizeof rep);
    tseal_artifact *a = NULL;
    tseal_gpu_model *m = NULL;
    uint32_t n_checked = 0;
    double t0 = tseal_now(), open_s = 0, check_s = 0;
    /* Fail early and clearly when there is no GPU, before any key is read. */
    int r = tseal_gpu_device_count() > 0 ? 0 : TSEAL_E_NO_GPU;
    if (!r) r = tseal_open(argv[optind], &o, &a);
    open_s = tseal_now() - t0;
    if (!r) r = tseal_gpu_load(a, &lo, &m, &rep);
    end_progress(&ps);
    if (!r && check) {
        double t1 = tseal_now();
        r = tseal_gpu_model_check(a, m, &n_checked);
        check_s = tseal_now() - t1;
    }
    if (json) load_json(argv[optind], r, &rep, lo.device, check, n_checked, open_s, check_s);
    if (!r && !json && !quiet) {
        double gb = (double)rep.compressed_bytes / 1e9;
        fprintf(stderr,
                "tseal load: %s on GPU %d: %u tensors, %.1f MB compressed (%.1f MB as BF16), "
                "%.1f MB of device memory\n"
                "  open (signatures, policy, key, manifest) %.3f s; load %.3f s = %.2f GB/s "
                "(decrypt %.3f s, waiting for copies %.3f s; pinned staging %.0f MiB)\n",
                tseal_artifact_model_id(a), lo.device, rep.tensors,
                (double)rep.compressed_bytes / 1e6, (double)rep.original_bytes / 1e6,
                (double)rep.device_bytes / 1e6, open_s, rep.seconds,
                rep.seconds > 0 ? gb / rep.seconds : 0, rep.decrypt_seconds, rep.copy_wait_seconds,
                (double)rep.staging_bytes / (1 << 20));
        if (check)
            fprintf(stderr,
                    "  check: %u tensors decoded on the GPU match their signed digests (%.3f s)\n",
                    n_checked, check_s);
    }
    tseal_gpu_free(m);
    tseal_close(a);
    if (r) return json ? exit_code(r) : fail(r);
    return 0;
}

/* ---- policy ----------------------------------------------------------------------------- */

static const char *policy_help =
    "Usage: tseal policy init (--trust SIGNER.pub ... | --trust-ca ROOT.pem --identity P ...)\n"
    "                         --model ID --min-version N [--fips-only] [--threshold K]\n"
    "                         [--expires DATE] [--id POLICY_ID] -o site.json [--force]\n"
    "       tseal policy show FILE [--policy-key K]\n"
    "       tseal policy sign FILE --sign-key K [--passphrase-file F] -o OUT [--force]\n"
    "\n"
    "A deployment policy (docs/POLICY.md) says which artifacts a site may load: trusted and\n"
    "revoked signers, a k-of-n signature threshold, allowed suites and models (minimum\n"
    "version, pinned digests), size limits, required audit reports, rollback protection.\n"
    "  init   write a valid policy to start from (then edit it). --trust-ca trusts X.509\n"
    "         signers under a CA root, limited to --identity patterns (subject:, email:,\n"
    "         uri:, dns: + text, one '*'); CRLs go in its crl_files. --fips-only allows only\n"
    "         the FIPS suite (a default-suite artifact is then refused: no downgrade)\n"
    "  show   explain a policy, rule by rule (checks it strictly)\n"
    "  sign   sign a policy with a policy key (verify --policy-key then requires it)\n";

static int cmd_policy(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(policy_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    static const struct option opts[] = {{"trust", required_argument, 0, 't'},
                                         {"model", required_argument, 0, 'm'},
                                         {"min-version", required_argument, 0, 'v'},
                                         {"threshold", required_argument, 0, 'k'},
                                         {"expires", required_argument, 0, 'e'},
                                         {"id", required_argument, 0, 'i'},
                                         {"output", required_argument, 0, 'o'},
                                         {"force", no_argument, 0, 'f'},
                                         {"policy-key", required_argument, 0, 'K'},
                                         {"sign-key", required_argument, 0, 's'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"trust-ca", required_argument, 0, 'C'},
                                         {"identity", required_argument, 0, 'I'},
                                         {"certificate-identity", required_argument, 0, 'I'},
                                         {"fips-only", no_argument, 0, 'F'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *trust[64], *model = NULL, *outp = NULL, *id = NULL, *pkey = NULL, *skey = NULL,
                           *passf = NULL, *ca = NULL, *idents[32];
    unsigned nt = 0, nid = 0;
    int fips_only = 0;
    unsigned long long v, minv = 0, thr = 0;
    int64_t expires = 0;
    int force = 0, have_min = 0, c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (nt >= 64) return usage_error("policy", "at most 64 --trust keys");
            trust[nt++] = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'v':
            if (parse_uint(optarg, UINT64_MAX, &minv))
                return usage_error("policy", "--min-version: expected an integer");
            have_min = 1;
            break;
        case 'k':
            if (parse_uint(optarg, 256, &thr) || thr < 1)
                return usage_error("policy", "--threshold: expected 1..256");
            break;
        case 'e':
            if (parse_time(optarg, &expires))
                return usage_error("policy", "--expires: expected YYYY-MM-DD");
            break;
        case 'i':
            id = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'K':
            pkey = optarg;
            break;
        case 's':
            skey = optarg;
            break;
        case 'p':
            passf = optarg;
            break;
        case 'C':
            if (ca) return usage_error("policy", "init takes one --trust-ca (add more by editing)");
            ca = optarg;
            break;
        case 'I':
            if (nid >= 32) return usage_error("policy", "at most 32 --identity patterns");
            idents[nid++] = optarg;
            break;
        case 'F':
            fips_only = 1;
            break;
        case 'h':
            fputs(policy_help, stdout);
            return 0;
        default:
            return usage_error("policy", "unknown option");
        }
    }
    (void)v;
    int rest = argc - 1 - optind;
    char **args = argv + 1 + optind;
    int r;
    if (!strcmp(sub, "init")) {
        if (rest || (!nt && !ca) || !model || !have_min || !outp)
            return usage_error("policy",
                               "init needs --trust or --trust-ca, --model, --min-version and -o");
        if (ca && !nid)
            return usage_error("policy", "--trust-ca needs --identity (which signers of that CA)");
        if (nid && !ca) return usage_error("policy", "--identity needs --trust-ca");
        tseal_pubkey keys[64];
        for (unsigned i = 0; i < nt; i++)
            if ((r = tseal_pubkey_read(trust[i], &keys[i]))) return fail(r);
        tseal_policy_init_opts po;
        memset(&po, 0, sizeof po);
        po.policy_id = id, po.trusted = keys, po.n_trusted = nt, po.model_id = model;
        po.min_version = minv, po.expires = expires, po.threshold = (unsigned)thr;
        po.ca_pem_path = ca;
        po.identities = idents;
        po.n_identities = nid;
        po.fips_only = fips_only;
        if ((r = tseal_policy_init(&po, outp, force))) return fail(r);
        fprintf(stderr,
                "tseal policy: wrote %s (edit it, then check it with 'tseal policy show %s')\n",
                outp, outp);
        return 0;
    }
    if (!strcmp(sub, "show")) {
        if (rest != 1) return usage_error("policy", "show needs exactly one FILE");
        tseal_pubkey k;
        tseal_policy *pol;
        if (pkey && (r = tseal_pubkey_read(pkey, &k))) return fail(r);
        if ((r = tseal_policy_load(args[0], pkey ? &k : NULL, pkey ? 1 : 0, pkey != NULL, &pol)))
            return fail(r);
        char *text = tseal_policy_explain(pol);
        fputs(text ? text : "", stdout);
        free(text);
        tseal_policy_free(pol);
        return 0;
    }
    if (!strcmp(sub, "sign")) {
        if (rest != 1 || !skey || !outp)
            return usage_error("policy", "sign needs FILE, --sign-key and -o");
        char *pass = NULL;
        size_t pl = 0;
        tseal_seckey *sk = NULL;
        r = passf ? tseal_passphrase_read(passf, &pass, &pl) : 0;
        if (!r) r = tseal_seckey_read(skey, pass, pl, &sk);
        tseal_secure_free(pass);
        if (!r) r = tseal_policy_sign(args[0], sk, outp, force);
        tseal_seckey_free(sk);
        if (r) return fail(r);
        fprintf(stderr, "tseal policy: wrote signed policy %s\n", outp);
        return 0;
    }
    fprintf(stderr, "tseal policy: unknown subcommand '%s' (init, show, sign)\n", sub);
    return EXIT_USAGE;
}

/* ---- sign --add --------------------------------------------------------------------------- */

static const char *sign_help =
    "Usage: tseal sign --add FILE --sign-key KEY [--sign-cert CERT.pem [--chain CHAIN.pem]]\n"
    "                  [--passphrase-file F] [-o OUT]\n"
    "\n"
    "Add a signature (for example an internal validation team's, toward a policy's k-of-n\n"
    "threshold) to a container. Every existing signature must be valid. The signature covers\n"
    "the public header, which commits to every ciphertext byte; verify the container first\n"
    "(tseal verify --key) if you vouch for its contents. Without -o the file is replaced\n"
    "(through a temporary file). A FIPS-suite container is signed with a P-256 PEM key and\n"
    "its X.509 certificate (--sign-cert, intermediates with --chain).\n";

static int cmd_sign(int argc, char **argv) {
    static const struct option opts[] = {{"add", required_argument, 0, 'a'},
                                         {"sign-key", required_argument, 0, 's'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"output", required_argument, 0, 'o'},
                                         {"sign-cert", required_argument, 0, 'C'},
                                         {"chain", required_argument, 0, 'H'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *file = NULL, *key = NULL, *passf = NULL, *outp = NULL, *cert = NULL, *chain = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            file = optarg;
            break;
        case 's':
            key = optarg;
            break;
        case 'p':
            passf = optarg;
            break;
        case 'o':
            outp = optarg;
            break;
        case 'C':
            cert = optarg;
            break;
        case 'H':
            chain = optarg;
            break;
        case 'h':
            fputs(sign_help, stdout);
            return 0;
        default:
            return usage_error("sign", "unknown option");
        }
    }
    if (!file && optind + 1 == argc) file = argv[optind++];
    if (!file || !key || optind != argc)
        return usage_error("sign", "expected --add FILE --sign-key KEY");
    if (chain && !cert) return usage_error("sign", "--chain needs --sign-cert");
    int r = tseal_sign_add_cert(file, key, cert, chain, passf, outp);
    if (r) return fail(r);
    fprintf(stderr, "tseal sign: added a signature to %s\n", outp ? outp : file);
    return 0;
}

/* ---- audit -------------------------------------------------------------------------------- */

static const char *audit_help =
    "Usage: tseal audit FILE --key KEY (--policy P | --trust SIGNER.pub | --trust-ca ROOT.pem)\n"
    "                   --report REPORT.json\n"
    "                   --audit-key AUDITOR.sign.key [--reference DIR] [--device gpu|cpu|auto]\n"
    "                   [--policy-key K] [--state S] [--passphrase-file F]\n"
    "                   [--audit-passphrase-file F] [--json] [-q]\n"
    "\n"
    "Decode every tensor of the container (in locked memory; no decoded weight is written to\n"
    "disk) and check that each hashes to its signed digest and each rebuilt file to its signed\n"
    "SHA-256; with --reference, also that every original file is reproduced byte for byte and\n"
    "which tensor differs if not. Runs the policy gate. Writes a signed report (in-toto\n"
    "statement: artifact digest, model root digest, tool, device, policy id and digest,\n"
    "signer ids, per-tensor expected/actual digests, result, time, nonce), also when the audit\n"
    "fails. Check it with 'tseal audit-verify'. Exit code 0 if the audit passed, 3 if not.\n"
    "--device gpu decodes with the CUDA kernel (digests computed on the host from locked\n"
    "memory); auto (the default) uses the GPU when there is one; exit code 5 without one.\n"
    "--trust-ca, --crl and --identity as for 'tseal verify'.\n";

static int cmd_audit(int argc, char **argv) {
    static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                         {"passphrase-file", required_argument, 0, 'p'},
                                         {"policy", required_argument, 0, 'P'},
                                         {"policy-key", required_argument, 0, 'K'},
                                         {"state", required_argument, 0, 'S'},
                                         {"trust", required_argument, 0, 't'},
                                         {"reference", required_argument, 0, 'R'},
                                         {"device", required_argument, 0, 'd'},
                                         {"report", required_argument, 0, 'r'},
                                         {"audit-key", required_argument, 0, 'a'},
                                         {"audit-passphrase-file", required_argument, 0, 'A'},
                                         CA_OPTIONS,
                                         {"json", no_argument, 0, 'j'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    tseal_audit_opts o;
    memset(&o, 0, sizeof o);
    ca_args ca = {0};
    int json = 0, quiet = 0, c, k;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        if ((k = ca_option(&ca, c, "audit")) != 0) {
            if (k < 0) return 2;
            continue;
        }
        switch (c) {
        case 'k':
            o.key = optarg;
            break;
        case 'p':
            o.passphrase_file = optarg;
            break;
        case 'P':
            o.policy = optarg;
            break;
        case 'S':
            o.state = optarg;
            break;
        case 'R':
            o.reference = optarg;
            break;
        case 'd':
            o.device = optarg;
            break;
        case 'r':
            o.report = optarg;
            break;
        case 'a':
            o.audit_key = optarg;
            break;
        case 'A':
            o.audit_passphrase_file = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            fputs(audit_help, stdout);
            return 0;
        default:
            return usage_error("audit", "unknown option");
        }
    }
    if (optind + 1 != argc || !o.key || !o.report || !o.audit_key ||
        (!o.policy && !ca.n_trust && !ca.n_cas))
        return usage_error("audit", "expected FILE, --key, --report, --audit-key and --policy, "
                                    "--trust or --trust-ca");
    if (ca_args_check(&ca, "audit")) return 2;
    CA_ARGS_APPLY(o, ca);
    progress_state ps = make_progress(quiet || json);
    o.progress = print_progress;
    o.progress_ctx = &ps;
    tseal_audit_result res;
    int r = tseal_audit(argv[optind], &o, &res);
    end_progress(&ps);
    if (json) {
        printf("{\"passed\": %s, \"report\": \"%s\", \"device\": \"%s\", \"tensors\": %u, "
               "\"tensors_ok\": %u, "
               "\"files\": %u, \"files_ok\": %u, \"reference_mismatches\": %u}\n",
               r == 0 ? "true" : "false", o.report, res.device, res.tensors, res.tensors_ok,
               res.files, res.files_ok, res.reference_mismatches);
        return exit_code(r);
    }
    if (r) {
        if (res.tensors || res.files)
            fprintf(stderr, "tseal audit: signed report written to %s\n", o.report);
        return fail(r);
    }
    if (!quiet)
        fprintf(stderr,
                "tseal audit: PASSED on %s: %u/%u tensors and %u/%u files match their signed "
                "digests%s; signed "
                "report %s\n",
                res.device, res.tensors_ok, res.tensors, res.files_ok, res.files,
                o.reference ? " and the reference byte for byte" : "", o.report);
    return 0;
}

static const char *audit_verify_help =
    "Usage: tseal audit-verify REPORT.json --trust AUDITOR.sign.pub [--trust ...] [--json]\n"
    "\n"
    "Check an audit report: its signature by a trusted auditor key (any edited byte fails),\n"
    "then print what it attests. Exit code 0 for an authentic report of a passed audit, 3 for\n"
    "a modified or untrusted report, or an authentic report of a failed audit.\n";

static int cmd_audit_verify(int argc, char **argv) {
    static const struct option opts[] = {{"trust", required_argument, 0, 't'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *trust[16];
    unsigned nt = 0;
    int json = 0, c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (nt >= 16) return usage_error("audit-verify", "at most 16 --trust keys");
            trust[nt++] = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            fputs(audit_verify_help, stdout);
            return 0;
        default:
            return usage_error("audit-verify", "unknown option");
        }
    }
    if (optind + 1 != argc || !nt)
        return usage_error("audit-verify", "expected REPORT and --trust AUDITOR.pub");
    tseal_report_info in;
    int r = tseal_audit_verify(argv[optind], trust, nt, &in);
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddBoolToObject(j, "authentic", r == 0 || in.auditor_key_id[0]);
        cJSON_AddBoolToObject(j, "passed", r == 0);
        cJSON_AddStringToObject(j, "model_id", in.model_id);
        cJSON_AddNumberToObject(j, "version", (double)in.version);
        cJSON_AddStringToObject(j, "artifact_digest", in.artifact_digest);
        cJSON_AddStringToObject(j, "model_root", in.model_root);
        cJSON_AddStringToObject(j, "auditor_key_id", in.auditor_key_id);
        cJSON_AddStringToObject(j, "policy_id", in.policy_id);
        cJSON_AddStringToObject(j, "time", in.time);
        cJSON_AddStringToObject(j, "device", in.device);
        cJSON_AddNumberToObject(j, "tensors", in.tensors);
        cJSON_AddNumberToObject(j, "failures", in.failures);
        if (r) cJSON_AddStringToObject(j, "error", tseal_errmsg());
        char *s = cJSON_Print(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
        return exit_code(r);
    }
    if (r) return fail(r);
    printf("report      %s: authentic, signed by auditor key %s\n", argv[optind],
           in.auditor_key_id);
    printf("result      PASSED on %s at %s\n", in.device, in.time);
    printf("model       %s version %llu, %u tensors checked\n", in.model_id,
           (unsigned long long)in.version, in.tensors);
    printf("artifact    sha256:%s\nmodel root  sha256:%s\n", in.artifact_digest, in.model_root);
    if (in.policy_id[0]) printf("policy      %s\n", in.policy_id);
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
            if (!strcmp(argv[2], "keygen")) return cmd_keygen(2, sub);
            if (!strcmp(argv[2], "pack")) return cmd_pack(2, sub);
            if (!strcmp(argv[2], "inspect")) return cmd_inspect(2, sub);
            if (!strcmp(argv[2], "verify")) return verify_or_unpack(2, sub, 0);
            if (!strcmp(argv[2], "unpack")) return verify_or_unpack(2, sub, 1);
            if (!strcmp(argv[2], "load")) return cmd_load(2, sub);
            if (!strcmp(argv[2], "policy")) return cmd_policy(2, sub);
            if (!strcmp(argv[2], "sign")) return cmd_sign(2, sub);
            if (!strcmp(argv[2], "audit")) return cmd_audit(2, sub);
            if (!strcmp(argv[2], "audit-verify")) return cmd_audit_verify(2, sub);
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
    if (!strcmp(cmd, "keygen")) return cmd_keygen(argc - 1, argv + 1);
    if (!strcmp(cmd, "pack")) return cmd_pack(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return verify_or_unpack(argc - 1, argv + 1, 0);
    if (!strcmp(cmd, "unpack")) return verify_or_unpack(argc - 1, argv + 1, 1);
    if (!strcmp(cmd, "load")) return cmd_load(argc - 1, argv + 1);
    if (!strcmp(cmd, "policy")) return cmd_policy(argc - 1, argv + 1);
    if (!strcmp(cmd, "sign")) return cmd_sign(argc - 1, argv + 1);
    if (!strcmp(cmd, "audit")) return cmd_audit(argc - 1, argv + 1);
    if (!strcmp(cmd, "audit-verify")) return cmd_audit_verify(argc - 1, argv + 1);
    fprintf(stderr, "tseal: unknown command '%s'\n\n%s", cmd, main_help);
    return EXIT_USAGE;
}
