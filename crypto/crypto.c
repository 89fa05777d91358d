/*
 * crypto.c - initialisation, secure memory, randomness, SHA-256 and HKDF-SHA256 (OpenSSL EVP),
 * ChaCha20-Poly1305-IETF (libsodium). No primitive is implemented here.
 */
#include <pthread.h>
#include <stdlib.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <sodium.h>

#include "crypto_internal.h"
#include "internal.h"

/* ---- init ---------------------------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_result = -1;

static void init_run(void) {
    init_result = sodium_init() < 0 ? -1 : 0; /* 1 = already initialised: fine */
}

int tseal_crypto_init(void) {
    if (pthread_once(&init_once, init_run) != 0 || init_result != 0)
        return tseal_err(TSEAL_E_CRYPTO, "libsodium initialisation failed");
    return 0;
}

int tseal_ossl_err(const char *what) {
    char buf[256];
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        snprintf(buf, sizeof buf, "no OpenSSL error recorded");
    ERR_clear_error();
    return tseal_err(TSEAL_E_CRYPTO, "%s failed: %s", what, buf);
}

/* ---- secure memory -------------------------------------------------------------------- */

/*
 * sodium_malloc (libsodium 1.0.18) maps the region with mmap between two PROT_NONE guard
 * pages, puts a canary in front of it, fills it with 0xdb, applies madvise(MADV_DONTDUMP) and
 * then mlock()s it -- ignoring mlock's result. So when the lock fails (RLIMIT_MEMLOCK, 8 MiB
 * here, without CAP_IPC_LOCK) the allocation still succeeds: the pages are guarded and kept
 * out of core dumps but may be swapped. That is what lets the same allocator hold the large
 * plaintext buffers (hundreds of MB); the tests check a 64 MiB allocation under a 1 MiB lock
 * limit. sodium_free checks the canary, wipes (munlock zeroes) and unmaps.
 *
 * The user pointer sits right before the trailing guard page, so its alignment is that of
 * the size: we round n up to a multiple of 16 (max_align_t) so any object type can live in
 * it. The guard page therefore catches overruns past the rounded size.
 */
void *tseal_secure_alloc(size_t n) {
    if (tseal_crypto_init() != 0) return NULL;
    if (n > SIZE_MAX - 64) {
        tseal_err(TSEAL_E_NOMEM, "secure allocation of %zu bytes: too large", n);
        return NULL;
    }
    size_t rounded = (n + 15) & ~(size_t)15;
    void *p = sodium_malloc(rounded ? rounded : 16);
    if (!p) tseal_err(TSEAL_E_NOMEM, "secure allocation of %zu bytes failed", n);
    return p;
}

void tseal_secure_free(void *p) {
    sodium_free(p); /* NULL is fine; wipes */
}

void tseal_wipe(void *p, size_t n) {
    if (p && n) sodium_memzero(p, n);
}

int tseal_equal(const void *a, const void *b, size_t n) {
    if (n == 0) return 1;
    return sodium_memcmp(a, b, n) == 0;
}

/* ---- randomness ----------------------------------------------------------------------- */

void tseal_random(tseal_rng *rng, void *buf, size_t n) {
    /* Without libsodium there is no safe way to return: never hand out unrandom bytes. */
    if (tseal_crypto_init() != 0) abort();
    if (!rng) {
        if (n) randombytes_buf(buf, n);
        return;
    }
    /* seed' = BLAKE2b-256("tseal rng" || seed || counter (u64 LE)); one stream per call. */
    static const char dom[] = "tseal rng";
    uint8_t ctr[8], seed2[randombytes_SEEDBYTES];
    tseal_store_le64(ctr, rng->counter);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof seed2);
    crypto_generichash_update(&st, (const uint8_t *)dom, sizeof dom - 1);
    crypto_generichash_update(&st, rng->seed, sizeof rng->seed);
    crypto_generichash_update(&st, ctr, sizeof ctr);
    crypto_generichash_final(&st, seed2, sizeof seed2);
    if (n) randombytes_buf_deterministic(buf, n, seed2);
    rng->counter++;
    sodium_memzero(seed2, sizeof seed2);
    sodium_memzero(&st, sizeof st);
}

/* ---- SHA-256 -------------------------------------------------------------------------- */

struct tseal_sha256_ctx {
    EVP_MD_CTX *md;
};

int tseal_sha256(const void *p, size_t n, uint8_t out[TSEAL_HASH_BYTES]) {
    unsigned int len = 0;
    if (EVP_Digest(n ? p : "", n, out, &len, EVP_sha256(), NULL) != 1)
        return tseal_ossl_err("SHA-256");
    if (len != TSEAL_HASH_BYTES) return tseal_err(TSEAL_E_CRYPTO, "SHA-256 returned %u bytes", len);
    return 0;
}

