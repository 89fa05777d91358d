/*
 * bench_pack.c - `tseal bench pack`: pack, verify and unpack throughput of the container on a
 * model in both cipher suites side by side (default: Ed25519/X25519/ChaCha20-Poly1305; FIPS:
 * P-256/AES-256-GCM), next to the raw cost of the parts (SHA-256, both AEADs, the codec)
 * measured in the same process, and the container's size and overhead.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h"
#include "tseal_crypto.h"
#include "tseal_fips.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

void tseal_bench_pack_opts_default(tseal_bench_pack_opts *o) {
    memset(o, 0, sizeof *o);
    o->repeat = 1;
}

static double gb(uint64_t bytes, double s) {
    return s > 0 ? (double)bytes / s / 1e9 : 0;
}

/* SHA-256 and both suites' AEADs on 64 KiB chunks over `total` bytes, best of 3, 1 core. */
typedef struct {
    double sha, chacha, aesgcm, chacha_open, aesgcm_open; /* GB/s */
} prim_speeds;

static int time_aead(int suite, int open, const uint8_t *b, uint8_t *ct, uint8_t *pt, size_t total,
                     size_t chunk, double *secs) {
    uint8_t key[32] = {1}, nonce[12] = {0};
    int r = 0;
    if (open) /* a valid ciphertext to open, repeatedly */
        r = suite == TSEAL_SUITE_FIPS ? tseal_aesgcm_encrypt(ct, b, chunk, NULL, 0, nonce, key)
                                      : tseal_aead_encrypt(ct, b, chunk, NULL, 0, nonce, key);
    double t0 = tseal_now();
    for (size_t off = 0; off < total && !r; off += chunk) {
        if (suite == TSEAL_SUITE_FIPS)
            r = open ? tseal_aesgcm_decrypt(pt, ct, chunk + 16, NULL, 0, nonce, key)
                     : tseal_aesgcm_encrypt(ct, b + off, chunk, NULL, 0, nonce, key);
        else
            r = open ? tseal_aead_decrypt(pt, ct, chunk + 16, NULL, 0, nonce, key)
                     : tseal_aead_encrypt(ct, b + off, chunk, NULL, 0, nonce, key);
    }
    *secs = tseal_now() - t0;
    return r;
}

static int primitives(prim_speeds *ps) {
    const size_t chunk = 64 << 10, total = 64 << 20;
    uint8_t *b = malloc(total), *ct = malloc(chunk + 16), *pt = malloc(chunk), h[32];
    int r = b && ct && pt ? 0 : tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (size_t i = 0; !r && i < total; i++) b[i] = (uint8_t)(i * 131);
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9}, t;
    for (int k = 0; k < 3 && !r; k++) {
        double t0 = tseal_now();
        for (size_t off = 0; off < total && !r; off += chunk) r = tseal_sha256(b + off, chunk, h);
        t = tseal_now() - t0;
        best[0] = t < best[0] ? t : best[0];
        for (int j = 0; j < 4 && !r; j++) {
            r = time_aead(j & 1 ? TSEAL_SUITE_FIPS : TSEAL_SUITE_V1, j >> 1, b, ct, pt, total,
                          chunk, &t);
            best[1 + j] = t < best[1 + j] ? t : best[1 + j];
        }
    }
    ps->sha = gb(total, best[0]);
    ps->chacha = gb(total, best[1]);
    ps->aesgcm = gb(total, best[2]);
    ps->chacha_open = gb(total, best[3]);
    ps->aesgcm_open = gb(total, best[4]);
    free(b);
    free(ct);
    free(pt);
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

typedef struct {
    char sk[128], cert[128], spub[128], rk[128], rpub[128];
} suite_keys;

/* A self-signed certificate for the FIPS bench signer (the verifier pins its key: chain
 * validation costs microseconds and is not what this measures). */
static int self_signed_cert(const char *key_pem, const char *cert_pem) {
    FILE *kf = fopen(key_pem, "r");
    EVP_PKEY *k = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (kf) fclose(kf);
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int ok = k && x && n && X509_set_version(x, 2) &&
             ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bench", -1,
                                        -1, 0) &&
             X509_set_subject_name(x, n) && X509_set_issuer_name(x, n) &&
             X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 86400) && X509_set_pubkey(x, k) &&
             X509_sign(x, k, EVP_sha256()) > 0;
    FILE *cf = ok ? fopen(cert_pem, "w") : NULL;
    ok = cf && PEM_write_X509(cf, x);
    if (cf) fclose(cf);
    X509_NAME_free(n);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok ? 0 : tseal_err(TSEAL_E_INTERNAL, "cannot make the bench certificate");
}

