/*
 * tseal_policy.h - deployment policy: which artifacts a site may load, decided by one gate
 * that `tseal verify --policy`, `tseal audit` and the loader all call (format: docs/POLICY.md).
 *
 * Principles: no match means deny; every reason for a denial is reported (not only the first);
 * data signed by the artifact's signers never widens what the policy allows (only the policy's
 * own trusted signers count, revocation and not-after always apply); a policy can itself be
 * signed by a policy key, and a caller can require that.
 */
#ifndef TSEAL_POLICY_H
#define TSEAL_POLICY_H

#include <stdint.h>

#include "tseal.h"
#include "tseal_crypto.h"
#include "tseal_fips.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSEAL_POLICY_MAX_BYTES   (1u << 20) /* policy file */
#define TSEAL_POLICY_MAX_SIGNERS 256
#define TSEAL_POLICY_MAX_REVOKED 4096
#define TSEAL_POLICY_MAX_MODELS  1024
#define TSEAL_POLICY_MAX_PINS    256 /* pinned digests per model */
#define TSEAL_POLICY_MAX_SUITES  8
#define TSEAL_POLICY_MAX_ATTEST  16
#define TSEAL_POLICY_MAX_DEPTH   8 /* JSON nesting */
#define TSEAL_POLICY_SIG_TYPE    "tseal/policy"
#define TSEAL_SUITE_NAME_V1      "ed25519-x25519-chacha20poly1305-sha256"
#define TSEAL_SUITE_NAME_FIPS    "fips-p256-aes256gcm-sha256" /* container suite 2 */
#define TSEAL_STATE_MAX_BYTES    (16u << 20)
#define TSEAL_STATE_MAX_ENTRIES  100000u /* (model, signer) pairs in a state file */

/* X.509 signers (docs/POLICY.md, trusted_cas and crl_files). */
#define TSEAL_POLICY_MAX_CAS        64          /* trusted_cas entries */
#define TSEAL_POLICY_MAX_IDENTITIES 32          /* identity patterns per trusted CA */
#define TSEAL_POLICY_MAX_CRLS       16          /* crl_files entries */
#define TSEAL_POLICY_MAX_CRL_BYTES  (16u << 20) /* one CRL file */
#define TSEAL_POLICY_MAX_CA_PEM     TSEAL_X509_MAX_CHAIN_BYTES /* a trusted CA's PEM text */

typedef struct tseal_policy tseal_policy;

/*
 * Load a policy file: either a bare policy JSON object, or a signed envelope
 * {"payloadType": "tseal/policy", "payload": base64(policy JSON), "signatures": [...]}
 * whose signatures (tseal_sign, payload type TSEAL_POLICY_SIG_TYPE, over SHA-256 of the
 * decoded payload) must all be valid. If `require_signed`, at least one signature by one of
 * `policy_keys` is required (an unsigned policy, or one signed only by other keys, is refused
 * with TSEAL_E_DENIED). Malformed input: TSEAL_E_CORRUPT naming the member and problem.
 */
int tseal_policy_load(const char *path, const tseal_pubkey *policy_keys, unsigned n_policy_keys,
                      int require_signed, tseal_policy **out);
/* The same over memory (fuzzing, tests). Relative crl_files paths are relative to the current
 * directory (tseal_policy_load: to the policy file's folder). */
int tseal_policy_parse(const uint8_t *buf, size_t len, const char *label,
                       const tseal_pubkey *policy_keys, unsigned n_policy_keys, int require_signed,
                       tseal_policy **out);
/* tseal_policy_parse with relative crl_files paths resolved against `base_dir` (NULL: the
 * current directory), e.g. the folder the policy bytes were read from. */
int tseal_policy_parse_in(const uint8_t *buf, size_t len, const char *label, const char *base_dir,
                          const tseal_pubkey *policy_keys, unsigned n_policy_keys,
                          int require_signed, tseal_policy **out);
void tseal_policy_free(tseal_policy *p);

const char *tseal_policy_id(const tseal_policy *p);
/* SHA-256 of the policy file's bytes as loaded (what an audit report records). */
void tseal_policy_digest(const tseal_policy *p, uint8_t out[TSEAL_HASH_BYTES]);
/* 1 if the policy was loaded from a signed envelope with >= 1 valid signature. */
int tseal_policy_is_signed(const tseal_policy *p);
/* 1 if the policy demands a rollback state file ("require_rollback_state": true). */
int tseal_policy_requires_state(const tseal_policy *p);
/* 1 if the policy lists this suite name in allowed_suites (what decides which suite may load:
 * a caller can refuse an artifact of another suite before doing any work). */
int tseal_policy_allows_suite(const tseal_policy *p, const char *suite_name);

/* Human-readable explanation of a policy (what `tseal policy show` prints). Malloc'd text. */
char *tseal_policy_explain(const tseal_policy *p);

