/*
 * test_fips.c - the FIPS suite (crypto/fips.c, crypto/x509.c): AES-256-GCM known answers and
 * tampering, the OpenSSL DRBG, P-256 key generation and PEM files, ECDH key wrapping (checked
 * against a wrap recomputed with plain OpenSSL calls), ECDSA (cross-checked with OpenSSL in
 * both directions), X.509 chains against a PKI the tests build (pki_testutil.h): validity,
 * revocation, trust, key usage, chain encoding, identities.
 */
#include "st_testutil.h"

#include "pki_testutil.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "../crypto/crypto_internal.h"
#include "../crypto/fips_internal.h"
#include "internal.h"
#include "tseal_crypto.h"
#include "tseal_fips.h"

static void fips_init(void) {
    setenv("TSEAL_PWHASH_INTERACTIVE", "1", 1); /* fewer PBKDF2 iterations for the tests */
    tu_setup();
}

TestSuite(fips_aead);
TestSuite(fips_rand);
TestSuite(fips_keys);
TestSuite(fips_pem, .init = fips_init, .fini = tu_teardown);
TestSuite(fips_wrap);
TestSuite(fips_sig, .init = fips_init, .fini = tu_teardown);
TestSuite(fips_x509, .init = fips_init, .fini = tu_teardown);
TestSuite(fips_ident);

#define T0   ((time_t)1767225600) /* 2026-01-01T00:00:00Z: every verification happens then */
#define DAY  ((time_t)86400)
#define YEAR (365 * DAY)

/* ---- helpers ----------------------------------------------------------------------------- */

static void unhex(const char *hex, uint8_t *out, size_t n) {
    size_t len = strlen(hex);
    cr_assert_eq(len, 2 * n, "hex %s is not %zu bytes", hex, n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static tseal_seckey *p256(tseal_key_kind kind, const char *name) {
    tseal_seckey *k = NULL;
    cr_assert_eq(tseal_p256_keygen(kind, name, &k), 0, "%s", tseal_errmsg());
    cr_assert_not_null(k);
    return k;
}

static const uint8_t digest1[TSEAL_HASH_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

/* "TSEAL-SIG-V1" 0x00 type 0x00 digest, built here independently of crypto.c */
static size_t sig_msg(const char *type, const uint8_t *digest, uint8_t *out) {
    size_t k = 0, tl = strlen(type);
    memcpy(out, "TSEAL-SIG-V1", 12);
    k = 12;
    out[k++] = 0;
    memcpy(out + k, type, tl);
    k += tl;
    out[k++] = 0;
    memcpy(out + k, digest, TSEAL_HASH_BYTES);
    return k + TSEAL_HASH_BYTES;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------- */

typedef struct {
    const char *key, *iv, *pt, *aad, *ct, *tag;
} gcm_vector;

static const gcm_vector gcm_vectors[] = {
    /* NIST CAVP gcmEncryptExtIV256.rsp, [Keylen = 256] [IVlen = 96] [PTlen = 128]
     * [AADlen = 128] [Taglen = 128] Count = 0 */
    {"92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", "ac93a1a6145299bde902f21a",
     "2d71bcfa914e4ac045b2aa60955fad24", "1e0889016f67601c8ebea4943bc23ad6",
     "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
    /* McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 96-bit
     * IV, 60-byte plaintext, 20-byte AAD) */
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
     "49a6b525b16aedf5aa0de657ba637b39",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
     "56828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    /* test case 13: empty plaintext, no AAD */
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    /* test case 14 */
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "00000000000000000000000000000000", "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
};

Test(fips_aead, known_answers) {
    for (size_t v = 0; v < sizeof gcm_vectors / sizeof gcm_vectors[0]; v++) {
        const gcm_vector *g = &gcm_vectors[v];
        uint8_t key[32], iv[12], pt[64], aad[32], ct[80], want[80], back[64];
        size_t pl = strlen(g->pt) / 2, al = strlen(g->aad) / 2;
        unhex(g->key, key, 32);
        unhex(g->iv, iv, 12);
        unhex(g->pt, pt, pl);
        unhex(g->aad, aad, al);
        unhex(g->ct, want, pl);
        unhex(g->tag, want + pl, 16);
        cr_assert_eq(tseal_aesgcm_encrypt(ct, pl ? pt : NULL, pl, al ? aad : NULL, al, iv, key), 0,
                     "%s", tseal_errmsg());
        cr_assert_arr_eq(ct, want, pl + 16, "vector %zu", v);
        cr_assert_eq(
            tseal_aesgcm_decrypt(pl ? back : NULL, ct, pl + 16, al ? aad : NULL, al, iv, key), 0,
            "%s", tseal_errmsg());
        if (pl) cr_assert_arr_eq(back, pt, pl);
    }
}

Test(fips_aead, tamper_fails_and_wipes) {
    uint8_t key[32], iv[12], pt[60], aad[20], ct[76], out[60];
    const gcm_vector *g = &gcm_vectors[1];
    unhex(g->key, key, 32);
    unhex(g->iv, iv, 12);
    unhex(g->pt, pt, 60);
    unhex(g->aad, aad, 20);
    cr_assert_eq(tseal_aesgcm_encrypt(ct, pt, 60, aad, 20, iv, key), 0);
    for (size_t i = 0; i < sizeof ct; i++) { /* every ciphertext and tag byte */
        ct[i] ^= 0x01;
        memset(out, 0xAA, sizeof out);
        tu_assert_err(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 20, iv, key), TSEAL_E_VERIFY,
                      "authentication failed");
        cr_assert(tseal_all_zero(out, sizeof out), "plaintext not wiped (byte %zu)", i);
        ct[i] ^= 0x01;
    }
    aad[3] ^= 0x80;
    tu_assert_err(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 20, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
    aad[3] ^= 0x80;
    tu_assert_err(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 19, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
    iv[11] ^= 1;
    tu_assert_err(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 20, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
    iv[11] ^= 1;
    key[0] ^= 1;
    tu_assert_err(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 20, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
    key[0] ^= 1;
    cr_assert_eq(tseal_aesgcm_decrypt(out, ct, sizeof ct, aad, 20, iv, key), 0);
    cr_assert_arr_eq(out, pt, 60);
}

Test(fips_aead, empty_plaintext_with_ad) {
    uint8_t key[32] = {7}, iv[12] = {9}, ad[5] = "head", ct[16];
    cr_assert_eq(tseal_aesgcm_encrypt(ct, NULL, 0, ad, sizeof ad, iv, key), 0, "%s",
                 tseal_errmsg());
    cr_assert_eq(tseal_aesgcm_decrypt(NULL, ct, 16, ad, sizeof ad, iv, key), 0, "%s",
                 tseal_errmsg());
    ad[0] ^= 1;
    tu_assert_err(tseal_aesgcm_decrypt(NULL, ct, 16, ad, sizeof ad, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
}

Test(fips_aead, large_buffer_roundtrip) {
    size_t n = (1u << 20) + 13;
    uint8_t key[32] = {1}, iv[12] = {2};
    uint8_t *pt = malloc(n), *ct = malloc(n + 16), *back = malloc(n);
    cr_assert(pt && ct && back);
    for (size_t i = 0; i < n; i++) pt[i] = (uint8_t)(i * 31);
    cr_assert_eq(tseal_aesgcm_encrypt(ct, pt, n, NULL, 0, iv, key), 0);
    cr_assert_eq(tseal_aesgcm_decrypt(back, ct, n + 16, NULL, 0, iv, key), 0);
    cr_assert_eq(memcmp(back, pt, n), 0);
    free(pt), free(ct), free(back);
}

Test(fips_aead, bad_arguments) {
    uint8_t key[32] = {0}, iv[12] = {0}, buf[64] = {0};
    tu_assert_err(tseal_aesgcm_decrypt(buf, buf, 15, NULL, 0, iv, key), TSEAL_E_CORRUPT,
                  "shorter than its tag");
    tu_assert_err(tseal_aesgcm_encrypt(buf, NULL, 4, NULL, 0, iv, key), TSEAL_E_INVAL, "NULL");
    tu_assert_err(tseal_aesgcm_encrypt(buf, buf, 16, NULL, 0, iv, key), TSEAL_E_INVAL, "overlap");
    tu_assert_err(tseal_aesgcm_decrypt(buf + 8, buf, 32, NULL, 0, iv, key), TSEAL_E_INVAL,
                  "overlap");
}

Test(fips_aead, same_contract_as_chacha) {
    /* tseal_aead_* and tseal_aesgcm_* are interchangeable: sizes and errors */
    uint8_t key[32] = {3}, iv[12] = {4}, pt[40] = {5}, c1[56], c2[56];
    cr_assert_eq(tseal_aead_encrypt(c1, pt, sizeof pt, NULL, 0, iv, key), 0);
    cr_assert_eq(tseal_aesgcm_encrypt(c2, pt, sizeof pt, NULL, 0, iv, key), 0);
    cr_assert_neq(memcmp(c1, c2, sizeof c1), 0);
    uint8_t out[40];
    tu_assert_err(tseal_aesgcm_decrypt(out, c1, sizeof c1, NULL, 0, iv, key), TSEAL_E_VERIFY,
                  "authentication failed");
}

/* ---- random -------------------------------------------------------------------------------- */

Test(fips_rand, fills_and_differs) {
    uint8_t a[64] = {0}, b[64] = {0};
    cr_assert_eq(tseal_fips_random(a, sizeof a), 0);
    cr_assert_eq(tseal_fips_random(b, sizeof b), 0);
    cr_assert(!tseal_all_zero(a, sizeof a));
    cr_assert_neq(memcmp(a, b, sizeof a), 0);
    cr_assert_eq(tseal_fips_random(NULL, 0), 0);
    tu_assert_err(tseal_fips_random(NULL, 4), TSEAL_E_INVAL, "NULL");
}

/* ---- keys ---------------------------------------------------------------------------------- */

Test(fips_keys, keygen_both_kinds) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "vendor"), *r = p256(TSEAL_KEY_RECIPIENT, "bank");
    cr_assert_eq(s->pub.kind, TSEAL_KEY_SIGN);
    cr_assert_eq(r->pub.kind, TSEAL_KEY_RECIPIENT);
    cr_assert_eq(s->pub.alg, TSEAL_ALG_P256);
    cr_assert_eq(r->pub.alg, TSEAL_ALG_P256);
    cr_assert_eq(s->pub.pk[0], 0x04);
    cr_assert_str_eq(s->pub.name, "vendor");
    cr_assert_str_eq(r->pub.name, "bank");
    cr_assert(!tseal_all_zero(s->sk, TSEAL_P256_SK_BYTES));
    cr_assert_neq(memcmp(s->pub.pk, r->pub.pk, TSEAL_P256_PK_BYTES), 0);
    cr_assert_neq(memcmp(s->sk, r->sk, TSEAL_P256_SK_BYTES), 0);
    /* the point and the scalar belong together: OpenSSL's pairwise check on an import */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    BIGNUM *d = BN_bin2bn(s->sk, 32, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    cr_assert(ctx && d && bld);
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, s->pub.pk, 65);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY *pk = NULL;
    cr_assert_eq(EVP_PKEY_fromdata_init(ctx), 1);
    cr_assert_eq(EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params), 1);
    EVP_PKEY_CTX *c2 = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    cr_assert_eq(EVP_PKEY_check(c2), 1);
    EVP_PKEY_CTX_free(c2);
    EVP_PKEY_free(pk);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    EVP_PKEY_CTX_free(ctx);
    tseal_seckey_free(s);
    tseal_seckey_free(r);
}

Test(fips_keys, key_id_over_the_point) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "k");
    uint8_t buf[15 + 1 + 65], h[32], id[16];
    memcpy(buf, "tseal key id v1", 15);
    buf[15] = TSEAL_ALG_P256;
    memcpy(buf + 16, s->pub.pk, 65);
    cr_assert_eq(tseal_sha256(buf, sizeof buf, h), 0);
    cr_assert_arr_eq(s->pub.key_id, h, 16);
    tseal_p256_key_id(s->pub.pk, id);
    cr_assert_arr_eq(id, h, 16);
    tseal_seckey_free(s);
}

Test(fips_keys, keygen_refuses_bad_input) {
    tseal_seckey *k = (tseal_seckey *)1;
    tu_assert_err(tseal_p256_keygen((tseal_key_kind)7, "x", &k), TSEAL_E_INVAL, "kind");
    cr_assert_null(k);
    tu_assert_err(tseal_p256_keygen(TSEAL_KEY_SIGN, "", &k), TSEAL_E_INVAL, "empty");
    tu_assert_err(tseal_p256_keygen(TSEAL_KEY_SIGN, "a\nb", &k), TSEAL_E_INVAL, "control");
    tu_assert_err(tseal_p256_keygen(TSEAL_KEY_SIGN, NULL, &k), TSEAL_E_INVAL, "name");
}

Test(fips_keys, point_validation) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "k");
    EVP_PKEY *pk = NULL;
    cr_assert_eq(tseal_p256_pkey_from_point(s->pub.pk, "p", &pk), 0, "%s", tseal_errmsg());
    EVP_PKEY_free(pk);
    uint8_t bad[65];
    memcpy(bad, s->pub.pk, 65);
    bad[64] ^= 1; /* off the curve */
    tu_assert_err(tseal_p256_pkey_from_point(bad, "p", &pk), TSEAL_E_CORRUPT, "not on the curve");
    cr_assert_null(pk);
    memset(bad, 0, sizeof bad); /* the point at infinity has no uncompressed form */
    tu_assert_err(tseal_p256_pkey_from_point(bad, "p", &pk), TSEAL_E_CORRUPT, "not uncompressed");
    memcpy(bad, s->pub.pk, 65);
    bad[0] = 0x06; /* hybrid form */
    tu_assert_err(tseal_p256_pkey_from_point(bad, "p", &pk), TSEAL_E_CORRUPT, "not uncompressed");
    /* x = p (a coordinate out of range) */
    unhex("04ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
          "0000000000000000000000000000000000000000000000000000000000000000",
          bad, 65);
    tu_assert_err(tseal_p256_pkey_from_point(bad, "p", &pk), TSEAL_E_CORRUPT, "P-256");
    tseal_seckey_free(s);
}

/* ---- PEM files --------------------------------------------------------------------------- */

static void assert_same_p256(const tseal_seckey *a, const tseal_seckey *b) {
    cr_assert_eq(a->pub.alg, b->pub.alg);
    cr_assert_arr_eq(a->pub.pk, b->pub.pk, 65);
    cr_assert_arr_eq(a->pub.key_id, b->pub.key_id, 16);
    cr_assert_arr_eq(a->sk, b->sk, 32);
}

static unsigned file_mode(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    return (unsigned)(st.st_mode & 07777);
}

Test(fips_pem, roundtrip_unencrypted) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "vendor"), *back = NULL;
    const char *sp = tu_path("vendor.key"), *pp = tu_path("vendor.pub.pem");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, NULL, 0, 0), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_p256_pubkey_write_pem(&k->pub, pp, 0), 0, "%s", tseal_errmsg());
    cr_assert_eq(file_mode(sp), 0600);
    char *text = (char *)tu_read(sp, NULL);
    cr_assert(strncmp(text, "-----BEGIN PRIVATE KEY-----\n", 28) == 0, "%s", text);
    free(text);
    text = (char *)tu_read(pp, NULL);
    cr_assert(strncmp(text, "-----BEGIN PUBLIC KEY-----\n", 27) == 0, "%s", text);
    free(text);
    cr_assert(tseal_file_is_pem(sp));
    cr_assert(tseal_file_is_pem(pp));
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), 0, "%s",
                 tseal_errmsg());
    assert_same_p256(k, back);
    cr_assert_str_eq(back->pub.name, "vendor");
    cr_assert_eq(back->pub.kind, TSEAL_KEY_SIGN);
    tseal_pubkey pub;
    cr_assert_eq(tseal_p256_pubkey_read_pem(pp, TSEAL_KEY_RECIPIENT, &pub), 0, "%s",
                 tseal_errmsg());
    cr_assert_arr_eq(pub.pk, k->pub.pk, 65);
    cr_assert_arr_eq(pub.key_id, k->pub.key_id, 16);
    cr_assert_eq(pub.alg, TSEAL_ALG_P256);
    cr_assert_eq(pub.kind, TSEAL_KEY_RECIPIENT); /* what the caller asked for */
    cr_assert_str_eq(pub.name, "vendor.pub");
    /* a passphrase given for an unprotected key is simply not needed */
    tseal_seckey_free(back);
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, "x", 1, TSEAL_KEY_RECIPIENT, &back), 0);
    cr_assert_eq(back->pub.kind, TSEAL_KEY_RECIPIENT);
    tseal_seckey_free(back);
    tseal_seckey_free(k);
}

