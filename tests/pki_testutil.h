/*
 * pki_testutil.h - a test PKI built with the OpenSSL API: CA roots, intermediates, signer
 * (leaf) certificates with chosen SANs, key usage, extended key usage and validity, CRLs, and
 * PEM writers. Every key is P-256 unless a test passes its own; every signature is
 * ECDSA-SHA256. Names are "CN=<cn>,O=tseal test" (RFC 2253 order).
 *
 *   pki_cert *root = make_root("Test Root", T0 - DAY, T0 + YEAR);
 *   pki_cert *ica  = make_intermediate(root, "Test Intermediate", T0 - DAY, T0 + YEAR);
 *   const char *sans[] = {"email:signer@bank.example", NULL};
 *   pki_cert *leaf = make_leaf(ica, "signer", sans, "critical,digitalSignature", "codeSigning",
 *                              T0 - DAY, T0 + DAY);
 *   X509_CRL *crl  = make_crl(ica, &leaf->serial, 1, T0 - DAY, T0 + DAY);
 *   pki_write_cert(path, leaf->cert); pki_write_key(path, leaf->key); pki_write_crl(path, crl);
 *   pki_free(leaf); X509_CRL_free(crl);
 */
#ifndef TSEAL_PKI_TESTUTIL_H
#define TSEAL_PKI_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

typedef struct {
    X509 *cert;
    EVP_PKEY *key; /* the certificate's key pair */
    long serial;
} pki_cert;

static long pki_serial_next = 0x1000;

/* A fresh EC key on `curve` ("P-256", "P-384", ...). */
static inline EVP_PKEY *pki_key_ec(const char *curve) {
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    cr_assert_not_null(k, "EC %s key generation", curve);
    return k;
}

static inline EVP_PKEY *pki_key_p256(void) {
    return pki_key_ec("P-256");
}

static inline void pki_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    cr_assert_not_null(ext, "extension %s = %s", OBJ_nid2sn(nid), value);
    cr_assert_eq(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static inline X509_NAME *pki_name(const char *cn) {
    X509_NAME *n = X509_NAME_new();
    cr_assert_not_null(n);
    cr_assert_eq(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
                                            (const unsigned char *)"tseal test", -1, -1, 0),
                 1);
    cr_assert_eq(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    return n;
}

/*
 * A certificate for `key` (taken over) named cn, issued by `issuer` (NULL: self-signed), valid
 * [nb, na]. ca: basicConstraints CA:TRUE + keyCertSign, cRLSign. sans: NULL-terminated list in
 * OpenSSL's form ("email:a@b", "URI:https://x", "DNS:x"), or NULL. ku, eku: extension values
 * ("critical,digitalSignature", "codeSigning") or NULL for none.
 */
static inline pki_cert *pki_make(const pki_cert *issuer, const char *cn, EVP_PKEY *key, time_t nb,
                                 time_t na, bool ca, const char *const *sans, const char *ku,
                                 const char *eku) {
    pki_cert *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->key = key;
    c->serial = pki_serial_next++;
    X509 *x = X509_new();
    cr_assert_not_null(x);
    c->cert = x;
    cr_assert_eq(X509_set_version(x, X509_VERSION_3), 1);
    cr_assert_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), c->serial), 1);
    X509_NAME *name = pki_name(cn);
    cr_assert_eq(X509_set_subject_name(x, name), 1);
    cr_assert_eq(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name), 1);
    X509_NAME_free(name);
    cr_assert_not_null(ASN1_TIME_set(X509_getm_notBefore(x), nb));
    cr_assert_not_null(ASN1_TIME_set(X509_getm_notAfter(x), na));
    cr_assert_eq(X509_set_pubkey(x, key), 1);
    X509 *iss = issuer ? issuer->cert : x;
    pki_ext(x, iss, NID_subject_key_identifier, "hash");
    pki_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    if (ca) {
        pki_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        pki_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        pki_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
    }
    if (ku) pki_ext(x, iss, NID_key_usage, ku);
    if (eku) pki_ext(x, iss, NID_ext_key_usage, eku);
    if (sans && sans[0]) {
        char buf[2048] = "";
        for (size_t i = 0; sans[i]; i++) {
            if (i) strncat(buf, ",", sizeof buf - strlen(buf) - 1);
            strncat(buf, sans[i], sizeof buf - strlen(buf) - 1);
        }
        pki_ext(x, iss, NID_subject_alt_name, buf);
    }
    cr_assert_gt(X509_sign(x, issuer ? issuer->key : key, EVP_sha256()), 0, "X509_sign");
    return c;
}

static inline pki_cert *make_root(const char *name, time_t not_before, time_t not_after) {
    return pki_make(NULL, name, pki_key_p256(), not_before, not_after, true, NULL, NULL, NULL);
}

static inline pki_cert *make_intermediate(const pki_cert *issuer, const char *name,
                                          time_t not_before, time_t not_after) {
    return pki_make(issuer, name, pki_key_p256(), not_before, not_after, true, NULL, NULL, NULL);
}

