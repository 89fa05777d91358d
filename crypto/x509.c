/*
 * x509.c - X.509 signers (tseal_fips.h): certificate chains (PEM files, the container's
 * length-prefixed DER form), trust stores of CA roots and CRLs, chain verification with
 * OpenSSL's verifier at a given time, the signer's identity and identity constraints.
 *
 * OpenSSL's purposes are not used: whether a certificate may sign artifacts is decided here
 * from the leaf's key usage and extended key usage (tseal_x509_verify). Verification also
 * asks for security level 2 (>= 112-bit keys, no SHA-1 certificate signatures: SP 800-131A).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "crypto_internal.h"
#include "fips_internal.h"
#include "internal.h"
#include "tseal_fips.h"

#define PEM_CERT_FILE_MAX (4u << 20) /* certificate, chain, CA bundle and CRL files */

struct tseal_x509_chain {
    unsigned n;
    X509 *cert[TSEAL_X509_MAX_CERTS]; /* leaf first */
};

struct tseal_x509_trust {
    X509_STORE *store;
    unsigned n_roots, n_crls;
};

/* ---- PEM input --------------------------------------------------------------------------- */

static int no_pass_cb(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* certificates and CRLs are never encrypted; never prompt */
}

static int file_read(const char *path, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    uint8_t *b = malloc(PEM_CERT_FILE_MAX + 1);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    size_t got = 0;
    int rc = tseal_key_file_read(path, b, PEM_CERT_FILE_MAX + 1, &got, NULL);
    if (!rc && got > PEM_CERT_FILE_MAX)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: larger than the %u-byte limit of a PEM file", path,
                       PEM_CERT_FILE_MAX);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = got;
    return 0;
}

/* 1 if the OpenSSL error queue says only "no more PEM blocks" (then cleared). */
static bool pem_at_end(void) {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
    }
    return false;
}

typedef int (*cert_fn)(void *arg, X509 *x, const char *label, unsigned index);
typedef int (*crl_fn)(void *arg, X509_CRL *x, const char *label, unsigned index);

/* Calls fn for every certificate (crl_fn NULL) or every CRL of the PEM text; *count = found.
 * fn takes its own reference; the object is freed after the call. */
static int pem_each(const void *pem, size_t len, const char *label, cert_fn cfn, crl_fn lfn,
                    void *arg, unsigned *count) {
    *count = 0;
    if (len > INT_MAX) return tseal_err(TSEAL_E_LIMIT, "%s: PEM text too long", label);
    BIO *bio = BIO_new_mem_buf(len ? pem : "", (int)len);
    if (!bio) return tseal_ossl_err("BIO_new_mem_buf");
    int rc = 0;
    ERR_clear_error();
    while (!rc) {
        if (cfn) {
            X509 *x = PEM_read_bio_X509(bio, NULL, no_pass_cb, NULL);
            if (!x) break;
            rc = cfn(arg, x, label, *count);
            X509_free(x);
        } else {
            X509_CRL *x = PEM_read_bio_X509_CRL(bio, NULL, no_pass_cb, NULL);
            if (!x) break;
            rc = lfn(arg, x, label, *count);
            X509_CRL_free(x);
        }
        if (!rc) (*count)++;
    }
    if (!rc && !pem_at_end()) {
        tseal_ossl_err(cfn ? "reading a PEM certificate" : "reading a PEM CRL");
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: %s %u is not valid: %s", label,
                       cfn ? "certificate" : "CRL", *count + 1, tseal_errmsg());
    }
    BIO_free(bio);
    return rc;
}

/* ---- chains ---------------------------------------------------------------------------------- */

void tseal_x509_chain_free(tseal_x509_chain *c) {
    if (!c) return;
    for (unsigned i = 0; i < c->n; i++) X509_free(c->cert[i]);
    free(c);
}

static tseal_x509_chain *chain_new(void) {
    tseal_x509_chain *c = calloc(1, sizeof *c);
    if (!c) tseal_err(TSEAL_E_NOMEM, "certificate chain: out of memory");
    return c;
}