Test(fips_pem, roundtrip_encrypted) {
    tseal_seckey *k = p256(TSEAL_KEY_RECIPIENT, "bank"), *back = NULL;
    const char *sp = tu_path("bank.pem");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, "correct horse", 13, 0), 0, "%s",
                 tseal_errmsg());
    cr_assert_eq(file_mode(sp), 0600);
    char *text = (char *)tu_read(sp, NULL);
    cr_assert(strncmp(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0, "%s", text);
    free(text);
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, "correct horse", 13, TSEAL_KEY_RECIPIENT, &back), 0,
                 "%s", tseal_errmsg());
    assert_same_p256(k, back);
    cr_assert_str_eq(back->pub.name, "bank");
    tseal_seckey_free(back);
    /* OpenSSL reads it too, with the same passphrase (PBES2 / PBKDF2 / AES-256-CBC) */
    BIO *b = BIO_new_file(sp, "r");
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"correct horse");
    cr_assert_not_null(pk);
    uint8_t pt[65];
    pki_point(pk, pt);
    cr_assert_arr_eq(pt, k->pub.pk, 65);
    EVP_PKEY_free(pk);
    BIO_free(b);
    tseal_seckey_free(k);
}

Test(fips_pem, wrong_passphrase) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *back = (tseal_seckey *)1;
    const char *sp = tu_path("v.key");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, "secret one", 10, 0), 0);
    tu_assert_err(tseal_p256_seckey_read_pem(sp, "secret two", 10, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_VERIFY, "wrong passphrase");
    cr_assert_null(back);
    tseal_seckey_free(k);
}

