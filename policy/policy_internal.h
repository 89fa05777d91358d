/*
 * policy_internal.h - what the policy/ files share (and the policy tests and fuzz targets may
 * see): the parsed policy and state, strict JSON helpers, dates, hex and base64, file reading
 * and atomic writing. Not installed. Format: docs/POLICY.md.
 */
#ifndef TSEAL_POLICY_INTERNAL_H
#define TSEAL_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tseal_policy.h"

struct cJSON;

/* Largest integer a policy or state file may hold (exact in a double). */
#define POL_INT_MAX       (1ull << 53)
#define POL_ID_MAX        128 /* bytes of policy_id */
#define POL_MODEL_ID_MAX  256 /* bytes of a model id (as the container) */
#define POL_SUITE_MAX     64  /* bytes of a suite name */
#define POL_ENV_MAX_SIGS  16  /* signatures in an envelope */
#define POL_MAX_TOKENS    300000u
#define POL_MAX_TOP_KEYS  64u
#define POL_PATH_MAX      96 /* member paths in messages ("models[1023].artifact_digests[255]") */
#define POL_KEY_HEX_BYTES (2 * TSEAL_KEY_ID_BYTES + 1)
#define POL_IDENTITY_MAX  512  /* bytes of an identity pattern after its type prefix */
#define POL_PATH_FILE_MAX 4096 /* bytes of a crl_files path */
#define POL_SUBJECT_MAX   512  /* bytes of an RFC 2253 subject, NUL included (as the x509 API) */
#define POL_WHY_MAX       384  /* bytes of a certificate verification reason in a denial */

typedef struct {
    char *name;
    uint8_t key_id[TSEAL_KEY_ID_BYTES];
    uint8_t pk[TSEAL_PK_BYTES];
    int64_t not_after; /* valid when has_not_after */
    int has_not_after;
} pol_signer;

typedef struct {
    char *model_id;
    uint64_t min_version;
    int has_pins;
    uint8_t (*pins)[TSEAL_HASH_BYTES];
    unsigned n_pins;
} pol_model;

typedef struct {
    char *name;
    char *pem;                             /* the certificate text, as in the policy */
    char subject[POL_SUBJECT_MAX];         /* RFC 2253 one-line subject of the root */
    uint8_t fingerprint[TSEAL_HASH_BYTES]; /* SHA-256 of the DER certificate */
    int64_t not_before, not_after;
    char **identities;
    unsigned n_identities;
} pol_ca;

typedef struct {
    char *type; /* "audit-report" */
    uint8_t auditor_key_id[TSEAL_KEY_ID_BYTES];
} pol_attest;

struct tseal_policy {
    char *id;
    int has_expires;
    int64_t expires;
    pol_signer *signers;
    unsigned n_signers;
    uint8_t (*revoked)[TSEAL_KEY_ID_BYTES]; /* sorted (memcmp), unique */
    unsigned n_revoked;
    unsigned threshold;
    char **suites;
    unsigned n_suites;
    pol_model *models;
    unsigned n_models;
    /* limits: 0 = none */
    uint64_t max_header_bytes, max_tensors, max_recipients, max_tensor_bytes;
    pol_attest *attest;
    unsigned n_attest;
    int require_state;
    /* X.509 signers: trusted roots, CRLs (paths as written and as opened), and the trust store
     * built from all of them at load time (NULL when there is no CA), shared by every gate. */
    pol_ca *cas;
    unsigned n_cas;
    char **crl_files, **crl_paths;
    unsigned n_crls;
    tseal_x509_trust *trust;
    /* how it was loaded */
    uint8_t digest[TSEAL_HASH_BYTES];
    int is_signed;
    uint8_t (*sig_key_ids)[TSEAL_KEY_ID_BYTES]; /* envelope signers, in envelope order */
    unsigned n_sigs;
};

typedef struct {
    char *model_id;
    uint8_t signer[TSEAL_KEY_ID_BYTES];
    uint64_t version;
} pol_state_entry;

struct tseal_state {
    pol_state_entry *e; /* sorted by (model_id, signer), unique */
    size_t n, cap;
};

/* ---- text ------------------------------------------------------------------------------ */

/* NULL if s[0..len) is 1..max bytes of valid UTF-8 without C0, DEL or C1 controls; else what
 * is wrong ("is empty", "is longer than 128 bytes", ...). */
const char *pol_text_problem(const char *s, size_t len, size_t max);
/* s with control characters (C0, DEL, C1) replaced by '?', cut at a UTF-8 character boundary
 * with "..." to fit in `cap` bytes (cap >= 8), into out. */
