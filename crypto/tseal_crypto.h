/*
 * tseal_crypto.h - the only door to cryptography in tseal: thin wrappers over libsodium
 * (Ed25519, X25519, ChaCha20-Poly1305-IETF, Argon2id, secure memory) and OpenSSL libcrypto
 * (SHA-256, HKDF-SHA256). Nothing here implements a primitive; it fixes how tseal uses them
 * (domain separation, key ids, key files, zero-secret checks) in one place.
 *
 * Conventions: 0 / negative TSEAL_E_* with a message (tseal_err); TSEAL_E_VERIFY for any
 * authentication failure (bad signature, bad tag, wrong passphrase, stanza not for this key);
 * secrets live in tseal_secure_alloc memory (locked, guard pages) and are wiped on every path.
 */
#ifndef TSEAL_CRYPTO_H
#define TSEAL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "tseal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSEAL_HASH_BYTES        32 /* SHA-256 */
#define TSEAL_KEY_ID_BYTES      16 /* first 16 bytes of SHA-256("tseal key id v1" || alg || pk) */
#define TSEAL_PK_BYTES          32 /* Ed25519 and X25519 public keys */
#define TSEAL_SIGN_SK_BYTES     64 /* libsodium Ed25519 secret key (seed || pk) */
#define TSEAL_X25519_SK_BYTES   32
#define TSEAL_SIG_BYTES         64
#define TSEAL_SYM_KEY_BYTES     32 /* content key, segment keys, wrap keys */
#define TSEAL_AEAD_NONCE_BYTES  12
#define TSEAL_AEAD_TAG_BYTES    16
#define TSEAL_WRAPPED_KEY_BYTES (TSEAL_SYM_KEY_BYTES + TSEAL_AEAD_TAG_BYTES)
#define TSEAL_KEY_NAME_MAX      64 /* bytes of a key's name, including the NUL */

/* Key algorithms (one byte, part of the key id derivation). */
#define TSEAL_ALG_ED25519   1
#define TSEAL_ALG_X25519    2
#define TSEAL_ALG_P256      3  /* ECDSA / ECDH on NIST P-256 (the FIPS suite, tseal_fips.h) */
#define TSEAL_P256_PK_BYTES 65 /* uncompressed SEC1 point 04 || X || Y */
#define TSEAL_PK_MAX_BYTES  TSEAL_P256_PK_BYTES

/* Initialise libsodium once (thread-safe, idempotent). Every entry point below calls it. */
int tseal_crypto_init(void);

/* ---- secure memory ------------------------------------------------------------------- */

/* Locked, guard-paged memory (sodium_malloc); NULL with a message on failure. */
void *tseal_secure_alloc(size_t n);
/* Wipes and frees (sodium_free); NULL is fine. */
void tseal_secure_free(void *p);
/* sodium_memzero. */
void tseal_wipe(void *p, size_t n);
/* Constant-time comparison: 1 if equal. */
int tseal_equal(const void *a, const void *b, size_t n);

/* ---- randomness ---------------------------------------------------------------------- */

/*
 * Random source. NULL means the system CSPRNG (randombytes_buf). A deterministic source
 * (for published test vectors only) expands `seed` with randombytes_buf_deterministic,
 * advancing `counter` on every call.
 */
typedef struct {
    uint8_t seed[32];
    uint64_t counter;
} tseal_rng;
void tseal_random(tseal_rng *rng, void *buf, size_t n);

/* ---- hashing and key derivation (OpenSSL EVP) ----------------------------------------- */

int tseal_sha256(const void *p, size_t n, uint8_t out[TSEAL_HASH_BYTES]);
typedef struct tseal_sha256_ctx tseal_sha256_ctx;
int tseal_sha256_new(tseal_sha256_ctx **ctx);
int tseal_sha256_update(tseal_sha256_ctx *ctx, const void *p, size_t n);
/* Writes the digest and resets the context for reuse. */
int tseal_sha256_final(tseal_sha256_ctx *ctx, uint8_t out[TSEAL_HASH_BYTES]);
void tseal_sha256_free(tseal_sha256_ctx *ctx);