/* A signer certificate with a fresh P-256 key. */
static inline pki_cert *make_leaf(const pki_cert *issuer, const char *cn, const char *const *sans,
                                  const char *key_usage, const char *eku, time_t not_before,
                                  time_t not_after) {
    return pki_make(issuer, cn, pki_key_p256(), not_before, not_after, false, sans, key_usage, eku);
}

/* The same with a key of the caller's (taken over), e.g. a P-384 one. */
static inline pki_cert *make_leaf_key(const pki_cert *issuer, const char *cn, EVP_PKEY *key,
                                      const char *key_usage, const char *eku, time_t not_before,
                                      time_t not_after) {
    return pki_make(issuer, cn, key, not_before, not_after, false, NULL, key_usage, eku);
}

/* A CRL of `issuer` revoking `n` serials (revoked at last_update). */
static inline X509_CRL *make_crl(const pki_cert *issuer, const long *serials, size_t n,
                                 time_t last_update, time_t next_update) {
    X509_CRL *crl = X509_CRL_new();
    cr_assert_not_null(crl);
    cr_assert_eq(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    cr_assert_eq(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->cert)), 1);
    ASN1_TIME *t = ASN1_TIME_set(NULL, last_update);
    cr_assert_not_null(t);
    cr_assert_eq(X509_CRL_set1_lastUpdate(crl, t), 1);
    cr_assert_not_null(ASN1_TIME_set(t, next_update));
    cr_assert_eq(X509_CRL_set1_nextUpdate(crl, t), 1);
    cr_assert_not_null(ASN1_TIME_set(t, last_update));
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        cr_assert(r && sn);
        cr_assert_eq(ASN1_INTEGER_set(sn, serials[i]), 1);
        cr_assert_eq(X509_REVOKED_set_serialNumber(r, sn), 1);
        cr_assert_eq(X509_REVOKED_set_revocationDate(r, t), 1);
        cr_assert_eq(X509_CRL_add0_revoked(crl, r), 1);
        ASN1_INTEGER_free(sn);
    }
    ASN1_TIME_free(t);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer->cert, NULL, NULL, crl, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
    cr_assert_not_null(ext);
    cr_assert_eq(X509_CRL_add_ext(crl, ext, -1), 1);
    X509_EXTENSION_free(ext);
    cr_assert_eq(X509_CRL_sort(crl), 1);
    cr_assert_gt(X509_CRL_sign(crl, issuer->key, EVP_sha256()), 0, "X509_CRL_sign");
    return crl;
}

static inline void pki_free(pki_cert *c) {
    if (!c) return;
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    free(c);
}

/* ---- PEM ------------------------------------------------------------------------------------ */

/* Writes certificates (n of them) to one PEM file. */
static inline void pki_write_certs(const char *path, X509 *const *certs, size_t n) {
    BIO *b = BIO_new_file(path, "w");
    cr_assert_not_null(b, "%s", path);
    for (size_t i = 0; i < n; i++) cr_assert_eq(PEM_write_bio_X509(b, certs[i]), 1);
    BIO_free(b);
}

static inline void pki_write_cert(const char *path, X509 *cert) {
    pki_write_certs(path, &cert, 1);
}

static inline void pki_write_crls(const char *path, X509_CRL *const *crls, size_t n) {
    BIO *b = BIO_new_file(path, "w");
    cr_assert_not_null(b, "%s", path);
    for (size_t i = 0; i < n; i++) cr_assert_eq(PEM_write_bio_X509_CRL(b, crls[i]), 1);
    BIO_free(b);
}

static inline void pki_write_crl(const char *path, X509_CRL *crl) {
    pki_write_crls(path, &crl, 1);
}

/* The key pair as an unencrypted PKCS#8 PEM file, mode 0600. */
static inline void pki_write_key(const char *path, EVP_PKEY *key) {
    BIO *b = BIO_new_file(path, "w");
    cr_assert_not_null(b, "%s", path);
    cr_assert_eq(PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    BIO_free(b);
    cr_assert_eq(chmod(path, 0600), 0);
}

/* The public key as an SPKI PEM file. */
static inline void pki_write_pubkey(const char *path, EVP_PKEY *key) {
    BIO *b = BIO_new_file(path, "w");
    cr_assert_not_null(b, "%s", path);
    cr_assert_eq(PEM_write_bio_PUBKEY(b, key), 1);
    BIO_free(b);
}

/* PEM text of a certificate, malloc'd and NUL-terminated. */
static inline char *pki_cert_pem(X509 *cert, size_t *len) {
    BIO *b = BIO_new(BIO_s_mem());
    cr_assert_not_null(b);
    cr_assert_eq(PEM_write_bio_X509(b, cert), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    cr_assert_gt(n, 0);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    memcpy(s, data, (size_t)n);
    s[n] = 0;
    if (len) *len = (size_t)n;
    BIO_free(b);
    return s;
}

/* The uncompressed point of an EC P-256 key pair (65 bytes). */
static inline void pki_point(EVP_PKEY *key, unsigned char pk[65]) {
    size_t len = 0;
    cr_assert_eq(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED),
                 1);
    cr_assert_eq(EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pk, 65, &len), 1);
    cr_assert_eq(len, 65);
}

#endif
