/*
 * policy.c - loading a deployment policy: the strict policy JSON (version 1), the signed
 * envelope and its signatures, and the accessors (docs/POLICY.md).
 *
 * Everything is checked before anything is trusted: size, UTF-8, lexical JSON rules, numbers,
 * then every member of every object (unknown or duplicate members are errors, so a policy can
 * never silently lose a rule). With an envelope, every signature is verified (and, when a
 * signed policy is required, one of them must be by a policy key) before the payload is parsed.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "crypto_internal.h"
#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

#define ENV_MAX_TOKENS (8u + 8u * POL_ENV_MAX_SIGS)

/* ---- freeing --------------------------------------------------------------------------- */

void tseal_policy_free(tseal_policy *p) {
    if (!p) return;
    free(p->id);
    for (unsigned i = 0; i < p->n_signers; i++) free(p->signers[i].name);
    free(p->signers);
    free(p->revoked);
    for (unsigned i = 0; i < p->n_suites; i++) free(p->suites[i]);
    free(p->suites);
    for (unsigned i = 0; i < p->n_models; i++) {
        free(p->models[i].model_id);
        free(p->models[i].pins);
    }
    free(p->models);
    for (unsigned i = 0; i < p->n_attest; i++) free(p->attest[i].type);
    free(p->attest);
    for (unsigned i = 0; i < p->n_cas; i++) {
        free(p->cas[i].name);
        free(p->cas[i].pem);
        for (unsigned j = 0; j < p->cas[i].n_identities; j++) free(p->cas[i].identities[j]);
        free(p->cas[i].identities);
    }
    free(p->cas);
    for (unsigned i = 0; i < p->n_crls; i++) {
        free(p->crl_files[i]);
        if (p->crl_paths) free(p->crl_paths[i]);
    }
    free(p->crl_files);
    free(p->crl_paths);
    tseal_x509_trust_free(p->trust);
    free(p->sig_key_ids);
    free(p);
}

/* ---- member helpers -------------------------------------------------------------------- */

static int nomem(void) {
    return tseal_err(TSEAL_E_NOMEM, "out of memory");
}

/* A string member holding printable UTF-8 of 1..max bytes, copied. */
static int get_text(const cJSON *v, const char *path, size_t max, char **out) {
    int rc = pol_want_string(v, path);
    if (rc) return rc;
    const char *p = pol_text_problem(v->valuestring, strlen(v->valuestring), max);
    if (p)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %s (1..%zu bytes of printable UTF-8)", path, p, max);
    if (!(*out = strdup(v->valuestring))) return nomem();
    return 0;
}

static int get_key_id(const cJSON *v, const char *path, uint8_t out[TSEAL_KEY_ID_BYTES]) {
    int rc = pol_want_string(v, path);
    if (rc) return rc;
    if (!pol_unhex(v->valuestring, out, TSEAL_KEY_ID_BYTES))
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not a key id (32 lower-case hex digits)", path);
    return 0;
}

/* A date member, or null / absent (then *has = 0). */
static int get_date(const cJSON *v, const char *path, int *has, int64_t *out) {
    *has = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    int rc = pol_want_string(v, path);
    if (rc) return rc;
    if (!pol_parse_date(v->valuestring, out))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC, year >= "
                         "1970)",
                         path);
    *has = 1;
    return 0;
}

/* An array member with lo..max entries; *n its size. */
static int get_array(const cJSON *v, const char *path, unsigned lo, unsigned max, unsigned *n) {
    int rc = pol_want(v, cJSON_IsArray, "an array", path);
    if (rc) return rc;
    unsigned k = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        if (++k > max)
            return tseal_err(TSEAL_E_LIMIT, "%s: more than %u entries (the limit)", path, max);
    if (k < lo) return tseal_err(TSEAL_E_CORRUPT, "%s: needs at least %u entries", path, lo);
    *n = k;
    return 0;
}

static int cmp_key_id(const void *a, const void *b) {
    return memcmp(a, b, TSEAL_KEY_ID_BYTES);
}

/* ---- the policy object ----------------------------------------------------------------- */

enum {
    P_VERSION,
    P_ID,
    P_EXPIRES,
    P_SIGNERS,
    P_REVOKED,
    P_THRESHOLD,
    P_SUITES,
    P_MODELS,
    P_LIMITS,
    P_ATTEST,
    P_REQ_STATE,
    P_CAS,
    P_CRLS,
    P_COUNT
};
static const char *const p_names[P_COUNT] = {"tseal_policy",
                                             "policy_id",
                                             "expires",
                                             "trusted_signers",
                                             "revoked_key_ids",
                                             "signature_threshold",
                                             "allowed_suites",
                                             "models",
                                             "limits",
                                             "required_attestations",
                                             "require_rollback_state",
                                             "trusted_cas",
                                             "crl_files"};