/*
 * Tensor digest: SHA-256 tree over 1 MiB leaves (crypto/tree.c, docs/FORMAT.md 5.5), so
 * leaves can be hashed in parallel where the tensor is decoded. Streaming and one-shot
 * (parallel over `nthreads`, 0 = all CPUs) forms give the same root.
 */
#define TSEAL_TREE_LEAF (1u << 20)
typedef struct tseal_tree_ctx tseal_tree_ctx;
int tseal_tree_new(tseal_tree_ctx **ctx);
int tseal_tree_update(tseal_tree_ctx *ctx, const void *p, size_t n);
/* Writes the root and resets the context for the next tensor. */
int tseal_tree_final(tseal_tree_ctx *ctx, uint8_t out[TSEAL_HASH_BYTES]);
void tseal_tree_free(tseal_tree_ctx *ctx);
int tseal_tree_hash(const void *p, uint64_t n, unsigned nthreads, uint8_t out[TSEAL_HASH_BYTES]);

/* HKDF-SHA256 (RFC 5869) through OpenSSL's EVP_KDF; out_len <= 255 * 32. */
int tseal_hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                      const uint8_t *info, size_t info_len, uint8_t *out, size_t out_len);

/* ---- AEAD: ChaCha20-Poly1305 IETF (libsodium) ----------------------------------------- */

/* ct receives pt_len + TSEAL_AEAD_TAG_BYTES bytes; ct and pt may not overlap. */
int tseal_aead_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len, const uint8_t *ad,
                       size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                       const uint8_t key[TSEAL_SYM_KEY_BYTES]);
/* pt receives ct_len - TSEAL_AEAD_TAG_BYTES bytes (nothing is released if the tag fails:
 * pt is wiped and TSEAL_E_VERIFY returned). */
int tseal_aead_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len, const uint8_t *ad,
                       size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                       const uint8_t key[TSEAL_SYM_KEY_BYTES]);

/* ---- keys ----------------------------------------------------------------------------- */

typedef enum { TSEAL_KEY_SIGN = 1, TSEAL_KEY_RECIPIENT = 2 } tseal_key_kind;

typedef struct {
    tseal_key_kind kind;
    uint8_t alg; /* TSEAL_ALG_* */
    uint8_t key_id[TSEAL_KEY_ID_BYTES];
    uint8_t pk[TSEAL_PK_MAX_BYTES]; /* tseal_pk_len(alg) bytes are used */
    char name[TSEAL_KEY_NAME_MAX];
} tseal_pubkey;

/* Bytes of a public key of algorithm `alg`. */
static inline size_t tseal_pk_len(uint8_t alg) {
    return alg == TSEAL_ALG_P256 ? TSEAL_P256_PK_BYTES : TSEAL_PK_BYTES;
}

typedef struct {
    tseal_pubkey pub;
    uint8_t *sk; /* secure memory: TSEAL_SIGN_SK_BYTES or TSEAL_X25519_SK_BYTES */
} tseal_seckey;

/* key_id of a public key. */
void tseal_key_id(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES], uint8_t id[TSEAL_KEY_ID_BYTES]);
/* Lower-case hex of a key id (33 bytes with the NUL). */
void tseal_key_id_hex(const uint8_t id[TSEAL_KEY_ID_BYTES], char out[2 * TSEAL_KEY_ID_BYTES + 1]);

/* New key pair (Ed25519 for SIGN, X25519 for RECIPIENT); `name` is informational. */
int tseal_keygen(tseal_key_kind kind, const char *name, tseal_rng *rng, tseal_seckey **out);
void tseal_seckey_free(tseal_seckey *sk);

/*
 * Key files (format: docs/FORMAT.md, "Key files"). Public keys are small JSON documents;
 * secret keys are a fixed binary layout, optionally sealed with a passphrase
 * (Argon2id crypto_pwhash + XSalsa20-Poly1305 secretbox). Writers are atomic
 * (temp + rename); secret key files get mode 0600 and are never overwritten unless `force`.
 */
