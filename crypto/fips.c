/*
 * fips.c - the FIPS-compatible suite (tseal_fips.h): OpenSSL DRBG, AES-256-GCM, P-256 keys
 * and their PEM files, ECDH P-256 key wrapping, ECDSA P-256 with SHA-256.
 *
 * Everything goes through OpenSSL 3 provider APIs (EVP_CIPHER_fetch, EVP_PKEY_fromdata,
 * EVP_PKEY_derive, EVP_DigestSign/Verify with a fetched "SHA256"), so that with the FIPS
 * provider configured as the default only approved implementations are used. libsodium is
 * used only through tseal_secure_alloc/free and tseal_wipe (secure memory).
 *
 * Secrets: a tseal_seckey holds the 32-byte big-endian scalar in secure memory; an EVP_PKEY is
 * built from it for each operation and freed on every path (OpenSSL keeps EC private keys in
 * BN_secure memory and clears them on free). ECDH shared secrets and wrap keys live in secure
 * memory; PEM text of a private key lives in a BIO_s_secmem buffer (cleared when freed) on
 * writing and in secure memory on reading.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "crypto_internal.h"
#include "fips_internal.h"
#include "internal.h"
#include "tseal_fips.h"

#define P256_COORD 32

/* The order n of P-256, big-endian (SEC 2, FIPS 186-4 D.1.2.3). */
static const uint8_t p256_order[P256_COORD] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51};

/* ---- randomness ------------------------------------------------------------------------- */

int tseal_fips_random(void *buf, size_t n) {
    if (n == 0) return 0;
    if (!buf) return tseal_err(TSEAL_E_INVAL, "random: NULL buffer");
    if (RAND_bytes_ex(NULL, buf, n, 0) != 1) {
        tseal_wipe(buf, n);
        return tseal_ossl_err("RAND_bytes_ex");
    }
    return 0;
}

/* ---- AES-256-GCM ------------------------------------------------------------------------ */

/* NIST SP 800-38D: at most 2^39 - 256 bits of plaintext per invocation. */
#define GCM_MAX_PT   ((UINT64_C(1) << 36) - 32)
#define EVP_MAX_STEP (1u << 30) /* EVP lengths are int: feed big buffers in steps */

static bool overlap(const void *a, size_t an, const void *b, size_t bn) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an && bn && x < y + bn && y < x + an;
}

/* EVP_CipherUpdate over n bytes (out NULL: additional data). */
static int gcm_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t n) {
    while (n) {
        int step = n > EVP_MAX_STEP ? (int)EVP_MAX_STEP : (int)n, outl = 0;
        if (EVP_CipherUpdate(ctx, out, &outl, in, step) != 1) return -1;
        if (out && outl != step) return -1; /* a stream mode: as many bytes out as in */
        in += step;
        if (out) out += step;
        n -= (size_t)step;
    }
    return 0;
}

/* One GCM pass: enc = 1 writes `tag`, enc = 0 checks it (TSEAL_E_VERIFY on mismatch). */
static int gcm_run(int enc, uint8_t *out, const uint8_t *in, size_t n, const uint8_t *ad,
                   size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                   const uint8_t key[TSEAL_SYM_KEY_BYTES], uint8_t tag[TSEAL_AEAD_TAG_BYTES]) {
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (!cipher) return tseal_ossl_err("EVP_CIPHER_fetch(AES-256-GCM)");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const char *step = NULL;
    if (!ctx)
        step = "EVP_CIPHER_CTX_new";
    else if (EVP_CIPHER_get_key_length(cipher) != TSEAL_SYM_KEY_BYTES ||
             EVP_CIPHER_get_iv_length(cipher) != TSEAL_AEAD_NONCE_BYTES)
        step = "AES-256-GCM parameters";
    else if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, enc, NULL) != 1)
        step = "AES-256-GCM init";
    else if (gcm_update(ctx, NULL, ad, ad_len) != 0)
        step = "AES-256-GCM additional data";
    else if (gcm_update(ctx, out, in, n) != 0)
        step = enc ? "AES-256-GCM encrypt" : "AES-256-GCM decrypt";
    int rc = 0;
    if (!step && !enc) {
        OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
                                                             TSEAL_AEAD_TAG_BYTES),
                           OSSL_PARAM_construct_end()};
        if (EVP_CIPHER_CTX_set_params(ctx, p) != 1) step = "AES-256-GCM set tag";
    }
    if (step) {
        rc = tseal_ossl_err(step);
    } else {
        uint8_t fin[16];
        int outl = 0;
        if (EVP_CipherFinal_ex(ctx, fin, &outl) != 1 || outl != 0) {
            if (enc) {
                rc = tseal_ossl_err("AES-256-GCM final");
            } else {
                ERR_clear_error();
                rc = tseal_err(TSEAL_E_VERIFY, "authentication failed");
            }
        } else if (enc) {
            OSSL_PARAM p[2] = {OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag,
                                                                 TSEAL_AEAD_TAG_BYTES),
                               OSSL_PARAM_construct_end()};
            if (EVP_CIPHER_CTX_get_params(ctx, p) != 1) rc = tseal_ossl_err("AES-256-GCM tag");
        }
    }
    EVP_CIPHER_CTX_free(ctx); /* clears the key schedule */
    EVP_CIPHER_free(cipher);
    return rc;
}