Test(fips_pem, missing_passphrase) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *back = NULL;
    const char *sp = tu_path("v.key");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, "secret one", 10, 0), 0);
    tu_assert_err(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), TSEAL_E_INVAL,
                  "is protected by a passphrase (use --passphrase-file)");
    cr_assert_null(back);
    tu_assert_err(tseal_p256_seckey_read_pem(sp, "", 0, TSEAL_KEY_SIGN, &back), TSEAL_E_INVAL,
                  "empty");
    tseal_seckey_free(k);
}

Test(fips_pem, group_or_world_accessible_refused) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *back = NULL;
    const char *sp = tu_path("v.key");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, NULL, 0, 0), 0);
    const unsigned modes[] = {0644, 0640, 0604, 0660};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(chmod(sp, modes[i]), 0);
        tu_assert_err(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), TSEAL_E_INVAL,
                      "accessible by group or others");
        cr_assert_null(back);
    }
    cr_assert_eq(chmod(sp, 0400), 0);
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), 0);
    tseal_seckey_free(back);
    tseal_seckey_free(k);
}

Test(fips_pem, never_overwritten_unless_forced) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *k2 = p256(TSEAL_KEY_SIGN, "w"), *back = NULL;
    const char *sp = tu_path("v.key"), *pp = tu_path("v.pub");
    cr_assert_eq(tseal_p256_seckey_write_pem(k, sp, NULL, 0, 0), 0);
    cr_assert_eq(tseal_p256_pubkey_write_pem(&k->pub, pp, 0), 0);
    tu_assert_err(tseal_p256_seckey_write_pem(k2, sp, NULL, 0, 0), TSEAL_E_INVAL, "file exists");
    tu_assert_err(tseal_p256_pubkey_write_pem(&k2->pub, pp, 0), TSEAL_E_INVAL, "file exists");
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), 0);
    assert_same_p256(k, back);
    tseal_seckey_free(back);
    cr_assert_eq(tseal_p256_seckey_write_pem(k2, sp, NULL, 0, 1), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_p256_seckey_read_pem(sp, NULL, 0, TSEAL_KEY_SIGN, &back), 0);
    assert_same_p256(k2, back);
    cr_assert_eq(file_mode(sp), 0600);
    cr_assert_eq(tu_count_entries(), 2); /* no temporary file left behind */
    tseal_seckey_free(back);
    tseal_seckey_free(k);
    tseal_seckey_free(k2);
}

static void write_pkey(const char *path, EVP_PKEY *key) {
    pki_write_key(path, key);
    EVP_PKEY_free(key);
}

Test(fips_pem, other_curves_and_algorithms_refused) {
    tseal_seckey *back = NULL;
    tseal_pubkey pub;
    EVP_PKEY *p384 = pki_key_ec("P-384");
    pki_write_pubkey(tu_path("p384.pub"), p384);
    write_pkey(tu_path("p384.key"), p384);
    tu_assert_err(tseal_p256_seckey_read_pem(tu_path("p384.key"), NULL, 0, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_UNSUPPORTED, "not P-256 (it is EC secp384r1)");
    cr_assert_null(back);
    tu_assert_err(tseal_p256_pubkey_read_pem(tu_path("p384.pub"), TSEAL_KEY_SIGN, &pub),
                  TSEAL_E_UNSUPPORTED, "not P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    cr_assert_not_null(ed);
    pki_write_pubkey(tu_path("ed.pub"), ed);
    write_pkey(tu_path("ed.key"), ed);
    tu_assert_err(tseal_p256_seckey_read_pem(tu_path("ed.key"), NULL, 0, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_UNSUPPORTED, "not P-256 (it is ED25519)");
    tu_assert_err(tseal_p256_pubkey_read_pem(tu_path("ed.pub"), TSEAL_KEY_SIGN, &pub),
                  TSEAL_E_UNSUPPORTED, "not P-256");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    cr_assert_not_null(rsa);
    write_pkey(tu_path("rsa.key"), rsa);
    tu_assert_err(tseal_p256_seckey_read_pem(tu_path("rsa.key"), NULL, 0, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_UNSUPPORTED, "not P-256 (it is RSA)");
}

Test(fips_pem, openssl_generated_key_reads) {
    EVP_PKEY *key = pki_key_p256();
    uint8_t pt[65];
    pki_point(key, pt);
    pki_write_key(tu_path("ossl.key"), key);
    tseal_seckey *k = NULL;
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path("ossl.key"), NULL, 0, TSEAL_KEY_SIGN, &k), 0,
                 "%s", tseal_errmsg());
    cr_assert_arr_eq(k->pub.pk, pt, 65);
    BIGNUM *d = NULL;
    uint8_t dd[32];
    cr_assert_eq(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    cr_assert_eq(BN_bn2binpad(d, dd, 32), 32);
    cr_assert_arr_eq(k->sk, dd, 32);
    BN_clear_free(d);
    /* a key encrypted by OpenSSL's own PKCS#8 writer */
    BIO *b = BIO_new_file(tu_path("ossl-enc.key"), "w");
    EVP_CIPHER *cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    cr_assert_eq(PEM_write_bio_PKCS8PrivateKey(b, key, cbc, "pw12345678", 10, NULL, NULL), 1);
    BIO_free(b);
    EVP_CIPHER_free(cbc);
    chmod(tu_path("ossl-enc.key"), 0600);
    tseal_seckey *k2 = NULL;
    cr_assert_eq(
        tseal_p256_seckey_read_pem(tu_path("ossl-enc.key"), "pw12345678", 10, TSEAL_KEY_SIGN, &k2),
        0, "%s", tseal_errmsg());
    assert_same_p256(k, k2);
    tseal_seckey_free(k);
    tseal_seckey_free(k2);
    EVP_PKEY_free(key);
}

Test(fips_pem, traditional_ec_keys) {
    EVP_PKEY *key = pki_key_p256();
    uint8_t pt[65];
    pki_point(key, pt);
    /* SEC 1 "EC PRIVATE KEY", unencrypted: read */
    BIO *b = BIO_new_file(tu_path("sec1.key"), "w");
    cr_assert_eq(PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL), 1);
    BIO_free(b);
    chmod(tu_path("sec1.key"), 0600);
    tseal_seckey *k = NULL;
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path("sec1.key"), NULL, 0, TSEAL_KEY_SIGN, &k), 0,
                 "%s", tseal_errmsg());
    cr_assert_arr_eq(k->pub.pk, pt, 65);
    tseal_seckey_free(k);
    k = NULL;
    /* with OpenSSL's legacy PEM encryption (MD5-based key derivation): refused */
    b = BIO_new_file(tu_path("legacy.key"), "w");
    cr_assert_eq(PEM_write_bio_PrivateKey_traditional(
                     b, key, EVP_aes_256_cbc(), (unsigned char *)"pw12345678", 10, NULL, NULL),
                 1);
    BIO_free(b);
    chmod(tu_path("legacy.key"), 0600);
    tu_assert_err(
        tseal_p256_seckey_read_pem(tu_path("legacy.key"), "pw12345678", 10, TSEAL_KEY_SIGN, &k),
        TSEAL_E_UNSUPPORTED, "legacy PEM encryption");
    cr_assert_null(k);
    EVP_PKEY_free(key);
}

Test(fips_pem, mismatched_key_not_written) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *o = p256(TSEAL_KEY_SIGN, "o");
    memcpy(k->pub.pk, o->pub.pk, 65); /* a scalar with someone else's point */
    tu_assert_err(tseal_p256_seckey_write_pem(k, tu_path("v.key"), NULL, 0, 0), TSEAL_E_INVAL,
                  "does not match");
    cr_assert(!tu_exists(tu_path("v.key")));
    cr_assert_eq(tu_count_entries(), 0);
    tseal_seckey_free(k);
    tseal_seckey_free(o);
}

Test(fips_pem, wrong_file_kinds) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *back = NULL;
    tseal_pubkey pub;
    cr_assert_eq(tseal_p256_seckey_write_pem(k, tu_path("v.key"), NULL, 0, 0), 0);
    cr_assert_eq(tseal_p256_pubkey_write_pem(&k->pub, tu_path("v.pub"), 0), 0);
    tu_assert_err(tseal_p256_seckey_read_pem(tu_path("v.pub"), NULL, 0, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_INVAL, "not a PEM private key (it holds a PUBLIC KEY)");
    tu_assert_err(tseal_p256_pubkey_read_pem(tu_path("v.key"), TSEAL_KEY_SIGN, &pub), TSEAL_E_INVAL,
                  "not a PEM public key (it holds a PRIVATE KEY)");
    tu_write_str(tu_path("junk"), "hello\n");
    chmod(tu_path("junk"), 0600);
    tu_assert_err(tseal_p256_seckey_read_pem(tu_path("junk"), NULL, 0, TSEAL_KEY_SIGN, &back),
                  TSEAL_E_CORRUPT, "not a PEM file");
    tu_write_str(tu_path("bad.pub"),
                 "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    tu_assert_err(tseal_p256_pubkey_read_pem(tu_path("bad.pub"), TSEAL_KEY_SIGN, &pub),
                  TSEAL_E_CORRUPT, "bad.pub");
    tu_assert_err(tseal_p256_pubkey_read_pem(tu_path("missing.pub"), TSEAL_KEY_SIGN, &pub),
                  TSEAL_E_NOTFOUND, "missing.pub");
    cr_assert(!tseal_file_is_pem(tu_path("junk")));
    cr_assert(!tseal_file_is_pem(tu_path("missing.pub")));
    /* a tseal key file is not PEM */
    tseal_seckey *ed = NULL;
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, "ed", NULL, &ed), 0);
    cr_assert_eq(tseal_seckey_write(ed, tu_path("ed.sign.key"), NULL, 0, 0), 0);
    cr_assert(!tseal_file_is_pem(tu_path("ed.sign.key")));
    tseal_seckey_free(ed);
    tseal_seckey_free(k);
}

