/*
 * key_testutil.h - a deterministic tseal key pair written to files, for the tests that pack
 * and open containers (the seed makes it reproducible; the secret file is not protected).
 */
#ifndef TSEAL_KEY_TESTUTIL_H
#define TSEAL_KEY_TESTUTIL_H

#include <criterion/criterion.h>
#include <string.h>

#include "tseal.h"
#include "tseal_crypto.h"

static inline void tu_keypair(tseal_key_kind kind, const char *name, uint8_t seed, const char *sk,
                              const char *pk) {
    tseal_rng rng = {.counter = 0};
    memset(rng.seed, seed, sizeof rng.seed);
    tseal_seckey *k;
    cr_assert_eq(tseal_keygen(kind, name, &rng, &k), 0);
    cr_assert_eq(tseal_seckey_write(k, sk, NULL, 0, 1), 0);
    cr_assert_eq(tseal_pubkey_write(&k->pub, pk, 1), 0);
    tseal_seckey_free(k);
}

#endif