static int chain_push(void *arg, X509 *x, const char *label, unsigned index) {
    (void)index;
    tseal_x509_chain *c = arg;
    if (c->n >= TSEAL_X509_MAX_CERTS)
        return tseal_err(TSEAL_E_LIMIT, "%s: more than %d certificates in the chain", label,
                         TSEAL_X509_MAX_CERTS);
    if (X509_up_ref(x) != 1) return tseal_ossl_err("X509_up_ref");
    c->cert[c->n++] = x;
    return 0;
}

static int chain_add_file(tseal_x509_chain *c, const char *path, unsigned *count) {
    uint8_t *buf;
    size_t len;
    int rc = file_read(path, &buf, &len);
    if (rc) return rc;
    rc = pem_each(buf, len, path, chain_push, NULL, c, count);
    free(buf);
    return rc;
}

int tseal_x509_chain_load(const char *leaf_pem, const char *chain_pem, tseal_x509_chain **out) {
    *out = NULL;
    if (!leaf_pem) return tseal_err(TSEAL_E_INVAL, "no signer certificate file");
    tseal_x509_chain *c = chain_new();
    if (!c) return TSEAL_E_NOMEM;
    unsigned n = 0;
    int rc = chain_add_file(c, leaf_pem, &n);
    if (!rc && n == 0)
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: no PEM certificate (\"BEGIN CERTIFICATE\") found",
                       leaf_pem);
    if (!rc && n > 1)
        rc = tseal_err(TSEAL_E_INVAL,
                       "%s: holds %u certificates; give the signer's certificate alone and the "
                       "intermediates as the chain file",
                       leaf_pem, n);
    if (!rc && chain_pem) rc = chain_add_file(c, chain_pem, &n);
    if (rc) {
        tseal_x509_chain_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int tseal_x509_chain_encode(const tseal_x509_chain *c, uint8_t **der, size_t *len) {
    *der = NULL;
    *len = 0;
    if (!c || c->n == 0) return tseal_err(TSEAL_E_INVAL, "empty certificate chain");
    size_t total = 0;
    int sizes[TSEAL_X509_MAX_CERTS];
    for (unsigned i = 0; i < c->n; i++) {
        sizes[i] = i2d_X509(c->cert[i], NULL);
        if (sizes[i] <= 0) return tseal_ossl_err("certificate encoding");
        total += 4 + (size_t)sizes[i];
        if (total > TSEAL_X509_MAX_CHAIN_BYTES)
            return tseal_err(TSEAL_E_LIMIT, "certificate chain is larger than %u bytes",
                             TSEAL_X509_MAX_CHAIN_BYTES);
    }
    uint8_t *b = malloc(total);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "certificate chain: out of memory");
    size_t off = 0;
    for (unsigned i = 0; i < c->n; i++) {
        store_be32(b + off, (uint32_t)sizes[i]);
        uint8_t *p = b + off + 4;
        if (i2d_X509(c->cert[i], &p) != sizes[i]) {
            free(b);
            return tseal_ossl_err("certificate encoding");
        }
        off += 4 + (size_t)sizes[i];
    }
    *der = b;
    *len = total;
    return 0;
}

/* One DER certificate that must parse with nothing after it and re-encode to the same bytes. */
static int cert_decode(const uint8_t *der, size_t len, unsigned index, X509 **out) {
    *out = NULL;
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x) {
        ERR_clear_error();
        return tseal_err(TSEAL_E_CORRUPT, "certificate %u is not a valid DER certificate", index);
    }
    int rc = 0;
    if (p != der + len) {
        rc = tseal_err(TSEAL_E_CORRUPT, "certificate %u has %zu bytes after its DER encoding",
                       index, len - (size_t)(p - der));
    } else {
        uint8_t *enc = NULL;
        int n = i2d_X509(x, &enc);
        if (n < 0)
            rc = tseal_ossl_err("certificate encoding");
        else if ((size_t)n != len || memcmp(enc, der, len) != 0)
            rc = tseal_err(TSEAL_E_CORRUPT, "certificate %u is not in canonical DER", index);
        OPENSSL_free(enc);
    }
    if (rc) {
        X509_free(x);
        return rc;
    }
    *out = x;
    return 0;
}