Test(fips_pem, off_curve_public_key_refused) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v");
    /* SPKI of a P-256 key: a fixed 26-byte prefix, then the point */
    uint8_t der[91];
    unhex("3059301306072a8648ce3d020106082a8648ce3d030107034200", der, 26);
    memcpy(der + 26, k->pub.pk, 65);
    der[90] ^= 1;
    BIO *b = BIO_new_file(tu_path("off.pub"), "w");
    cr_assert_gt(PEM_write_bio(b, "PUBLIC KEY", "", der, sizeof der), 0);
    BIO_free(b);
    tseal_pubkey pub;
    int rc = tseal_p256_pubkey_read_pem(tu_path("off.pub"), TSEAL_KEY_SIGN, &pub);
    cr_assert_eq(rc, TSEAL_E_CORRUPT, "%d %s", rc, tseal_errmsg());
    cr_assert(tseal_all_zero(pub.pk, 65));
    der[90] ^= 1; /* the unmodified point is fine */
    b = BIO_new_file(tu_path("on.pub"), "w");
    cr_assert_gt(PEM_write_bio(b, "PUBLIC KEY", "", der, sizeof der), 0);
    BIO_free(b);
    cr_assert_eq(tseal_p256_pubkey_read_pem(tu_path("on.pub"), TSEAL_KEY_SIGN, &pub), 0, "%s",
                 tseal_errmsg());
    cr_assert_arr_eq(pub.pk, k->pub.pk, 65);
    tseal_seckey_free(k);
}

Test(fips_pem, names_from_file_names) {
    tseal_seckey *k = p256(TSEAL_KEY_SIGN, "v"), *back = NULL;
    const char *long_name =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.pem";
    cr_assert_eq(tseal_p256_seckey_write_pem(k, tu_path(long_name), NULL, 0, 0), 0);
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path(long_name), NULL, 0, TSEAL_KEY_SIGN, &back), 0);
    cr_assert_eq(strlen(back->pub.name), 63);
    tseal_seckey_free(back);
    cr_assert_eq(tseal_p256_seckey_write_pem(k, tu_path(".pem"), NULL, 0, 0), 0);
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path(".pem"), NULL, 0, TSEAL_KEY_SIGN, &back), 0);
    cr_assert_str_eq(back->pub.name, ".pem");
    tseal_seckey_free(back);
    tseal_seckey_free(k);
}

/* ---- ECDH wrapping ----------------------------------------------------------------------- */

static const uint8_t ad1[] = "container id || recipient key id";

Test(fips_wrap, roundtrip) {
    tseal_seckey *r = p256(TSEAL_KEY_RECIPIENT, "bank");
    uint8_t ck[32], eph[65], w[48];
    cr_assert_eq(tseal_fips_random(ck, sizeof ck), 0);
    cr_assert_eq(tseal_p256_wrap(r->pub.pk, ad1, sizeof ad1, ck, eph, w), 0, "%s", tseal_errmsg());
    uint8_t *out = tseal_secure_alloc(32);
    cr_assert_eq(tseal_p256_unwrap(r, eph, ad1, sizeof ad1, w, out), 0, "%s", tseal_errmsg());
    cr_assert_arr_eq(out, ck, 32);
    /* a second wrap uses a fresh ephemeral key */
    uint8_t eph2[65], w2[48];
    cr_assert_eq(tseal_p256_wrap(r->pub.pk, ad1, sizeof ad1, ck, eph2, w2), 0);
    cr_assert_neq(memcmp(eph, eph2, 65), 0);
    cr_assert_neq(memcmp(w, w2, 48), 0);
    tseal_secure_free(out);
    tseal_seckey_free(r);
}

/* The construction of tseal_fips.h recomputed with OpenSSL calls of the test's own. */
Test(fips_wrap, matches_the_specified_construction) {
    tseal_seckey *r = p256(TSEAL_KEY_RECIPIENT, "bank");
    uint8_t ck[32] = {0x42, 1, 2, 3}, eph[65], w[48];
    cr_assert_eq(tseal_p256_wrap(r->pub.pk, ad1, sizeof ad1, ck, eph, w), 0);
    EVP_PKEY *own = NULL, *peer = NULL;
    BIGNUM *d = BN_bin2bn(r->sk, 32, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, r->pub.pk, 65);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    cr_assert_eq(EVP_PKEY_fromdata_init(ctx), 1);
    cr_assert_eq(EVP_PKEY_fromdata(ctx, &own, EVP_PKEY_KEYPAIR, params), 1);
    cr_assert_eq(tseal_p256_pkey_from_point(eph, "eph", &peer), 0);
    EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    uint8_t shared[32], salt[130], wk[32], out[32], fin[16];
    size_t sl = sizeof shared;
    cr_assert_eq(EVP_PKEY_derive_init(dctx), 1);
    cr_assert_eq(EVP_PKEY_derive_set_peer(dctx, peer), 1);
    cr_assert_eq(EVP_PKEY_derive(dctx, shared, &sl), 1);
    cr_assert_eq(sl, 32);
    memcpy(salt, eph, 65);
    memcpy(salt + 65, r->pub.pk, 65);
    cr_assert_eq(tseal_hkdf_sha256(shared, 32, salt, sizeof salt,
                                   (const uint8_t *)"tseal v1 p256 wrap", 18, wk, 32),
                 0);
    /* AES-256-GCM, all-zero nonce, computed with EVP directly */
    EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER *gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    const uint8_t zero[12] = {0};
    int outl = 0;
    cr_assert_eq(EVP_DecryptInit_ex2(cctx, gcm, wk, zero, NULL), 1);
    cr_assert_eq(EVP_DecryptUpdate(cctx, NULL, &outl, ad1, sizeof ad1), 1);
    cr_assert_eq(EVP_DecryptUpdate(cctx, out, &outl, w, 32), 1);
    cr_assert_eq(EVP_CIPHER_CTX_ctrl(cctx, EVP_CTRL_AEAD_SET_TAG, 16, w + 32), 1);
    cr_assert_eq(EVP_DecryptFinal_ex(cctx, fin, &outl), 1);
    cr_assert_arr_eq(out, ck, 32);
    EVP_CIPHER_CTX_free(cctx);
    EVP_CIPHER_free(gcm);
    EVP_PKEY_CTX_free(dctx);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(own);
    EVP_PKEY_free(peer);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    tseal_seckey_free(r);
}

Test(fips_wrap, wrong_recipient_and_modified_stanza) {
    tseal_seckey *r = p256(TSEAL_KEY_RECIPIENT, "bank"), *o = p256(TSEAL_KEY_RECIPIENT, "other");
    uint8_t ck[32] = {1, 2, 3}, eph[65], w[48], ad[sizeof ad1];
    memcpy(ad, ad1, sizeof ad);
    cr_assert_eq(tseal_p256_wrap(r->pub.pk, ad, sizeof ad, ck, eph, w), 0);
    uint8_t *out = tseal_secure_alloc(32);
    memset(out, 0xAA, 32);
    tu_assert_err(tseal_p256_unwrap(o, eph, ad, sizeof ad, w, out), TSEAL_E_VERIFY,
                  "key stanza is not for this recipient");
    cr_assert(tseal_all_zero(out, 32));
    ad[0] ^= 1;
    tu_assert_err(tseal_p256_unwrap(r, eph, ad, sizeof ad, w, out), TSEAL_E_VERIFY,
                  "not for this recipient");
    ad[0] ^= 1;
    for (size_t i = 0; i < sizeof w; i++) {
        w[i] ^= 0x10;
        tu_assert_err(tseal_p256_unwrap(r, eph, ad, sizeof ad, w, out), TSEAL_E_VERIFY,
                      "not for this recipient");
        w[i] ^= 0x10;
    }
    /* another valid point as the ephemeral key */
    tu_assert_err(tseal_p256_unwrap(r, o->pub.pk, ad, sizeof ad, w, out), TSEAL_E_VERIFY,
                  "not for this recipient");
    cr_assert(tseal_all_zero(out, 32));
    cr_assert_eq(tseal_p256_unwrap(r, eph, ad, sizeof ad, w, out), 0);
    cr_assert_arr_eq(out, ck, 32);
    tseal_secure_free(out);
    tseal_seckey_free(r);
    tseal_seckey_free(o);
}