int tseal_aesgcm_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                         const uint8_t key[TSEAL_SYM_KEY_BYTES]) {
    if (!ct || !nonce || !key) return tseal_err(TSEAL_E_INVAL, "AES-GCM: NULL argument");
    if (pt_len > GCM_MAX_PT)
        return tseal_err(TSEAL_E_LIMIT, "AES-GCM: message of %zu bytes is too long", pt_len);
    if ((!pt && pt_len) || (!ad && ad_len))
        return tseal_err(TSEAL_E_INVAL, "AES-GCM: NULL input with a non-zero length");
    if (overlap(ct, pt_len + TSEAL_AEAD_TAG_BYTES, pt, pt_len))
        return tseal_err(TSEAL_E_INVAL, "AES-GCM: plaintext and ciphertext buffers overlap");
    int rc = gcm_run(1, ct, pt, pt_len, ad, ad_len, nonce, key, ct + pt_len);
    if (rc) tseal_wipe(ct, pt_len + TSEAL_AEAD_TAG_BYTES);
    return rc;
}

int tseal_aesgcm_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                         const uint8_t key[TSEAL_SYM_KEY_BYTES]) {
    if (!ct || !nonce || !key) return tseal_err(TSEAL_E_INVAL, "AES-GCM: NULL argument");
    if (ct_len < TSEAL_AEAD_TAG_BYTES)
        return tseal_err(TSEAL_E_CORRUPT,
                         "AES-GCM: ciphertext of %zu bytes is shorter than its tag", ct_len);
    size_t pt_len = ct_len - TSEAL_AEAD_TAG_BYTES;
    if (pt_len > GCM_MAX_PT)
        return tseal_err(TSEAL_E_LIMIT, "AES-GCM: message of %zu bytes is too long", pt_len);
    if ((!pt && pt_len) || (!ad && ad_len))
        return tseal_err(TSEAL_E_INVAL, "AES-GCM: NULL input with a non-zero length");
    if (overlap(pt, pt_len, ct, ct_len))
        return tseal_err(TSEAL_E_INVAL, "AES-GCM: plaintext and ciphertext buffers overlap");
    uint8_t tag[TSEAL_AEAD_TAG_BYTES];
    memcpy(tag, ct + pt_len, sizeof tag);
    int rc = gcm_run(0, pt, ct, pt_len, ad, ad_len, nonce, key, tag);
    if (rc && pt_len) tseal_wipe(pt, pt_len); /* nothing is released on a bad tag */
    return rc;
}

/* ---- P-256 EVP_PKEY helpers ---------------------------------------------------------------- */

void tseal_p256_key_id(const uint8_t pk[TSEAL_P256_PK_BYTES], uint8_t id[TSEAL_KEY_ID_BYTES]) {
    (void)tseal_key_id_len(TSEAL_ALG_P256, pk, TSEAL_P256_PK_BYTES, id);
}

static int pkey_public_check(EVP_PKEY *pkey, const char *what) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx) return tseal_ossl_err("EVP_PKEY_CTX_new_from_pkey");
    int ok = EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    if (ok != 1) {
        ERR_clear_error();
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s is not a valid P-256 public key (not on the curve, or the point at "
                         "infinity)",
                         what);
    }
    return 0;
}

int tseal_p256_pkey_from_point(const uint8_t pk[TSEAL_P256_PK_BYTES], const char *what,
                               EVP_PKEY **out) {
    *out = NULL;
    if (pk[0] != 0x04)
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s is not a valid P-256 point (not uncompressed: first byte 0x%02x)",
                         what, pk[0]);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx) return tseal_ossl_err("EVP_PKEY_CTX_new_from_name(EC)");
    OSSL_PARAM params[3] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)TSEAL_P256_GROUP, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pk, TSEAL_P256_PK_BYTES),
        OSSL_PARAM_construct_end()};
    EVP_PKEY *pkey = NULL;
    int rc = 0;
    if (EVP_PKEY_fromdata_init(ctx) != 1) {
        rc = tseal_ossl_err("EVP_PKEY_fromdata_init(EC)");
    } else if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        ERR_clear_error(); /* EC_POINT_oct2point refuses coordinates >= p and points off the curve
                            */
        rc = tseal_err(TSEAL_E_CORRUPT, "%s is not a valid P-256 point (not on the curve)", what);
    } else {
        rc = pkey_public_check(pkey, what);
    }
    EVP_PKEY_CTX_free(ctx);
    if (rc) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    *out = pkey;
    return 0;
}

/* The scalar in the native byte order of OSSL_PARAM integers. */
static void scalar_native(uint8_t dst[TSEAL_P256_SK_BYTES],
                          const uint8_t src[TSEAL_P256_SK_BYTES]) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    memcpy(dst, src, TSEAL_P256_SK_BYTES);
#else
    for (int i = 0; i < TSEAL_P256_SK_BYTES; i++) dst[i] = src[TSEAL_P256_SK_BYTES - 1 - i];
#endif
}