int tseal_sha256_new(tseal_sha256_ctx **ctx) {
    *ctx = NULL;
    tseal_sha256_ctx *c = calloc(1, sizeof *c);
    if (!c) return tseal_err(TSEAL_E_NOMEM, "SHA-256 context: out of memory");
    c->md = EVP_MD_CTX_new();
    if (!c->md) {
        free(c);
        return tseal_ossl_err("EVP_MD_CTX_new");
    }
    if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        int rc = tseal_ossl_err("SHA-256 init");
        tseal_sha256_free(c);
        return rc;
    }
    *ctx = c;
    return 0;
}

int tseal_sha256_update(tseal_sha256_ctx *ctx, const void *p, size_t n) {
    if (n == 0) return 0;
    if (EVP_DigestUpdate(ctx->md, p, n) != 1) return tseal_ossl_err("SHA-256 update");
    return 0;
}

int tseal_sha256_final(tseal_sha256_ctx *ctx, uint8_t out[TSEAL_HASH_BYTES]) {
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx->md, out, &len) != 1) return tseal_ossl_err("SHA-256 final");
    if (EVP_DigestInit_ex(ctx->md, EVP_sha256(), NULL) != 1) return tseal_ossl_err("SHA-256 reset");
    if (len != TSEAL_HASH_BYTES) return tseal_err(TSEAL_E_CRYPTO, "SHA-256 returned %u bytes", len);
    return 0;
}

void tseal_sha256_free(tseal_sha256_ctx *ctx) {
    if (!ctx) return;
    EVP_MD_CTX_free(ctx->md);
    free(ctx);
}

/* ---- HKDF-SHA256 ---------------------------------------------------------------------- */

/*
 * OpenSSL copies the IKM into its own heap and clears it when the context is freed
 * (OPENSSL_clear_free), so no secret outlives the call.
 */
int tseal_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len) {
    if (out_len == 0 || out_len > 255u * TSEAL_HASH_BYTES)
        return tseal_err(TSEAL_E_INVAL, "HKDF-SHA256: output length %zu not in 1..%u", out_len,
                         255u * TSEAL_HASH_BYTES);
    if ((!ikm && ikm_len) || (!salt && salt_len) || (!info && info_len))
        return tseal_err(TSEAL_E_INVAL, "HKDF-SHA256: NULL input with a non-zero length");
    static uint8_t empty[1];
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    if (!kdf) return tseal_ossl_err("EVP_KDF_fetch(HKDF)");
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (!kctx) return tseal_ossl_err("EVP_KDF_CTX_new(HKDF)");
    OSSL_PARAM params[5], *p = params;
    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm_len ? (void *)ikm : empty,
                                             ikm_len);
    /* an absent salt is HashLen zero bytes, which HMAC treats like the empty key: same result */
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    *p = OSSL_PARAM_construct_end();
    int rc = 0;
    if (EVP_KDF_derive(kctx, out, out_len, params) != 1) {
        sodium_memzero(out, out_len);
        rc = tseal_ossl_err("HKDF-SHA256 derive");
    }
    EVP_KDF_CTX_free(kctx);
    return rc;
}

/* ---- AEAD ----------------------------------------------------------------------------- */

static bool overlap(const void *a, size_t an, const void *b, size_t bn) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return an && bn && x < y + bn && y < x + an;
}

int tseal_aead_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len, const uint8_t *ad,
                       size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                       const uint8_t key[TSEAL_SYM_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (pt_len > crypto_aead_chacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return tseal_err(TSEAL_E_LIMIT, "AEAD: message of %zu bytes is too long", pt_len);
    if ((!pt && pt_len) || (!ad && ad_len))
        return tseal_err(TSEAL_E_INVAL, "AEAD: NULL input with a non-zero length");
    if (overlap(ct, pt_len + TSEAL_AEAD_TAG_BYTES, pt, pt_len))
        return tseal_err(TSEAL_E_INVAL, "AEAD: plaintext and ciphertext buffers overlap");
    unsigned long long clen = 0;
    if (crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, pt, pt_len, ad, ad_len, NULL, nonce,
                                                  key) != 0 ||
        clen != (unsigned long long)pt_len + TSEAL_AEAD_TAG_BYTES)
        return tseal_err(TSEAL_E_CRYPTO, "AEAD encryption failed");
    return 0;
}

