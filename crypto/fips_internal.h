/*
 * fips_internal.h - what crypto/fips.c shares with crypto/x509.c (and the tests): P-256
 * EVP_PKEY helpers. Not installed.
 */
#ifndef TSEAL_FIPS_INTERNAL_H
#define TSEAL_FIPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "tseal_fips.h"

/* OpenSSL's name of P-256 (OSSL_PKEY_PARAM_GROUP_NAME). */
#define TSEAL_P256_GROUP "prime256v1"

/*
 * The uncompressed point (04 || X || Y) of `pkey`, which must be an EC key on the named curve
 * P-256 (not explicit parameters) and pass EVP_PKEY_public_check. Another algorithm or curve
 * fails with `code` and "<what> is not P-256 (...)"; a bad point with TSEAL_E_CORRUPT.
 */
int tseal_p256_pkey_point(EVP_PKEY *pkey, int code, const char *what,
                          uint8_t pk[TSEAL_P256_PK_BYTES]);

/* A public-key EVP_PKEY for a 65-byte point: 0x04 first, on the curve, not the point at
 * infinity (EVP_PKEY_public_check); TSEAL_E_CORRUPT "<what> is not a valid P-256 point". */
int tseal_p256_pkey_from_point(const uint8_t pk[TSEAL_P256_PK_BYTES], const char *what,
                               EVP_PKEY **out);

#endif