/* A key-pair EVP_PKEY for a P-256 secret key (scalar + point). */
static int pkey_from_seckey(const tseal_seckey *sk, EVP_PKEY **out) {
    *out = NULL;
    uint8_t *nat = tseal_secure_alloc(TSEAL_P256_SK_BYTES);
    if (!nat) return TSEAL_E_NOMEM;
    scalar_native(nat, sk->sk);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    int rc = 0;
    if (!ctx) {
        rc = tseal_ossl_err("EVP_PKEY_CTX_new_from_name(EC)");
    } else {
        OSSL_PARAM params[4] = {
            OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)TSEAL_P256_GROUP,
                                             0),
            OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)sk->pub.pk,
                                              TSEAL_P256_PK_BYTES),
            OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, nat, TSEAL_P256_SK_BYTES),
            OSSL_PARAM_construct_end()};
        if (EVP_PKEY_fromdata_init(ctx) != 1 ||
            EVP_PKEY_fromdata(ctx, out, EVP_PKEY_KEYPAIR, params) != 1)
            rc = tseal_ossl_err("P-256 secret key import");
        EVP_PKEY_CTX_free(ctx);
    }
    tseal_secure_free(nat);
    return rc;
}

static int pkey_scalar(EVP_PKEY *pkey, uint8_t sk[TSEAL_P256_SK_BYTES]) {
    uint8_t *nat = tseal_secure_alloc(TSEAL_P256_SK_BYTES);
    if (!nat) return TSEAL_E_NOMEM;
    memset(nat, 0, TSEAL_P256_SK_BYTES);
    OSSL_PARAM p[2] = {OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, nat, TSEAL_P256_SK_BYTES),
                       OSSL_PARAM_construct_end()};
    int rc = 0;
    if (EVP_PKEY_get_params(pkey, p) != 1 || !OSSL_PARAM_modified(p) ||
        p[0].return_size != TSEAL_P256_SK_BYTES)
        rc = tseal_ossl_err("P-256 private scalar export");
    else
        scalar_native(sk, nat); /* the same byte swap, the other way */
    tseal_secure_free(nat);
    return rc;
}

/* "EC" on the named curve P-256, or `code` naming what it is instead. */
static int pkey_is_p256(EVP_PKEY *pkey, int code, const char *what) {
    if (!pkey) return tseal_err(code, "%s is not P-256 (no usable public key)", what);
    if (!EVP_PKEY_is_a(pkey, "EC"))
        return tseal_err(code, "%s is not P-256 (it is %s)", what,
                         EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    char group[64] = "", enc[32] = "";
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &len) != 1) {
        ERR_clear_error();
        return tseal_err(code, "%s is not P-256 (an EC key without a named curve)", what);
    }
    if (strcmp(group, TSEAL_P256_GROUP) != 0)
        return tseal_err(code, "%s is not P-256 (it is EC %s)", what, group);
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING, enc, sizeof enc, &len) ==
            1 &&
        strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
        return tseal_err(code, "%s is not P-256 (explicit curve parameters, not the named curve)",
                         what);
    ERR_clear_error();
    return 0;
}

static int pkey_point(EVP_PKEY *pkey, uint8_t pk[TSEAL_P256_PK_BYTES]) {
    BIGNUM *x = NULL, *y = NULL;
    int rc = 0;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, pk + 1, P256_COORD) != P256_COORD ||
        BN_bn2binpad(y, pk + 1 + P256_COORD, P256_COORD) != P256_COORD)
        rc = tseal_ossl_err("P-256 public point export");
    else
        pk[0] = 0x04;
    BN_free(x);
    BN_free(y);
    if (rc) memset(pk, 0, TSEAL_P256_PK_BYTES);
    return rc;
}

int tseal_p256_pkey_point(EVP_PKEY *pkey, int code, const char *what,
                          uint8_t pk[TSEAL_P256_PK_BYTES]) {
    memset(pk, 0, TSEAL_P256_PK_BYTES);
    int rc = pkey_is_p256(pkey, code, what);
    if (!rc) rc = pkey_public_check(pkey, what);
    if (!rc) rc = pkey_point(pkey, pk);
    return rc;
}

/* The scalar is in [1, n-1] and the point is its multiple of G (EVP_PKEY_check). */
static int pkey_pair_check(EVP_PKEY *pkey) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx) return tseal_ossl_err("EVP_PKEY_CTX_new_from_pkey");
    int ok = EVP_PKEY_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    if (ok != 1) {
        ERR_clear_error();
        return tseal_err(TSEAL_E_CORRUPT,
                         "invalid P-256 key pair (the public key does not match the secret key)");
    }
    return 0;
}

/* ---- P-256 keys ----------------------------------------------------------------------------- */

static tseal_seckey *seckey_new(tseal_key_kind kind) {
    tseal_seckey *k = calloc(1, sizeof *k);
    if (!k) {
        tseal_err(TSEAL_E_NOMEM, "out of memory");
        return NULL;
    }
    k->sk = tseal_secure_alloc(TSEAL_P256_SK_BYTES);
    if (!k->sk) {
        free(k);
        return NULL;
    }
    k->pub.kind = kind;
    k->pub.alg = TSEAL_ALG_P256;
    return k;
}

static int kind_check(tseal_key_kind kind) {
    if (kind != TSEAL_KEY_SIGN && kind != TSEAL_KEY_RECIPIENT)
        return tseal_err(TSEAL_E_INVAL, "unknown key kind %d", (int)kind);
    return 0;
}