enum { S_NAME, S_KEY_ID, S_ALG, S_PK, S_NOT_AFTER, S_COUNT };
static const char *const s_names[S_COUNT] = {"name", "key_id", "algorithm", "public_key",
                                             "not_after"};

static int parse_signer(const cJSON *o, const char *path, tseal_policy *p, unsigned idx) {
    const cJSON *m[S_COUNT];
    char sub[POL_PATH_MAX];
    pol_signer *s = &p->signers[idx];
    int rc = pol_want(o, cJSON_IsObject, "an object", path);
    if (!rc) rc = pol_members(o, path, s_names, S_COUNT, m);
    for (unsigned i = 0; !rc && i < S_NOT_AFTER; i++)
        if (!m[i]) rc = tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, s_names[i]);
    if (rc) return rc;
    pol_path(sub, path, "name");
    if ((rc = pol_want_string(m[S_NAME], sub)) != 0) return rc;
    const char *pr = tseal_key_name_problem(m[S_NAME]->valuestring,
                                            strnlen(m[S_NAME]->valuestring, TSEAL_KEY_NAME_MAX));
    if (pr)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %s (1..%d bytes of printable UTF-8)", sub, pr,
                         TSEAL_KEY_NAME_MAX - 1);
    if (!(s->name = strdup(m[S_NAME]->valuestring))) return nomem();
    pol_path(sub, path, "algorithm");
    if ((rc = pol_want_string(m[S_ALG], sub)) != 0) return rc;
    if (strcmp(m[S_ALG]->valuestring, "ed25519") != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: must be \"ed25519\"", sub);
    pol_path(sub, path, "public_key");
    if ((rc = pol_want_string(m[S_PK], sub)) != 0) return rc;
    if (!pol_unb64(m[S_PK]->valuestring, s->pk, TSEAL_PK_BYTES))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: is not the canonical base64 of a 32-byte key (44 characters)", sub);
    if (tseal_pk_check(TSEAL_ALG_ED25519, s->pk) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not a valid Ed25519 public key", sub);
    pol_path(sub, path, "key_id");
    if ((rc = get_key_id(m[S_KEY_ID], sub, s->key_id)) != 0) return rc;
    uint8_t id[TSEAL_KEY_ID_BYTES];
    if ((rc = tseal_key_id_checked(TSEAL_ALG_ED25519, s->pk, id)) != 0) return rc;
    if (memcmp(id, s->key_id, sizeof id) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: does not match public_key", sub);
    pol_path(sub, path, "not_after");
    if ((rc = get_date(m[S_NOT_AFTER], sub, &s->has_not_after, &s->not_after)) != 0) return rc;
    for (unsigned j = 0; j < idx; j++) {
        if (memcmp(p->signers[j].pk, s->pk, TSEAL_PK_BYTES) == 0)
            return tseal_err(TSEAL_E_CORRUPT, "%s: the same key as trusted_signers[%u]", path, j);
    }
    return 0;
}

/* lo: 1 without trusted_cas, 0 with (one of the two must have entries). */
static int parse_signers(const cJSON *v, tseal_policy *p, unsigned lo) {
    unsigned n;
    int rc = get_array(v, "trusted_signers", lo, TSEAL_POLICY_MAX_SIGNERS, &n);
    if (rc || n == 0) return rc;
    if (!(p->signers = calloc(n, sizeof *p->signers))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "trusted_signers", i);
        p->n_signers = i + 1; /* so that a failure frees what this entry holds */
        if ((rc = parse_signer(c, path, p, i)) != 0) return rc;
    }
    return 0;
}

static int parse_revoked(const cJSON *v, tseal_policy *p) {
    unsigned n;
    int rc = get_array(v, "revoked_key_ids", 0, TSEAL_POLICY_MAX_REVOKED, &n);
    if (rc || n == 0) return rc;
    if (!(p->revoked = calloc(n, sizeof *p->revoked))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "revoked_key_ids", i);
        if ((rc = get_key_id(c, path, p->revoked[i])) != 0) return rc;
    }
    p->n_revoked = n;
    qsort(p->revoked, n, sizeof *p->revoked, cmp_key_id);
    for (i = 1; i < n; i++)
        if (memcmp(p->revoked[i - 1], p->revoked[i], TSEAL_KEY_ID_BYTES) == 0) {
            char hex[POL_KEY_HEX_BYTES];
            tseal_key_id_hex(p->revoked[i], hex);
            return tseal_err(TSEAL_E_CORRUPT, "revoked_key_ids: %s is listed twice", hex);
        }
    return 0;
}