Test(fips_wrap, invalid_ephemeral_points_refused) {
    tseal_seckey *r = p256(TSEAL_KEY_RECIPIENT, "bank");
    uint8_t ck[32] = {1}, eph[65], w[48], bad[65];
    cr_assert_eq(tseal_p256_wrap(r->pub.pk, NULL, 0, ck, eph, w), 0);
    uint8_t *out = tseal_secure_alloc(32);
    for (size_t i = 1; i < 65; i += 7) { /* a flipped coordinate bit: off the curve */
        memcpy(bad, eph, 65);
        bad[i] ^= 0x01;
        memset(out, 0xAA, 32);
        tu_assert_err(tseal_p256_unwrap(r, bad, NULL, 0, w, out), TSEAL_E_CORRUPT,
                      "ephemeral key is not a valid P-256");
        cr_assert(tseal_all_zero(out, 32));
    }
    memset(bad, 0, sizeof bad); /* infinity */
    tu_assert_err(tseal_p256_unwrap(r, bad, NULL, 0, w, out), TSEAL_E_CORRUPT, "ephemeral key");
    memcpy(bad, eph, 65);
    bad[0] = 0x02; /* a compressed prefix on 65 bytes */
    tu_assert_err(tseal_p256_unwrap(r, bad, NULL, 0, w, out), TSEAL_E_CORRUPT, "ephemeral key");
    /* the recipient point is checked when wrapping too */
    memcpy(bad, r->pub.pk, 65);
    bad[33] ^= 1;
    tu_assert_err(tseal_p256_wrap(bad, NULL, 0, ck, eph, w), TSEAL_E_CORRUPT,
                  "recipient public key is not a valid P-256");
    cr_assert(tseal_all_zero(eph, 65) && tseal_all_zero(w, 48));
    tseal_secure_free(out);
    tseal_seckey_free(r);
}

Test(fips_wrap, needs_a_p256_recipient_key) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "vendor"), *x = NULL;
    uint8_t ck[32] = {1}, eph[65], w[48], out[32];
    cr_assert_eq(tseal_p256_wrap(s->pub.pk, NULL, 0, ck, eph, w), 0);
    memset(out, 0xAA, sizeof out);
    tu_assert_err(tseal_p256_unwrap(s, eph, NULL, 0, w, out), TSEAL_E_INVAL, "P-256 recipient key");
    cr_assert(tseal_all_zero(out, 32));
    cr_assert_eq(tseal_keygen(TSEAL_KEY_RECIPIENT, "x", NULL, &x), 0);
    tu_assert_err(tseal_p256_unwrap(x, eph, NULL, 0, w, out), TSEAL_E_INVAL, "P-256 recipient key");
    tseal_seckey_free(x);
    tseal_seckey_free(s);
}

/* ---- ECDSA ------------------------------------------------------------------------------- */

#define TYPE "tseal/container-header"

Test(fips_sig, roundtrip_and_failures) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "vendor"), *o = p256(TSEAL_KEY_SIGN, "other");
    uint8_t sig[64], d2[32];
    cr_assert_eq(tseal_p256_sign(s, TYPE, digest1, sig), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_p256_verify(s->pub.pk, TYPE, digest1, sig), 0, "%s", tseal_errmsg());
    tu_assert_err(tseal_p256_verify(s->pub.pk, "tseal/policy", digest1, sig), TSEAL_E_VERIFY,
                  "bad signature");
    memcpy(d2, digest1, 32);
    d2[31] ^= 1;
    tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, d2, sig), TSEAL_E_VERIFY, "bad signature");
    tu_assert_err(tseal_p256_verify(o->pub.pk, TYPE, digest1, sig), TSEAL_E_VERIFY,
                  "bad signature");
    for (size_t i = 0; i < 64; i += 5) {
        sig[i] ^= 0x04;
        tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, digest1, sig), TSEAL_E_VERIFY,
                      "bad signature");
        sig[i] ^= 0x04;
    }
    /* ECDSA is randomized: two signatures differ, both verify */
    uint8_t sig2[64];
    cr_assert_eq(tseal_p256_sign(s, TYPE, digest1, sig2), 0);
    cr_assert_neq(memcmp(sig, sig2, 64), 0);
    cr_assert_eq(tseal_p256_verify(s->pub.pk, TYPE, digest1, sig2), 0);
    tseal_seckey_free(s);
    tseal_seckey_free(o);
}

Test(fips_sig, r_and_s_out_of_range) {
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "vendor");
    uint8_t sig[64], bad[64];
    static const char n_hex[] = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    cr_assert_eq(tseal_p256_sign(s, TYPE, digest1, sig), 0);
    memcpy(bad, sig, 64);
    memset(bad, 0, 32); /* r = 0 */
    tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, digest1, bad), TSEAL_E_VERIFY, "out of range");
    memcpy(bad, sig, 64);
    memset(bad + 32, 0, 32); /* s = 0 */
    tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, digest1, bad), TSEAL_E_VERIFY, "out of range");
    memcpy(bad, sig, 64);
    unhex(n_hex, bad, 32); /* r = n */
    tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, digest1, bad), TSEAL_E_VERIFY, "out of range");
    memcpy(bad, sig, 64);
    memset(bad + 32, 0xFF, 32); /* s > n */
    tu_assert_err(tseal_p256_verify(s->pub.pk, TYPE, digest1, bad), TSEAL_E_VERIFY, "out of range");
    tseal_seckey_free(s);
}

Test(fips_sig, bad_keys_and_types) {
    tseal_seckey *r = p256(TSEAL_KEY_RECIPIENT, "bank"), *ed = NULL;
    uint8_t sig[64] = {1};
    tu_assert_err(tseal_p256_sign(r, TYPE, digest1, sig), TSEAL_E_INVAL, "P-256 signing key");
    cr_assert_eq(tseal_keygen(TSEAL_KEY_SIGN, "ed", NULL, &ed), 0);
    tu_assert_err(tseal_p256_sign(ed, TYPE, digest1, sig), TSEAL_E_INVAL, "P-256 signing key");
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "v");
    tu_assert_err(tseal_p256_sign(s, "", digest1, sig), TSEAL_E_INVAL, "empty");
    tu_assert_err(tseal_p256_sign(s, "a\tb", digest1, sig), TSEAL_E_INVAL, "non-printable");
    cr_assert_eq(tseal_p256_sign(s, TYPE, digest1, sig), 0);
    uint8_t pk[65];
    memcpy(pk, s->pub.pk, 65);
    pk[64] ^= 1;
    tu_assert_err(tseal_p256_verify(pk, TYPE, digest1, sig), TSEAL_E_CORRUPT, "not on the curve");
    tseal_seckey_free(s);
    tseal_seckey_free(ed);
    tseal_seckey_free(r);
}

/* Signatures made by OpenSSL directly verify, and ours verify in OpenSSL. */
Test(fips_sig, cross_check_with_openssl) {
    EVP_PKEY *key = pki_key_p256();
    pki_write_key(tu_path("s.key"), key);
    tseal_seckey *s = NULL;
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path("s.key"), NULL, 0, TSEAL_KEY_SIGN, &s), 0);
    uint8_t msg[128];
    size_t mlen = sig_msg(TYPE, digest1, msg);
    /* OpenSSL -> tseal */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80], raw[64];
    size_t dlen = sizeof der;
    cr_assert_eq(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    cr_assert_eq(EVP_DigestSign(md, der, &dlen, msg, mlen), 1);
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
    cr_assert_not_null(es);
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
    cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
    ECDSA_SIG_free(es);
    cr_assert_eq(tseal_p256_verify(s->pub.pk, TYPE, digest1, raw), 0, "%s", tseal_errmsg());
    EVP_MD_CTX_free(md);
    /* tseal -> OpenSSL */
    cr_assert_eq(tseal_p256_sign(s, TYPE, digest1, raw), 0);
    es = ECDSA_SIG_new();
    cr_assert_eq(ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL)), 1);
    uint8_t *q = der;
    int n = i2d_ECDSA_SIG(es, &q);
    cr_assert_gt(n, 0);
    ECDSA_SIG_free(es);
    md = EVP_MD_CTX_new();
    cr_assert_eq(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    cr_assert_eq(EVP_DigestVerify(md, der, (size_t)n, msg, mlen), 1);
    EVP_MD_CTX_free(md);
    /* and the domain separation is the one of tseal_sign */
    uint8_t m2[TSEAL_SIG_MSG_MAX];
    cr_assert_eq(tseal_sig_message(TYPE, digest1, m2), mlen);
    cr_assert_arr_eq(m2, msg, mlen);
    EVP_PKEY_free(key);
    tseal_seckey_free(s);
}

/* ---- X.509 ------------------------------------------------------------------------------- */

static const char *const signer_sans[] = {"email:signer@bank.example",
                                          "URI:https://bank.example/signer",
                                          "DNS:signer.bank.example", NULL};
#define KU_SIGN "critical,digitalSignature"

typedef struct {
    pki_cert *root, *ica, *leaf;
} pki;

static pki std_pki(time_t leaf_nb, time_t leaf_na, const char *ku, const char *eku) {
    pki p;
    p.root = make_root("Test Root", T0 - YEAR, T0 + 10 * YEAR);
    p.ica = make_intermediate(p.root, "Test Intermediate", T0 - YEAR, T0 + 5 * YEAR);
    p.leaf = make_leaf(p.ica, "signer", signer_sans, ku, eku, leaf_nb, leaf_na);
    return p;
}

static void pki_done(pki *p) {
    pki_free(p->leaf);
    pki_free(p->ica);
    pki_free(p->root);
}

/* leaf.pem, chain.pem (the intermediate), root.pem; the chain loaded from them. */
static tseal_x509_chain *write_and_load(const pki *p) {
    pki_write_cert(tu_path("leaf.pem"), p->leaf->cert);
    pki_write_cert(tu_path("chain.pem"), p->ica->cert);
    pki_write_cert(tu_path("root.pem"), p->root->cert);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("leaf.pem"), tu_path("chain.pem"), &c), 0, "%s",
                 tseal_errmsg());
    return c;
}