static bool is_p256_seckey(const tseal_seckey *sk, tseal_key_kind kind) {
    return sk && sk->sk && sk->pub.alg == TSEAL_ALG_P256 && sk->pub.kind == kind;
}

/* Scalar and point of a key pair into k, and its key id. */
static int seckey_fill(tseal_seckey *k, EVP_PKEY *pkey) {
    int rc = pkey_scalar(pkey, k->sk);
    if (!rc) rc = pkey_point(pkey, k->pub.pk);
    if (!rc) rc = tseal_key_id_len(TSEAL_ALG_P256, k->pub.pk, TSEAL_P256_PK_BYTES, k->pub.key_id);
    return rc;
}

int tseal_p256_keygen(tseal_key_kind kind, const char *name, tseal_seckey **out) {
    *out = NULL;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if ((rc = kind_check(kind)) != 0) return rc;
    if (!name) return tseal_err(TSEAL_E_INVAL, "a key needs a name");
    size_t nlen = strnlen(name, TSEAL_KEY_NAME_MAX);
    const char *p = tseal_key_name_problem(name, nlen);
    if (p) return tseal_err(TSEAL_E_INVAL, "key name %s", p);
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!pkey) return tseal_ossl_err("P-256 key generation");
    tseal_seckey *k = seckey_new(kind);
    rc = k ? seckey_fill(k, pkey) : TSEAL_E_NOMEM;
    EVP_PKEY_free(pkey);
    if (rc) {
        tseal_seckey_free(k);
        return rc;
    }
    memcpy(k->pub.name, name, nlen);
    *out = k;
    return 0;
}

/* ---- PEM files ---------------------------------------------------------------------------- */

#define PEM_FILE_MAX 65536 /* a P-256 key in PEM is < 1 KiB */
#define PEM_PASS_MAX 1023  /* OpenSSL hands the password callback a PEM_BUFSIZE (1024) buffer */
/* PBKDF2-HMAC-SHA256 iterations of an encrypted PKCS#8 key (OWASP 2023; SP 800-132 >= 1000);
 * TSEAL_PWHASH_INTERACTIVE=1 (tests) lowers them as it lowers Argon2id's cost in keys.c. */
#define PBKDF2_ITER             600000
#define PBKDF2_ITER_INTERACTIVE 10000
#define PBKDF2_SALT_BYTES       16 /* SP 800-132: at least 128 bits */

static int pbkdf2_iter(void) {
    const char *e = getenv("TSEAL_PWHASH_INTERACTIVE");
    return e && strcmp(e, "1") == 0 ? PBKDF2_ITER_INTERACTIVE : PBKDF2_ITER;
}

/* The label of the first PEM block ("PRIVATE KEY", "PUBLIC KEY", ...); 0 if there is none. */
static int pem_first_label(const uint8_t *b, size_t n, char *out, size_t cap) {
    static const char begin[] = "-----BEGIN ";
    const size_t bl = sizeof begin - 1;
    for (size_t i = 0; i + bl <= n; i++) {
        if (memcmp(b + i, begin, bl) != 0) continue;
        size_t j = i + bl, k = 0;
        while (j < n && b[j] != '-' && b[j] >= 0x20 && b[j] < 0x7F && k + 1 < cap)
            out[k++] = (char)b[j++];
        out[k] = 0;
        return j + 5 <= n && memcmp(b + j, "-----", 5) == 0;
    }
    return 0;
}

static bool mem_has(const uint8_t *b, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (b[i] == (uint8_t)needle[0] && memcmp(b + i, needle, k) == 0) return true;
    return false;
}

/* Name of a key read from `path`: the file name without its last extension. */
static void name_from_path(const char *path, char out[TSEAL_KEY_NAME_MAX]) {
    memset(out, 0, TSEAL_KEY_NAME_MAX);
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot > b) n = (size_t)(dot - b);
    if (n > TSEAL_KEY_NAME_MAX - 1) {
        n = TSEAL_KEY_NAME_MAX - 1; /* do not cut a UTF-8 sequence */
        while (n && ((uint8_t)b[n] & 0xC0) == 0x80) n--;
    }
    if (n == 0 || tseal_key_name_problem(b, n)) {
        memcpy(out, "p256", 4);
        return;
    }
    memcpy(out, b, n);
}

typedef struct {
    const char *pass;
    size_t len;
    int asked;
} pw_ctx;

/* Never NULL as a callback: OpenSSL's default one would prompt on the terminal. */
static int pw_cb(char *buf, int size, int rwflag, void *u) {
    (void)rwflag;
    pw_ctx *c = u;
    if (!c) return -1;
    c->asked = 1;
    if (!c->pass || c->len == 0 || size < 0 || c->len > (size_t)size) return -1;
    memcpy(buf, c->pass, c->len);
    return (int)c->len;
}

static int pass_check(const char *passphrase, size_t pass_len) {
    if (passphrase && pass_len == 0) return tseal_err(TSEAL_E_INVAL, "the passphrase is empty");
    if (!passphrase && pass_len) return tseal_err(TSEAL_E_INVAL, "passphrase is NULL");
    if (pass_len > PEM_PASS_MAX)
        return tseal_err(TSEAL_E_INVAL, "a PEM key's passphrase is at most %d bytes", PEM_PASS_MAX);
    return 0;
}