static int parse_suites(const cJSON *v, tseal_policy *p) {
    unsigned n = 1;
    int rc;
    if (v && (rc = get_array(v, "allowed_suites", 1, TSEAL_POLICY_MAX_SUITES, &n)) != 0) return rc;
    if (!(p->suites = calloc(n, sizeof *p->suites))) return nomem();
    if (!v) {
        if (!(p->suites[0] = strdup(TSEAL_SUITE_NAME_V1))) return nomem();
        p->n_suites = 1;
        return 0;
    }
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "allowed_suites", i);
        if ((rc = pol_want_string(c, path)) != 0) return rc;
        const char *s = c->valuestring;
        size_t len = strlen(s);
        bool ok = len >= 1 && len <= POL_SUITE_MAX;
        for (size_t k = 0; ok && k < len; k++) ok = s[k] > 0x20 && s[k] < 0x7F;
        if (!ok)
            return tseal_err(TSEAL_E_CORRUPT,
                             "%s: is not a suite name (1..%d printable ASCII characters)", path,
                             POL_SUITE_MAX);
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->suites[j], s) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: the same suite as allowed_suites[%u]", path,
                                 j);
        if (!(p->suites[i] = strdup(s))) return nomem();
        p->n_suites = i + 1;
    }
    return 0;
}

enum { M_ID, M_MIN, M_PINS, M_COUNT };
static const char *const m_names[M_COUNT] = {"model_id", "min_version", "artifact_digests"};

static int parse_model(const cJSON *o, const char *path, tseal_policy *p, unsigned idx) {
    const cJSON *m[M_COUNT];
    char sub[POL_PATH_MAX];
    pol_model *md = &p->models[idx];
    int rc = pol_want(o, cJSON_IsObject, "an object", path);
    if (!rc) rc = pol_members(o, path, m_names, M_COUNT, m);
    for (unsigned i = 0; !rc && i < M_PINS; i++)
        if (!m[i]) rc = tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, m_names[i]);
    if (rc) return rc;
    pol_path(sub, path, "model_id");
    if ((rc = get_text(m[M_ID], sub, POL_MODEL_ID_MAX, &md->model_id)) != 0) return rc;
    for (unsigned j = 0; j < idx; j++)
        if (strcmp(p->models[j].model_id, md->model_id) == 0)
            return tseal_err(TSEAL_E_CORRUPT, "%s: the same model as models[%u]", sub, j);
    pol_path(sub, path, "min_version");
    if ((rc = pol_want_uint(m[M_MIN], POL_INT_MAX, sub, &md->min_version)) != 0) return rc;
    if (!m[M_PINS]) return 0;
    pol_path(sub, path, "artifact_digests");
    unsigned n;
    if ((rc = get_array(m[M_PINS], sub, 1, TSEAL_POLICY_MAX_PINS, &n)) != 0) return rc;
    if (!(md->pins = calloc(n, sizeof *md->pins))) return nomem();
    md->has_pins = 1;
    unsigned i = 0;
    for (const cJSON *c = m[M_PINS]->child; c; c = c->next, i++) {
        char ip[POL_PATH_MAX];
        pol_path_index(ip, sub, i);
        if ((rc = pol_want_string(c, ip)) != 0) return rc;
        if (!pol_unhex(c->valuestring, md->pins[i], TSEAL_HASH_BYTES))
            return tseal_err(TSEAL_E_CORRUPT,
                             "%s: is not a SHA-256 digest (64 lower-case hex "
                             "digits)",
                             ip);
        for (unsigned j = 0; j < i; j++)
            if (memcmp(md->pins[j], md->pins[i], TSEAL_HASH_BYTES) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: the same digest as %s[%u]", ip, sub, j);
        md->n_pins = i + 1;
    }
    return 0;
}

static int parse_models(const cJSON *v, tseal_policy *p) {
    unsigned n;
    int rc = get_array(v, "models", 1, TSEAL_POLICY_MAX_MODELS, &n);
    if (rc) return rc;
    if (!(p->models = calloc(n, sizeof *p->models))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "models", i);
        p->n_models = i + 1;
        if ((rc = parse_model(c, path, p, i)) != 0) return rc;
    }
    return 0;
}

enum { L_HEADER, L_TENSORS, L_RECIPIENTS, L_TENSOR_BYTES, L_COUNT };
static const char *const l_names[L_COUNT] = {"max_header_bytes", "max_tensors", "max_recipients",
                                             "max_tensor_bytes"};