/* `tseal policy init`: a valid starting policy trusting these signer keys for one model. */
typedef struct {
    const char *policy_id;       /* NULL: "site-policy" */
    const tseal_pubkey *trusted; /* signing keys */
    unsigned n_trusted;
    const char *model_id;
    uint64_t min_version;
    int64_t expires;    /* policy expiry, unix seconds, 0 = none */
    unsigned threshold; /* 0 = 1 */
    /* Optional: trust X.509 signers issued under this root CA (a PEM file holding exactly one
     * CA certificate), constrained to these identity patterns (1..32, the syntax of
     * tseal_x509_identity_matches, e.g. "email:release@acme.com"). With a CA, `trusted` may
     * be empty and allowed_suites lists both suites. */
    const char *ca_pem_path;
    const char *const *identities;
    unsigned n_identities;
    int fips_only; /* allowed_suites = [TSEAL_SUITE_NAME_FIPS] only (no downgrade to v1) */
} tseal_policy_init_opts;
/* Writes pretty JSON to `path` (temp + rename; refuses to overwrite unless force). */
int tseal_policy_init(const tseal_policy_init_opts *o, const char *path, int force);
/* Wrap a policy file into a signed envelope (or add a signature to one) -> `out_path`. */
int tseal_policy_sign(const char *policy_path, const tseal_seckey *key, const char *out_path,
                      int force);

/* ---- the gate ------------------------------------------------------------------------------ */

/* An audit report the caller has already verified (signature valid) and reduced to facts. */
typedef struct {
    uint8_t auditor_key_id[TSEAL_KEY_ID_BYTES];
    uint8_t subject_digest[TSEAL_HASH_BYTES]; /* the artifact digest it attests */
    int passed;
} tseal_attestation;

/* Everything the gate decides on, read from the container (and the caller's checks). */
typedef struct {
    const char *model_id;
    uint64_t version;
    int64_t created, expires; /* unix seconds; expires 0 = never */
    const char *suite_name;   /* e.g. TSEAL_SUITE_NAME_V1 */
    uint64_t header_bytes;
    uint32_t recipients;
    uint32_t tensors;
    uint64_t largest_tensor_bytes;             /* plaintext bytes of the largest segment */
    uint8_t artifact_digest[TSEAL_HASH_BYTES]; /* SHA-256 of the container's public header */
    /* Public keys of the artifact's signatures, every one already verified as valid. */
    const uint8_t (*signer_pks)[TSEAL_PK_BYTES];
    unsigned n_signers;
    const tseal_attestation *attestations;
    unsigned n_attestations;
    /* X.509 signers (the FIPS suite), parallel to signer_pks: NULL (the array, or an entry) is
     * an Ed25519 signer whose key is signer_pks[i]; non-NULL is a certificate chain (leaf
     * first) whose leaf key the caller has verified the signature with (signer_pks[i] is then
     * ignored and signer_pks may be NULL if every signer is X.509). The gate verifies the chain
     * against the policy's trusted CAs and CRLs. */
    const tseal_x509_chain *const *signer_chains;
    /* Key id of every signer (X.509: of the P-256 leaf key), as the container names them;
     * NULL: derived by the gate. The gate checks them against the keys and chains
     * (TSEAL_E_INVAL on a mismatch). */
    const uint8_t (*signer_key_ids)[TSEAL_KEY_ID_BYTES];
} tseal_gate_input;

typedef struct {
    char **reasons; /* every denial reason, in a stable order */
    unsigned n_reasons;
    /* The signers that counted toward the threshold (trusted, not revoked, not expired), by
     * key id (X.509 signers: the leaf key's id). */
    uint8_t counted[TSEAL_POLICY_MAX_SIGNERS][TSEAL_KEY_ID_BYTES];
    unsigned n_counted;
} tseal_gate_result;

/* Rollback state: per (model id, signer key id), the highest version ever accepted. */
typedef struct tseal_state tseal_state;
/* A missing file is an empty state; a malformed one is TSEAL_E_CORRUPT. */
int tseal_state_load(const char *path, tseal_state **out);
/* The same over memory (fuzzing, tests); `label` names it in messages. len 0 is malformed. */
int tseal_state_parse(const uint8_t *buf, size_t len, const char *label, tseal_state **out);
/* Number of (model, signer) entries. */
size_t tseal_state_count(const tseal_state *s);
void tseal_state_free(tseal_state *s);
/* Highest version accepted for (model, signer); 0 with *found = 0 if none. */
uint64_t tseal_state_get(const tseal_state *s, const char *model_id,
                         const uint8_t signer[TSEAL_KEY_ID_BYTES], int *found);
/*
 * After full verification only: raise (model, signer) to `version` for every counted signer
 * and write the state atomically (temp file, fsync, rename, fsync of the folder).
 */
int tseal_state_record(tseal_state *s, const char *path, const char *model_id,
                       const uint8_t (*signers)[TSEAL_KEY_ID_BYTES], unsigned n, uint64_t version);

/*
 * Decide. Returns 0 (allow) or TSEAL_E_DENIED with every reason in `res` and joined with
 * "; " in tseal_errmsg(). `state` may be NULL (no rollback check; denied if the policy
 * requires a state). `now` in unix seconds. Reasons use the wording of docs/POLICY.md, e.g.
 * "signer key 3f2a1b... is revoked", "version 11 < minimum 12 for model acme/credit-7b",
 * "artifact expired 2026-10-01T00:00:00Z", "suite foo is not allowed",
 * "threshold not met: 1 of 2 required signatures", "rollback: version 11 < 12 already accepted",
 * "signer certificate CN=x: certificate has expired",
 * "signer certificate CN=x is not an allowed identity for CA bank-pki".
 */
int tseal_policy_gate(const tseal_policy *p, const tseal_gate_input *in, const tseal_state *state,
                      int64_t now, tseal_gate_result *res);
void tseal_gate_result_free(tseal_gate_result *res);

#ifdef __cplusplus
}
#endif
#endif