static int chain_decode(const uint8_t *der, size_t len, tseal_x509_chain *c) {
    if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "empty certificate chain");
    if (len > TSEAL_X509_MAX_CHAIN_BYTES)
        return tseal_err(TSEAL_E_LIMIT, "certificate chain of %zu bytes, over the %u-byte limit",
                         len, TSEAL_X509_MAX_CHAIN_BYTES);
    size_t off = 0;
    while (off < len) {
        if (c->n >= TSEAL_X509_MAX_CERTS)
            return tseal_err(TSEAL_E_LIMIT, "more than %d certificates in the chain",
                             TSEAL_X509_MAX_CERTS);
        if (len - off < 4)
            return tseal_err(TSEAL_E_CORRUPT, "truncated length of certificate %u at offset %zu",
                             c->n, off);
        uint32_t n = load_be32(der + off);
        off += 4;
        if (n == 0)
            return tseal_err(TSEAL_E_CORRUPT, "certificate %u has length 0 (offset %zu)", c->n,
                             off - 4);
        if (n > len - off)
            return tseal_err(TSEAL_E_CORRUPT,
                             "certificate %u of %u bytes at offset %zu runs past the end (%zu "
                             "bytes left)",
                             c->n, n, off, len - off);
        int rc = cert_decode(der + off, n, c->n, &c->cert[c->n]);
        if (rc) return rc;
        c->n++;
        off += n;
    }
    return 0;
}

int tseal_x509_chain_decode(const uint8_t *der, size_t len, const char *label,
                            tseal_x509_chain **out) {
    *out = NULL;
    if (!der && len) return tseal_err(TSEAL_E_INVAL, "certificate chain: NULL input");
    tseal_x509_chain *c = chain_new();
    if (!c) return TSEAL_E_NOMEM;
    int rc = chain_decode(der, len, c);
    if (rc) {
        tseal_x509_chain_free(c);
        tseal_err_context("%s: ", label ? label : "certificate chain");
        return rc;
    }
    *out = c;
    return 0;
}

int tseal_x509_leaf_pubkey(const tseal_x509_chain *c, uint8_t pk[TSEAL_P256_PK_BYTES]) {
    memset(pk, 0, TSEAL_P256_PK_BYTES);
    if (!c || c->n == 0) return tseal_err(TSEAL_E_INVAL, "empty certificate chain");
    EVP_PKEY *pkey = X509_get0_pubkey(c->cert[0]);
    if (!pkey) ERR_clear_error();
    return tseal_p256_pkey_point(pkey, TSEAL_E_UNSUPPORTED, "signer certificate key", pk);
}

int tseal_x509_leaf_matches(const tseal_x509_chain *c, const tseal_seckey *sk) {
    if (!c || c->n == 0 || !sk || sk->pub.alg != TSEAL_ALG_P256) return 0;
    uint8_t pk[TSEAL_P256_PK_BYTES];
    if (tseal_x509_leaf_pubkey(c, pk) != 0) return 0;
    return memcmp(pk, sk->pub.pk, sizeof pk) == 0;
}

/* ---- trust --------------------------------------------------------------------------------- */

int tseal_x509_trust_new(tseal_x509_trust **out) {
    *out = NULL;
    tseal_x509_trust *t = calloc(1, sizeof *t);
    if (!t) return tseal_err(TSEAL_E_NOMEM, "trust store: out of memory");
    t->store = X509_STORE_new();
    if (!t->store) {
        free(t);
        return tseal_ossl_err("X509_STORE_new");
    }
    *out = t;
    return 0;
}

void tseal_x509_trust_free(tseal_x509_trust *t) {
    if (!t) return;
    X509_STORE_free(t->store);
    free(t);
}

static int store_add_cert(void *arg, X509 *x, const char *label, unsigned index) {
    tseal_x509_trust *t = arg;
    if (X509_STORE_add_cert(t->store, x) != 1) {
        tseal_ossl_err("X509_STORE_add_cert");
        return tseal_err(TSEAL_E_CRYPTO, "%s: certificate %u: %s", label, index + 1,
                         tseal_errmsg());
    }
    t->n_roots++;
    return 0;
}