static int parse_limits(const cJSON *v, tseal_policy *p) {
    const cJSON *m[L_COUNT];
    uint64_t *dst[L_COUNT] = {&p->max_header_bytes, &p->max_tensors, &p->max_recipients,
                              &p->max_tensor_bytes};
    int rc = pol_want(v, cJSON_IsObject, "an object", "limits");
    if (!rc) rc = pol_members(v, "limits", l_names, L_COUNT, m);
    for (unsigned i = 0; !rc && i < L_COUNT; i++) {
        if (!m[i]) continue;
        char sub[POL_PATH_MAX];
        pol_path(sub, "limits", l_names[i]);
        if ((rc = pol_want_uint(m[i], POL_INT_MAX, sub, dst[i])) != 0) break;
        if (*dst[i] == 0) rc = tseal_err(TSEAL_E_CORRUPT, "%s: must be a positive integer", sub);
    }
    return rc;
}

enum { A_TYPE, A_KEY, A_COUNT };
static const char *const a_names[A_COUNT] = {"type", "auditor_key_id"};

static int parse_attest(const cJSON *v, tseal_policy *p) {
    unsigned n;
    int rc = get_array(v, "required_attestations", 0, TSEAL_POLICY_MAX_ATTEST, &n);
    if (rc || n == 0) return rc;
    if (!(p->attest = calloc(n, sizeof *p->attest))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        const cJSON *m[A_COUNT];
        char path[POL_PATH_MAX], sub[POL_PATH_MAX];
        pol_path_index(path, "required_attestations", i);
        pol_attest *a = &p->attest[i];
        p->n_attest = i + 1;
        if ((rc = pol_want(c, cJSON_IsObject, "an object", path)) != 0 ||
            (rc = pol_members(c, path, a_names, A_COUNT, m)) != 0)
            return rc;
        for (unsigned k = 0; k < A_COUNT; k++)
            if (!m[k])
                return tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, a_names[k]);
        pol_path(sub, path, "type");
        if ((rc = pol_want_string(m[A_TYPE], sub)) != 0) return rc;
        if (strcmp(m[A_TYPE]->valuestring, "audit-report") != 0)
            return tseal_err(TSEAL_E_CORRUPT,
                             "%s: unknown attestation type (known: "
                             "\"audit-report\")",
                             sub);
        if (!(a->type = strdup(m[A_TYPE]->valuestring))) return nomem();
        pol_path(sub, path, "auditor_key_id");
        if ((rc = get_key_id(m[A_KEY], sub, a->auditor_key_id)) != 0) return rc;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->attest[j].type, a->type) == 0 &&
                memcmp(p->attest[j].auditor_key_id, a->auditor_key_id, TSEAL_KEY_ID_BYTES) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: the same as required_attestations[%u]", path,
                                 j);
    }
    return 0;
}

/* ---- X.509 signers: trusted_cas, crl_files ---------------------------------------------- */

enum { C_NAME, C_CERT, C_IDS, C_COUNT };
static const char *const c_names[C_COUNT] = {"name", "certificate", "identities"};

static int parse_ca(const cJSON *o, const char *path, tseal_policy *p, unsigned idx) {
    const cJSON *m[C_COUNT];
    char sub[POL_PATH_MAX];
    pol_ca *ca = &p->cas[idx];
    int rc = pol_want(o, cJSON_IsObject, "an object", path);
    if (!rc) rc = pol_members(o, path, c_names, C_COUNT, m);
    for (unsigned i = 0; !rc && i < C_COUNT; i++)
        if (!m[i]) rc = tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, c_names[i]);
    if (rc) return rc;
    pol_path(sub, path, "name");
    if ((rc = pol_want_string(m[C_NAME], sub)) != 0) return rc;
    const char *pr = tseal_key_name_problem(m[C_NAME]->valuestring,
                                            strnlen(m[C_NAME]->valuestring, TSEAL_KEY_NAME_MAX));
    if (pr)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %s (1..%d bytes of printable UTF-8)", sub, pr,
                         TSEAL_KEY_NAME_MAX - 1);
    if (!(ca->name = strdup(m[C_NAME]->valuestring))) return nomem();
    pol_path(sub, path, "certificate");
    if ((rc = pol_want_string(m[C_CERT], sub)) != 0) return rc;
    const char *pem = m[C_CERT]->valuestring;
    if ((rc = pol_ca_check(pem, strlen(pem), sub, ca)) != 0) return rc;
    if (!(ca->pem = strdup(pem))) return nomem();
    for (unsigned j = 0; j < idx; j++) {
        if (memcmp(p->cas[j].fingerprint, ca->fingerprint, TSEAL_HASH_BYTES) == 0)
            return tseal_err(TSEAL_E_CORRUPT, "%s: the same certificate as trusted_cas[%u]", sub,
                             j);
        /* a verified chain names its root by subject: two roots with one subject would make
         * the identity constraints ambiguous */
        if (strcmp(p->cas[j].subject, ca->subject) == 0)
            return tseal_err(TSEAL_E_CORRUPT, "%s: the same subject as trusted_cas[%u]", sub, j);
    }
    pol_path(sub, path, "identities");
    unsigned n;
    if ((rc = get_array(m[C_IDS], sub, 1, TSEAL_POLICY_MAX_IDENTITIES, &n)) != 0) return rc;
    if (!(ca->identities = calloc(n, sizeof *ca->identities))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = m[C_IDS]->child; c; c = c->next, i++) {
        char ip[POL_PATH_MAX];
        pol_path_index(ip, sub, i);
        if ((rc = pol_want_string(c, ip)) != 0) return rc;
        const char *ipr = pol_identity_problem(c->valuestring);
        if (ipr) return tseal_err(TSEAL_E_CORRUPT, "%s: %s", ip, ipr);
        for (unsigned j = 0; j < i; j++)
            if (strcmp(ca->identities[j], c->valuestring) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: the same pattern as %s[%u]", ip, sub, j);
        if (!(ca->identities[i] = strdup(c->valuestring))) return nomem();
        ca->n_identities = i + 1;
    }
    return 0;
}