/* The PEM text of a secret key into a secure-memory BIO. */
static int seckey_pem(EVP_PKEY *pkey, const char *passphrase, size_t pass_len, BIO *bio) {
    if (!passphrase) {
        pw_ctx none = {NULL, 0, 0};
        if (PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, pw_cb, &none) != 1)
            return tseal_ossl_err("PEM_write_bio_PKCS8PrivateKey");
        return 0;
    }
    /* PBES2: PBKDF2-HMAC-SHA256 (our iteration count and a 16-byte salt; OpenSSL's default
     * would be 2048 iterations and an 8-byte salt) and AES-256-CBC with a random IV. */
    int rc = 0;
    uint8_t salt[PBKDF2_SALT_BYTES];
    EVP_CIPHER *cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_SIG *enc = NULL;
    if (!cbc) {
        rc = tseal_ossl_err("EVP_CIPHER_fetch(AES-256-CBC)");
    } else if ((rc = tseal_fips_random(salt, sizeof salt)) != 0) {
    } else if (!(p8 = EVP_PKEY2PKCS8(pkey))) {
        rc = tseal_ossl_err("EVP_PKEY2PKCS8");
    } else if (!(enc = PKCS8_encrypt_ex(-1, cbc, passphrase, (int)pass_len, salt, sizeof salt,
                                        pbkdf2_iter(), p8, NULL, NULL))) {
        rc = tseal_ossl_err("PKCS#8 encryption");
    } else if (PEM_write_bio_PKCS8(bio, enc) != 1) {
        rc = tseal_ossl_err("PEM_write_bio_PKCS8");
    }
    X509_SIG_free(enc);
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets */
    EVP_CIPHER_free(cbc);
    return rc;
}

static int bio_write_file(BIO *bio, const char *path, unsigned mode, int force) {
    BUF_MEM *bm = NULL;
    if (BIO_get_mem_ptr(bio, &bm) != 1 || !bm || !bm->data || bm->length == 0)
        return tseal_err(TSEAL_E_INTERNAL, "%s: no PEM text was produced", path);
    return tseal_key_file_write(path, bm->data, bm->length, mode, force);
}

int tseal_p256_seckey_write_pem(const tseal_seckey *sk, const char *path, const char *passphrase,
                                size_t pass_len, int force) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!path) return tseal_err(TSEAL_E_INVAL, "no path for the secret key");
    if (!sk || !sk->sk || sk->pub.alg != TSEAL_ALG_P256 || kind_check(sk->pub.kind))
        return tseal_err(TSEAL_E_INVAL, "%s: not a P-256 secret key", path);
    if ((rc = pass_check(passphrase, pass_len)) != 0) {
        tseal_err_context("%s: ", path);
        return rc;
    }
    EVP_PKEY *pkey = NULL;
    if ((rc = pkey_from_seckey(sk, &pkey)) == 0 && (rc = pkey_pair_check(pkey)) != 0)
        rc = rc == TSEAL_E_CORRUPT ? TSEAL_E_INVAL : rc;
    if (rc) {
        EVP_PKEY_free(pkey);
        tseal_err_context("%s: ", path);
        return rc;
    }
    BIO *bio = BIO_new(BIO_s_secmem()); /* cleared when freed or grown */
    if (!bio)
        rc = tseal_ossl_err("BIO_new");
    else if ((rc = seckey_pem(pkey, passphrase, pass_len, bio)) == 0)
        rc = bio_write_file(bio, path, 0600, force);
    else
        tseal_err_context("%s: ", path);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return rc;
}

int tseal_p256_pubkey_write_pem(const tseal_pubkey *pk, const char *path, int force) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!path) return tseal_err(TSEAL_E_INVAL, "no path for the public key");
    if (!pk || pk->alg != TSEAL_ALG_P256 || kind_check(pk->kind))
        return tseal_err(TSEAL_E_INVAL, "%s: not a P-256 public key", path);
    EVP_PKEY *pkey = NULL;
    if ((rc = tseal_p256_pkey_from_point(pk->pk, "public key", &pkey)) != 0) {
        tseal_err_context("%s: ", path);
        return rc == TSEAL_E_CORRUPT ? TSEAL_E_INVAL : rc;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio)
        rc = tseal_ossl_err("BIO_new");
    else if (PEM_write_bio_PUBKEY(bio, pkey) != 1)
        rc = tseal_ossl_err("PEM_write_bio_PUBKEY");
    else
        rc = bio_write_file(bio, path, 0644, force);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Reads a PEM file of at most PEM_FILE_MAX bytes into secure memory (it may be a secret). */
static int pem_file_read(const char *path, uint8_t **buf, size_t *len, unsigned *mode) {
    *buf = NULL;
    *len = 0;
    uint8_t *b = tseal_secure_alloc(PEM_FILE_MAX + 1);
    if (!b) return TSEAL_E_NOMEM;
    size_t got = 0;
    int rc = tseal_key_file_read(path, b, PEM_FILE_MAX + 1, &got, mode);
    if (!rc && got > PEM_FILE_MAX)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: larger than the %d-byte limit of a PEM key file", path,
                       PEM_FILE_MAX);
    if (!rc && got == 0) rc = tseal_err(TSEAL_E_CORRUPT, "%s: empty file, not a PEM key", path);
    if (rc) {
        tseal_secure_free(b);
        return rc;
    }
    *buf = b;
    *len = got;
    return 0;
}

