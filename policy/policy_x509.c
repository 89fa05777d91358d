/*
 * policy_x509.c - the X.509 parts of a policy that the policy reader checks itself, strictly,
 * before handing them to the trust store of the FIPS module (crypto/tseal_fips.h): a trusted
 * CA's PEM text (one CA certificate, canonical DER), CRL files (PEM "X509 CRL" blocks only),
 * and subjects for messages (docs/POLICY.md, "trusted_cas", "crl_files").
 *
 * Everything here reads policy text or files the policy names, not artifact data, except
 * pol_leaf_subject, which only formats an (untrusted) leaf subject for a denial reason.
 */
#define _GNU_SOURCE /* timegm */
#include <stdlib.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

#define PEM_BEGIN "-----BEGIN "

static bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_blanks(const char *s, size_t i, size_t n) {
    while (i < n && is_blank(s[i])) i++;
    return i;
}

/* PEM is ASCII text: printable characters, tab, CR and LF. */
static bool pem_text(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 || s[i] > 0x7E) && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

static int nomem(void) {
    return tseal_err(TSEAL_E_NOMEM, "out of memory");
}

/*
 * The next PEM block of `s` at *off (blanks before it skipped; anything else before it is an
 * error): its type name (freed by the caller with OPENSSL_free) and decoded bytes. *off moves
 * past the block. `what` names the block kind in messages ("certificate", "CRL").
 */
static int next_block(const char *s, size_t n, size_t *off, const char *path, const char *want,
                      uint8_t **der, long *der_len) {
    *der = NULL;
    *der_len = 0;
    size_t i = skip_blanks(s, *off, n);
    /* at the start of a line, as every PEM reader needs it */
    if (n - i < sizeof PEM_BEGIN - 1 || memcmp(s + i, PEM_BEGIN, sizeof PEM_BEGIN - 1) != 0 ||
        (i > 0 && s[i - 1] != '\n'))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: text at offset %zu is not a PEM block (\"%s%s-----\")", path, i,
                         PEM_BEGIN, want);
    BIO *b = BIO_new_mem_buf(s + i, (int)(n - i));
    if (!b) return nomem();
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int rc = 0;
    if (PEM_read_bio(b, &name, &header, &data, &len) != 1) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: malformed PEM block at offset %zu", path, i);
    } else if (strncmp(s + i + sizeof PEM_BEGIN - 1, name, strlen(name)) != 0 ||
               strncmp(s + i + sizeof PEM_BEGIN - 1 + strlen(name), "-----", 5) != 0) {
        /* the reader skips lines it cannot use: the block must start right here */
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: malformed PEM line at offset %zu", path, i);
    } else if (strcmp(name, want) != 0) {
        char q[TSEAL_QUOTE_MAX];
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: PEM block at offset %zu is \"%s\", not \"%s\"", path,
                       i, tseal_quote(name, q), want);
    } else if (header[0]) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: PEM block at offset %zu has headers (encrypted?)",
                       path, i);
    } else if (len <= 0) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: PEM block at offset %zu is empty", path, i);
    }
    char *rest = NULL;
    long rest_len = BIO_get_mem_data(b, &rest);
    if (!rc && (rest_len < 0 || (size_t)rest_len > n - i))
        rc = tseal_err(TSEAL_E_INTERNAL, "%s: PEM reader position", path);
    if (!rc) {
        *off = n - (size_t)rest_len;
        *der = data;
        *der_len = len;
        data = NULL;
    }
    BIO_free(b);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    return rc;
}

/* i2d(x) is exactly der[0..len): a strict DER encoding (the fingerprint is well defined). */
static bool same_der(const uint8_t *der, long len, int enc_len, const uint8_t *enc) {
    return enc_len == len && memcmp(der, enc, (size_t)len) == 0;
}

static int asn1_unix(const ASN1_TIME *t, int64_t *out) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return -1;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* RFC 2253 one-line form (XN_FLAG_RFC2253), the form tseal_x509_identity uses. */
static int name_text(const X509_NAME *nm, char out[POL_SUBJECT_MAX]) {
    out[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return -1;
    int rc = -1;
    if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
        char *p = NULL;
        long n = BIO_get_mem_data(b, &p);
        if (n >= 0 && n < POL_SUBJECT_MAX) {
            memcpy(out, p, (size_t)n);
            out[n] = 0;
            rc = 0;
        }
    }
    BIO_free(b);
    return rc;
}

