/*
 * bench_gpu.c - `tseal bench gpu`: side by side in one process,
 *   1. per tensor shape (Llama-3-8B by default): BF16 device-to-device copy vs the decode
 *      kernel (time, TB/s of BF16 output, decode/copy), bit-exactness checked;
 *   2. loading a model onto the GPU: plain BF16 safetensors (read + cudaMemcpyAsync from two
 *      pinned buffers) vs the .tseal artifact (tseal_open + tseal_gpu_load), warm page cache.
 * Without a GPU it says so and returns exit code 5.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "gpu_internal.h"
#include "internal.h"
#include "tseal_crypto.h"

static const char *help =
    "Usage: tseal bench gpu [--json] [--shapes NxK,...] [--segment N] [--repeat N] [--device N]\n"
    "                       [--model DIR] [--artifact F --key K --trust SIGNER.pub] [--no-load]\n"
    "                       [--stores direct|staged]\n"
    "\n"
    "Side by side on one GPU, in one process:\n"
    "  decode: for each N x K shape (default the Llama-3-8B ones: 4096x4096, 4096x1024,\n"
    "          4096x14336, 14336x4096, 128256x4096) synthetic N(0, 0.02) BF16 weights are coded\n"
    "          (segments of --segment weights, default 2048), uploaded and decoded; the median\n"
    "          of --repeat runs (default 50, L2 flushed before each) is compared with a\n"
    "          device-to-device copy of the BF16 bytes; every decode is checked bit for bit.\n"
    "          --stores: how the decode writes its output (default staged: whole 128-byte\n"
    "          runs per warp; direct: 16 bytes per thread; same bytes).\n"
    "  load:   the model (--model DIR, default a synthetic 'small' one) is loaded as plain BF16\n"
    "          safetensors (read + cudaMemcpyAsync from two pinned 64 MiB buffers) and as a\n"
    "          .tseal artifact (--artifact, or packed here with fresh keys): tseal_open +\n"
    "          tseal_gpu_load, decrypting on the host and on the GPU (--gpu-decrypt). The page\n"
    "          cache is warmed first.\n"
    "\n"
    "--json prints one object: decode[] (n, k, bf16_bytes, coded_bytes, copy_us, decode_us,\n"
    "copy_tbps, decode_tbps, decode_over_copy, exact), stores, and load (plain_s, tseal_s,\n"
    "tseal_over_plain, tseal_gpu_decrypt_s, model_bytes, artifact_bytes). Exit code 5 without\n"
    "a GPU.\n";

typedef struct {
    double plain_s, tseal_s, tseal_gpu_decrypt_s;
    uint64_t model_bytes, artifact_bytes;
} load_row;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Read a whole file once (page cache warm-up); returns its size. */
static uint64_t warm(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    static char buf[1 << 20];
    uint64_t n = 0;
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) n += (uint64_t)r;
    close(fd);
    return n;
}

/* Plain load: each safetensors file read into two pinned buffers in turn and copied. */
static int plain_load(const char *model, int device, double *secs, uint64_t *bytes) {
    tseal_model *m = NULL;
    void *stream = NULL, *ev[2] = {NULL, NULL};
    uint8_t *pin[2] = {NULL, NULL};
    const uint64_t piece = 64ull << 20;
    int pending[2] = {0, 0};
    void **dev = NULL;
    size_t nf = 0;
    int r = tseal_model_open(model, &m);
    if (!r) nf = tseal_model_file_count(m);
    if (!r && !(dev = calloc(nf ? nf : 1, sizeof *dev))) r = TSEAL_E_NOMEM;
    if (!r) r = tseal_gpu_stream_new(device, &stream);
    for (int k = 0; k < 2 && !r; k++) {
        r = tseal_gpu_pinned_alloc(piece, (void **)&pin[k]);
        if (!r) r = tseal_gpu_event_new(&ev[k]);
    }
    for (size_t f = 0; f < nf && !r; f++) warm(tseal_st_path(tseal_model_file(m, f)));
    double t0 = tseal_now();
    unsigned b = 0;
    *bytes = 0;
    for (size_t f = 0; f < nf && !r; f++) {
        const tseal_st *st = tseal_model_file(m, f);
        uint64_t size = tseal_st_file_size(st);
        r = tseal_gpu_malloc(device, size ? size : 1, &dev[f]);
        int fd = r ? -1 : open(tseal_st_path(st), O_RDONLY | O_CLOEXEC);
        if (!r && fd < 0) r = tseal_err(TSEAL_E_IO, "%s: cannot open", tseal_st_path(st));
        for (uint64_t off = 0; !r && off < size; off += piece) {
            uint64_t n = size - off < piece ? size - off : piece;
            if (pending[b]) r = tseal_gpu_event_wait(ev[b]);
            if (!r) r = tseal_pread_full(fd, pin[b], n, off, tseal_st_path(st));
            if (!r) r = tseal_gpu_copy_h2d_async((uint8_t *)dev[f] + off, pin[b], n, stream);
            if (!r) r = tseal_gpu_event_record(ev[b], stream);
            pending[b] = !r;
            b ^= 1;
        }
        if (fd >= 0) close(fd);
        *bytes += size;
    }
    if (!r) r = tseal_gpu_stream_sync(stream);
    *secs = tseal_now() - t0;
    for (size_t f = 0; dev && f < nf; f++) tseal_gpu_mem_free(dev[f]);
    free(dev);
    for (int k = 0; k < 2; k++) {
        tseal_gpu_pinned_free(pin[k]);
        tseal_gpu_event_free(ev[k]);
    }
    tseal_gpu_stream_free(stream);
    tseal_model_close(m);
    return r;
}