static int store_add_crl(void *arg, X509_CRL *x, const char *label, unsigned index) {
    tseal_x509_trust *t = arg;
    if (X509_STORE_add_crl(t->store, x) != 1) {
        tseal_ossl_err("X509_STORE_add_crl");
        return tseal_err(TSEAL_E_CRYPTO, "%s: CRL %u: %s", label, index + 1, tseal_errmsg());
    }
    t->n_crls++;
    return 0;
}

int tseal_x509_trust_add_ca_pem(tseal_x509_trust *t, const char *pem, size_t len,
                                const char *label) {
    if (!t || (!pem && len)) return tseal_err(TSEAL_E_INVAL, "trust store: bad argument");
    if (!label) label = "CA certificates";
    unsigned n = 0;
    int rc = pem_each(pem, len, label, store_add_cert, NULL, t, &n);
    if (!rc && n == 0)
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: no PEM certificate (\"BEGIN CERTIFICATE\") found",
                       label);
    return rc;
}

int tseal_x509_trust_add_ca_file(tseal_x509_trust *t, const char *pem_path) {
    if (!t || !pem_path) return tseal_err(TSEAL_E_INVAL, "trust store: bad argument");
    uint8_t *buf;
    size_t len;
    int rc = file_read(pem_path, &buf, &len);
    if (rc) return rc;
    rc = tseal_x509_trust_add_ca_pem(t, (const char *)buf, len, pem_path);
    free(buf);
    return rc;
}

int tseal_x509_trust_add_crl_pem(tseal_x509_trust *t, const char *pem, size_t len,
                                 const char *label) {
    if (!t || (!pem && len)) return tseal_err(TSEAL_E_INVAL, "trust store: bad argument");
    if (!label) label = "CRLs";
    unsigned n = 0;
    int rc = pem_each(pem, len, label, NULL, store_add_crl, t, &n);
    if (!rc && n == 0)
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: no PEM CRL (\"BEGIN X509 CRL\") found", label);
    /* once any CRL is known, every certificate of a chain needs its issuer's CRL */
    if (t->n_crls &&
        X509_STORE_set_flags(t->store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL) != 1)
        rc = rc ? rc : tseal_ossl_err("X509_STORE_set_flags");
    return rc;
}

int tseal_x509_trust_add_crl_file(tseal_x509_trust *t, const char *pem_path) {
    if (!t || !pem_path) return tseal_err(TSEAL_E_INVAL, "trust store: bad argument");
    uint8_t *buf;
    size_t len;
    int rc = file_read(pem_path, &buf, &len);
    if (rc) return rc;
    rc = tseal_x509_trust_add_crl_pem(t, (const char *)buf, len, pem_path);
    free(buf);
    return rc;
}

/* ---- verification ------------------------------------------------------------------------ */

/* RFC 2253 one-line form of a name; TSEAL_E_LIMIT if it does not fit in cap - 1 bytes. */
static int name_rfc2253(const X509_NAME *name, char *out, size_t cap, const char *what) {
    out[0] = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return tseal_ossl_err("BIO_new");
    int rc = 0;
    char *data = NULL;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
        rc = tseal_ossl_err("X509_NAME_print_ex");
    } else {
        long n = BIO_get_mem_data(bio, &data);
        if (n < 0 || (size_t)n >= cap)
            rc = tseal_err(TSEAL_E_LIMIT, "%s is longer than %zu bytes", what, cap - 1);
        else if (n > 0 && memchr(data, 0, (size_t)n))
            rc = tseal_err(TSEAL_E_CORRUPT, "%s contains a NUL byte", what);
        else {
            if (n > 0) memcpy(out, data, (size_t)n);
            out[n] = 0;
        }
    }
    BIO_free(bio);
    return rc;
}

/* Subject of a certificate for messages ("?" if it cannot be printed). */
static void subject_of(X509 *x, char *out, size_t cap) {
    if (!x || name_rfc2253(X509_get_subject_name(x), out, cap, "subject") != 0)
        snprintf(out, cap, "?");
}