int tseal_p256_seckey_read_pem(const char *path, const char *passphrase, size_t pass_len,
                               tseal_key_kind kind, tseal_seckey **out) {
    *out = NULL;
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if ((rc = kind_check(kind)) != 0) return rc;
    if ((rc = pass_check(passphrase, pass_len)) != 0) {
        tseal_err_context("%s: ", path);
        return rc;
    }
    uint8_t *buf;
    size_t len;
    unsigned mode = 0;
    if ((rc = pem_file_read(path, &buf, &len, &mode)) != 0) return rc;
    char label[64];
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    pw_ctx pw = {passphrase, pass_len, 0};
    if (!pem_first_label(buf, len, label, sizeof label)) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: not a PEM file (no \"-----BEGIN\" line)", path);
    } else if (!strstr(label, "PRIVATE KEY")) {
        rc = tseal_err(TSEAL_E_INVAL, "%s: not a PEM private key (it holds a %s)", path, label);
    } else if (mode & 077) {
        /* as keys.c: a secret key readable by group or others is refused, not used */
        rc = tseal_err(TSEAL_E_INVAL,
                       "%s: secret key file is accessible by group or others (mode %04o): "
                       "run chmod 600 %s",
                       path, mode, path);
    } else if (mem_has(buf, len, "Proc-Type: 4,ENCRYPTED")) {
        /* OpenSSL's legacy PEM encryption derives its key with MD5 (EVP_BytesToKey) */
        rc = tseal_err(TSEAL_E_UNSUPPORTED,
                       "%s: legacy PEM encryption (MD5 key derivation) is not supported; convert "
                       "the key to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc "
                       "-v2prf hmacWithSHA256)",
                       path);
    } else if (!(bio = BIO_new_mem_buf(buf, (int)len))) {
        rc = tseal_ossl_err("BIO_new_mem_buf");
    } else if (!(pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, pw_cb, &pw, NULL, NULL))) {
        if (pw.asked && !passphrase) {
            ERR_clear_error();
            rc = tseal_err(TSEAL_E_INVAL,
                           "%s: key is protected by a passphrase (use --passphrase-file)", path);
        } else if (pw.asked) {
            ERR_clear_error();
            rc = tseal_err(TSEAL_E_VERIFY, "%s: wrong passphrase (or the key file was modified)",
                           path);
        } else {
            rc = tseal_ossl_err("reading the PEM private key");
            tseal_err_context("%s: ", path);
            rc = TSEAL_E_CORRUPT;
        }
    }
    BIO_free(bio);
    tseal_secure_free(buf);
    tseal_seckey *k = NULL;
    if (!rc && (rc = pkey_is_p256(pkey, TSEAL_E_UNSUPPORTED, "key")) != 0)
        tseal_err_context("%s: ", path);
    if (!rc && (rc = pkey_pair_check(pkey)) != 0) tseal_err_context("%s: ", path);
    if (!rc) {
        k = seckey_new(kind);
        rc = k ? seckey_fill(k, pkey) : TSEAL_E_NOMEM;
    }
    EVP_PKEY_free(pkey);
    if (rc) {
        tseal_seckey_free(k);
        return rc;
    }
    name_from_path(path, k->pub.name);
    *out = k;
    return 0;
}

int tseal_p256_pubkey_read_pem(const char *path, tseal_key_kind kind, tseal_pubkey *out) {
    memset(out, 0, sizeof *out);
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if ((rc = kind_check(kind)) != 0) return rc;
    uint8_t *buf;
    size_t len;
    if ((rc = pem_file_read(path, &buf, &len, NULL)) != 0) return rc;
    char label[64];
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    pw_ctx none = {NULL, 0, 0};
    if (!pem_first_label(buf, len, label, sizeof label))
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: not a PEM file (no \"-----BEGIN\" line)", path);
    else if (strcmp(label, "PUBLIC KEY") != 0)
        rc = tseal_err(TSEAL_E_INVAL, "%s: not a PEM public key (it holds a %s)", path, label);
    else if (!(bio = BIO_new_mem_buf(buf, (int)len)))
        rc = tseal_ossl_err("BIO_new_mem_buf");
    else if (!(pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, pw_cb, &none, NULL, NULL))) {
        tseal_ossl_err("reading the PEM public key");
        tseal_err_context("%s: ", path);
        rc = TSEAL_E_CORRUPT;
    }
    BIO_free(bio);
    tseal_secure_free(buf);
    if (!rc && (rc = tseal_p256_pkey_point(pkey, TSEAL_E_UNSUPPORTED, "key", out->pk)) != 0)
        tseal_err_context("%s: ", path);
    EVP_PKEY_free(pkey);
    if (!rc) rc = tseal_key_id_len(TSEAL_ALG_P256, out->pk, TSEAL_P256_PK_BYTES, out->key_id);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    out->kind = kind;
    out->alg = TSEAL_ALG_P256;
    name_from_path(path, out->name);
    return 0;
}