static int keypair(const char *dir, tseal_key_kind kind, const char *name, char *sk, char *pk) {
    tseal_seckey *k = NULL;
    snprintf(sk, 256, "%s/%s.key", dir, name);
    snprintf(pk, 256, "%s/%s.pub", dir, name);
    int r = tseal_keygen(kind, name, NULL, &k);
    if (!r) r = tseal_seckey_write(k, sk, NULL, 0, 1);
    if (!r) r = tseal_pubkey_write(&k->pub, pk, 1);
    tseal_seckey_free(k);
    return r;
}

static int bench_load(const char *model, const char *artifact, const char *key, const char *trust,
                      int device, load_row *row) {
    char dir[] = "/tmp/tseal-benchgpu-XXXXXX", mdir[300], art[300], sk[256], spk[256], rk[256],
         rpk[256];
    if (!mkdtemp(dir)) return tseal_err(TSEAL_E_IO, "cannot create a temporary folder");
    int r = 0;
    if (!model) {
        snprintf(mdir, sizeof mdir, "%s/model", dir);
        tseal_synth_opts so = {.preset = "small", .seed = 1, .shards = 1};
        fprintf(stderr, "bench gpu: writing a synthetic 'small' model...\n");
        r = tseal_synth_model(mdir, &so);
        model = mdir;
    }
    if (!r && !artifact) {
        r = keypair(dir, TSEAL_KEY_SIGN, "signer", sk, spk);
        if (!r) r = keypair(dir, TSEAL_KEY_RECIPIENT, "recipient", rk, rpk);
        snprintf(art, sizeof art, "%s/model.tseal", dir);
        const char *rcp[1] = {rpk};
        tseal_pack_opts po;
        memset(&po, 0, sizeof po);
        po.model_id = "bench/gpu-load";
        po.version = 1;
        po.sign_key = sk;
        po.recipients = rcp;
        po.n_recipients = 1;
        fprintf(stderr, "bench gpu: packing it...\n");
        if (!r) r = tseal_pack(model, art, &po, NULL);
        artifact = art, key = rk, trust = spk;
    }
    if (!r) r = plain_load(model, device, &row->plain_s, &row->model_bytes);
    if (!r) {
        row->artifact_bytes = warm(artifact);
        const char *tr[1] = {trust};
        tseal_verify_opts vo;
        memset(&vo, 0, sizeof vo);
        vo.trust = tr;
        vo.n_trust = 1;
        vo.key = key;
        for (int on_gpu = 0; on_gpu < 2 && !r; on_gpu++) {
            tseal_gpu_load_opts lo;
            memset(&lo, 0, sizeof lo);
            lo.device = device;
            lo.decrypt_on_gpu = on_gpu;
            tseal_artifact *a = NULL;
            tseal_gpu_model *g = NULL;
            double t0 = tseal_now();
            r = tseal_open(artifact, &vo, &a);
            if (!r) r = tseal_gpu_load(a, &lo, &g, NULL);
            *(on_gpu ? &row->tseal_gpu_decrypt_s : &row->tseal_s) = tseal_now() - t0;
            tseal_gpu_free(g);
            tseal_close(a);
        }
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return r;
}

static int parse_shapes(const char *s, uint64_t (*shapes)[2], unsigned *n) {
    *n = 0;
    while (*s && *n < 32) {
        char *end;
        unsigned long long a = strtoull(s, &end, 10);
        if (end == s || *end != 'x') return -1;
        s = end + 1;
        unsigned long long b = strtoull(s, &end, 10);
        if (end == s || a == 0 || b == 0 || a > (1u << 20) || b > (1u << 20)) return -1;
        shapes[*n][0] = a, shapes[*n][1] = b;
        (*n)++;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return *n ? 0 : -1;
}

static double tbps(uint64_t bytes, double us) {
    return us > 0 ? (double)bytes / (us * 1e-6) / 1e12 : 0;
}

int tseal_bench_gpu_main(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"shapes", required_argument, 0, 's'},
                                         {"segment", required_argument, 0, 'g'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {"device", required_argument, 0, 'd'},
                                         {"model", required_argument, 0, 'm'},
                                         {"artifact", required_argument, 0, 'a'},
                                         {"key", required_argument, 0, 'k'},
                                         {"trust", required_argument, 0, 't'},
                                         {"no-load", no_argument, 0, 'n'},
                                         {"stores", required_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    uint64_t shapes[32][2] = {
        {4096, 4096}, {4096, 1024}, {4096, 14336}, {14336, 4096}, {128256, 4096}};
    unsigned n_shapes = 5, repeat = 50, seg_log2 = 0;
    int json = 0, device = 0, no_load = 0, c;
    const char *model = NULL, *artifact = NULL, *key = NULL, *trust = NULL;
    const char *stores = "staged"; /* the decode's default (tseal_gpu_decode_tune) */
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 's':
            if (parse_shapes(optarg, shapes, &n_shapes)) {
                fprintf(stderr, "tseal bench gpu: --shapes: expected NxK[,NxK...]\n");
                return 2;
            }
            break;
        case 'g': {
            unsigned long v = strtoul(optarg, NULL, 10);
            seg_log2 = 0;
            while (seg_log2 < 15 && (1ul << seg_log2) < v) seg_log2++;
            if ((1ul << seg_log2) != v || seg_log2 < TSEAL_SEG_LOG2_MIN ||
                seg_log2 > TSEAL_SEG_LOG2_MAX) {
                fprintf(stderr, "tseal bench gpu: --segment: a power of two, 64..16384\n");
                return 2;
            }
            break;
        }
        case 'r':
            repeat = (unsigned)strtoul(optarg, NULL, 10);
            if (repeat < 1 || repeat > 10000) {
                fprintf(stderr, "tseal bench gpu: --repeat: expected 1..10000\n");
                return 2;
            }
            break;
        case 'd':
            device = atoi(optarg);
            break;
        case 'm':
            model = optarg;
            break;
        case 'a':
            artifact = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 't':
            trust = optarg;
            break;
        case 'n':
            no_load = 1;
            break;
        case 'S':
            if (strcmp(optarg, "direct") && strcmp(optarg, "staged")) {
                fprintf(stderr, "tseal bench gpu: --stores: expected direct or staged\n");
                return 2;
            }
            stores = strcmp(optarg, "direct") ? "staged" : "direct";
            tseal_gpu_decode_tune(strcmp(optarg, "direct") ? 2u : 1u);
            break;
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            fprintf(stderr, "Try 'tseal bench gpu --help'.\n");
            return 2;
        }
    }
    if (optind != argc || (artifact && (!key || !trust || !model))) {
        fprintf(stderr, "tseal bench gpu: --artifact needs --key, --trust and --model (its "
                        "original folder)\nTry 'tseal bench gpu --help'.\n");
        return 2;
    }
    if (tseal_gpu_device_count() == 0) {
        fprintf(stderr, "tseal bench gpu: %s\n", tseal_errmsg());
        return 5;
    }
    tseal_gpu_decode_row rows[32];
    int r = 0;
    if (!json)
        printf("decode vs BF16 device-to-device copy (median of %u, L2 flushed)\n"
               "%-14s %9s %9s %10s %10s %10s %10s %9s %6s\n",
               repeat, "shape", "BF16 MB", "coded MB", "copy us", "copy TB/s", "decode us",
               "out TB/s", "dec/copy", "exact");
    for (unsigned i = 0; i < n_shapes && !r; i++) {
        r = tseal_bench_gpu_decode_shape(shapes[i][0], shapes[i][1], seg_log2, repeat, device,
                                         &rows[i]);
        const tseal_gpu_decode_row *w = &rows[i];
        if (!r && !json) {
            char sh[32];
            snprintf(sh, sizeof sh, "%llux%llu", (unsigned long long)w->n,
                     (unsigned long long)w->k);
            printf("%-14s %9.1f %9.1f %10.1f %10.3f %10.1f %10.3f %9.2f %6s\n", sh,
                   w->bf16_bytes / 1e6, w->coded_bytes / 1e6, w->copy_us,
                   tbps(2 * w->bf16_bytes, w->copy_us), w->decode_us,
                   tbps(w->bf16_bytes, w->decode_us),
                   w->copy_us > 0 ? w->decode_us / w->copy_us : 0, w->exact ? "yes" : "NO");
            fflush(stdout);
        }
    }
    load_row lr = {0};
    if (!r && !no_load) {
        r = bench_load(model, artifact, key, trust, device, &lr);
        if (!r && !json)
            printf("\nload onto the GPU (warm page cache)\n"
                   "  plain BF16 safetensors: %.3f s (%.1f MB, %.2f GB/s)\n"
                   "  tseal artifact:         %.3f s (%.1f MB; open + verify + decrypt + copy)\n"
                   "  tseal, GPU decryption:  %.3f s (ciphertext copied, ChaCha20 on the GPU)\n"
                   "  tseal / plain:          x%.2f (GPU decryption x%.2f)\n",
                   lr.plain_s, lr.model_bytes / 1e6, lr.model_bytes / 1e9 / lr.plain_s, lr.tseal_s,
                   lr.artifact_bytes / 1e6, lr.tseal_gpu_decrypt_s,
                   lr.plain_s > 0 ? lr.tseal_s / lr.plain_s : 0,
                   lr.plain_s > 0 ? lr.tseal_gpu_decrypt_s / lr.plain_s : 0);
    }
    if (json) {
        cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "decode");
        cJSON_AddStringToObject(j, "stores", stores);
        for (unsigned i = 0; i < n_shapes && arr; i++) {
            const tseal_gpu_decode_row *w = &rows[i];
            if (!w->bf16_bytes) break;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "n", (double)w->n);
            cJSON_AddNumberToObject(o, "k", (double)w->k);
            cJSON_AddNumberToObject(o, "bf16_bytes", (double)w->bf16_bytes);
            cJSON_AddNumberToObject(o, "coded_bytes", (double)w->coded_bytes);
            cJSON_AddNumberToObject(o, "copy_us", w->copy_us);
            cJSON_AddNumberToObject(o, "decode_us", w->decode_us);
            cJSON_AddNumberToObject(o, "copy_tbps", tbps(2 * w->bf16_bytes, w->copy_us));
            cJSON_AddNumberToObject(o, "decode_tbps", tbps(w->bf16_bytes, w->decode_us));
            cJSON_AddNumberToObject(o, "decode_over_copy",
                                    w->copy_us > 0 ? w->decode_us / w->copy_us : 0);
            cJSON_AddBoolToObject(o, "exact", w->exact);
            cJSON_AddItemToArray(arr, o);
        }
        if (!no_load && lr.plain_s > 0) {
            cJSON *l = cJSON_AddObjectToObject(j, "load");
            cJSON_AddNumberToObject(l, "plain_s", lr.plain_s);
            cJSON_AddNumberToObject(l, "tseal_s", lr.tseal_s);
            cJSON_AddNumberToObject(l, "tseal_over_plain", lr.tseal_s / lr.plain_s);
            cJSON_AddNumberToObject(l, "tseal_gpu_decrypt_s", lr.tseal_gpu_decrypt_s);
            cJSON_AddNumberToObject(l, "model_bytes", (double)lr.model_bytes);
            cJSON_AddNumberToObject(l, "artifact_bytes", (double)lr.artifact_bytes);
        }
        if (r) cJSON_AddStringToObject(j, "error", tseal_errmsg());
        char *s = cJSON_Print(j);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(j);
    }
    if (r) {
        fprintf(stderr, "tseal bench gpu: error: %s\n", tseal_errmsg());
        return r == TSEAL_E_NO_GPU ? 5 : 1;
    }
    for (unsigned i = 0; i < n_shapes; i++)
        if (!rows[i].exact) return 1;
    return 0;
}
