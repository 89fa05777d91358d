/*
 * fuzz_keyfile.c - the key file parsers over arbitrary bytes, without touching files:
 * tseal_pubkey_parse, then tseal_seckey_parse without and with a passphrase ("fuzz passphrase",
 * the one the seed corpus's protected keys use). Whatever is accepted must be a working,
 * self-consistent key: a public key re-encodes and re-parses to the same key, an unprotected
 * secret key re-encodes to the very same bytes, and every accepted secret key signs (or
 * unwraps) for its own public key.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto_internal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

#define PASS "fuzz passphrase"
/* Files may ask for up to 4 GiB / 16 passes of Argon2id (the format's limit); the fuzzer only
 * tries the passphrase on cheap ones so that it stays fast and within its RSS limit. */
#define FUZZ_MEMLIMIT_MAX (16u << 20)
#define FUZZ_OPSLIMIT_MAX 4u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_pair(const tseal_seckey *k) {
    uint8_t digest[TSEAL_HASH_BYTES] = {1, 2, 3};
    if (k->pub.kind == TSEAL_KEY_SIGN) {
        uint8_t sig[TSEAL_SIG_BYTES];
        CHECK(tseal_sign(k, "tseal/fuzz", digest, sig) == 0);
        CHECK(tseal_sign_verify(k->pub.pk, "tseal/fuzz", digest, sig) == 0);
    } else {
        tseal_rng rng = {{7}, 0};
        uint8_t eph[TSEAL_PK_BYTES], w[TSEAL_WRAPPED_KEY_BYTES], ck[TSEAL_SYM_KEY_BYTES];
        CHECK(tseal_x25519_wrap(k->pub.pk, digest, sizeof digest, digest, &rng, eph, w) == 0);
        CHECK(tseal_x25519_unwrap(k, eph, digest, sizeof digest, w, ck) == 0);
        CHECK(memcmp(ck, digest, sizeof ck) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tseal_pubkey pk;
    if (tseal_pubkey_parse(data, size, "fuzz.pub", &pk) == 0) {
        char *json;
        size_t n;
        tseal_pubkey again;
        CHECK(tseal_pubkey_encode(&pk, &json, &n) == 0);
        CHECK(tseal_pubkey_parse(json, n, "again.pub", &again) == 0);
        CHECK(memcmp(&pk, &again, sizeof pk) == 0);
        free(json);
    }

    tseal_seckey *sk = NULL;
    if (tseal_seckey_parse(data, size, "fuzz.key", NULL, 0, &sk) == 0) {
        uint8_t *b;
        size_t n;
        CHECK(data[TSEAL_SK_OFF_PROTECTION] == TSEAL_SK_PROT_NONE);
        CHECK(tseal_seckey_encode(sk, NULL, 0, 0, 0, &b, &n) == 0);
        CHECK(n == size && memcmp(b, data, n) == 0);
        tseal_secure_free(b);
        check_pair(sk);
        tseal_seckey_free(sk);
    } else {
        CHECK(sk == NULL);
    }

    if (size >= TSEAL_SK_HEADER_BYTES &&
        tseal_load_le64(data + TSEAL_SK_OFF_OPSLIMIT) <= FUZZ_OPSLIMIT_MAX &&
        tseal_load_le64(data + TSEAL_SK_OFF_MEMLIMIT) <= FUZZ_MEMLIMIT_MAX) {
        sk = NULL;
        if (tseal_seckey_parse(data, size, "fuzz.key", PASS, strlen(PASS), &sk) == 0) {
            check_pair(sk);
            tseal_seckey_free(sk);
        } else {
            CHECK(sk == NULL);
        }
    }
    return 0;
}