static tseal_x509_trust *trust_of(X509 *root) {
    tseal_x509_trust *t = NULL;
    cr_assert_eq(tseal_x509_trust_new(&t), 0);
    size_t len;
    char *pem = pki_cert_pem(root, &len);
    cr_assert_eq(tseal_x509_trust_add_ca_pem(t, pem, len, "root"), 0, "%s", tseal_errmsg());
    free(pem);
    return t;
}

static int verify_std(const pki *p, tseal_x509_identity *id) {
    tseal_x509_chain *c = write_and_load(p);
    tseal_x509_trust *t = trust_of(p->root->cert);
    int rc = tseal_x509_verify(t, c, T0, id);
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    return rc;
}

Test(fips_x509, valid_chain_and_identity) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    tseal_x509_chain *c = write_and_load(&p);
    tseal_x509_trust *t = NULL;
    cr_assert_eq(tseal_x509_trust_new(&t), 0);
    cr_assert_eq(tseal_x509_trust_add_ca_file(t, tu_path("root.pem")), 0, "%s", tseal_errmsg());
    tseal_x509_identity id;
    cr_assert_eq(tseal_x509_verify(t, c, T0, &id), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(id.subject, "CN=signer,O=tseal test");
    cr_assert_str_eq(id.common_name, "signer");
    cr_assert_str_eq(id.issuer_root, "CN=Test Root,O=tseal test");
    cr_assert_eq(id.n_sans, 3);
    cr_assert_str_eq(id.sans[0], "email:signer@bank.example");
    cr_assert_str_eq(id.sans[1], "URI:https://bank.example/signer");
    cr_assert_str_eq(id.sans[2], "DNS:signer.bank.example");
    /* the leaf's key */
    uint8_t pk[65], want[65];
    cr_assert_eq(tseal_x509_leaf_pubkey(c, pk), 0, "%s", tseal_errmsg());
    pki_point(p.leaf->key, want);
    cr_assert_arr_eq(pk, want, 65);
    /* NULL identity is fine */
    cr_assert_eq(tseal_x509_verify(t, c, T0, NULL), 0);
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, encode_decode_roundtrip_verifies) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    tseal_x509_chain *c = write_and_load(&p), *d = NULL;
    uint8_t *der = NULL, *der2 = NULL;
    size_t len = 0, len2 = 0;
    cr_assert_eq(tseal_x509_chain_encode(c, &der, &len), 0, "%s", tseal_errmsg());
    int l0 = i2d_X509(p.leaf->cert, NULL), l1 = i2d_X509(p.ica->cert, NULL);
    cr_assert_eq(len, 8 + (size_t)l0 + (size_t)l1);
    cr_assert_eq((uint32_t)der[0] << 24 | (uint32_t)der[1] << 16 | (uint32_t)der[2] << 8 | der[3],
                 (uint32_t)l0); /* u32be length of the leaf first */
    cr_assert_eq(tseal_x509_chain_decode(der, len, "sig block", &d), 0, "%s", tseal_errmsg());
    cr_assert_eq(tseal_x509_chain_encode(d, &der2, &len2), 0);
    cr_assert_eq(len2, len);
    cr_assert_arr_eq(der2, der, len);
    tseal_x509_trust *t = trust_of(p.root->cert);
    tseal_x509_identity id;
    cr_assert_eq(tseal_x509_verify(t, d, T0, &id), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(id.common_name, "signer");
    tseal_x509_trust_free(t);
    free(der);
    free(der2);
    tseal_x509_chain_free(c);
    tseal_x509_chain_free(d);
    pki_done(&p);
}

Test(fips_x509, expired_leaf) {
    pki p = std_pki(T0 - YEAR, T0 - DAY, KU_SIGN, "codeSigning");
    tseal_x509_identity id;
    tu_assert_err(verify_std(&p, &id), TSEAL_E_VERIFY, "certificate has expired");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 0: CN=signer,O=tseal test"), "%s",
                       tseal_errmsg());
    cr_assert_eq(id.subject[0], 0);
    pki_done(&p);
}

Test(fips_x509, not_yet_valid_leaf) {
    pki p = std_pki(T0 + DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY, "certificate is not yet valid");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 0"));
    pki_done(&p);
}

Test(fips_x509, expired_intermediate) {
    pki p;
    p.root = make_root("Test Root", T0 - YEAR, T0 + 10 * YEAR);
    p.ica = make_intermediate(p.root, "Old Intermediate", T0 - YEAR, T0 - DAY);
    p.leaf = make_leaf(p.ica, "signer", NULL, KU_SIGN, NULL, T0 - DAY, T0 + DAY);
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY, "certificate has expired");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 1: CN=Old Intermediate"), "%s",
                       tseal_errmsg());
    pki_done(&p);
}

/* CRLs of the root (for the intermediate) and of the intermediate (for the leaf). */
static tseal_x509_trust *trust_with_crls(const pki *p, const long *revoked, size_t n,
                                         bool root_crl) {
    tseal_x509_trust *t = trust_of(p->root->cert);
    X509_CRL *crls[2];
    size_t k = 0;
    crls[k++] = make_crl(p->ica, revoked, n, T0 - DAY, T0 + 7 * DAY);
    if (root_crl) crls[k++] = make_crl(p->root, NULL, 0, T0 - DAY, T0 + 7 * DAY);
    pki_write_crls(tu_path("crls.pem"), crls, k);
    cr_assert_eq(tseal_x509_trust_add_crl_file(t, tu_path("crls.pem")), 0, "%s", tseal_errmsg());
    for (size_t i = 0; i < k; i++) X509_CRL_free(crls[i]);
    return t;
}

Test(fips_x509, revoked_leaf) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    tseal_x509_chain *c = write_and_load(&p);
    long other = 77;
    /* not revoked: the CRLs are there and cover both certificates */
    tseal_x509_trust *t = trust_with_crls(&p, &other, 1, true);
    cr_assert_eq(tseal_x509_verify(t, c, T0, NULL), 0, "%s", tseal_errmsg());
    tseal_x509_trust_free(t);
    /* revoked by the intermediate */
    t = trust_with_crls(&p, &p.leaf->serial, 1, true);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY, "certificate is revoked");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 0: CN=signer"), "%s", tseal_errmsg());
    tseal_x509_trust_free(t);
    /* the same chain without CRLs verifies */
    t = trust_of(p.root->cert);
    cr_assert_eq(tseal_x509_verify(t, c, T0, NULL), 0, "%s", tseal_errmsg());
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, missing_crl_for_an_issuer) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    tseal_x509_chain *c = write_and_load(&p);
    tseal_x509_trust *t = trust_with_crls(&p, NULL, 0, false); /* no CRL of the root */
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY,
                  "no CRL for CN=Test Root,O=tseal test");
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, expired_crl) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    tseal_x509_chain *c = write_and_load(&p);
    tseal_x509_trust *t = trust_of(p.root->cert);
    X509_CRL *crls[2] = {make_crl(p.ica, NULL, 0, T0 - 9 * DAY, T0 - 2 * DAY),
                         make_crl(p.root, NULL, 0, T0 - DAY, T0 + 7 * DAY)};
    pki_write_crls(tu_path("crls.pem"), crls, 2);
    cr_assert_eq(tseal_x509_trust_add_crl_file(t, tu_path("crls.pem")), 0);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY, "CRL has expired");
    X509_CRL_free(crls[0]);
    X509_CRL_free(crls[1]);
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, leaf_of_another_ca) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    pki_cert *other = make_root("Other Root", T0 - YEAR, T0 + YEAR);
    tseal_x509_chain *c = write_and_load(&p);
    tseal_x509_trust *t = trust_of(other->cert);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY,
                  "not issued by a trusted CA (unable to get issuer certificate)");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 1: CN=Test Intermediate"), "%s",
                       tseal_errmsg());
    tseal_x509_trust_free(t);
    /* an empty trust store trusts nothing */
    cr_assert_eq(tseal_x509_trust_new(&t), 0);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY, "no trusted CA");
    tseal_x509_trust_free(t);
    /* a self-signed leaf is not trusted either */
    pki_cert *self =
        pki_make(NULL, "self", pki_key_p256(), T0 - DAY, T0 + DAY, false, NULL, KU_SIGN, NULL);
    pki_write_cert(tu_path("self.pem"), self->cert);
    tseal_x509_chain *sc = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("self.pem"), NULL, &sc), 0);
    t = trust_of(p.root->cert);
    tu_assert_err(tseal_x509_verify(t, sc, T0, NULL), TSEAL_E_VERIFY, "not issued by a trusted CA");
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(sc);
    pki_free(self);
    tseal_x509_chain_free(c);
    pki_free(other);
    pki_done(&p);
}

Test(fips_x509, missing_intermediate) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "codeSigning");
    pki_write_cert(tu_path("leaf.pem"), p.leaf->cert);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("leaf.pem"), NULL, &c), 0);
    tseal_x509_trust *t = trust_of(p.root->cert);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY,
                  "not issued by a trusted CA (unable to get issuer certificate)");
    cr_assert_not_null(strstr(tseal_errmsg(), "depth 0: CN=signer"), "%s", tseal_errmsg());
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, leaf_without_digital_signature) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, "critical,keyEncipherment", "codeSigning");
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY, "key usage does not allow signing");
    pki_done(&p);
    p = std_pki(T0 - DAY, T0 + YEAR, "critical,nonRepudiation", NULL);
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY, "key usage does not allow signing");
    pki_done(&p);
}

