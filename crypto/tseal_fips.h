/*
 * tseal_fips.h - the FIPS-compatible suite (container suite 2) and X.509 signers, entirely
 * through OpenSSL 3 EVP / X509 so that a site running OpenSSL's FIPS provider uses only
 * approved algorithms: AES-256-GCM, ECDH P-256 + HKDF-SHA256, ECDSA P-256 with SHA-256,
 * SHA-256, and the OpenSSL DRBG. Nothing here uses libsodium except its secure memory.
 *
 * Keys are standard PEM so that a site's PKI and HSM tooling can handle them: private keys
 * PKCS#8 (optionally encrypted: PBES2, AES-256-CBC, PBKDF2-HMAC-SHA256), public keys SPKI.
 * Signers are identified by X.509 certificates (leaf + intermediates); trust comes from CA
 * roots, with validity time, key usage and CRL revocation checked by OpenSSL's verifier.
 *
 * Conventions as tseal_crypto.h (0 / negative TSEAL_E_*, TSEAL_E_VERIFY for any failed
 * authentication, messages naming the file and the reason, secrets in secure memory).
 */
#ifndef TSEAL_FIPS_H
#define TSEAL_FIPS_H

#include <stddef.h>
#include <stdint.h>

#include "tseal_crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSEAL_P256_SK_BYTES        32          /* private scalar, big-endian */
#define TSEAL_ECDSA_SIG_BYTES      64          /* raw r || s, 32 bytes each, big-endian */
#define TSEAL_X509_MAX_CHAIN_BYTES (64u << 10) /* serialized chain limit (hostile input) */
#define TSEAL_X509_MAX_CERTS       8

/* Random bytes from OpenSSL's DRBG (RAND_bytes): the FIPS suite's content keys, container
 * ids, ephemeral keys. */
int tseal_fips_random(void *buf, size_t n);

/* AES-256-GCM, 12-byte nonce, 16-byte tag: the same contract as tseal_aead_encrypt/decrypt
 * (ct = pt_len + 16 bytes; decrypt wipes pt and returns TSEAL_E_VERIFY on a bad tag). */
int tseal_aesgcm_encrypt(uint8_t *ct, const uint8_t *pt, size_t pt_len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                         const uint8_t key[TSEAL_SYM_KEY_BYTES]);
int tseal_aesgcm_decrypt(uint8_t *pt, const uint8_t *ct, size_t ct_len, const uint8_t *ad,
                         size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                         const uint8_t key[TSEAL_SYM_KEY_BYTES]);

/* ---- P-256 keys ------------------------------------------------------------------------ */

/* key id of a P-256 public key: tseal_key_id over the 65-byte point (FORMAT.md 6.1). */
void tseal_p256_key_id(const uint8_t pk[TSEAL_P256_PK_BYTES], uint8_t id[TSEAL_KEY_ID_BYTES]);

/* New P-256 key pair of the given kind (SIGN: ECDSA, RECIPIENT: ECDH). sk holds the 32-byte
 * scalar in secure memory, pub.alg = TSEAL_ALG_P256, pub.pk the uncompressed point. */
int tseal_p256_keygen(tseal_key_kind kind, const char *name, tseal_seckey **out);

/* PEM files. Secret: PKCS#8, mode 0600, encrypted when a passphrase is given, never
 * overwritten unless `force`. Public: SPKI. Reading checks the curve is P-256, refuses a
 * secret key file accessible by group or others, and needs the passphrase of an encrypted
 * key (TSEAL_E_INVAL without it, TSEAL_E_VERIFY when wrong). `kind` is what the caller
 * expects the key to be used for (PEM does not record it). */
int tseal_p256_seckey_write_pem(const tseal_seckey *sk, const char *path, const char *passphrase,
                                size_t pass_len, int force);
int tseal_p256_pubkey_write_pem(const tseal_pubkey *pk, const char *path, int force);
int tseal_p256_seckey_read_pem(const char *path, const char *passphrase, size_t pass_len,
                               tseal_key_kind kind, tseal_seckey **out);
int tseal_p256_pubkey_read_pem(const char *path, tseal_key_kind kind, tseal_pubkey *out);
/* 1 if the file starts with a PEM armour line ("-----BEGIN "), so callers can tell a PEM
 * key from a tseal key file; 0 if not or if it does not exist; TSEAL_E_IO if it cannot be
 * opened or read (not guessed as "not PEM"). */
int tseal_file_is_pem(const char *path);

/* ---- ECDH key wrapping ----------------------------------------------------------------- */

/*
 * Wrap `content_key` for a P-256 recipient: a fresh ephemeral P-256 key pair (OpenSSL DRBG),
 * shared = ECDH x-coordinate (32 bytes), wrap key = HKDF-SHA256(ikm = shared,
 * salt = eph_pk || recipient_pk, info = "tseal v1 p256 wrap"), wrapped = AES-256-GCM(wrap key,
 * nonce all-zero, ad, content_key) (48 bytes). A recipient point not on the curve is refused.
 */
int tseal_p256_wrap(const uint8_t recipient_pk[TSEAL_P256_PK_BYTES], const uint8_t *ad,
                    size_t ad_len, const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                    uint8_t eph_pk[TSEAL_P256_PK_BYTES], uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES]);
/* TSEAL_E_VERIFY "key stanza is not for this recipient" on a bad tag; TSEAL_E_CORRUPT for an
 * ephemeral point not on the curve. content_key must be secure memory; wiped on failure. */
int tseal_p256_unwrap(const tseal_seckey *recipient, const uint8_t eph_pk[TSEAL_P256_PK_BYTES],
                      const uint8_t *ad, size_t ad_len,
                      const uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES],
                      uint8_t content_key[TSEAL_SYM_KEY_BYTES]);

