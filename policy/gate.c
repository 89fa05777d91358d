/*
 * gate.c - tseal_policy_gate: the one decision `tseal verify --policy`, `tseal audit` and the
 * loader share (docs/POLICY.md, "The gate").
 *
 * Every rule is evaluated and every reason collected, in a fixed order (policy, artifact,
 * model, suite, limits, signers, threshold, rollback, attestations). Anything not explicitly
 * allowed is denied: no matching model, an unknown suite, too few counted signers. Only the
 * policy's own trusted signers count; revocation always denies; a key past its not_after never
 * counts and always denies.
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

/* Signers, then the threshold. Fills res->counted. */
static void check_signers(gate_ctx *g, const tseal_policy *p, const tseal_gate_input *in,
                          int64_t now) {
    tseal_gate_result *r = g->res;
    enum { COUNTED, REVOKED, EXPIRED, UNTRUSTED, DUPLICATE };
    unsigned char *what = calloc(in->n_signers ? in->n_signers : 1, 1);
    if (!what) {
        g->nomem = 1;
        return;
    }
    for (unsigned i = 0; i < in->n_signers; i++) {
        const uint8_t *pk = in->signer_pks[i];
        bool dup = false;
        for (unsigned j = 0; j < i && !dup; j++)
            dup = memcmp(in->signer_pks[j], pk, TSEAL_PK_BYTES) == 0;
        uint8_t id[TSEAL_KEY_ID_BYTES];
        tseal_key_id(TSEAL_ALG_ED25519, pk, id);
        const pol_signer *s = find_signer(p, pk);
        if (dup)
            what[i] = DUPLICATE;
        else if (is_revoked(p, id))
            what[i] = REVOKED;
        else if (!s)
            what[i] = UNTRUSTED;
        else if (s->has_not_after && now > s->not_after)
            what[i] = EXPIRED;
        else
            what[i] = COUNTED;
        if (what[i] == COUNTED && r->n_counted < TSEAL_POLICY_MAX_SIGNERS)
            memcpy(r->counted[r->n_counted++], id, TSEAL_KEY_ID_BYTES);
    }
    bool unmet = r->n_counted < p->threshold;
    for (unsigned i = 0; i < in->n_signers; i++) {
        char hex[17], when[32];
        uint8_t id[TSEAL_KEY_ID_BYTES];
        tseal_key_id(TSEAL_ALG_ED25519, in->signer_pks[i], id);
        pol_short_hex(id, hex);
        if (what[i] == REVOKED) {
            reason(g, "signer key %s... is revoked", hex);
        } else if (what[i] == EXPIRED) {
            pol_fmt_time(find_signer(p, in->signer_pks[i])->not_after, when);
            reason(g, "signer key %s... expired %s", hex, when);
        } else if (what[i] == UNTRUSTED && unmet) {
            reason(g, "signer key %s... is not trusted", hex);
        }
    }
    free(what);
    if (unmet)
        reason(g, "threshold not met: %u of %u required signatures", r->n_counted, p->threshold);
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
    if (!p || !in || !in->model_id || (in->n_signers && !in->signer_pks) ||
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
    check_signers(&g, p, in, now);
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
