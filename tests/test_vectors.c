/*
 * test_vectors.c - the coded-tensor test vectors of docs/FORMAT.md section 4: the encoder's
 * exact output for fixed inputs is pinned by SHA-256, and both decoders restore the inputs.
 * A layout change must update these vectors and the document together.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "tseal.h"

/* Pinned outputs (docs/FORMAT.md section 4). */
#define V1_SIZE 5088
#define V1_SHA  "eeca82d8f390c702b93e500dcc3b271a536098d43b56a3f76a734c275259ce16"
#define V2_SIZE 176
#define V2_SHA  "bb618d42fa162e234556e2af49abb70394679465cdcf7063d8addb998ee3cc89"
#define V3_SIZE 672
#define V3_SHA  "88ff30d81b285e3272a5e551cb891b6199548b6510d94e35f868366cebc176b0"

static void sha256_hex(const uint8_t *p, size_t n, char out[65]) {
    uint8_t md[32];
    unsigned len = 0;
    cr_assert(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void check_vector(const char *name, const uint16_t *x, uint64_t rows, uint64_t cols,
                         const tseal_codec_params *p, uint8_t mode, size_t size, const char *sha) {
    tseal_buf b;
    cr_assert_eq(tseal_codec_encode(x, rows, cols, p, &b, NULL), 0, "%s: %s", name, tseal_errmsg());
    char hex[65];
    sha256_hex(b.data, b.size, hex);
    if (getenv("TSEAL_PRINT_VECTORS"))
        fprintf(stderr, "%s: mode %u, %zu bytes, sha256 %s\n", name, b.data[4], b.size, hex);
    cr_assert_eq(b.data[4], mode, "%s: mode %u", name, b.data[4]);
    cr_assert_eq(b.size, size, "%s: %zu bytes", name, b.size);
    cr_assert_str_eq(hex, sha, "%s: blob changed", name);
    tseal_ct_view v;
    cr_assert_eq(tseal_codec_view(b.data, b.size, &v), 0);
    uint16_t *y = malloc(2 * rows * cols);
    cr_assert_eq(tseal_codec_decode_ref(&v, y), 0);
    cr_assert(memcmp(x, y, 2 * rows * cols) == 0);
    cr_assert_eq(tseal_codec_decode_fast(&v, y, 2), 0);
    cr_assert(memcmp(x, y, 2 * rows * cols) == 0);
    free(y);
    tseal_buf_free(&b);
}

Test(vectors, v1_huff) {
    static uint16_t x[4096];
    for (unsigned i = 0; i < 4096; i++)
        x[i] =
            (uint16_t)((i & 1) << 15 | (125 + (i % 5 == 0) + (i % 3 == 0)) << 7 | (i * 37) % 128);
    tseal_codec_params p = {.max_code_bits = 12, .seg_log2 = 8};
    check_vector("V1", x, 4, 1024, &p, TSEAL_CT_MODE_HUFF, V1_SIZE, V1_SHA);
}

Test(vectors, v2_const) {
    uint16_t x[100];
    for (unsigned i = 0; i < 100; i++) x[i] = (uint16_t)(0x3C00 + i % 7);
    check_vector("V2", x, 1, 100, NULL, TSEAL_CT_MODE_CONST, V2_SIZE, V2_SHA);
}

Test(vectors, v3_raw) {
    uint16_t x[300];
    for (unsigned i = 0; i < 300; i++) x[i] = (uint16_t)((i * 2654435761u) >> 16);
    check_vector("V3", x, 3, 100, NULL, TSEAL_CT_MODE_RAW, V3_SIZE, V3_SHA);
}

/* ---- container test vector (docs/FORMAT.md section 5.7) ---------------------------------- */

#include <sys/stat.h>

#include "tseal_crypto.h"

#define CV_SHA "96c42a6709fbfe7481c1eeb3bc3a52066696482f156dcecbfd726764ef6bccbb"

static void keyfile(tseal_key_kind kind, uint8_t seed, const char *sk_path, const char *pk_path,
                    char *sk_hex) {
    tseal_rng rng = {.counter = 0};
    memset(rng.seed, seed, sizeof rng.seed);
    tseal_seckey *k;
    cr_assert_eq(
        tseal_keygen(kind, kind == TSEAL_KEY_SIGN ? "vector-signer" : "vector-recipient", &rng, &k),
        0);
    cr_assert_eq(tseal_seckey_write(k, sk_path, NULL, 0, 1), 0);
    cr_assert_eq(tseal_pubkey_write(&k->pub, pk_path, 1), 0);
    size_t n = kind == TSEAL_KEY_SIGN ? 32 : 32; /* Ed25519 seed / X25519 scalar */
    for (size_t i = 0; i < n; i++) snprintf(sk_hex + 2 * i, 3, "%02x", k->sk[i]);
    tseal_seckey_free(k);
}

Test(vectors, container_v1) {
    char dir[] = "/tmp/tseal-vec-XXXXXX", p[8][128];
    cr_assert_not_null(mkdtemp(dir));
    const char *names[8] = {"model",
                            "model/model.safetensors",
                            "model/config.json",
                            "s.key",
                            "s.pub",
                            "r.key",
                            "r.pub",
                            "v.tseal"};
    for (int i = 0; i < 8; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    mkdir(p[0], 0755);
    tseal_st_writer *w;
    cr_assert_eq(tseal_st_writer_open(p[1], &w), 0);
    uint64_t shape[2] = {16, 64};
    cr_assert_eq(tseal_st_writer_add(w, "w", TSEAL_DT_BF16, 2, shape), 0);
    for (unsigned i = 0; i < 16 * 64; i++) {
        uint16_t v =
            (uint16_t)((i & 1) << 15 | (118 + (i % 7 == 0) + (i % 3 == 0) + (i % 11 == 0)) << 7 |
                       (i * 29) % 128);
        cr_assert_eq(tseal_st_writer_write(w, &v, 2), 0);
    }
    cr_assert_eq(tseal_st_writer_commit(w), 0);
    FILE *fh = fopen(p[2], "w");
    fputs("{\"model_type\": \"vector\"}\n", fh);
    fclose(fh);
    char s_hex[65], r_hex[65];
    keyfile(TSEAL_KEY_SIGN, 0x11, p[3], p[4], s_hex);
    keyfile(TSEAL_KEY_RECIPIENT, 0x22, p[5], p[6], r_hex);
    uint8_t seed[32];
    memset(seed, 0x33, sizeof seed);
    const char *rec[1] = {p[6]};
    tseal_pack_opts o = {.model_id = "tseal/test-vector",
                         .version = 1,
                         .chunk_size = 4096,
                         .sign_key = p[3],
                         .recipients = rec,
                         .n_recipients = 1,
                         .test_seed = seed,
                         .test_created = 1767225600};
    cr_assert_eq(tseal_pack(p[0], p[7], &o, NULL), 0, "%s", tseal_errmsg());
    FILE *f = fopen(p[7], "rb");
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char hex[65];
    sha256_hex(buf, n, hex);
    if (getenv("TSEAL_PRINT_VECTORS"))
        fprintf(stderr,
                "container V1: %zu bytes, sha256 %s\n  signer seed %s\n  recipient secret %s\n", n,
                hex, s_hex, r_hex);
    cr_assert_str_eq(hex, CV_SHA, "container bytes changed");
    const char *trust[1] = {p[4]};
    tseal_verify_opts vo = {.trust = trust, .n_trust = 1, .key = p[5]};
    cr_assert_eq(tseal_verify(p[7], &vo, NULL), 0, "%s", tseal_errmsg());
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