/* ---- ECDSA ------------------------------------------------------------------------------- */

/* ECDSA P-256 with SHA-256 over the same domain-separated message as tseal_sign
 * ("TSEAL-SIG-V1" 0x00 payload_type 0x00 digest); signatures as raw r || s. Verification
 * rejects r or s out of range (non-canonical encodings cannot be produced from raw r || s). */
int tseal_p256_sign(const tseal_seckey *sk, const char *payload_type,
                    const uint8_t digest[TSEAL_HASH_BYTES], uint8_t sig[TSEAL_ECDSA_SIG_BYTES]);
int tseal_p256_verify(const uint8_t pk[TSEAL_P256_PK_BYTES], const char *payload_type,
                      const uint8_t digest[TSEAL_HASH_BYTES],
                      const uint8_t sig[TSEAL_ECDSA_SIG_BYTES]);

/* ---- X.509 --------------------------------------------------------------------------------- */

typedef struct tseal_x509_chain tseal_x509_chain; /* leaf first, then intermediates */

/* Load a signer certificate (PEM, one cert) and optional intermediates (PEM, any number). */
int tseal_x509_chain_load(const char *leaf_pem, const char *chain_pem, tseal_x509_chain **out);
/* Serialized form carried in a container's signature block: for each certificate, leaf
 * first: u32be(length) || DER. Malloc'd. */
int tseal_x509_chain_encode(const tseal_x509_chain *c, uint8_t **der, size_t *len);
/* Parse that form (hostile input: lengths, count <= TSEAL_X509_MAX_CERTS, total <=
 * TSEAL_X509_MAX_CHAIN_BYTES, each certificate must parse as DER with nothing after it). */
int tseal_x509_chain_decode(const uint8_t *der, size_t len, const char *label,
                            tseal_x509_chain **out);
/* The leaf certificate's public key, which must be P-256. */
int tseal_x509_leaf_pubkey(const tseal_x509_chain *c, uint8_t pk[TSEAL_P256_PK_BYTES]);
/* 1 if the leaf certificate certifies exactly this public key (a signing key and its cert
 * must match). */
int tseal_x509_leaf_matches(const tseal_x509_chain *c, const tseal_seckey *sk);
/* What the leaf certificate claims, unverified (for display: inspect, reports): RFC 2253
 * subject and issuer (truncated to fit) and notAfter in unix seconds. */
int tseal_x509_leaf_describe(const tseal_x509_chain *c, char *subject, size_t subject_cap,
                             char *issuer, size_t issuer_cap, int64_t *not_after);
void tseal_x509_chain_free(tseal_x509_chain *c);

/* Trust anchors: CA root certificates and, optionally, CRLs. */
typedef struct tseal_x509_trust tseal_x509_trust;
int tseal_x509_trust_new(tseal_x509_trust **out);
/* Add every certificate of a PEM file (or PEM text) as a trusted root. */
int tseal_x509_trust_add_ca_file(tseal_x509_trust *t, const char *pem_path);
int tseal_x509_trust_add_ca_pem(tseal_x509_trust *t, const char *pem, size_t len,
                                const char *label);
/* Add CRLs (PEM file or text): once any CRL is added, every certificate of a chain must be
 * covered by a CRL of its issuer (missing CRL = failure), as OpenSSL's CRL_CHECK_ALL does. */
int tseal_x509_trust_add_crl_file(tseal_x509_trust *t, const char *pem_path);
int tseal_x509_trust_add_crl_pem(tseal_x509_trust *t, const char *pem, size_t len,
                                 const char *label);
void tseal_x509_trust_free(tseal_x509_trust *t);

/* What a verified chain says about its signer. */
typedef struct {
    char subject[512]; /* RFC 2253 one-line subject of the leaf */
    char common_name[256];
    char issuer_root[512]; /* subject of the trust anchor the chain ended at */
    unsigned n_sans;
    char sans[16][256]; /* "email:...", "URI:...", "DNS:..." */
    /* Set also when verification fails (everything else is then zero): 1 if it failed
     * because a certificate of the chain is revoked by a CRL. */
    int revoked;
} tseal_x509_identity;

/*
 * Verify the chain to one of the trusted roots at unix time `at` (validity periods), with the
 * CRLs if any, require the leaf's key usage (if present) to include digitalSignature and its
 * extended key usage (if present) to include codeSigning or anyExtendedKeyUsage, and fill
 * `id`. Errors (TSEAL_E_VERIFY) name the reason in words: "certificate has expired",
 * "certificate is revoked", "not issued by a trusted CA", "key usage does not allow signing".
 */
int tseal_x509_verify(const tseal_x509_trust *t, const tseal_x509_chain *c, int64_t at,
                      tseal_x509_identity *id);

/*
 * Identity constraints (as Notation's trusted identities and cosign's
 * --certificate-identity): `pattern` is "subject:<text>" (matches the RFC 2253 subject or its
 * CN exactly), "email:<text>", "uri:<text>" or "dns:<text>" (match a SAN of that type); a
 * single '*' in <text> matches any run of characters. Returns 1 on a match.
 * Against the RFC 2253 subject the '*' never spans a backslash: characters that RFC 2253
 * escapes in attribute values (',', '+', ';', non-ASCII, ...) cannot forge the structure a
 * pattern such as "subject:CN=*,O=Acme" relies on.
 */
int tseal_x509_identity_matches(const tseal_x509_identity *id, const char *pattern);
/* 0 if `pattern` is well-formed for tseal_x509_identity_matches (a known type, a non-empty
 * value, at most one '*'), else TSEAL_E_INVAL saying what is wrong: for checking
 * configuration up front (a malformed pattern simply matches nothing). */
int tseal_x509_identity_pattern_check(const char *pattern);

#ifdef __cplusplus
}
#endif
#endif
