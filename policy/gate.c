/*
 * gate.c - tseal_policy_gate: the one decision `tseal verify --policy`, `tseal audit` and the
 * loader share (docs/POLICY.md, "The gate").
 *
 * Every rule is evaluated and every reason collected, in a fixed order (policy, artifact,
 * model, suite, limits, signers, threshold, rollback, attestations). Anything not explicitly
 * allowed is denied: no matching model, an unknown suite, too few counted signers. Only the
 * policy's own trusted signers count; revocation always denies; a key past its not_after never
 * counts and always denies. X.509 signers count only with a chain that verifies to one of the
 * policy's CAs (validity at `now`, key usage, the CRLs) and an identity that CA allows; a
 * certificate revoked by a CRL always denies.
 */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

#define FUTURE_SLACK_S 300 /* an artifact may claim a creation time this far in the future */

typedef struct {
    tseal_gate_result *res;
    int nomem;
} gate_ctx;

static void reason(gate_ctx *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason(gate_ctx *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    tseal_gate_result *r = g->res;
    char **grown = n >= 0 ? realloc(r->reasons, (r->n_reasons + 1) * sizeof *r->reasons) : NULL;
    if (!grown) {
        if (n >= 0) free(s);
        g->nomem = 1;
        return;
    }
    r->reasons = grown;
    r->reasons[r->n_reasons++] = s;
}

void tseal_gate_result_free(tseal_gate_result *res) {
    if (!res) return;
    for (unsigned i = 0; i < res->n_reasons; i++) free(res->reasons[i]);
    free(res->reasons);
    res->reasons = NULL;
    res->n_reasons = 0;
}

static const pol_signer *find_signer(const tseal_policy *p, const uint8_t pk[TSEAL_PK_BYTES]) {
    for (unsigned i = 0; i < p->n_signers; i++)
        if (memcmp(p->signers[i].pk, pk, TSEAL_PK_BYTES) == 0) return &p->signers[i];
    return NULL;
}

static int cmp_id(const void *a, const void *b) {
    return memcmp(a, b, TSEAL_KEY_ID_BYTES);
}

static bool is_revoked(const tseal_policy *p, const uint8_t id[TSEAL_KEY_ID_BYTES]) {
    return p->n_revoked && bsearch(id, p->revoked, p->n_revoked, sizeof *p->revoked, cmp_id);
}

static void check_model(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in) {
    char q[TSEAL_QUOTE_MAX];
    const pol_model *m = NULL;
    for (unsigned i = 0; i < p->n_models && !m; i++)
        if (strcmp(p->models[i].model_id, in->model_id) == 0) m = &p->models[i];
    if (!m) {
        reason(g, "model %s is not allowed by policy %s", tseal_quote(in->model_id, q), p->id);
        return;
    }
    if (in->version < m->min_version)
        reason(g, "version %llu < minimum %llu for model %s", (unsigned long long)in->version,
               (unsigned long long)m->min_version, tseal_quote(m->model_id, q));
    if (m->has_pins) {
        bool pinned = false;
        for (unsigned i = 0; i < m->n_pins && !pinned; i++)
            pinned = memcmp(m->pins[i], in->artifact_digest, TSEAL_HASH_BYTES) == 0;
        if (!pinned) {
            char hex[17];
            pol_short_hex(in->artifact_digest, hex);
            reason(g, "artifact digest %s... is not pinned for model %s", hex,
                   tseal_quote(m->model_id, q));
        }
    }
}

static void check_limits(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in) {
    if (p->max_header_bytes && in->header_bytes > p->max_header_bytes)
        reason(g, "header is %llu bytes > limit %llu", (unsigned long long)in->header_bytes,
               (unsigned long long)p->max_header_bytes);
    if (p->max_recipients && in->recipients > p->max_recipients)
        reason(g, "%u recipients > limit %llu", in->recipients,
               (unsigned long long)p->max_recipients);
    if (p->max_tensors && in->tensors > p->max_tensors)
        reason(g, "%u tensors > limit %llu", in->tensors, (unsigned long long)p->max_tensors);
    if (p->max_tensor_bytes && in->largest_tensor_bytes > p->max_tensor_bytes)
        reason(g, "largest tensor is %llu bytes > limit %llu",
               (unsigned long long)in->largest_tensor_bytes,
               (unsigned long long)p->max_tensor_bytes);
}

/* What one signer of the input is to the policy. */
enum { COUNTED, REVOKED, EXPIRED, UNTRUSTED, DUPLICATE, CERT_REVOKED, CERT_FAILED, CERT_IDENTITY };

typedef struct {
    uint8_t id[TSEAL_KEY_ID_BYTES];
    unsigned char what;
    const pol_signer *s;           /* Ed25519: the trusted_signers entry */
    const pol_ca *ca;              /* X.509: the trusted CA the chain verified to */
    char why[POL_WHY_MAX];         /* X.509: why the chain did not verify (quoted) */
    char subject[POL_SUBJECT_MAX]; /* X.509: the leaf's subject (quoted) or key id */
} signer_info;

static const tseal_x509_chain *chain_of(const tseal_gate_input *in, unsigned i) {
    return in->signer_chains ? in->signer_chains[i] : NULL;
}

/* Every signer's key id (Ed25519: of its key; X.509: of the leaf's P-256 key), checked against
 * the ids the caller gives. A mismatch is a caller bug: TSEAL_E_INVAL, nothing decided. */
static int signer_ids(const tseal_gate_input *in, signer_info *info) {
    for (unsigned i = 0; i < in->n_signers; i++) {
        const tseal_x509_chain *c = chain_of(in, i);
        if (c) {
            uint8_t pk[TSEAL_P256_PK_BYTES];
            int rc = tseal_x509_leaf_pubkey(c, pk);
            if (rc) {
                tseal_err_context("policy gate: signer %u: ", i);
                return rc == TSEAL_E_NOMEM ? rc : TSEAL_E_INVAL;
            }
            tseal_p256_key_id(pk, info[i].id);
        } else {
            if (!in->signer_pks)
                return tseal_err(TSEAL_E_INVAL, "policy gate: signer %u has no public key", i);
            tseal_key_id(TSEAL_ALG_ED25519, in->signer_pks[i], info[i].id);
        }
        if (in->signer_key_ids &&
            memcmp(in->signer_key_ids[i], info[i].id, TSEAL_KEY_ID_BYTES) != 0)
            return tseal_err(TSEAL_E_INVAL,
                             "policy gate: signer_key_ids[%u] is not the key id of signer %u", i,
                             i);
    }
    return 0;
}

/* The verifier's message without its "certificate chain: " prefix, control characters
 * replaced and cut at a character boundary (it names untrusted certificate subjects). */
static void set_why(signer_info *si, const char *msg) {
    static const char prefix[] = "certificate chain: ";
    if (strncmp(msg, prefix, sizeof prefix - 1) == 0) msg += sizeof prefix - 1;
    pol_quote(msg, si->why, sizeof si->why);
}

/* An X.509 signer: the chain against the policy's CAs and CRLs at `now`, then the identity
 * constraints of the CA it ends at. */
static void check_x509(gate_ctx *g, const tseal_policy *p, const tseal_x509_chain *c, int64_t now,
                       signer_info *si) {
    pol_leaf_subject(c, si->subject);
    if (!si->subject[0]) {
        char hex[17];
        pol_short_hex(si->id, hex);
        snprintf(si->subject, sizeof si->subject, "with key %s...", hex);
    }
    si->what = CERT_FAILED;
    if (!p->trust) {
        set_why(si, "not issued by a trusted CA (the policy trusts no CA)");
        return;
    }
    tseal_x509_identity id;
    memset(&id, 0, sizeof id);
    int rc = tseal_x509_verify(p->trust, c, now, &id);
    if (rc == TSEAL_E_NOMEM) {
        g->nomem = 1;
        return;
    }
    if (rc) {
        const char *msg = tseal_errmsg();
        set_why(si, msg && msg[0] ? msg : "does not verify");
        /* revocation by a CRL (of the leaf or of an intermediate) always denies, as a revoked
         * key id does */
        if (id.revoked) si->what = CERT_REVOKED;
        return;
    }
    id.issuer_root[sizeof id.issuer_root - 1] = 0;
    for (unsigned i = 0; i < p->n_cas && !si->ca; i++)
        if (strcmp(p->cas[i].subject, id.issuer_root) == 0) si->ca = &p->cas[i];
    if (!si->ca) { /* cannot happen with a store holding only these roots: fail closed */
        set_why(si, "chain ends at a root that is not in trusted_cas");
        return;
    }
    si->what = CERT_IDENTITY;
    for (unsigned i = 0; i < si->ca->n_identities; i++)
        if (tseal_x509_identity_matches(&id, si->ca->identities[i]) == 1) {
            si->what = COUNTED;
            return;
        }
}

/* Signers, then the threshold. Fills res->counted. 0, or an error (bad input: no decision). */
static int check_signers(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in,
                         int64_t now) {
    tseal_gate_result *r = g->res;
    signer_info *info = calloc(in->n_signers ? in->n_signers : 1, sizeof *info);
    if (!info) {
        g->nomem = 1;
        return 0;
    }
    int rc = signer_ids(in, info);
    if (rc) {
        free(info);
        return rc;
    }
    for (unsigned i = 0; i < in->n_signers; i++) {
        signer_info *si = &info[i];
        const tseal_x509_chain *c = chain_of(in, i);
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = memcmp(info[j].id, si->id, TSEAL_KEY_ID_BYTES) == 0;
        if (dup)
            si->what = DUPLICATE;
        else if (is_revoked(p, si->id))
            si->what = REVOKED;
        else if (c)
            check_x509(g, p, c, now, si);
        else if (!(si->s = find_signer(p, in->signer_pks[i])))
            si->what = UNTRUSTED;
        else if (si->s->has_not_after && now > si->s->not_after)
            si->what = EXPIRED;
        else
            si->what = COUNTED;
        if (si->what == COUNTED && r->n_counted < TSEAL_POLICY_MAX_SIGNERS)
            memcpy(r->counted[r->n_counted++], si->id, TSEAL_KEY_ID_BYTES);
    }
    bool unmet = r->n_counted < p->threshold;
    for (unsigned i = 0; i < in->n_signers; i++) {
        const signer_info *si = &info[i];
        char hex[17], when[32];
        pol_short_hex(si->id, hex);
        if (si->what == REVOKED) {
            reason(g, "signer key %s... is revoked", hex);
        } else if (si->what == EXPIRED) {
            pol_fmt_time(si->s->not_after, when);
            reason(g, "signer key %s... expired %s", hex, when);
        } else if (si->what == UNTRUSTED && unmet) {
            reason(g, "signer key %s... is not trusted", hex);
        } else if (si->what == CERT_REVOKED || (si->what == CERT_FAILED && unmet)) {
            reason(g, "signer certificate %s: %s", si->subject, si->why);
        } else if (si->what == CERT_IDENTITY && unmet) {
            reason(g, "signer certificate %s is not an allowed identity for CA %s", si->subject,
                   si->ca->name);
        }
    }
    free(info);
    if (unmet)
        reason(g, "threshold not met: %u of %u required signatures", r->n_counted, p->threshold);
    return 0;
}

static void check_rollback(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in,
                           const tseal_state *state) {
    if (!state) {
        if (p->require_state) reason(g, "policy requires a rollback state file (--state)");
        return;
    }
    char q[TSEAL_QUOTE_MAX];
    for (unsigned i = 0; i < g->res->n_counted; i++) {
        int found = 0;
        uint64_t v = tseal_state_get(state, in->model_id, g->res->counted[i], &found);
        if (found && v > in->version) {
            char hex[17];
            pol_short_hex(g->res->counted[i], hex);
            reason(g, "rollback: version %llu < %llu already accepted for model %s by signer %s...",
                   (unsigned long long)in->version, (unsigned long long)v,
                   tseal_quote(in->model_id, q), hex);
        }
    }
}

static void check_attest(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in) {
    for (unsigned i = 0; i < p->n_attest; i++) {
        const pol_attest *a = &p->attest[i];
        bool passed = false, failed = false;
        for (unsigned j = 0; j < in->n_attestations; j++) {
            const tseal_attestation *t = &in->attestations[j];
            if (memcmp(t->auditor_key_id, a->auditor_key_id, TSEAL_KEY_ID_BYTES) != 0 ||
                memcmp(t->subject_digest, in->artifact_digest, TSEAL_HASH_BYTES) != 0)
                continue;
            if (t->passed)
                passed = true;
            else
                failed = true;
        }
        if (passed) continue;
        char hex[17];
        pol_short_hex(a->auditor_key_id, hex);
        if (failed)
            reason(g, "required audit report by key %s... records a failed audit", hex);
        else
            reason(g, "required audit report by key %s... is missing", hex);
    }
}

int tseal_policy_gate(const tseal_policy *p, const tseal_gate_input *in, const tseal_state *state,
                      int64_t now, tseal_gate_result *res) {
    if (!res) return tseal_err(TSEAL_E_INVAL, "policy gate: no result");
    memset(res, 0, sizeof *res);
    if (!p || !in || !in->model_id || (in->n_signers && !in->signer_pks && !in->signer_chains) ||
        (in->n_attestations && !in->attestations))
        return tseal_err(TSEAL_E_INVAL, "policy gate: bad arguments");
    gate_ctx g = {.res = res};
    char when[32], q[TSEAL_QUOTE_MAX];

    if (p->has_expires && now > p->expires) {
        pol_fmt_time(p->expires, when);
        reason(&g, "policy %s expired %s", p->id, when);
    }
    if (in->expires && now > in->expires) {
        pol_fmt_time(in->expires, when);
        reason(&g, "artifact expired %s", when);
    }
    /* the difference as unsigned: exact for any two int64 values, no overflow */
    if (in->created > now && (uint64_t)in->created - (uint64_t)now > FUTURE_SLACK_S) {
        pol_fmt_time(in->created, when);
        reason(&g, "artifact created in the future (%s)", when);
    }
    check_model(&g, p, in);
    const char *suite = in->suite_name ? in->suite_name : "(none)";
    bool suite_ok = false;
    for (unsigned i = 0; i < p->n_suites && !suite_ok; i++)
        suite_ok = strcmp(p->suites[i], suite) == 0;
    if (!suite_ok) reason(&g, "suite %s is not allowed", tseal_quote(suite, q));
    check_limits(&g, p, in);
    int rc = check_signers(&g, p, in, now);
    if (rc) {
        tseal_gate_result_free(res);
        res->n_counted = 0;
        return rc;
    }
    check_rollback(&g, p, in, state);
    check_attest(&g, p, in);

    if (g.nomem) {
        /* never allow on a failure: the reasons may be incomplete */
        tseal_gate_result_free(res);
        res->n_counted = 0;
        return tseal_err(TSEAL_E_NOMEM, "policy gate: out of memory (denied)");
    }
    if (res->n_reasons == 0) return 0;
    pol_buf b = {0};
    for (unsigned i = 0; i < res->n_reasons; i++)
        pol_buf_add(&b, "%s%s", i ? "; " : "", res->reasons[i]);
    tseal_err(TSEAL_E_DENIED, "denied by policy %s: %s", p->id, b.failed ? "(out of memory)" : b.p);
    pol_buf_free(&b);
    return TSEAL_E_DENIED;
}
