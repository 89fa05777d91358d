/*
 * bench_pack.c - `tseal bench pack`: pack, verify and unpack throughput of the container on a
 * model, next to the raw cost of its parts (SHA-256, ChaCha20-Poly1305, the codec) measured
 * in the same process, and the container's size and overhead.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h"
#include "tseal_crypto.h"

void tseal_bench_pack_opts_default(tseal_bench_pack_opts *o) {
    memset(o, 0, sizeof *o);
    o->repeat = 1;
}

static double gb(uint64_t bytes, double s) {
    return s > 0 ? (double)bytes / s / 1e9 : 0;
}

/* SHA-256 and AEAD on 64 KiB chunks over `total` bytes, best of 3. */
static int primitives(double *sha_gbps, double *aead_gbps) {
    const size_t chunk = 64 << 10, total = 64 << 20;
    uint8_t *b = malloc(total), *ct = malloc(chunk + 16), key[32] = {1}, nonce[12] = {0}, h[32];
    if (!b || !ct) {
        free(b);
        free(ct);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < total; i++) b[i] = (uint8_t)(i * 131);
    double best_sha = 1e9, best_aead = 1e9;
    int r = 0;
    for (int k = 0; k < 3 && !r; k++) {
        double t0 = tseal_now();
        for (size_t off = 0; off < total && !r; off += chunk) r = tseal_sha256(b + off, chunk, h);
        double t1 = tseal_now();
        for (size_t off = 0; off < total && !r; off += chunk)
            r = tseal_aead_encrypt(ct, b + off, chunk, NULL, 0, nonce, key);
        double t2 = tseal_now();
        if (t1 - t0 < best_sha) best_sha = t1 - t0;
        if (t2 - t1 < best_aead) best_aead = t2 - t1;
    }
    *sha_gbps = gb(total, best_sha);
    *aead_gbps = gb(total, best_aead);
    free(b);
    free(ct);
    return r;
}

/* The codec alone on every BF16 tensor of the model: encode, and fast decode on 1 thread. */
static int codec_alone(const char *model, uint64_t *bytes, double *enc_s, double *dec_s) {
    tseal_model *m;
    int r = tseal_model_open(model, &m);
    *bytes = 0;
    *enc_s = *dec_s = 0;
    for (size_t i = 0; !r && i < tseal_model_tensor_count(m); i++) {
        size_t fi;
        const tseal_st_tensor *t = tseal_model_tensor(m, i, &fi);
        if (t->dtype != TSEAL_DT_BF16 || t->n_elems == 0) continue;
        uint64_t n = t->n_elems, cols = t->rank >= 2 ? t->shape[t->rank - 1] : n;
        uint16_t *x = malloc(2 * n), *y = malloc(2 * n);
        tseal_buf blob = {0};
        tseal_ct_view v;
        r = (!x || !y) ? tseal_err(TSEAL_E_NOMEM, "out of memory")
                       : tseal_model_read(m, i, 0, x, 2 * n);
        double t0 = tseal_now();
        if (!r) r = tseal_codec_encode(x, n / cols, cols, NULL, &blob, NULL);
        double t1 = tseal_now();
        if (!r) r = tseal_codec_view(blob.data, blob.size, &v);
        double t2 = tseal_now();
        if (!r) r = tseal_codec_decode_fast(&v, y, 1);
        double t3 = tseal_now();
        *enc_s += t1 - t0;
        *dec_s += t3 - t2;
        *bytes += 2 * n;
        tseal_buf_free(&blob);
        free(x);
        free(y);
    }
    tseal_model_close(m);
    return r;
}

static int make_keys(const char *dir, char *sk, char *spub, char *rk, char *rpub, size_t n) {
    snprintf(sk, n, "%s/bench.sign.key", dir);
    snprintf(spub, n, "%s/bench.sign.pub", dir);
    snprintf(rk, n, "%s/bench.key", dir);
    snprintf(rpub, n, "%s/bench.pub", dir);
    tseal_seckey *a = NULL, *b = NULL;
    int r = tseal_keygen(TSEAL_KEY_SIGN, "bench-signer", NULL, &a);
    if (!r) r = tseal_keygen(TSEAL_KEY_RECIPIENT, "bench-recipient", NULL, &b);
    if (!r) r = tseal_seckey_write(a, sk, NULL, 0, 1);
    if (!r) r = tseal_pubkey_write(&a->pub, spub, 1);
    if (!r) r = tseal_seckey_write(b, rk, NULL, 0, 1);
    if (!r) r = tseal_pubkey_write(&b->pub, rpub, 1);
    tseal_seckey_free(a);
    tseal_seckey_free(b);
    return r;
}

static int rm_tree(const char *p) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    return system(cmd) == 0 ? 0 : tseal_err(TSEAL_E_IO, "%s: cannot remove", p);
}