int tseal_pubkey_write(const tseal_pubkey *pk, const char *path, int force);
int tseal_seckey_write(const tseal_seckey *sk, const char *path, const char *passphrase,
                       size_t pass_len, int force);
int tseal_pubkey_read(const char *path, tseal_pubkey *out);
/* A protected key without a passphrase fails with TSEAL_E_INVAL and says which option to use;
 * a wrong passphrase gives TSEAL_E_VERIFY. */
int tseal_seckey_read(const char *path, const char *passphrase, size_t pass_len,
                      tseal_seckey **out);
/* Parsers over memory (fuzz targets). */
int tseal_pubkey_parse(const void *buf, size_t len, const char *label, tseal_pubkey *out);
int tseal_seckey_parse(const void *buf, size_t len, const char *label, const char *passphrase,
                       size_t pass_len, tseal_seckey **out);
/* First line of a file (trailing CR/LF removed) into secure memory; empty is an error. */
int tseal_passphrase_read(const char *path, char **pass, size_t *len);

/* Limits on the files read above (bigger ones are refused with TSEAL_E_LIMIT). */
#define TSEAL_PUBKEY_FILE_MAX     65536
#define TSEAL_PASSPHRASE_FILE_MAX 4096
/* The bytes of a public key file (pretty-printed JSON with a trailing newline), malloc'd:
 * the caller frees them with free(). */
int tseal_pubkey_encode(const tseal_pubkey *pk, char **json, size_t *len);
/* The bytes of a secret key file, in secure memory (tseal_secure_free). passphrase NULL: an
 * unprotected key. opslimit = memlimit = 0: the default Argon2id cost (MODERATE, or
 * INTERACTIVE when TSEAL_PWHASH_INTERACTIVE=1); else both within [1, 16] and [8 KiB, 4 GiB]. */
int tseal_seckey_encode(const tseal_seckey *sk, const char *passphrase, size_t pass_len,
                        uint64_t opslimit, uint64_t memlimit, uint8_t **out, size_t *len);

/* ---- signatures (Ed25519 with domain separation) -------------------------------------- */

/*
 * The signed message is  "TSEAL-SIG-V1" 0x00 payload_type 0x00 digest[32]  so a signature
 * made for one purpose (a container header, an audit report, a policy) can never be
 * replayed as another. payload_type is a short ASCII string such as "tseal/container-header".
 */
int tseal_sign(const tseal_seckey *sk, const char *payload_type,
               const uint8_t digest[TSEAL_HASH_BYTES], uint8_t sig[TSEAL_SIG_BYTES]);
int tseal_sign_verify(const uint8_t pk[TSEAL_PK_BYTES], const char *payload_type,
                      const uint8_t digest[TSEAL_HASH_BYTES], const uint8_t sig[TSEAL_SIG_BYTES]);

/* ---- recipient key wrapping (X25519 + HKDF-SHA256 + ChaCha20-Poly1305) ------------------ */

/*
 * Wrap `content_key` for `recipient_pk`: a fresh ephemeral X25519 key pair, shared secret
 * X25519(eph, recipient) (all-zero refused), wrap key = HKDF-SHA256(ikm = shared,
 * salt = eph_pk || recipient_pk, info = "tseal v1 x25519 wrap"), wrapped = AEAD(wrap key,
 * nonce 0, ad, content_key). `ad` binds the stanza to its container.
 */
int tseal_x25519_wrap(const uint8_t recipient_pk[TSEAL_PK_BYTES], const uint8_t *ad, size_t ad_len,
                      const uint8_t content_key[TSEAL_SYM_KEY_BYTES], tseal_rng *rng,
                      uint8_t eph_pk[TSEAL_PK_BYTES], uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES]);
/* TSEAL_E_VERIFY if the stanza was not made for this key; TSEAL_E_CORRUPT for an all-zero
 * shared secret (a low-order ephemeral key). content_key must be secure memory. */
int tseal_x25519_unwrap(const tseal_seckey *recipient, const uint8_t eph_pk[TSEAL_PK_BYTES],
                        const uint8_t *ad, size_t ad_len,
                        const uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES],
                        uint8_t content_key[TSEAL_SYM_KEY_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