int tseal_aead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len, const uint8_t *ad,
                       size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                       const uint8_t key[TSEAL_SYM_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (ct_len < TSEAL_AEAD_TAG_BYTES)
        return tseal_err(TSEAL_E_CORRUPT, "AEAD: ciphertext of %zu bytes is shorter than its tag",
                         ct_len);
    size_t pt_len = ct_len - TSEAL_AEAD_TAG_BYTES;
    if (!ad && ad_len) return tseal_err(TSEAL_E_INVAL, "AEAD: NULL input with a non-zero length");
    if (overlap(pt, pt_len, ct, ct_len))
        return tseal_err(TSEAL_E_INVAL, "AEAD: plaintext and ciphertext buffers overlap");
    unsigned long long mlen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(pt, &mlen, NULL, ct, ct_len, ad, ad_len, nonce,
                                                  key) != 0) {
        if (pt_len) sodium_memzero(pt, pt_len);
        return tseal_err(TSEAL_E_VERIFY, "authentication failed");
    }
    return 0;
}

/* ---- signatures ----------------------------------------------------------------------- */

#define SIG_DOMAIN      "TSEAL-SIG-V1"
#define SIG_TYPE_MAX    64
#define SIG_MSG_MAX_LEN (sizeof SIG_DOMAIN + SIG_TYPE_MAX + 1 + TSEAL_HASH_BYTES)

/* "TSEAL-SIG-V1" 0x00 payload_type 0x00 digest; returns its length or 0 (error recorded). */
static size_t sig_message(const char *payload_type, const uint8_t digest[TSEAL_HASH_BYTES],
                          uint8_t msg[SIG_MSG_MAX_LEN]) {
    if (!payload_type || !payload_type[0]) {
        tseal_err(TSEAL_E_INVAL, "signature payload type is empty");
        return 0;
    }
    size_t tlen = strnlen(payload_type, SIG_TYPE_MAX + 1);
    if (tlen > SIG_TYPE_MAX) {
        tseal_err(TSEAL_E_INVAL, "signature payload type is longer than %d bytes", SIG_TYPE_MAX);
        return 0;
    }
    for (size_t i = 0; i < tlen; i++) {
        uint8_t c = (uint8_t)payload_type[i];
        if (c < 0x20 || c > 0x7E) {
            tseal_err(TSEAL_E_INVAL,
                      "signature payload type has a non-printable byte 0x%02x at offset %zu", c, i);
            return 0;
        }
    }
    size_t k = 0;
    memcpy(msg, SIG_DOMAIN, sizeof SIG_DOMAIN); /* with its NUL */
    k += sizeof SIG_DOMAIN;
    memcpy(msg + k, payload_type, tlen);
    k += tlen;
    msg[k++] = 0;
    memcpy(msg + k, digest, TSEAL_HASH_BYTES);
    return k + TSEAL_HASH_BYTES;
}

_Static_assert(TSEAL_SIG_MSG_MAX == SIG_MSG_MAX_LEN, "crypto_internal.h: TSEAL_SIG_MSG_MAX");

size_t tseal_sig_message(const char *payload_type, const uint8_t digest[TSEAL_HASH_BYTES],
                         uint8_t msg[TSEAL_SIG_MSG_MAX]) {
    return sig_message(payload_type, digest, msg);
}

int tseal_sign(const tseal_seckey *sk, const char *payload_type,
               const uint8_t digest[TSEAL_HASH_BYTES], uint8_t sig[TSEAL_SIG_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!sk || !sk->sk || sk->pub.kind != TSEAL_KEY_SIGN || sk->pub.alg != TSEAL_ALG_ED25519)
        return tseal_err(TSEAL_E_INVAL, "signing needs an Ed25519 signing key");
    uint8_t msg[SIG_MSG_MAX_LEN];
    size_t mlen = sig_message(payload_type, digest, msg);
    if (!mlen) return TSEAL_E_INVAL;
    if (crypto_sign_detached(sig, NULL, msg, mlen, sk->sk) != 0)
        return tseal_err(TSEAL_E_CRYPTO, "Ed25519 signing failed");
    return 0;
}