static int parse_cas(const cJSON *v, tseal_policy *p) {
    unsigned n;
    int rc = get_array(v, "trusted_cas", 1, TSEAL_POLICY_MAX_CAS, &n);
    if (rc) return rc;
    if (!(p->cas = calloc(n, sizeof *p->cas))) return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "trusted_cas", i);
        p->n_cas = i + 1;
        if ((rc = parse_ca(c, path, p, i)) != 0) return rc;
    }
    return 0;
}

static int parse_crls(const cJSON *v, const char *base_dir, tseal_policy *p) {
    unsigned n;
    int rc = get_array(v, "crl_files", 0, TSEAL_POLICY_MAX_CRLS, &n);
    if (rc || n == 0) return rc;
    if (p->n_cas == 0)
        return tseal_err(TSEAL_E_CORRUPT, "crl_files: listed without trusted_cas (CRLs apply to "
                                          "X.509 signers only)");
    if (!(p->crl_files = calloc(n, sizeof *p->crl_files)) ||
        !(p->crl_paths = calloc(n, sizeof *p->crl_paths)))
        return nomem();
    unsigned i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "crl_files", i);
        p->n_crls = i + 1;
        if ((rc = get_text(c, path, POL_PATH_FILE_MAX, &p->crl_files[i])) != 0) return rc;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(p->crl_files[j], p->crl_files[i]) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: the same file as crl_files[%u]", path, j);
        const char *f = p->crl_files[i];
        int ok = f[0] == '/' || !base_dir || !base_dir[0]
                     ? asprintf(&p->crl_paths[i], "%s", f)
                     : asprintf(&p->crl_paths[i], "%s/%s", base_dir, f);
        if (ok < 0) {
            p->crl_paths[i] = NULL;
            return nomem();
        }
    }
    return 0;
}

/* The trust store every gate uses: every trusted CA and every CRL (each file read and checked
 * strictly first, so that a CRL which does not load is a load error naming it). */
static int build_trust(tseal_policy *p) {
    if (p->n_cas == 0) return 0;
    int rc = tseal_x509_trust_new(&p->trust);
    for (unsigned i = 0; !rc && i < p->n_cas; i++) {
        char path[POL_PATH_MAX], sub[POL_PATH_MAX];
        pol_path_index(path, "trusted_cas", i);
        pol_path(sub, path, "certificate");
        rc = tseal_x509_trust_add_ca_pem(p->trust, p->cas[i].pem, strlen(p->cas[i].pem), sub);
    }
    for (unsigned i = 0; !rc && i < p->n_crls; i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "crl_files", i);
        const char *f = p->crl_paths[i];
        uint8_t *buf = NULL;
        size_t len = 0;
        rc = pol_read_file(f, TSEAL_POLICY_MAX_CRL_BYTES, &buf, &len);
        if (rc == TSEAL_E_NOTFOUND) /* the policy was found; a file it names is missing */
            rc = tseal_err(TSEAL_E_IO, "%s: no such file", f);
        if (!rc) rc = pol_crl_check(buf, len, f);
        if (!rc) rc = tseal_x509_trust_add_crl_pem(p->trust, (const char *)buf, len, f);
        free(buf);
        if (rc) tseal_err_context("%s: ", path);
    }
    return rc;
}