static const char *verify_reason(int err) {
    switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return "certificate has expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate is not yet valid";
    case X509_V_ERR_CERT_REVOKED:
        return "certificate is revoked";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "not issued by a trusted CA (unable to get issuer certificate)";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "not issued by a trusted CA (self-signed certificate that is not a trusted root)";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
        return "signature on certificate is invalid";
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
        return "signature on the CRL is invalid";
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return "CRL has expired (its next update is past)";
    case X509_V_ERR_CRL_NOT_YET_VALID:
        return "CRL is not yet valid";
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        return "the CRL's issuer cannot be found";
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
        return "certificate has a malformed validity time";
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
        return "CRL has a malformed update time";
    case X509_V_ERR_INVALID_CA:
        return "issuer is not a CA (basic constraints)";
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        return "path length constraint exceeded";
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
        return "certificate chain is too long";
    case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        return "issuer's key usage does not allow signing certificates";
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
        return "CRL issuer's key usage does not allow signing CRLs";
    case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
        return "certificate has an unhandled critical extension";
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
        return "CRL has an unhandled critical extension";
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        return "certificate key is too weak (under 112-bit security)";
    case X509_V_ERR_CA_MD_TOO_WEAK:
        return "certificate signature digest is too weak (under 112-bit security)";
    default:
        return NULL;
    }
}

static int verify_error(X509_STORE_CTX *ctx) {
    int err = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);
    char subj[512], iss[512];
    subject_of(cur, subj, sizeof subj);
    if (err == X509_V_OK) return tseal_ossl_err("X509_verify_cert");
    ERR_clear_error();
    if (err == X509_V_ERR_UNABLE_TO_GET_CRL) {
        if (!cur || name_rfc2253(X509_get_issuer_name(cur), iss, sizeof iss, "issuer") != 0)
            snprintf(iss, sizeof iss, "?");
        return tseal_err(TSEAL_E_VERIFY,
                         "certificate chain: no CRL for %s (the issuer of the certificate at "
                         "depth %d: %s)",
                         iss, depth, subj);
    }
    const char *why = verify_reason(err);
    return tseal_err(TSEAL_E_VERIFY, "certificate chain: %s%s%s (certificate at depth %d: %s)",
                     why ? why : X509_verify_cert_error_string(err), why ? "" : " ",
                     why ? "" : "(OpenSSL)", depth, subj);
}

/* The leaf may sign artifacts: key usage (if present) has digitalSignature and the extended
 * key usage (if present) has codeSigning or anyExtendedKeyUsage. */
static int leaf_usage(X509 *leaf) {
    char subj[512];
    uint32_t flags = X509_get_extension_flags(leaf); /* computes the cached extensions */
    if (flags & EXFLAG_INVALID) {
        subject_of(leaf, subj, sizeof subj);
        return tseal_err(TSEAL_E_VERIFY,
                         "certificate chain: certificate has an invalid extension (certificate "
                         "at depth 0: %s)",
                         subj);
    }
    uint32_t ku = X509_get_key_usage(leaf), xku = X509_get_extended_key_usage(leaf);
    if ((flags & EXFLAG_KUSAGE) && !(ku & KU_DIGITAL_SIGNATURE)) {
        subject_of(leaf, subj, sizeof subj);
        return tseal_err(TSEAL_E_VERIFY,
                         "certificate chain: key usage does not allow signing (no "
                         "digitalSignature; certificate at depth 0: %s)",
                         subj);
    }
    if ((flags & EXFLAG_XKUSAGE) && !(xku & (XKU_CODE_SIGN | XKU_ANYEKU))) {
        subject_of(leaf, subj, sizeof subj);
        return tseal_err(TSEAL_E_VERIFY,
                         "certificate chain: extended key usage does not allow code signing "
                         "(neither codeSigning nor anyExtendedKeyUsage; certificate at depth 0: "
                         "%s)",
                         subj);
    }
    return 0;
}

/* A string of an X.509 name or SAN: no NUL or control byte, shorter than cap. */
static bool text_ok(const unsigned char *s, int n, size_t cap) {
    if (n <= 0 || (size_t)n >= cap) return false;
    for (int i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7F) return false;
    return true;
}