Test(fips_x509, leaf_with_server_auth_only) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "serverAuth");
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY,
                  "extended key usage does not allow code signing");
    pki_done(&p);
    p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, "serverAuth,clientAuth,emailProtection");
    tu_assert_err(verify_std(&p, NULL), TSEAL_E_VERIFY, "extended key usage");
    pki_done(&p);
}

Test(fips_x509, usages_that_allow_signing) {
    const char *ok[][2] = {{NULL, NULL},
                           {KU_SIGN, NULL},
                           {NULL, "codeSigning"},
                           {"digitalSignature,keyEncipherment", "serverAuth,codeSigning"},
                           {KU_SIGN, "anyExtendedKeyUsage"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pki p = std_pki(T0 - DAY, T0 + YEAR, ok[i][0], ok[i][1]);
        cr_assert_eq(verify_std(&p, NULL), 0, "case %zu: %s", i, tseal_errmsg());
        pki_done(&p);
    }
}

Test(fips_x509, issuer_that_is_not_a_ca) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    pki_cert *sub = make_leaf(p.leaf, "sub", NULL, KU_SIGN, NULL, T0 - DAY, T0 + DAY);
    pki_write_cert(tu_path("sub.pem"), sub->cert);
    X509 *chain[2] = {p.leaf->cert, p.ica->cert};
    pki_write_certs(tu_path("chain2.pem"), chain, 2);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("sub.pem"), tu_path("chain2.pem"), &c), 0);
    tseal_x509_trust *t = trust_of(p.root->cert);
    tu_assert_err(tseal_x509_verify(t, c, T0, NULL), TSEAL_E_VERIFY, "not a CA");
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_free(sub);
    pki_done(&p);
}

Test(fips_x509, bad_signature_on_certificate) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    tseal_x509_chain *c = write_and_load(&p), *d = NULL;
    uint8_t *der;
    size_t len;
    cr_assert_eq(tseal_x509_chain_encode(c, &der, &len), 0);
    size_t l0 = (size_t)der[2] << 8 | der[3];
    der[4 + l0 - 1] ^= 0x01; /* last byte of the leaf's ECDSA s */
    cr_assert_eq(tseal_x509_chain_decode(der, len, "x", &d), 0, "%s", tseal_errmsg());
    tseal_x509_trust *t = trust_of(p.root->cert);
    tu_assert_err(tseal_x509_verify(t, d, T0, NULL), TSEAL_E_VERIFY,
                  "signature on certificate is invalid");
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(d);
    free(der);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, chain_decode_truncated_and_garbage) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    tseal_x509_chain *c = write_and_load(&p), *d = (tseal_x509_chain *)1;
    uint8_t *der;
    size_t len;
    cr_assert_eq(tseal_x509_chain_encode(c, &der, &len), 0);
    for (size_t n = 0; n < len; n++) {
        size_t l0 = (size_t)der[2] << 8 | der[3];
        int rc = tseal_x509_chain_decode(der, n, "trunc", &d);
        if (n == 4 + l0) { /* exactly the leaf */
            cr_assert_eq(rc, 0);
            tseal_x509_chain_free(d);
            continue;
        }
        cr_assert_eq(rc, TSEAL_E_CORRUPT, "length %zu: %d %s", n, rc, tseal_errmsg());
        cr_assert_null(d);
        cr_assert_not_null(strstr(tseal_errmsg(), "trunc: "));
    }
    /* garbage */
    uint8_t g[300];
    for (size_t i = 0; i < sizeof g; i++) g[i] = (uint8_t)(i * 37 + 11);
    g[0] = 0, g[1] = 0, g[2] = 1, g[3] = 0; /* 256 bytes of non-DER */
    tu_assert_err(tseal_x509_chain_decode(g, 260, "g", &d), TSEAL_E_CORRUPT,
                  "not a valid DER certificate");
    tu_assert_err(tseal_x509_chain_decode(g, 0, "g", &d), TSEAL_E_CORRUPT, "empty");
    g[2] = 0, g[3] = 0;
    tu_assert_err(tseal_x509_chain_decode(g, 10, "g", &d), TSEAL_E_CORRUPT, "length 0");
    g[0] = 0xFF;
    tu_assert_err(tseal_x509_chain_decode(g, 10, "g", &d), TSEAL_E_CORRUPT, "past the end");
    /* a certificate with one byte more inside its length */
    size_t l0 = (size_t)der[2] << 8 | der[3];
    uint8_t *x = malloc(len + 1);
    memcpy(x, der, 4 + l0);
    x[4 + l0] = 0;
    x[3] = (uint8_t)(l0 + 1), x[2] = (uint8_t)((l0 + 1) >> 8);
    tu_assert_err(tseal_x509_chain_decode(x, 4 + l0 + 1, "x", &d), TSEAL_E_CORRUPT,
                  "1 bytes after its DER");
    /* a non-minimal DER length in the outer SEQUENCE: parses, but is not canonical */
    cr_assert_eq(der[4], 0x30);
    cr_assert_eq(der[5], 0x82, "leaf longer than 255 bytes");
    x[0] = 0, x[1] = 0;
    x[2] = (uint8_t)((l0 + 1) >> 8), x[3] = (uint8_t)(l0 + 1);
    x[4] = 0x30, x[5] = 0x83, x[6] = 0;
    memcpy(x + 7, der + 6, l0 - 2);
    tu_assert_err(tseal_x509_chain_decode(x, 4 + l0 + 1, "x", &d), TSEAL_E_CORRUPT, "x: ");
    cr_assert_null(d);
    free(x);
    free(der);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, chain_decode_limits) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    int l = i2d_X509(p.leaf->cert, NULL);
    size_t one = 4 + (size_t)l;
    uint8_t *b = malloc(9 * one);
    for (int i = 0; i < 9; i++) {
        uint8_t *q = b + (size_t)i * one + 4;
        b[(size_t)i * one] = 0, b[(size_t)i * one + 1] = 0;
        b[(size_t)i * one + 2] = (uint8_t)(l >> 8), b[(size_t)i * one + 3] = (uint8_t)l;
        cr_assert_eq(i2d_X509(p.leaf->cert, &q), l);
    }
    tseal_x509_chain *d = NULL;
    cr_assert_eq(tseal_x509_chain_decode(b, 8 * one, "eight", &d), 0, "%s", tseal_errmsg());
    uint8_t *enc;
    size_t elen;
    cr_assert_eq(tseal_x509_chain_encode(d, &enc, &elen), 0);
    cr_assert_eq(elen, 8 * one);
    free(enc);
    tseal_x509_chain_free(d);
    tu_assert_err(tseal_x509_chain_decode(b, 9 * one, "nine", &d), TSEAL_E_LIMIT,
                  "more than 8 certificates");
    cr_assert_null(d);
    uint8_t *big = calloc(1, TSEAL_X509_MAX_CHAIN_BYTES + 1);
    tu_assert_err(tseal_x509_chain_decode(big, TSEAL_X509_MAX_CHAIN_BYTES + 1, "big", &d),
                  TSEAL_E_LIMIT, "limit");
    free(big);
    free(b);
    /* a PEM chain file with too many certificates */
    X509 *many[9];
    for (int i = 0; i < 9; i++) many[i] = p.ica->cert;
    pki_write_cert(tu_path("leaf.pem"), p.leaf->cert);
    pki_write_certs(tu_path("many.pem"), many, 9);
    tu_assert_err(tseal_x509_chain_load(tu_path("leaf.pem"), tu_path("many.pem"), &d),
                  TSEAL_E_LIMIT, "more than 8 certificates");
    /* a leaf file with two certificates */
    X509 *two[2] = {p.leaf->cert, p.ica->cert};
    pki_write_certs(tu_path("two.pem"), two, 2);
    tu_assert_err(tseal_x509_chain_load(tu_path("two.pem"), NULL, &d), TSEAL_E_INVAL,
                  "holds 2 certificates");
    tu_write_str(tu_path("none.pem"), "nothing here\n");
    tu_assert_err(tseal_x509_chain_load(tu_path("none.pem"), NULL, &d), TSEAL_E_CORRUPT,
                  "no PEM certificate");
    tu_write_str(tu_path("broken.pem"),
                 "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n");
    tu_assert_err(tseal_x509_chain_load(tu_path("broken.pem"), NULL, &d), TSEAL_E_CORRUPT,
                  "certificate 1 is not valid");
    pki_done(&p);
}

Test(fips_x509, leaf_key_must_be_p256) {
    pki_cert *root = make_root("Test Root", T0 - YEAR, T0 + YEAR);
    pki_cert *leaf =
        make_leaf_key(root, "p384", pki_key_ec("P-384"), KU_SIGN, NULL, T0 - DAY, T0 + DAY);
    pki_write_cert(tu_path("leaf.pem"), leaf->cert);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("leaf.pem"), NULL, &c), 0);
    uint8_t pk[65];
    tu_assert_err(tseal_x509_leaf_pubkey(c, pk), TSEAL_E_UNSUPPORTED,
                  "signer certificate key is not P-256");
    tseal_seckey *s = p256(TSEAL_KEY_SIGN, "s");
    cr_assert_eq(tseal_x509_leaf_matches(c, s), 0);
    tseal_seckey_free(s);
    tseal_x509_chain_free(c);
    pki_free(leaf);
    pki_free(root);
}