/* The policy object itself (the bare file or an envelope's payload). */
static int parse_policy_obj(const cJSON *root, const char *base_dir, tseal_policy *p) {
    const cJSON *m[P_COUNT];
    int rc = pol_members(root, "", p_names, P_COUNT, m);
    if (rc) return rc;
    if (!m[P_VERSION])
        return tseal_err(TSEAL_E_CORRUPT, "missing member \"tseal_policy\" (not a tseal policy)");
    uint64_t ver;
    if ((rc = pol_want_uint(m[P_VERSION], POL_INT_MAX, "tseal_policy", &ver)) != 0) return rc;
    if (ver != 1)
        return tseal_err(TSEAL_E_UNSUPPORTED,
                         "tseal_policy: version %llu is not supported (this tseal reads 1)",
                         (unsigned long long)ver);
    static const int required[] = {P_ID, P_MODELS};
    for (unsigned i = 0; i < sizeof required / sizeof *required; i++)
        if (!m[required[i]])
            return tseal_err(TSEAL_E_CORRUPT, "missing member \"%s\"", p_names[required[i]]);
    if (!m[P_SIGNERS] && !m[P_CAS])
        return tseal_err(TSEAL_E_CORRUPT,
                         "missing member \"trusted_signers\" (or \"trusted_cas\")");
    if ((rc = get_text(m[P_ID], "policy_id", POL_ID_MAX, &p->id)) != 0) return rc;
    if ((rc = get_date(m[P_EXPIRES], "expires", &p->has_expires, &p->expires)) != 0) return rc;
    if (m[P_SIGNERS] && (rc = parse_signers(m[P_SIGNERS], p, m[P_CAS] ? 0 : 1)) != 0) return rc;
    if (m[P_CAS] && (rc = parse_cas(m[P_CAS], p)) != 0) return rc;
    if (m[P_CRLS] && (rc = parse_crls(m[P_CRLS], base_dir, p)) != 0) return rc;
    if (m[P_REVOKED] && (rc = parse_revoked(m[P_REVOKED], p)) != 0) return rc;
    p->threshold = 1;
    if (m[P_THRESHOLD]) {
        uint64_t t;
        if ((rc = pol_want_uint(m[P_THRESHOLD], POL_INT_MAX, "signature_threshold", &t)) != 0)
            return rc;
        if (t == 0) return tseal_err(TSEAL_E_CORRUPT, "signature_threshold: must be at least 1");
        if (p->n_cas && t > TSEAL_POLICY_MAX_SIGNERS)
            return tseal_err(TSEAL_E_CORRUPT,
                             "signature_threshold: %llu is more than %d (the limit)",
                             (unsigned long long)t, TSEAL_POLICY_MAX_SIGNERS);
        if (!p->n_cas && t > p->n_signers)
            return tseal_err(TSEAL_E_CORRUPT,
                             "signature_threshold: %llu is more than the %u trusted signers",
                             (unsigned long long)t, p->n_signers);
        p->threshold = (unsigned)t;
    }
    if ((rc = parse_suites(m[P_SUITES], p)) != 0) return rc;
    if ((rc = parse_models(m[P_MODELS], p)) != 0) return rc;
    if (m[P_LIMITS] && (rc = parse_limits(m[P_LIMITS], p)) != 0) return rc;
    if (m[P_ATTEST] && (rc = parse_attest(m[P_ATTEST], p)) != 0) return rc;
    if (m[P_REQ_STATE]) {
        if ((rc = pol_want(m[P_REQ_STATE], cJSON_IsBool, "a boolean", "require_rollback_state")))
            return rc;
        p->require_state = cJSON_IsTrue(m[P_REQ_STATE]);
    }
    return build_trust(p); /* last: reads files only once the text is known to be valid */
}

/* ---- the envelope ---------------------------------------------------------------------- */

enum { E_TYPE, E_PAYLOAD, E_SIGS, E_COUNT };
static const char *const e_names[E_COUNT] = {"payloadType", "payload", "signatures"};
enum { G_KEY_ID, G_PK, G_SIG, G_COUNT };
static const char *const g_names[G_COUNT] = {"key_id", "public_key", "sig"};

static bool is_envelope(const cJSON *root) {
    for (unsigned i = 0; i < E_COUNT; i++)
        if (cJSON_GetObjectItemCaseSensitive(root, e_names[i])) return true;
    return false;
}