int tseal_bench_pack(const char *model, const tseal_bench_pack_opts *o, FILE *out) {
    int r = tseal_crypto_init();
    if (r) return r;
    char dir[] = "/tmp/tseal-bench-XXXXXX";
    if (!mkdtemp(dir)) return tseal_err(TSEAL_E_IO, "cannot create a temporary folder");
    char sk[128], spub[128], rk[128], rpub[128], cont[128], rest[128];
    snprintf(cont, sizeof cont, "%s/model.tseal", dir);
    r = make_keys(dir, sk, spub, rk, rpub, sizeof sk);
    double sha = 0, aead = 0, enc_s = 0, dec_s = 0;
    uint64_t codec_bytes = 0;
    if (!r) r = primitives(&sha, &aead);
    if (!r) r = codec_alone(model, &codec_bytes, &enc_s, &dec_s);

    const char *rec[1] = {rpub}, *trust[1] = {spub};
    tseal_pack_opts po;
    memset(&po, 0, sizeof po);
    po.model_id = "bench/model";
    po.version = 1;
    po.sign_key = sk;
    po.recipients = rec;
    po.n_recipients = 1;
    tseal_pack_report rep;
    unsigned threads = o->threads ? o->threads : tseal_cpu_count();
    double t_pack[2] = {0}, t0;
    for (int k = 0; k < 2 && !r; k++) {
        po.threads = k == 0 ? 1 : threads;
        t0 = tseal_now();
        r = tseal_pack(model, cont, &po, &rep);
        t_pack[k] = tseal_now() - t0;
    }
    double t_verify = 0, t_verify_key[2] = {0}, t_unpack[2] = {0};
    tseal_verify_opts vo;
    memset(&vo, 0, sizeof vo);
    vo.trust = trust;
    vo.n_trust = 1;
    t0 = tseal_now();
    if (!r) r = tseal_verify(cont, &vo, NULL);
    t_verify = tseal_now() - t0;
    vo.key = rk;
    for (int k = 0; k < 2 && !r; k++) {
        vo.threads = k == 0 ? 1 : threads;
        t0 = tseal_now();
        r = tseal_verify(cont, &vo, NULL);
        t_verify_key[k] = tseal_now() - t0;
        snprintf(rest, sizeof rest, "%s/restored-%d", dir, k);
        t0 = tseal_now();
        if (!r) r = tseal_unpack(cont, rest, &vo, NULL);
        t_unpack[k] = tseal_now() - t0;
        if (!r) r = rm_tree(rest);
    }
    if (!r) {
        uint64_t ob = rep.original_bytes, cb = rep.container_bytes;
        /* Overhead: all bytes but the coded tensors and file contents (header, signature,
         * stanzas, segment table, AEAD tags, chunk hash lists, the manifest). */
        uint64_t data = rep.plaintext_bytes - rep.manifest_bytes, overhead = cb - data;
        double ratio = ob ? (double)cb / (double)ob : 0;
        double ovh = data ? 100.0 * (double)overhead / (double)data : 0;
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", model);
            cJSON_AddNumberToObject(j, "original_bytes", (double)ob);
            cJSON_AddNumberToObject(j, "container_bytes", (double)cb);
            cJSON_AddNumberToObject(j, "container_ratio", ratio);
            cJSON_AddNumberToObject(j, "overhead_pct_of_payload", ovh);
            cJSON_AddNumberToObject(j, "threads", threads);
            cJSON_AddNumberToObject(j, "pack_gbps_1core", gb(ob, t_pack[0]));
            cJSON_AddNumberToObject(j, "pack_gbps_all_cores", gb(ob, t_pack[1]));
            cJSON_AddNumberToObject(j, "verify_gbps", gb(ob, t_verify));
            cJSON_AddNumberToObject(j, "verify_key_gbps_1core", gb(ob, t_verify_key[0]));
            cJSON_AddNumberToObject(j, "verify_key_gbps_all_cores", gb(ob, t_verify_key[1]));
            cJSON_AddNumberToObject(j, "unpack_gbps_1core", gb(ob, t_unpack[0]));
            cJSON_AddNumberToObject(j, "unpack_gbps_all_cores", gb(ob, t_unpack[1]));
            cJSON_AddNumberToObject(j, "sha256_gbps", sha);
            cJSON_AddNumberToObject(j, "chacha20poly1305_gbps", aead);
            cJSON_AddNumberToObject(j, "codec_encode_gbps", gb(codec_bytes, enc_s));
            cJSON_AddNumberToObject(j, "codec_decode_gbps_1core", gb(codec_bytes, dec_s));
            char *s = cJSON_Print(j);
            fprintf(out, "%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(j);
        } else {
            fprintf(out,
                    "%s: %.1f MB in %u files -> container %.1f MB (%.2f%% of the input), overhead "
                    "%.4f%% of the payload\n",
                    model, (double)ob / 1e6, rep.files, (double)cb / 1e6, 100 * ratio, ovh);
            fprintf(out, "  pack                          %.3f GB/s 1 core, %.3f GB/s %u cores\n",
                    gb(ob, t_pack[0]), gb(ob, t_pack[1]), threads);
            fprintf(out, "  verify (signature + hashes)   %.3f GB/s\n", gb(ob, t_verify));
            fprintf(out, "  verify --key (decrypt+decode) %.3f GB/s 1 core, %.3f GB/s %u cores\n",
                    gb(ob, t_verify_key[0]), gb(ob, t_verify_key[1]), threads);
            fprintf(out, "  unpack                        %.3f GB/s 1 core, %.3f GB/s %u cores\n",
                    gb(ob, t_unpack[0]), gb(ob, t_unpack[1]), threads);
            fprintf(out,
                    "  parts, same process:          SHA-256 %.3f GB/s, ChaCha20-Poly1305 %.3f "
                    "GB/s, codec encode "
                    "%.3f GB/s, codec decode %.3f GB/s (1 core)\n",
                    sha, aead, gb(codec_bytes, enc_s), gb(codec_bytes, dec_s));
        }
    }
    rm_tree(dir);
    return r;
}