Test(fips_x509, leaf_matches_its_key_only) {
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    tseal_x509_chain *c = write_and_load(&p);
    pki_write_key(tu_path("leaf.key"), p.leaf->key);
    tseal_seckey *mine = NULL, *other = p256(TSEAL_KEY_SIGN, "other");
    cr_assert_eq(tseal_p256_seckey_read_pem(tu_path("leaf.key"), NULL, 0, TSEAL_KEY_SIGN, &mine), 0,
                 "%s", tseal_errmsg());
    cr_assert_eq(tseal_x509_leaf_matches(c, mine), 1);
    cr_assert_eq(tseal_x509_leaf_matches(c, other), 0);
    cr_assert_eq(tseal_x509_leaf_matches(c, NULL), 0);
    cr_assert_eq(tseal_x509_leaf_matches(NULL, mine), 0);
    /* and the signature made with the key verifies with the certificate's key */
    uint8_t sig[64], pk[65];
    cr_assert_eq(tseal_p256_sign(mine, TYPE, digest1, sig), 0);
    cr_assert_eq(tseal_x509_leaf_pubkey(c, pk), 0);
    cr_assert_eq(tseal_p256_verify(pk, TYPE, digest1, sig), 0);
    tseal_seckey_free(mine);
    tseal_seckey_free(other);
    tseal_x509_chain_free(c);
    pki_done(&p);
}

Test(fips_x509, trust_inputs) {
    tseal_x509_trust *t = NULL;
    cr_assert_eq(tseal_x509_trust_new(&t), 0);
    tu_assert_err(tseal_x509_trust_add_ca_pem(t, "", 0, "empty"), TSEAL_E_CORRUPT,
                  "empty: no PEM certificate");
    const char *bad = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    tu_assert_err(tseal_x509_trust_add_ca_pem(t, bad, strlen(bad), "bad"), TSEAL_E_CORRUPT,
                  "bad: certificate 1 is not valid");
    tu_assert_err(tseal_x509_trust_add_crl_pem(t, "x", 1, "crl"), TSEAL_E_CORRUPT,
                  "crl: no PEM CRL");
    tu_assert_err(tseal_x509_trust_add_ca_file(t, tu_path("missing.pem")), TSEAL_E_NOTFOUND,
                  "missing.pem");
    /* a bundle of two roots: a chain to either verifies */
    pki p = std_pki(T0 - DAY, T0 + YEAR, KU_SIGN, NULL);
    pki_cert *other = make_root("Other Root", T0 - YEAR, T0 + YEAR);
    X509 *roots[2] = {other->cert, p.root->cert};
    pki_write_certs(tu_path("bundle.pem"), roots, 2);
    cr_assert_eq(tseal_x509_trust_add_ca_file(t, tu_path("bundle.pem")), 0, "%s", tseal_errmsg());
    tseal_x509_chain *c = write_and_load(&p);
    tseal_x509_identity id;
    cr_assert_eq(tseal_x509_verify(t, c, T0, &id), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(id.issuer_root, "CN=Test Root,O=tseal test");
    tseal_x509_chain_free(c);
    pki_free(other);
    pki_done(&p);
    tseal_x509_trust_free(t);
}

/* ---- identities ----------------------------------------------------------------------------- */

static tseal_x509_identity ident(void) {
    tseal_x509_identity id;
    memset(&id, 0, sizeof id);
    strcpy(id.subject, "CN=signer,OU=ML,O=Bank AG,C=DE");
    strcpy(id.common_name, "signer");
    strcpy(id.issuer_root, "CN=Bank Root,O=Bank AG,C=DE");
    id.n_sans = 3;
    strcpy(id.sans[0], "email:signer@bank.example");
    strcpy(id.sans[1], "URI:https://bank.example/ml/signer");
    strcpy(id.sans[2], "DNS:signer.bank.example");
    return id;
}

Test(fips_ident, exact) {
    tseal_x509_identity id = ident();
    cr_assert(tseal_x509_identity_matches(&id, "subject:CN=signer,OU=ML,O=Bank AG,C=DE"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:signer")); /* the CN */
    cr_assert(tseal_x509_identity_matches(&id, "email:signer@bank.example"));
    cr_assert(tseal_x509_identity_matches(&id, "uri:https://bank.example/ml/signer"));
    cr_assert(tseal_x509_identity_matches(&id, "dns:signer.bank.example"));
    cr_assert(tseal_x509_identity_matches(&id, "EMAIL:signer@bank.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "subject:CN=signer"));
    cr_assert(!tseal_x509_identity_matches(&id, "subject:Signer"));
    cr_assert(!tseal_x509_identity_matches(&id, "email:signer@bank.example.evil"));
    cr_assert(!tseal_x509_identity_matches(&id, "email:igner@bank.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "dns:bank.example"));
}

Test(fips_ident, wildcard) {
    tseal_x509_identity id = ident();
    cr_assert(tseal_x509_identity_matches(&id, "email:*@bank.example"));
    cr_assert(tseal_x509_identity_matches(&id, "uri:https://bank.example/ml/*"));
    cr_assert(tseal_x509_identity_matches(&id, "dns:*.bank.example"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:*,O=Bank AG,C=DE"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:sig*"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:*"));
    cr_assert(tseal_x509_identity_matches(&id, "email:signer@bank.example*")); /* empty run */
    cr_assert(!tseal_x509_identity_matches(&id, "email:*@evil.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "uri:https://bank.example/hr/*"));
    cr_assert(!tseal_x509_identity_matches(&id, "subject:*,O=Other,C=DE"));
    /* prefix and suffix may not overlap */
    cr_assert(!tseal_x509_identity_matches(&id, "dns:signer.bank*signer.bank.example"));
    /* only one '*' */
    cr_assert(!tseal_x509_identity_matches(&id, "email:*@*.example"));
    tu_assert_err(tseal_x509_identity_pattern_check("email:*@*.example"), TSEAL_E_INVAL,
                  "more than one '*'");
}

Test(fips_ident, wrong_type_and_malformed) {
    tseal_x509_identity id = ident();
    cr_assert(!tseal_x509_identity_matches(&id, "dns:signer@bank.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "email:signer.bank.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "uri:signer.bank.example"));
    cr_assert(!tseal_x509_identity_matches(&id, "email:*bank.example/ml/signer"));
    cr_assert(!tseal_x509_identity_matches(&id, "ip:10.0.0.1"));
    cr_assert(!tseal_x509_identity_matches(&id, "signer"));
    cr_assert(!tseal_x509_identity_matches(&id, "subject:"));
    cr_assert(!tseal_x509_identity_matches(&id, NULL));
    cr_assert(!tseal_x509_identity_matches(NULL, "subject:*"));
    cr_assert_eq(tseal_x509_identity_pattern_check("dns:*.bank.example"), 0);
    cr_assert_eq(tseal_x509_identity_pattern_check("Subject:CN=a"), 0);
    tu_assert_err(tseal_x509_identity_pattern_check("ip:1.2.3.4"), TSEAL_E_INVAL,
                  "expected subject:, email:, uri: or dns:");
    tu_assert_err(tseal_x509_identity_pattern_check("email:"), TSEAL_E_INVAL, "empty");
    /* no CN: "subject:" never matches an empty CN */
    id.common_name[0] = 0;
    cr_assert(!tseal_x509_identity_matches(&id, "subject:"));
}

/* The wildcard never spans an escaped character of the RFC 2253 subject: a CA-issued CN
 * "evil,O=Acme Bank" must not pass for an O=Acme Bank certificate. */
Test(fips_ident, wildcard_does_not_cross_escapes, .init = fips_init, .fini = tu_teardown) {
    pki_cert *root = make_root("Test Root", T0 - YEAR, T0 + YEAR);
    pki_cert *leaf = make_leaf(root, "evil,O=Acme Bank", NULL, KU_SIGN, NULL, T0 - DAY, T0 + DAY);
    pki_write_cert(tu_path("leaf.pem"), leaf->cert);
    tseal_x509_chain *c = NULL;
    cr_assert_eq(tseal_x509_chain_load(tu_path("leaf.pem"), NULL, &c), 0);
    tseal_x509_trust *t = trust_of(root->cert);
    tseal_x509_identity id;
    cr_assert_eq(tseal_x509_verify(t, c, T0, &id), 0, "%s", tseal_errmsg());
    cr_assert_str_eq(id.subject, "CN=evil\\,O=Acme Bank,O=tseal test");
    cr_assert_str_eq(id.common_name, "evil,O=Acme Bank");
    cr_assert(!tseal_x509_identity_matches(&id, "subject:CN=*,O=Acme Bank,O=tseal test"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:CN=evil\\,O=Acme Bank,O=tseal test"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:evil,O=Acme Bank"));
    cr_assert(tseal_x509_identity_matches(&id, "subject:evil*"));
    tseal_x509_trust_free(t);
    tseal_x509_chain_free(c);
    pki_free(leaf);
    pki_free(root);
}