int tseal_file_is_pem(const char *path) {
    static const char begin[] = "-----BEGIN ";
    char b[sizeof begin - 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) return 0; /* the key reader says so */
    if (fd < 0) return tseal_err(TSEAL_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = 0;
    while (n < sizeof b) {
        ssize_t r = read(fd, b + n, sizeof b - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno != EISDIR) { /* a directory: the key reader says so */
            int e = errno;
            close(fd);
            return tseal_err(TSEAL_E_IO, "%s: read: %s", path, strerror(e));
        }
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    return n == sizeof b && memcmp(b, begin, sizeof b) == 0;
}

/* ---- ECDH key wrapping ---------------------------------------------------------------------- */

#define WRAP_INFO "tseal v1 p256 wrap"

typedef struct {
    uint8_t shared[P256_COORD];
    uint8_t wrap_key[TSEAL_SYM_KEY_BYTES];
} wrap_secrets;

static const uint8_t zero_nonce[TSEAL_AEAD_NONCE_BYTES];

/* shared = x-coordinate of own * peer (the peer point is validated again by OpenSSL). */
static int ecdh(EVP_PKEY *own, EVP_PKEY *peer, uint8_t shared[P256_COORD]) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    size_t len = P256_COORD;
    int rc = 0;
    if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) != 1 ||
        EVP_PKEY_derive(ctx, shared, &len) != 1 || len != P256_COORD) {
        tseal_wipe(shared, P256_COORD);
        rc = tseal_ossl_err("ECDH P-256");
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* wrap key = HKDF-SHA256(ikm = shared, salt = eph_pk || recipient_pk, info = WRAP_INFO) */
static int wrap_key_derive(wrap_secrets *s, const uint8_t eph_pk[TSEAL_P256_PK_BYTES],
                           const uint8_t recipient_pk[TSEAL_P256_PK_BYTES]) {
    uint8_t salt[2 * TSEAL_P256_PK_BYTES];
    memcpy(salt, eph_pk, TSEAL_P256_PK_BYTES);
    memcpy(salt + TSEAL_P256_PK_BYTES, recipient_pk, TSEAL_P256_PK_BYTES);
    return tseal_hkdf_sha256(s->shared, sizeof s->shared, salt, sizeof salt,
                             (const uint8_t *)WRAP_INFO, sizeof WRAP_INFO - 1, s->wrap_key,
                             sizeof s->wrap_key);
}

int tseal_p256_wrap(const uint8_t recipient_pk[TSEAL_P256_PK_BYTES], const uint8_t *ad,
                    size_t ad_len, const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                    uint8_t eph_pk[TSEAL_P256_PK_BYTES], uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!ad && ad_len) return tseal_err(TSEAL_E_INVAL, "P-256 wrap: NULL additional data");
    EVP_PKEY *rpk = NULL, *eph = NULL;
    wrap_secrets *s = NULL;
    if ((rc = tseal_p256_pkey_from_point(recipient_pk, "recipient public key", &rpk)) != 0) {
    } else if (!(eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
        rc = tseal_ossl_err("P-256 ephemeral key generation");
    } else if ((rc = pkey_point(eph, eph_pk)) != 0) {
    } else if (!(s = tseal_secure_alloc(sizeof *s))) {
        rc = TSEAL_E_NOMEM;
    } else if ((rc = ecdh(eph, rpk, s->shared)) == 0 &&
               (rc = wrap_key_derive(s, eph_pk, recipient_pk)) == 0) {
        rc = tseal_aesgcm_encrypt(wrapped, content_key, TSEAL_SYM_KEY_BYTES, ad, ad_len, zero_nonce,
                                  s->wrap_key);
    }
    tseal_secure_free(s); /* wipes shared, wrap_key */
    EVP_PKEY_free(eph);   /* clears the ephemeral scalar */
    EVP_PKEY_free(rpk);
    if (rc) {
        tseal_wipe(eph_pk, TSEAL_P256_PK_BYTES);
        tseal_wipe(wrapped, TSEAL_WRAPPED_KEY_BYTES);
    }
    return rc;
}

int tseal_p256_unwrap(const tseal_seckey *recipient, const uint8_t eph_pk[TSEAL_P256_PK_BYTES],
                      const uint8_t *ad, size_t ad_len,
                      const uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES],
                      uint8_t content_key[TSEAL_SYM_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) {
        tseal_wipe(content_key, TSEAL_SYM_KEY_BYTES);
        return rc;
    }
    if (!is_p256_seckey(recipient, TSEAL_KEY_RECIPIENT)) {
        tseal_wipe(content_key, TSEAL_SYM_KEY_BYTES);
        return tseal_err(TSEAL_E_INVAL, "unwrapping needs a P-256 recipient key");
    }
    if (!ad && ad_len) {
        tseal_wipe(content_key, TSEAL_SYM_KEY_BYTES);
        return tseal_err(TSEAL_E_INVAL, "P-256 unwrap: NULL additional data");
    }
    EVP_PKEY *epk = NULL, *own = NULL;
    wrap_secrets *s = NULL;
    if ((rc = tseal_p256_pkey_from_point(eph_pk, "key stanza: ephemeral key", &epk)) != 0) {
    } else if ((rc = pkey_from_seckey(recipient, &own)) != 0) {
    } else if (!(s = tseal_secure_alloc(sizeof *s))) {
        rc = TSEAL_E_NOMEM;
    } else if ((rc = ecdh(own, epk, s->shared)) == 0 &&
               (rc = wrap_key_derive(s, eph_pk, recipient->pub.pk)) == 0) {
        rc = tseal_aesgcm_decrypt(content_key, wrapped, TSEAL_WRAPPED_KEY_BYTES, ad, ad_len,
                                  zero_nonce, s->wrap_key);
        if (rc == TSEAL_E_VERIFY) tseal_err(TSEAL_E_VERIFY, "key stanza is not for this recipient");
    }
    tseal_secure_free(s);
    EVP_PKEY_free(own);
    EVP_PKEY_free(epk);
    if (rc) tseal_wipe(content_key, TSEAL_SYM_KEY_BYTES);
    return rc;
}