/* One signature entry: well formed, key id of its key, valid over `digest`. */
static int check_sig(const cJSON *o, const char *path, const uint8_t digest[TSEAL_HASH_BYTES],
                     uint8_t pk[TSEAL_PK_BYTES], uint8_t key_id[TSEAL_KEY_ID_BYTES]) {
    const cJSON *m[G_COUNT];
    char sub[POL_PATH_MAX];
    int rc = pol_want(o, cJSON_IsObject, "an object", path);
    if (!rc) rc = pol_members(o, path, g_names, G_COUNT, m);
    for (unsigned i = 0; !rc && i < G_COUNT; i++)
        if (!m[i]) rc = tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, g_names[i]);
    if (rc) return rc;
    pol_path(sub, path, "public_key");
    if ((rc = pol_want_string(m[G_PK], sub)) != 0) return rc;
    if (!pol_unb64(m[G_PK]->valuestring, pk, TSEAL_PK_BYTES))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: is not the canonical base64 of a 32-byte key (44 characters)", sub);
    if (tseal_pk_check(TSEAL_ALG_ED25519, pk) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not a valid Ed25519 public key", sub);
    pol_path(sub, path, "key_id");
    if ((rc = get_key_id(m[G_KEY_ID], sub, key_id)) != 0) return rc;
    uint8_t id[TSEAL_KEY_ID_BYTES];
    if ((rc = tseal_key_id_checked(TSEAL_ALG_ED25519, pk, id)) != 0) return rc;
    if (memcmp(id, key_id, sizeof id) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: does not match public_key", sub);
    pol_path(sub, path, "sig");
    if ((rc = pol_want_string(m[G_SIG], sub)) != 0) return rc;
    uint8_t sig[TSEAL_SIG_BYTES];
    if (!pol_unb64(m[G_SIG]->valuestring, sig, TSEAL_SIG_BYTES))
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: is not the canonical base64 of a 64-byte signature (88 characters)",
                         sub);
    if ((rc = tseal_sign_verify(pk, TSEAL_POLICY_SIG_TYPE, digest, sig)) != 0) {
        char hex[POL_KEY_HEX_BYTES];
        tseal_key_id_hex(key_id, hex);
        if (rc == TSEAL_E_VERIFY)
            return tseal_err(TSEAL_E_VERIFY, "%s: signature by key %s is not valid", path, hex);
        return rc;
    }
    return 0;
}

static bool is_policy_key(const uint8_t pk[TSEAL_PK_BYTES], const tseal_pubkey *keys, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        if (keys[i].alg == TSEAL_ALG_ED25519 && memcmp(keys[i].pk, pk, TSEAL_PK_BYTES) == 0)
            return true;
    return false;
}

static int parse_bare(const uint8_t *s, size_t len, const char *base_dir, tseal_policy *p) {
    cJSON *root = NULL;
    int rc = pol_json_parse(s, len, POL_MAX_TOKENS, &root);
    if (rc) return rc;
    if (is_envelope(root))
        rc = tseal_err(TSEAL_E_CORRUPT, "is itself a signed envelope, not a policy");
    else
        rc = parse_policy_obj(root, base_dir, p);
    cJSON_Delete(root);
    return rc;
}

/* An envelope: every signature checked, the trust requirement, then the payload policy. */
static int parse_envelope(const cJSON *root, const tseal_pubkey *keys, unsigned n_keys,
                          int require_signed, const char *base_dir, tseal_policy *p) {
    const cJSON *m[E_COUNT];
    int rc = pol_members(root, "", e_names, E_COUNT, m);
    for (unsigned i = 0; !rc && i < E_COUNT; i++)
        if (!m[i])
            rc = tseal_err(TSEAL_E_CORRUPT, "signed envelope: missing member \"%s\"", e_names[i]);
    if (rc) return rc;
    if ((rc = pol_want_string(m[E_TYPE], "payloadType")) != 0) return rc;
    if (strcmp(m[E_TYPE]->valuestring, TSEAL_POLICY_SIG_TYPE) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "payloadType: must be \"%s\"", TSEAL_POLICY_SIG_TYPE);
    if ((rc = pol_want_string(m[E_PAYLOAD], "payload")) != 0) return rc;
    unsigned n_sigs;
    if ((rc = get_array(m[E_SIGS], "signatures", 1, POL_ENV_MAX_SIGS, &n_sigs)) != 0) return rc;
    uint8_t *payload = NULL, digest[TSEAL_HASH_BYTES];
    size_t plen = 0;
    if ((rc = pol_unb64_alloc(m[E_PAYLOAD]->valuestring, TSEAL_POLICY_MAX_BYTES, &payload, &plen,
                              "payload")) != 0)
        return rc;
    if ((rc = tseal_sha256(payload, plen, digest)) != 0) goto out;
    uint8_t pks[POL_ENV_MAX_SIGS][TSEAL_PK_BYTES];
    if (!(p->sig_key_ids = calloc(n_sigs, sizeof *p->sig_key_ids))) {
        rc = nomem();
        goto out;
    }
    bool trusted = false;
    unsigned i = 0;
    for (const cJSON *c = m[E_SIGS]->child; c; c = c->next, i++) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "signatures", i);
        if ((rc = check_sig(c, path, digest, pks[i], p->sig_key_ids[i])) != 0) goto out;
        for (unsigned j = 0; j < i; j++)
            if (memcmp(pks[j], pks[i], TSEAL_PK_BYTES) == 0) {
                rc = tseal_err(TSEAL_E_CORRUPT,
                               "%s: a second signature by the key of "
                               "signatures[%u]",
                               path, j);
                goto out;
            }
        trusted |= is_policy_key(pks[i], keys, n_keys);
    }
    p->n_sigs = n_sigs;
    p->is_signed = 1;
    if (require_signed && !trusted) {
        rc = tseal_err(TSEAL_E_DENIED, "policy is not signed by a trusted policy key");
        goto out;
    }
    if ((rc = parse_bare(payload, plen, base_dir, p)) != 0) tseal_err_context("payload: ");