const char *pol_identity_problem(const char *s) {
    static const char *const kinds[] = {"subject:", "email:", "uri:", "dns:"};
    const char *rest = NULL;
    for (unsigned k = 0; k < sizeof kinds / sizeof *kinds && !rest; k++)
        if (strncmp(s, kinds[k], strlen(kinds[k])) == 0) rest = s + strlen(kinds[k]);
    if (!rest)
        return "is not an identity pattern (\"subject:\", \"email:\", \"uri:\" or \"dns:\" then "
               "the text)";
    const char *pr = pol_text_problem(rest, strlen(rest), POL_IDENTITY_MAX);
    if (pr && strcmp(pr, "is empty") == 0) return "has no text after the type";
    if (pr) return "is not 1..512 bytes of printable UTF-8 after the type";
    const char *star = strchr(rest, '*');
    if (star && strchr(star + 1, '*')) return "has more than one '*' (one wildcard at most)";
    return NULL;
}

int pol_ca_check(const char *pem, size_t len, const char *path, pol_ca *ca) {
    if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "%s: is empty", path);
    if (len > TSEAL_POLICY_MAX_CA_PEM)
        return tseal_err(TSEAL_E_LIMIT, "%s: more than %u bytes (the limit)", path,
                         TSEAL_POLICY_MAX_CA_PEM);
    if (!pem_text((const uint8_t *)pem, len))
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not PEM text (printable ASCII)", path);
    size_t off = 0;
    uint8_t *der = NULL, *enc = NULL;
    long dlen = 0;
    X509 *x = NULL;
    int rc = next_block(pem, len, &off, path, "CERTIFICATE", &der, &dlen);
    if (rc) return rc;
    if (skip_blanks(pem, off, len) != len) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: more than one certificate, or text after it", path);
        goto out;
    }
    const unsigned char *p = der;
    x = d2i_X509(NULL, &p, dlen);
    if (!x || p != der + dlen) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: is not a DER X.509 certificate", path);
        goto out;
    }
    int elen = i2d_X509(x, &enc);
    if (elen < 0) {
        rc = nomem();
        goto out;
    }
    if (!same_der(der, dlen, elen, enc)) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: is not strict DER", path);
        goto out;
    }
    uint32_t flags = X509_get_extension_flags(x);
    if (flags & EXFLAG_INVALID) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: has an invalid or duplicate extension", path);
        goto out;
    }
    if (!(flags & EXFLAG_CA)) {
        rc = tseal_err(TSEAL_E_CORRUPT,
                       "%s: is not a CA certificate (basicConstraints CA:TRUE is required)", path);
        goto out;
    }
    /* a trust anchor must be a root: the verifier builds chains up to a self-signed
     * certificate (no partial chains) */
    EVP_PKEY *self = X509_get0_pubkey(x);
    if (!(flags & EXFLAG_SI) || !self || X509_verify(x, self) != 1) {
        rc = tseal_err(TSEAL_E_CORRUPT,
                       "%s: is not a root (self-signed) CA certificate; list the root of the PKI",
                       path);
        goto out;
    }
    if (X509_check_ca(x) != 1) {
        rc = tseal_err(TSEAL_E_CORRUPT,
                       "%s: its key usage does not allow signing certificates (keyCertSign)", path);
        goto out;
    }
    if (name_text(X509_get_subject_name(x), ca->subject) != 0 || !ca->subject[0]) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: subject is empty or longer than %d bytes", path,
                       POL_SUBJECT_MAX - 1);
        goto out;
    }
    if (asn1_unix(X509_get0_notBefore(x), &ca->not_before) != 0 ||
        asn1_unix(X509_get0_notAfter(x), &ca->not_after) != 0) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: unreadable validity period", path);
        goto out;
    }
    rc = tseal_sha256(der, (size_t)dlen, ca->fingerprint);
out:
    ERR_clear_error();
    X509_free(x);
    OPENSSL_free(enc);
    OPENSSL_free(der);
    return rc;
}