static int make_keys(const char *dir, int suite, suite_keys *k) {
    const char *tag = suite == TSEAL_SUITE_FIPS ? "fips" : "v1";
    snprintf(k->sk, sizeof k->sk, "%s/%s.sign.key", dir, tag);
    snprintf(k->spub, sizeof k->spub, "%s/%s.sign.pub", dir, tag);
    snprintf(k->cert, sizeof k->cert, "%s/%s.sign.pem", dir, tag);
    snprintf(k->rk, sizeof k->rk, "%s/%s.key", dir, tag);
    snprintf(k->rpub, sizeof k->rpub, "%s/%s.pub", dir, tag);
    tseal_seckey *a = NULL, *b = NULL;
    int fips = suite == TSEAL_SUITE_FIPS, r;
    r = fips ? tseal_p256_keygen(TSEAL_KEY_SIGN, "bench-signer", &a)
             : tseal_keygen(TSEAL_KEY_SIGN, "bench-signer", NULL, &a);
    if (!r)
        r = fips ? tseal_p256_keygen(TSEAL_KEY_RECIPIENT, "bench-recipient", &b)
                 : tseal_keygen(TSEAL_KEY_RECIPIENT, "bench-recipient", NULL, &b);
    if (!r)
        r = fips ? tseal_p256_seckey_write_pem(a, k->sk, NULL, 0, 1)
                 : tseal_seckey_write(a, k->sk, NULL, 0, 1);
    if (!r)
        r = fips ? tseal_p256_pubkey_write_pem(&a->pub, k->spub, 1)
                 : tseal_pubkey_write(&a->pub, k->spub, 1);
    if (!r)
        r = fips ? tseal_p256_seckey_write_pem(b, k->rk, NULL, 0, 1)
                 : tseal_seckey_write(b, k->rk, NULL, 0, 1);
    if (!r)
        r = fips ? tseal_p256_pubkey_write_pem(&b->pub, k->rpub, 1)
                 : tseal_pubkey_write(&b->pub, k->rpub, 1);
    if (!r && fips) r = self_signed_cert(k->sk, k->cert);
    tseal_seckey_free(a);
    tseal_seckey_free(b);
    return r;
}

static int rm_tree(const char *p) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    return system(cmd) == 0 ? 0 : tseal_err(TSEAL_E_IO, "%s: cannot remove", p);
}

/* One suite's pack / verify / verify --key / unpack times (1 core and all cores). */
typedef struct {
    double pack[2], verify, verify_key[2], unpack[2];
    tseal_pack_report rep;
} suite_run;

static int run_suite(const char *model, const char *dir, int suite, unsigned threads,
                     suite_run *sr) {
    suite_keys k;
    char cont[160], rest[160];
    snprintf(cont, sizeof cont, "%s/model-%d.tseal", dir, suite);
    int r = make_keys(dir, suite, &k);
    const char *rec[1] = {k.rpub}, *trust[1] = {k.spub};
    tseal_pack_opts po;
    memset(&po, 0, sizeof po);
    po.model_id = "bench/model";
    po.version = 1;
    po.suite = (unsigned)suite;
    po.sign_key = k.sk;
    po.sign_cert = suite == TSEAL_SUITE_FIPS ? k.cert : NULL;
    po.recipients = rec;
    po.n_recipients = 1;
    double t0;
    for (int i = 0; i < 2 && !r; i++) {
        po.threads = i == 0 ? 1 : threads;
        t0 = tseal_now();
        r = tseal_pack(model, cont, &po, &sr->rep);
        sr->pack[i] = tseal_now() - t0;
    }
    tseal_verify_opts vo;
    memset(&vo, 0, sizeof vo);
    vo.trust = trust;
    vo.n_trust = 1;
    t0 = tseal_now();
    if (!r) r = tseal_verify(cont, &vo, NULL);
    sr->verify = tseal_now() - t0;
    vo.key = k.rk;
    for (int i = 0; i < 2 && !r; i++) {
        vo.threads = i == 0 ? 1 : threads;
        t0 = tseal_now();
        r = tseal_verify(cont, &vo, NULL);
        sr->verify_key[i] = tseal_now() - t0;
        snprintf(rest, sizeof rest, "%s/restored-%d-%d", dir, suite, i);
        t0 = tseal_now();
        if (!r) r = tseal_unpack(cont, rest, &vo, NULL);
        sr->unpack[i] = tseal_now() - t0;
        if (!r) r = rm_tree(rest);
    }
    unlink(cont);
    return r;
}

static void json_suite(cJSON *j, const suite_run *s, uint64_t ob) {
    cJSON_AddNumberToObject(j, "container_bytes", (double)s->rep.container_bytes);
    cJSON_AddNumberToObject(j, "pack_gbps_1core", gb(ob, s->pack[0]));
    cJSON_AddNumberToObject(j, "pack_gbps_all_cores", gb(ob, s->pack[1]));
    cJSON_AddNumberToObject(j, "verify_gbps", gb(ob, s->verify));
    cJSON_AddNumberToObject(j, "verify_key_gbps_1core", gb(ob, s->verify_key[0]));
    cJSON_AddNumberToObject(j, "verify_key_gbps_all_cores", gb(ob, s->verify_key[1]));
    cJSON_AddNumberToObject(j, "unpack_gbps_1core", gb(ob, s->unpack[0]));
    cJSON_AddNumberToObject(j, "unpack_gbps_all_cores", gb(ob, s->unpack[1]));
}

