/*
 * crypto_internal.h - what the crypto/ files share and the tests and fuzz target may see:
 * the binary secret key layout (docs/FORMAT.md section 6) and small helpers. Not installed.
 */
#ifndef TSEAL_CRYPTO_INTERNAL_H
#define TSEAL_CRYPTO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tseal_crypto.h"

/* ---- secret key file layout (all integers little-endian) ------------------------------- */

#define TSEAL_SK_MAGIC          "TSEALSK1"
#define TSEAL_SK_MAGIC_BYTES    8
#define TSEAL_SK_OFF_KIND       8
#define TSEAL_SK_OFF_ALG        9
#define TSEAL_SK_OFF_PROTECTION 10
#define TSEAL_SK_OFF_RESERVED   11
#define TSEAL_SK_OFF_KEY_ID     12
#define TSEAL_SK_OFF_PK         28
#define TSEAL_SK_OFF_NAME       60
#define TSEAL_SK_OFF_OPSLIMIT   124
#define TSEAL_SK_OFF_MEMLIMIT   132
#define TSEAL_SK_OFF_SALT       140
#define TSEAL_SK_OFF_NONCE      156
#define TSEAL_SK_OFF_SECRET     180 /* = the header, authenticated when protected */
#define TSEAL_SK_HEADER_BYTES   TSEAL_SK_OFF_SECRET
#define TSEAL_SK_SALT_BYTES     16 /* crypto_pwhash_SALTBYTES */
#define TSEAL_SK_NONCE_BYTES    24 /* crypto_secretbox_NONCEBYTES */
#define TSEAL_SK_MAC_BYTES      16 /* crypto_secretbox_MACBYTES */
#define TSEAL_SK_MAX_BYTES      (TSEAL_SK_HEADER_BYTES + TSEAL_SIGN_SK_BYTES + TSEAL_SK_MAC_BYTES)

#define TSEAL_SK_PROT_NONE     0
#define TSEAL_SK_PROT_ARGON2ID 1

/* Accepted Argon2id cost range when reading (refuses absurd, DoS-sized values). */
#define TSEAL_SK_OPSLIMIT_MIN 1ull                   /* crypto_pwhash_OPSLIMIT_MIN */
#define TSEAL_SK_OPSLIMIT_MAX (4ull * 4ull)          /* 4 * crypto_pwhash_OPSLIMIT_SENSITIVE */
#define TSEAL_SK_MEMLIMIT_MIN 8192ull                /* crypto_pwhash_MEMLIMIT_MIN */
#define TSEAL_SK_MEMLIMIT_MAX (4ull * 1073741824ull) /* 4 * crypto_pwhash_MEMLIMIT_SENSITIVE */

/* Size of a secret key file for its kind and protection. */
static inline size_t tseal_sk_file_size(tseal_key_kind kind, bool protected_) {
    return TSEAL_SK_HEADER_BYTES +
           (kind == TSEAL_KEY_SIGN ? TSEAL_SIGN_SK_BYTES : TSEAL_X25519_SK_BYTES) +
           (protected_ ? TSEAL_SK_MAC_BYTES : 0);
}

/* Key names: valid UTF-8, 1..TSEAL_KEY_NAME_MAX-1 bytes, no C0/C1 control character or DEL.
 * Returns NULL if fine, else what is wrong. */
const char *tseal_key_name_problem(const char *name, size_t len);

/* tseal_key_id that reports an OpenSSL failure instead of returning a zero id. */
int tseal_key_id_checked(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES],
                         uint8_t id[TSEAL_KEY_ID_BYTES]);

/* Key id (FORMAT.md 6.1.2) over a public key of pk_len <= TSEAL_PK_MAX_BYTES bytes (a P-256
 * point is 65); tseal_key_id_checked is this with pk_len = TSEAL_PK_BYTES. */
int tseal_key_id_len(uint8_t alg, const uint8_t *pk, size_t pk_len, uint8_t id[TSEAL_KEY_ID_BYTES]);

/* keys.c's key file I/O, shared with crypto/fips.c. read: at most `cap` bytes (*got == cap
 * means the file may be longer), *mode = permission bits (mode may be NULL). write: atomic,
 * never replaces an existing file unless `force`. */
int tseal_key_file_read(const char *path, uint8_t *buf, size_t cap, size_t *got, unsigned *mode);
int tseal_key_file_write(const char *path, const void *data, size_t len, unsigned mode, int force);

/* The message every tseal signature covers: "TSEAL-SIG-V1" 0x00 payload_type 0x00 digest
 * (payload_type: 1..64 printable ASCII bytes). Returns its length, or 0 with the error
 * recorded. */
#define TSEAL_SIG_MSG_MAX (sizeof "TSEAL-SIG-V1" + 64 + 1 + TSEAL_HASH_BYTES)
size_t tseal_sig_message(const char *payload_type, const uint8_t digest[TSEAL_HASH_BYTES],
                         uint8_t msg[TSEAL_SIG_MSG_MAX]);

/* 0 if pk is a usable public key for alg (Ed25519: canonical, prime-order subgroup, not small
 * order; X25519: not a low-order point), else a TSEAL_E_CORRUPT message. */
int tseal_pk_check(uint8_t alg, const uint8_t pk[TSEAL_PK_BYTES]);

/* Records the current OpenSSL error as TSEAL_E_CRYPTO "<what> failed: <OpenSSL message>". */
int tseal_ossl_err(const char *what);

#endif