static int fill_identity(X509 *leaf, X509 *root, tseal_x509_identity *id) {
    memset(id, 0, sizeof *id);
    int rc = name_rfc2253(X509_get_subject_name(leaf), id->subject, sizeof id->subject,
                          "signer certificate subject");
    if (!rc)
        rc = name_rfc2253(X509_get_subject_name(root), id->issuer_root, sizeof id->issuer_root,
                          "root certificate subject");
    if (rc) return rc;
    /* the common name: the last (most specific) CN attribute */
    const X509_NAME *name = X509_get_subject_name(leaf);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName, idx)) >= 0) last = idx;
    if (last >= 0) {
        unsigned char *utf8 = NULL;
        int n =
            ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, last)));
        if (n < 0) {
            ERR_clear_error();
            rc = tseal_err(TSEAL_E_CORRUPT, "signer certificate: common name is not a string");
        } else if (n > 0 && !text_ok(utf8, n, sizeof id->common_name)) {
            rc = tseal_err(TSEAL_E_CORRUPT,
                           "signer certificate: common name is too long or has a control "
                           "character");
        } else if (n > 0) {
            memcpy(id->common_name, utf8, (size_t)n);
        }
        OPENSSL_free(utf8);
        if (rc) return rc;
    }
    /* SANs of the three types that identities name; others are ignored, and so are values
     * that do not fit or carry control bytes (they can then match no pattern). Present but
     * not decoded is out of memory (leaf_usage refused an invalid one), not "no SANs". */
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (!gens && crit != -1)
        return tseal_ossl_err("reading the signer certificate's subject alternative names");
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && id->n_sans < 16; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const char *prefix = g->type == GEN_EMAIL ? "email:"
                             : g->type == GEN_URI ? "URI:"
                             : g->type == GEN_DNS ? "DNS:"
                                                  : NULL;
        if (!prefix) continue;
        const ASN1_IA5STRING *s = g->d.ia5;
        size_t pl = strlen(prefix);
        int n = ASN1_STRING_length(s);
        const unsigned char *d = ASN1_STRING_get0_data(s);
        if (!d || !text_ok(d, n, sizeof id->sans[0] - pl)) continue;
        char *dst = id->sans[id->n_sans++];
        memcpy(dst, prefix, pl);
        memcpy(dst + pl, d, (size_t)n);
        dst[pl + (size_t)n] = 0;
    }
    GENERAL_NAMES_free(gens);
    ERR_clear_error();
    return 0;
}

int tseal_x509_verify(const tseal_x509_trust *t, const tseal_x509_chain *c, int64_t at,
                      tseal_x509_identity *id) {
    if (id) memset(id, 0, sizeof *id);
    if (!t || !c || c->n == 0) return tseal_err(TSEAL_E_INVAL, "verify: no trust or no chain");
    if (t->n_roots == 0) return tseal_err(TSEAL_E_VERIFY, "certificate chain: no trusted CA");
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = 0, revoked = 0;
    if (!untrusted || !ctx) {
        rc = tseal_ossl_err("X509_STORE_CTX_new");
        goto done;
    }
    for (unsigned i = 1; i < c->n; i++)
        if (!sk_X509_push(untrusted, c->cert[i])) {
            rc = tseal_ossl_err("sk_X509_push");
            goto done;
        }
    if (X509_STORE_CTX_init(ctx, t->store, c->cert[0], untrusted) != 1) {
        rc = tseal_ossl_err("X509_STORE_CTX_init");
        goto done;
    }
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(vp, (time_t)at);
    X509_VERIFY_PARAM_set_depth(vp, TSEAL_X509_MAX_CERTS);
    X509_VERIFY_PARAM_set_auth_level(vp, 2);
    ERR_clear_error();
    if (X509_verify_cert(ctx) != 1) {
        revoked = X509_STORE_CTX_get_error(ctx) == X509_V_ERR_CERT_REVOKED;
        rc = verify_error(ctx);
        goto done;
    }
    if ((rc = leaf_usage(c->cert[0])) != 0) goto done;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int n = chain ? sk_X509_num(chain) : 0;
    if (n < 1) {
        rc = tseal_err(TSEAL_E_INTERNAL, "verified chain is empty");
        goto done;
    }
    if (id) rc = fill_identity(c->cert[0], sk_X509_value(chain, n - 1), id);
done:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted); /* the certificates belong to the chain */
    if (rc && id) {
        memset(id, 0, sizeof *id);
        id->revoked = revoked;
    }
    return rc;
}