out:
    free(payload);
    return rc;
}

static int parse_file(const uint8_t *buf, size_t len, const tseal_pubkey *keys, unsigned n_keys,
                      int require_signed, const char *base_dir, tseal_policy *p) {
    if (len > TSEAL_POLICY_MAX_BYTES)
        return tseal_err(TSEAL_E_LIMIT, "%zu bytes, over the limit of %u bytes of a policy file",
                         len, TSEAL_POLICY_MAX_BYTES);
    int rc = tseal_crypto_init();
    if (rc) return rc;
    if ((rc = tseal_sha256(buf, len, p->digest)) != 0) return rc;
    cJSON *root = NULL;
    if ((rc = pol_json_parse(buf, len, POL_MAX_TOKENS, &root)) != 0) return rc;
    if (is_envelope(root)) {
        rc = parse_envelope(root, keys, n_keys, require_signed, base_dir, p);
    } else if (require_signed) {
        rc = tseal_err(TSEAL_E_DENIED, "policy is unsigned but a signed policy is required");
    } else {
        rc = parse_policy_obj(root, base_dir, p);
    }
    cJSON_Delete(root);
    return rc;
}

int tseal_policy_parse(const uint8_t *buf, size_t len, const char *label,
                       const tseal_pubkey *policy_keys, unsigned n_policy_keys, int require_signed,
                       tseal_policy **out) {
    return tseal_policy_parse_in(buf, len, label, NULL, policy_keys, n_policy_keys, require_signed,
                                 out);
}

int tseal_policy_parse_in(const uint8_t *buf, size_t len, const char *label, const char *base_dir,
                          const tseal_pubkey *policy_keys, unsigned n_policy_keys,
                          int require_signed, tseal_policy **out) {
    if (!label) label = "policy";
    if (out) *out = NULL;
    if (!out || (!buf && len) || (!policy_keys && n_policy_keys))
        return tseal_err(TSEAL_E_INVAL, "%s: bad arguments", label);
    tseal_policy *p = calloc(1, sizeof *p);
    if (!p) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", label);
    int rc = parse_file(buf ? buf : (const uint8_t *)"", len, policy_keys, n_policy_keys,
                        require_signed, base_dir, p);
    if (rc) {
        tseal_err_context("%s: ", label);
        tseal_policy_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int tseal_policy_load(const char *path, const tseal_pubkey *policy_keys, unsigned n_policy_keys,
                      int require_signed, tseal_policy **out) {
    if (out) *out = NULL;
    if (!path || !out) return tseal_err(TSEAL_E_INVAL, "policy: bad arguments");
    uint8_t *buf;
    size_t len;
    int rc = pol_read_file(path, TSEAL_POLICY_MAX_BYTES, &buf, &len);
    if (rc) return rc;
    char *dir = pol_dirname(path);
    if (!dir) {
        free(buf);
        return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    }
    rc =
        tseal_policy_parse_in(buf, len, path, dir, policy_keys, n_policy_keys, require_signed, out);
    free(dir);
    free(buf);
    return rc;
}

/* ---- accessors ------------------------------------------------------------------------- */

const char *tseal_policy_id(const tseal_policy *p) {
    return p ? p->id : NULL;
}

void tseal_policy_digest(const tseal_policy *p, uint8_t out[TSEAL_HASH_BYTES]) {
    if (p)
        memcpy(out, p->digest, TSEAL_HASH_BYTES);
    else
        memset(out, 0, TSEAL_HASH_BYTES);
}

int tseal_policy_is_signed(const tseal_policy *p) {
    return p && p->is_signed;
}

int tseal_policy_requires_state(const tseal_policy *p) {
    return p && p->require_state;
}

int tseal_policy_allows_suite(const tseal_policy *p, const char *suite_name) {
    if (!p || !suite_name) return 0;
    for (unsigned i = 0; i < p->n_suites; i++)
        if (strcmp(p->suites[i], suite_name) == 0) return 1;
    return 0;
}