int tseal_sign_verify(const uint8_t pk[TSEAL_PK_BYTES], const char *payload_type,
                      const uint8_t digest[TSEAL_HASH_BYTES], const uint8_t sig[TSEAL_SIG_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    uint8_t msg[SIG_MSG_MAX_LEN];
    size_t mlen = sig_message(payload_type, digest, msg);
    if (!mlen) return TSEAL_E_INVAL;
    if (crypto_sign_verify_detached(sig, msg, mlen, pk) != 0)
        return tseal_err(TSEAL_E_VERIFY, "bad signature (payload type \"%s\")", payload_type);
    return 0;
}

/* ---- X25519 key wrapping -------------------------------------------------------------- */

#define WRAP_INFO "tseal v1 x25519 wrap"

typedef struct {
    uint8_t esk[crypto_scalarmult_SCALARBYTES];
    uint8_t shared[crypto_scalarmult_BYTES];
    uint8_t wrap_key[TSEAL_SYM_KEY_BYTES];
} wrap_secrets;

/* wrap key = HKDF-SHA256(ikm = shared, salt = eph_pk || recipient_pk, info = WRAP_INFO) */
static int wrap_key_derive(wrap_secrets *s, const uint8_t eph_pk[TSEAL_PK_BYTES],
                           const uint8_t recipient_pk[TSEAL_PK_BYTES]) {
    uint8_t salt[2 * TSEAL_PK_BYTES];
    memcpy(salt, eph_pk, TSEAL_PK_BYTES);
    memcpy(salt + TSEAL_PK_BYTES, recipient_pk, TSEAL_PK_BYTES);
    return tseal_hkdf_sha256(s->shared, sizeof s->shared, salt, sizeof salt,
                             (const uint8_t *)WRAP_INFO, sizeof WRAP_INFO - 1, s->wrap_key,
                             sizeof s->wrap_key);
}

static const uint8_t zero_nonce[TSEAL_AEAD_NONCE_BYTES];

int tseal_x25519_wrap(const uint8_t recipient_pk[TSEAL_PK_BYTES], const uint8_t *ad, size_t ad_len,
                      const uint8_t content_key[TSEAL_SYM_KEY_BYTES], tseal_rng *rng,
                      uint8_t eph_pk[TSEAL_PK_BYTES], uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    wrap_secrets *s = tseal_secure_alloc(sizeof *s);
    if (!s) return TSEAL_E_NOMEM;
    tseal_random(rng, s->esk, sizeof s->esk);
    if (crypto_scalarmult_base(eph_pk, s->esk) != 0) {
        rc = tseal_err(TSEAL_E_CRYPTO, "X25519: ephemeral key generation failed");
    } else if (crypto_scalarmult(s->shared, s->esk, recipient_pk) != 0) {
        rc = tseal_err(TSEAL_E_CORRUPT,
                       "recipient public key is a low-order point (all-zero shared secret)");
    } else {
        rc = wrap_key_derive(s, eph_pk, recipient_pk);
        if (!rc)
            rc = tseal_aead_encrypt(wrapped, content_key, TSEAL_SYM_KEY_BYTES, ad, ad_len,
                                    zero_nonce, s->wrap_key);
    }
    tseal_secure_free(s); /* wipes esk, shared, wrap_key */
    if (rc) {
        sodium_memzero(eph_pk, TSEAL_PK_BYTES);
        sodium_memzero(wrapped, TSEAL_WRAPPED_KEY_BYTES);
    }
    return rc;
}

int tseal_x25519_unwrap(const tseal_seckey *recipient, const uint8_t eph_pk[TSEAL_PK_BYTES],
                        const uint8_t *ad, size_t ad_len,
                        const uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES],
                        uint8_t content_key[TSEAL_SYM_KEY_BYTES]) {
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if (!recipient || !recipient->sk || recipient->pub.kind != TSEAL_KEY_RECIPIENT ||
        recipient->pub.alg != TSEAL_ALG_X25519) {
        sodium_memzero(content_key, TSEAL_SYM_KEY_BYTES);
        return tseal_err(TSEAL_E_INVAL, "unwrapping needs an X25519 recipient key");
    }
    wrap_secrets *s = tseal_secure_alloc(sizeof *s);
    if (!s) {
        sodium_memzero(content_key, TSEAL_SYM_KEY_BYTES);
        return TSEAL_E_NOMEM;
    }
    if (crypto_scalarmult(s->shared, recipient->sk, eph_pk) != 0) {
        rc = tseal_err(TSEAL_E_CORRUPT,
                       "key stanza: ephemeral key is a low-order point (all-zero shared secret)");
    } else {
        rc = wrap_key_derive(s, eph_pk, recipient->pub.pk);
        if (!rc) {
            rc = tseal_aead_decrypt(content_key, wrapped, TSEAL_WRAPPED_KEY_BYTES, ad, ad_len,
                                    zero_nonce, s->wrap_key);
            if (rc == TSEAL_E_VERIFY)
                tseal_err(TSEAL_E_VERIFY, "key stanza is not for this recipient");
        }
    }
    tseal_secure_free(s);
    if (rc) sodium_memzero(content_key, TSEAL_SYM_KEY_BYTES);
    return rc;
}
