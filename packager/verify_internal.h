/*
 * verify_internal.h - the verification engine behind verify, unpack and audit (unpack.c),
 * with hooks so that an audit can record every result instead of stopping at the first.
 */
#ifndef TSEAL_VERIFY_INTERNAL_H
#define TSEAL_VERIFY_INTERNAL_H

#include "container.h"
#include "manifest.h"
#include "tseal_policy.h"

typedef struct {
    void *ctx;
    /* After the signatures (and the policy, if any) were checked; gate may be NULL. A nonzero
     * return stops. When set, a policy denial does not stop the engine (the hook decides). */
    int (*opened)(void *ctx, const tseal_container *c, const tseal_gate_result *gate, int denied);
    int (*manifest)(void *ctx, const tseal_manifest *m);
    /* Each tensor and file with its computed digest; mismatches are reported, not fatal. */
    int (*tensor)(void *ctx, const tseal_mf_file *f, const tseal_mf_tensor *t,
                  const uint8_t actual[TSEAL_HASH_BYTES]);
    int (*file)(void *ctx, const tseal_mf_file *f, const uint8_t actual[TSEAL_HASH_BYTES]);
} tseal_verify_hooks;

int tseal_verify_run(const char *path, const tseal_verify_opts *o, tseal_verify_report *rep,
                     const char *tmpdir, int need_trust, const tseal_verify_hooks *hooks);

/* An artifact opened for reading (the loader): signatures (or the policy gate, with the
 * rollback state read but not raised), expiry and the key checked, the manifest decrypted. */
typedef struct {
    tseal_container *c;
    uint8_t *content_key; /* secure, TSEAL_SYM_KEY_BYTES */
    tseal_manifest m;
    unsigned trusted_signatures;
    int policy_allowed;
    char policy_id[129];
} tseal_verified;
int tseal_verified_open(const char *path, const tseal_verify_opts *o, tseal_verified *out);
void tseal_verified_close(tseal_verified *x);

/* Gate facts of an open container (signatures must have been checked): caller storage for
 * c->n_sigs signers (Ed25519 keys, X.509 chains of suite 2, key ids). */
typedef struct {
    uint8_t pks[TSEAL_MAX_SIGNATURES][TSEAL_PK_BYTES];
    const tseal_x509_chain *chains[TSEAL_MAX_SIGNATURES];
    uint8_t key_ids[TSEAL_MAX_SIGNATURES][TSEAL_KEY_ID_BYTES];
} tseal_gate_signers;
void tseal_container_gate_input(const tseal_container *c, tseal_gate_signers *sg,
                                tseal_gate_input *in);

/* Verify an audit report's signature (with the key it names) and reduce it to the facts a
 * policy checks. */
int tseal_report_attestation(const char *path, tseal_attestation *out);
/* The same over memory (fuzzing). */
int tseal_report_attestation_mem(const uint8_t *buf, size_t len, const char *label,
                                 tseal_attestation *out);

#endif