int pol_crl_check(const uint8_t *buf, size_t len, const char *path) {
    if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "%s: is empty", path);
    if (!pem_text(buf, len))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: is not PEM text (a DER CRL converts with: openssl crl -inform DER "
                         "-in F -out F.pem)",
                         path);
    const char *s = (const char *)buf;
    size_t off = 0;
    unsigned n = 0;
    int rc = 0;
    while (!rc && skip_blanks(s, off, len) < len) {
        uint8_t *der = NULL, *enc = NULL;
        long dlen = 0;
        if ((rc = next_block(s, len, &off, path, "X509 CRL", &der, &dlen)) != 0) break;
        const unsigned char *p = der;
        X509_CRL *c = d2i_X509_CRL(NULL, &p, dlen);
        int elen = c && p == der + dlen ? i2d_X509_CRL(c, &enc) : -1;
        if (!c || p != der + dlen)
            rc = tseal_err(TSEAL_E_CORRUPT, "%s: CRL %u is not a DER X.509 CRL", path, n);
        else if (elen < 0)
            rc = nomem();
        else if (!same_der(der, dlen, elen, enc))
            rc = tseal_err(TSEAL_E_CORRUPT, "%s: CRL %u is not strict DER", path, n);
        X509_CRL_free(c);
        OPENSSL_free(enc);
        OPENSSL_free(der);
        n++;
    }
    ERR_clear_error();
    if (!rc && n == 0) rc = tseal_err(TSEAL_E_CORRUPT, "%s: holds no CRL", path);
    return rc;
}

void pol_leaf_subject(const tseal_x509_chain *c, char out[POL_SUBJECT_MAX]) {
    out[0] = 0;
    uint8_t *der = NULL;
    size_t len = 0;
    if (!c || tseal_x509_chain_encode(c, &der, &len) != 0) return;
    if (len >= 4) {
        size_t n = (size_t)der[0] << 24 | (size_t)der[1] << 16 | (size_t)der[2] << 8 | der[3];
        const unsigned char *p = der + 4;
        X509 *x = n <= len - 4 ? d2i_X509(NULL, &p, (long)n) : NULL;
        char raw[POL_SUBJECT_MAX];
        if (x && name_text(X509_get_subject_name(x), raw) == 0 && raw[0])
            pol_quote(raw, out, POL_SUBJECT_MAX);
        X509_free(x);
    }
    ERR_clear_error();
    free(der);
}

int pol_ca_file_pem(const char *path, char **pem) {
    *pem = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = pol_read_file(path, TSEAL_POLICY_MAX_BYTES, &buf, &len);
    if (rc) return rc;
    BIO *in = NULL, *outb = NULL;
    X509 *x = NULL, *more = NULL;
    if (len > INT32_MAX || !(in = BIO_new_mem_buf(buf, (int)len))) {
        rc = nomem();
        goto out;
    }
    /* text around the block (an `openssl x509 -text` dump) is fine here: only the
     * certificate is written, re-encoded */
    x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (!x) {
        rc = tseal_err(TSEAL_E_CORRUPT, "%s: holds no PEM certificate", path);
        goto out;
    }
    more = PEM_read_bio_X509(in, NULL, NULL, NULL);
    if (more) {
        rc = tseal_err(TSEAL_E_INVAL, "%s: holds more than one certificate (give one root CA)",
                       path);
        goto out;
    }
    char *p = NULL;
    long n;
    if (!(outb = BIO_new(BIO_s_mem())) || PEM_write_bio_X509(outb, x) != 1 ||
        (n = BIO_get_mem_data(outb, &p)) <= 0 || !(*pem = strndup(p, (size_t)n))) {
        rc = nomem();
        goto out;
    }
    pol_ca tmp;
    memset(&tmp, 0, sizeof tmp);
    if ((rc = pol_ca_check(*pem, strlen(*pem), path, &tmp)) != 0) {
        free(*pem);
        *pem = NULL;
    }
out:
    ERR_clear_error();
    X509_free(x);
    X509_free(more);
    BIO_free(in);
    BIO_free(outb);
    free(buf);
    return rc;
}