/* ---- ECDSA -------------------------------------------------------------------------------- */

#define ECDSA_DER_MAX 80 /* SEQUENCE { INTEGER r, INTEGER s } of P-256: at most 72 bytes */

/* 1 if the 32-byte big-endian value is in [1, n-1]. Public data: no constant time needed. */
static bool in_scalar_range(const uint8_t v[P256_COORD]) {
    return !tseal_all_zero(v, P256_COORD) && memcmp(v, p256_order, P256_COORD) < 0;
}

int tseal_p256_sign(const tseal_seckey *sk, const char *payload_type,
                    const uint8_t digest[TSEAL_HASH_BYTES], uint8_t sig[TSEAL_ECDSA_SIG_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!is_p256_seckey(sk, TSEAL_KEY_SIGN))
        return tseal_err(TSEAL_E_INVAL, "signing needs a P-256 signing key");
    uint8_t msg[TSEAL_SIG_MSG_MAX], der[ECDSA_DER_MAX];
    size_t mlen = tseal_sig_message(payload_type, digest, msg), dlen = sizeof der;
    if (!mlen) return TSEAL_E_INVAL;
    EVP_PKEY *pkey = NULL;
    if ((rc = pkey_from_seckey(sk, &pkey)) != 0) return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    if (!md || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1 ||
        EVP_DigestSign(md, der, &dlen, msg, mlen) != 1) {
        rc = tseal_ossl_err("ECDSA P-256 signing");
    } else {
        const uint8_t *p = der;
        const BIGNUM *r = NULL, *s = NULL;
        if (!(es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) || p != der + dlen) {
            rc = tseal_ossl_err("ECDSA signature decoding");
        } else {
            ECDSA_SIG_get0(es, &r, &s);
            if (BN_bn2binpad(r, sig, P256_COORD) != P256_COORD ||
                BN_bn2binpad(s, sig + P256_COORD, P256_COORD) != P256_COORD)
                rc = tseal_err(TSEAL_E_CRYPTO, "ECDSA signature: r or s longer than 32 bytes");
        }
    }
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    if (rc) tseal_wipe(sig, TSEAL_ECDSA_SIG_BYTES);
    return rc;
}

int tseal_p256_verify(const uint8_t pk[TSEAL_P256_PK_BYTES], const char *payload_type,
                      const uint8_t digest[TSEAL_HASH_BYTES],
                      const uint8_t sig[TSEAL_ECDSA_SIG_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    uint8_t msg[TSEAL_SIG_MSG_MAX], der[ECDSA_DER_MAX];
    size_t mlen = tseal_sig_message(payload_type, digest, msg);
    if (!mlen) return TSEAL_E_INVAL;
    if (!in_scalar_range(sig) || !in_scalar_range(sig + P256_COORD))
        return tseal_err(TSEAL_E_VERIFY, "bad signature (payload type \"%s\"): r or s out of range",
                         payload_type);
    EVP_PKEY *pkey = NULL;
    if ((rc = tseal_p256_pkey_from_point(pk, "signer public key", &pkey)) != 0) return rc;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, P256_COORD, NULL),
           *s = BN_bin2bn(sig + P256_COORD, P256_COORD, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int dlen = -1;
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        rc = tseal_ossl_err("ECDSA signature encoding");
    } else if ((dlen = i2d_ECDSA_SIG(es, NULL)) <= 0 || dlen > (int)sizeof der) {
        rc = tseal_ossl_err("ECDSA signature encoding");
    } else {
        uint8_t *p = der;
        if (i2d_ECDSA_SIG(es, &p) != dlen) {
            rc = tseal_ossl_err("ECDSA signature encoding");
        } else if (!md ||
                   EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1) {
            rc = tseal_ossl_err("ECDSA P-256 verification");
        } else if (EVP_DigestVerify(md, der, (size_t)dlen, msg, mlen) != 1) {
            ERR_clear_error();
            rc = tseal_err(TSEAL_E_VERIFY, "bad signature (payload type \"%s\")", payload_type);
        }
    }
    EVP_MD_CTX_free(md);
    ECDSA_SIG_free(es); /* frees r and s once set */
    EVP_PKEY_free(pkey);
    return rc;
}