void pol_quote(const char *s, char *out, size_t cap);
/* A member path: parent.member, or member at the top (parent ""). */
void pol_path(char out[POL_PATH_MAX], const char *parent, const char *member);
void pol_path_index(char out[POL_PATH_MAX], const char *parent, unsigned i);
/* First 16 hex digits of a key id or digest. */
void pol_short_hex(const uint8_t *b, char out[17]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void pol_hex(const uint8_t *b, size_t n, char *out);
/* Exactly 2n lower-case hex digits -> n bytes; false otherwise. */
bool pol_unhex(const char *s, uint8_t *out, size_t n);
/* Canonical padded standard base64 of exactly `n` bytes (n > 0). Malloc'd decode for
 * variable sizes: pol_unb64_alloc (max bytes). */
bool pol_unb64(const char *s, uint8_t *out, size_t n);
int pol_unb64_alloc(const char *s, size_t max, uint8_t **out, size_t *len, const char *what);
/* Malloc'd base64 of b[0..n). NULL on NOMEM (message recorded). */
char *pol_b64(const uint8_t *b, size_t n);

/* ---- dates ----------------------------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SSZ" or "YYYY-MM-DD" (= T23:59:59Z, the end of that day), years
 * 1970..9999, real calendar dates; false otherwise. */
bool pol_parse_date(const char *s, int64_t *out);
/* "YYYY-MM-DDTHH:MM:SSZ" (UTC). */
void pol_fmt_time(int64_t t, char out[32]);

/* ---- JSON ------------------------------------------------------------------------------ */

/* The lexical checks every tseal JSON gets, plus: valid UTF-8, first non-blank byte '{'
 * (no BOM), every number a plain non-negative integer <= 2^53, nothing but blanks after the
 * value. *out is an object (freed with cJSON_Delete). */
int pol_json_parse(const uint8_t *s, size_t len, uint64_t max_tokens, struct cJSON **out);
/* Splits an object into known members: out[i] = member names[i] or NULL. Unknown and
 * duplicate members are errors ("<path>: unknown member \"x\""). */
int pol_members(const struct cJSON *obj, const char *path, const char *const *names, unsigned n,
                const struct cJSON **out);
const char *pol_json_type(const struct cJSON *v);
int pol_want(const struct cJSON *v, int (*is)(const struct cJSON *), const char *what,
             const char *path);
int pol_want_string(const struct cJSON *v, const char *path);
int pol_want_uint(const struct cJSON *v, uint64_t max, const char *path, uint64_t *out);
/* JSON string literal of s (quotes and escapes) appended to a growing buffer. */
typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} pol_buf;
void pol_buf_add(pol_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pol_buf_str(pol_buf *b, const char *s); /* as a JSON string literal */
void pol_buf_free(pol_buf *b);

/* ---- files ----------------------------------------------------------------------------- */

/* The folder of a file path ("." without a slash), malloc'd; NULL when out of memory. */
char *pol_dirname(const char *path);
/* Reads a whole file of at most `max` bytes; TSEAL_E_NOTFOUND (with a message) if missing. */
int pol_read_file(const char *path, size_t max, uint8_t **buf, size_t *len);
/* Atomic write (temp file, fsync, rename, fsync of the folder); never replaces an existing
 * file unless `replace`. */
int pol_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace);

/* ---- X.509 (policy_x509.c) -------------------------------------------------------------- */

/* NULL if `s` is an identity pattern: "subject:", "email:", "uri:" or "dns:", then 1..512
 * bytes of printable UTF-8 with at most one '*'; else what is wrong. */
const char *pol_identity_problem(const char *s);

/* A trusted CA's PEM text: exactly one "CERTIFICATE" block with nothing but blanks around it,
 * strict DER, a CA (basicConstraints CA:TRUE; keyCertSign if key usage is present). Fills the
 * subject, fingerprint and validity of `ca`. TSEAL_E_CORRUPT "<path>: <problem>". */
int pol_ca_check(const char *pem, size_t len, const char *path, pol_ca *ca);
/* A CRL file's bytes: one or more "X509 CRL" blocks, nothing else but blanks, each strict DER.
 * TSEAL_E_CORRUPT "<path>: <problem>". */
int pol_crl_check(const uint8_t *buf, size_t len, const char *path);
/* The RFC 2253 subject of a chain's leaf certificate, quoted for a message (control
 * characters replaced, cut); "" if it cannot be read. */
void pol_leaf_subject(const tseal_x509_chain *c, char out[POL_SUBJECT_MAX]);
/* For tseal_policy_init: the one CA certificate of a PEM file, checked as pol_ca_check and
 * re-encoded as canonical PEM (malloc'd). */
int pol_ca_file_pem(const char *path, char **pem);

/* ---- state ----------------------------------------------------------------------------- */

/* The bytes of a state file (malloc'd). */
int pol_state_encode(const tseal_state *s, char **out, size_t *len);

#endif