static void print_row(FILE *out, const char *what, uint64_t ob, const double v1[2],
                      const double fips[2], int two) {
    fprintf(out, "  %-30s %7.3f", what, gb(ob, v1[0]));
    if (two)
        fprintf(out, " / %7.3f", gb(ob, v1[1]));
    else
        fprintf(out, "          ");
    fprintf(out, "    %7.3f", gb(ob, fips[0]));
    if (two)
        fprintf(out, " / %7.3f", gb(ob, fips[1]));
    else
        fprintf(out, "          ");
    fprintf(out, "    x%.2f\n", fips[0] > 0 ? v1[0] / fips[0] : 0);
}

int tseal_bench_pack(const char *model, const tseal_bench_pack_opts *o, FILE *out) {
    int r = tseal_crypto_init();
    if (r) return r;
    char dir[] = "/tmp/tseal-bench-XXXXXX";
    if (!mkdtemp(dir)) return tseal_err(TSEAL_E_IO, "cannot create a temporary folder");
    double enc_s = 0, dec_s = 0;
    uint64_t codec_bytes = 0;
    prim_speeds ps = {0};
    suite_run v1 = {0}, fips = {0};
    unsigned threads = o->threads ? o->threads : tseal_cpu_count();
    if (!r) r = primitives(&ps);
    if (!r) r = codec_alone(model, &codec_bytes, &enc_s, &dec_s);
    if (!r) r = run_suite(model, dir, TSEAL_SUITE_V1, threads, &v1);
    if (!r) r = run_suite(model, dir, TSEAL_SUITE_FIPS, threads, &fips);
    if (!r) {
        const tseal_pack_report *rep = &v1.rep;
        uint64_t ob = rep->original_bytes, cb = rep->container_bytes;
        /* Overhead: all bytes but the coded tensors and file contents (header, signature,
         * stanzas, segment table, AEAD tags, chunk hash lists, the manifest). */
        uint64_t data = rep->plaintext_bytes - rep->manifest_bytes, overhead = cb - data;
        double ratio = ob ? (double)cb / (double)ob : 0;
        double ovh = data ? 100.0 * (double)overhead / (double)data : 0;
        if (o->json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "model", model);
            cJSON_AddNumberToObject(j, "original_bytes", (double)ob);
            cJSON_AddNumberToObject(j, "container_ratio", ratio);
            cJSON_AddNumberToObject(j, "overhead_pct_of_payload", ovh);
            cJSON_AddNumberToObject(j, "threads", threads);
            json_suite(j, &v1, ob); /* the default suite, at the top level as before */
            cJSON_AddNumberToObject(j, "sha256_gbps", ps.sha);
            cJSON_AddNumberToObject(j, "chacha20poly1305_gbps", ps.chacha);
            cJSON_AddNumberToObject(j, "chacha20poly1305_open_gbps", ps.chacha_open);
            cJSON_AddNumberToObject(j, "aes256gcm_gbps", ps.aesgcm);
            cJSON_AddNumberToObject(j, "aes256gcm_open_gbps", ps.aesgcm_open);
            cJSON_AddNumberToObject(j, "codec_encode_gbps", gb(codec_bytes, enc_s));
            cJSON_AddNumberToObject(j, "codec_decode_gbps_1core", gb(codec_bytes, dec_s));
            cJSON *f = cJSON_AddObjectToObject(j, "fips");
            cJSON_AddStringToObject(f, "suite", "fips-p256-aes256gcm-sha256");
            json_suite(f, &fips, ob);
            char *s = cJSON_Print(j);
            fprintf(out, "%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(j);
        } else {
            fprintf(out,
                    "%s: %.1f MB in %u files -> container %.1f MB (%.2f%% of the input), overhead "
                    "%.4f%% of the payload (FIPS suite: %.1f MB)\n",
                    model, (double)ob / 1e6, rep->files, (double)cb / 1e6, 100 * ratio, ovh,
                    (double)fips.rep.container_bytes / 1e6);
            fprintf(out, "  GB/s of model bytes, 1 core / %u cores:\n", threads);
            fprintf(out, "  %-30s %-21s %-23s %s\n", "", "default (ChaCha20)", "fips (AES-256-GCM)",
                    "fips speed / default (1 core)");
            print_row(out, "pack", ob, v1.pack, fips.pack, 1);
            double vv[2] = {v1.verify, 0}, vf[2] = {fips.verify, 0};
            print_row(out, "verify (signature + hashes)", ob, vv, vf, 0);
            print_row(out, "verify --key (decrypt+decode)", ob, v1.verify_key, fips.verify_key, 1);
            print_row(out, "unpack", ob, v1.unpack, fips.unpack, 1);
            fprintf(
                out,
                "  parts, same process, 1 core:  SHA-256 %.3f GB/s; seal/open ChaCha20-Poly1305 "
                "%.3f/%.3f GB/s, AES-256-GCM %.3f/%.3f GB/s; codec encode %.3f GB/s, decode "
                "%.3f GB/s\n",
                ps.sha, ps.chacha, ps.chacha_open, ps.aesgcm, ps.aesgcm_open,
                gb(codec_bytes, enc_s), gb(codec_bytes, dec_s));
        }
    }
    rm_tree(dir);
    return r;
}