/* A name for display, truncated if it does not fit ("?" if it cannot be printed). */
static void name_display(const X509_NAME *name, char *out, size_t cap) {
    char buf[2048];
    if (name_rfc2253(name, buf, sizeof buf, "name") != 0) snprintf(buf, sizeof buf, "?");
    snprintf(out, cap, "%s", buf);
}

int tseal_x509_leaf_describe(const tseal_x509_chain *c, char *subject, size_t subject_cap,
                             char *issuer, size_t issuer_cap, int64_t *not_after) {
    if (!c || c->n == 0 || subject_cap == 0 || issuer_cap == 0)
        return tseal_err(TSEAL_E_INVAL, "describe: no certificate");
    X509 *leaf = c->cert[0];
    name_display(X509_get_subject_name(leaf), subject, subject_cap);
    name_display(X509_get_issuer_name(leaf), issuer, issuer_cap);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
        return tseal_err(TSEAL_E_CORRUPT, "certificate has a malformed validity time");
    *not_after = (int64_t)timegm(&tm);
    return 0;
}

/* ---- identities --------------------------------------------------------------------------- */

/*
 * `pat` with at most one '*' against `s`. In an RFC 2253 subject (no_escape) the '*' never
 * spans a backslash: special characters in attribute values are escaped there, so a value
 * such as CN "x,O=Acme" (printed "CN=x\,O=Acme") cannot satisfy "CN=*,O=Acme".
 */
static bool glob(const char *pat, const char *s, bool no_escape) {
    const char *star = strchr(pat, '*');
    if (!star) return strcmp(pat, s) == 0;
    size_t pre = (size_t)(star - pat), suf = strlen(star + 1), n = strlen(s);
    if (n < pre + suf || strncmp(s, pat, pre) != 0 || strcmp(s + n - suf, star + 1) != 0)
        return false;
    if (no_escape && memchr(s + pre, '\\', n - pre - suf)) return false;
    return true;
}

static const struct {
    const char *type, *san_prefix;
} id_types[] = {{"subject", NULL}, {"email", "email:"}, {"uri", "URI:"}, {"dns", "DNS:"}};

/* Index into id_types of a pattern's type and its text; -1 with a message if malformed. */
static int pattern_parse(const char *pattern, const char **text) {
    if (!pattern) return tseal_err(TSEAL_E_INVAL, "identity pattern is NULL"), -1;
    const char *colon = strchr(pattern, ':');
    size_t tl = colon ? (size_t)(colon - pattern) : 0;
    int k = -1;
    for (int i = 0; colon && i < (int)(sizeof id_types / sizeof id_types[0]); i++)
        if (strlen(id_types[i].type) == tl && strncasecmp(pattern, id_types[i].type, tl) == 0)
            k = i;
    if (k < 0) {
        tseal_err(TSEAL_E_INVAL,
                  "identity \"%s\": expected subject:, email:, uri: or dns: followed by a value",
                  pattern);
        return -1;
    }
    *text = colon + 1;
    if (!**text) {
        tseal_err(TSEAL_E_INVAL, "identity \"%s\": the value is empty", pattern);
        return -1;
    }
    const char *star = strchr(*text, '*');
    if (star && strchr(star + 1, '*')) {
        tseal_err(TSEAL_E_INVAL, "identity \"%s\": more than one '*'", pattern);
        return -1;
    }
    return k;
}

int tseal_x509_identity_pattern_check(const char *pattern) {
    const char *text;
    return pattern_parse(pattern, &text) < 0 ? TSEAL_E_INVAL : 0;
}

int tseal_x509_identity_matches(const tseal_x509_identity *id, const char *pattern) {
    const char *text = NULL;
    int k = pattern_parse(pattern, &text);
    if (k < 0 || !id) return 0;
    if (!id_types[k].san_prefix)
        return (id->subject[0] && glob(text, id->subject, true)) ||
               (id->common_name[0] && glob(text, id->common_name, false));
    const char *prefix = id_types[k].san_prefix;
    size_t pl = strlen(prefix);
    for (unsigned i = 0; i < id->n_sans && i < 16; i++)
        if (strncmp(id->sans[i], prefix, pl) == 0 && glob(text, id->sans[i] + pl, false)) return 1;
    return 0;
}
