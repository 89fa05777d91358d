/*
 * policy_sign.c - writing policies: `tseal policy init` (a valid starting policy),
 * `tseal policy sign` (wrap into a signed envelope, or add a signature to one) and
 * `tseal policy show` (a readable explanation). Format: docs/POLICY.md.
 *
 * Everything written is parsed back with the strict reader before it replaces anything, so
 * these tools can never produce a file that tseal_policy_load refuses.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "crypto_internal.h"
#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

#define POLICY_FILE_MODE 0644

static const char *or_null(const char *s, char *buf, size_t n) {
    if (!s) return "null";
    snprintf(buf, n, "\"%s\"", s);
    return buf;
}

/* ---- init ------------------------------------------------------------------------------ */

static int init_check_key(const tseal_pubkey *k, unsigned i) {
    uint8_t id[TSEAL_KEY_ID_BYTES];
    if (k->kind != TSEAL_KEY_SIGN || k->alg != TSEAL_ALG_ED25519)
        return tseal_err(TSEAL_E_INVAL, "trusted key %u is not an Ed25519 signing key", i);
    const char *pr = tseal_key_name_problem(k->name, strnlen(k->name, TSEAL_KEY_NAME_MAX));
    if (pr) return tseal_err(TSEAL_E_INVAL, "trusted key %u: name %s", i, pr);
    int rc = tseal_pk_check(TSEAL_ALG_ED25519, k->pk);
    if (rc) return rc;
    if ((rc = tseal_key_id_checked(TSEAL_ALG_ED25519, k->pk, id)) != 0) return rc;
    if (memcmp(id, k->key_id, sizeof id) != 0)
        return tseal_err(TSEAL_E_INVAL, "trusted key %u: key_id does not match the key", i);
    return 0;
}

/* The name of a trusted CA written by init: the PEM file's name without folder and extension
 * ("certs/bank-root.pem" -> "bank-root"), or "ca". */
static void ca_name(const char *path, char out[TSEAL_KEY_NAME_MAX]) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    if (n >= TSEAL_KEY_NAME_MAX) n = TSEAL_KEY_NAME_MAX - 1;
    memcpy(out, base, n);
    out[n] = 0;
    if (tseal_key_name_problem(out, n) != NULL) snprintf(out, TSEAL_KEY_NAME_MAX, "ca");
}

/* The trusted_cas and crl_files members for a CA option (after "trusted_signers"). */
static int init_ca(const tseal_policy_init_opts *o, pol_buf *b) {
    if (!o->identities || o->n_identities == 0 || o->n_identities > TSEAL_POLICY_MAX_IDENTITIES)
        return tseal_err(TSEAL_E_INVAL, "a trusted CA needs 1..%d identities (e.g. email:%s)",
                         TSEAL_POLICY_MAX_IDENTITIES, "release@example.com");
    for (unsigned i = 0; i < o->n_identities; i++) {
        const char *id = o->identities[i];
        const char *pr = id ? pol_identity_problem(id) : "is missing";
        if (pr) {
            char q[TSEAL_QUOTE_MAX];
            return tseal_err(TSEAL_E_INVAL, "identity %s %s", id ? tseal_quote(id, q) : "", pr);
        }
        for (unsigned j = 0; j < i; j++)
            if (strcmp(o->identities[j], id) == 0)
                return tseal_err(TSEAL_E_INVAL, "identity %u is the same as identity %u", i, j);
    }
    char *pem = NULL, name[TSEAL_KEY_NAME_MAX];
    int rc = pol_ca_file_pem(o->ca_pem_path, &pem);
    if (rc) return rc;
    ca_name(o->ca_pem_path, name);
    pol_buf_add(b, "\n  \"trusted_cas\": [\n    {\n      \"name\": ");
    pol_buf_str(b, name);
    pol_buf_add(b, ",\n      \"certificate\": ");
    pol_buf_str(b, pem);
    pol_buf_add(b, ",\n      \"identities\": [");
    for (unsigned i = 0; i < o->n_identities; i++) {
        pol_buf_add(b, "%s", i ? ", " : "");
        pol_buf_str(b, o->identities[i]);
    }
    pol_buf_add(b, "]\n    }\n  ],\n  \"crl_files\": [],");
    free(pem);
    return 0;
}

static int init_text(const tseal_policy_init_opts *o, pol_buf *b) {
    const char *id = o->policy_id ? o->policy_id : "site-policy";
    const char *pr;
    if ((pr = pol_text_problem(id, strlen(id), POL_ID_MAX)) != NULL)
        return tseal_err(TSEAL_E_INVAL, "policy id %s (1..%d bytes of printable UTF-8)", pr,
                         POL_ID_MAX);
    if (!o->model_id) return tseal_err(TSEAL_E_INVAL, "a model id is required");
    if ((pr = pol_text_problem(o->model_id, strlen(o->model_id), POL_MODEL_ID_MAX)) != NULL)
        return tseal_err(TSEAL_E_INVAL, "model id %s (1..%d bytes of printable UTF-8)", pr,
                         POL_MODEL_ID_MAX);
    if (o->min_version > POL_INT_MAX)
        return tseal_err(TSEAL_E_INVAL, "minimum version %llu is over 2^53",
                         (unsigned long long)o->min_version);
    bool ca = o->ca_pem_path != NULL;
    if (!ca && o->n_identities)
        return tseal_err(TSEAL_E_INVAL, "identities are given without a trusted CA");
    if ((!ca && (!o->trusted || o->n_trusted == 0)) || (o->n_trusted && !o->trusted) ||
        o->n_trusted > TSEAL_POLICY_MAX_SIGNERS)
        return tseal_err(TSEAL_E_INVAL, "1..%d trusted signing keys are required%s",
                         TSEAL_POLICY_MAX_SIGNERS, ca ? "" : " (or a trusted CA)");
    unsigned threshold = o->threshold ? o->threshold : 1;
    if (!ca && threshold > o->n_trusted)
        return tseal_err(TSEAL_E_INVAL, "threshold %u is more than the %u trusted keys", threshold,
                         o->n_trusted);
    if (threshold > TSEAL_POLICY_MAX_SIGNERS)
        return tseal_err(TSEAL_E_INVAL, "threshold %u is more than %d (the limit)", threshold,
                         TSEAL_POLICY_MAX_SIGNERS);
    char when[32], quoted[40];
    if (o->expires) {
        int64_t back;
        pol_fmt_time(o->expires, when);
        if (o->expires < 0 || !pol_parse_date(when, &back) || back != o->expires)
            return tseal_err(TSEAL_E_INVAL, "expiry %lld is not a time in 1970..9999",
                             (long long)o->expires);
    }
    for (unsigned i = 0; i < o->n_trusted; i++) {
        int rc = init_check_key(&o->trusted[i], i);
        if (rc) return rc;
        for (unsigned j = 0; j < i; j++)
            if (memcmp(o->trusted[j].pk, o->trusted[i].pk, TSEAL_PK_BYTES) == 0)
                return tseal_err(TSEAL_E_INVAL, "trusted key %u is the same as key %u", i, j);
    }
    pol_buf_add(b, "{\n  \"tseal_policy\": 1,\n  \"policy_id\": ");
    pol_buf_str(b, id);
    pol_buf_add(b, ",\n  \"expires\": %s,\n  \"trusted_signers\": [",
                or_null(o->expires ? when : NULL, quoted, sizeof quoted));
    for (unsigned i = 0; i < o->n_trusted; i++) {
        const tseal_pubkey *k = &o->trusted[i];
        char hex[POL_KEY_HEX_BYTES], *b64 = pol_b64(k->pk, TSEAL_PK_BYTES);
        if (!b64) return TSEAL_E_NOMEM;
        tseal_key_id_hex(k->key_id, hex);
        pol_buf_add(b, "%s\n    {\n      \"name\": ", i ? "," : "");
        pol_buf_str(b, k->name);
        pol_buf_add(b,
                    ",\n      \"key_id\": \"%s\",\n      \"algorithm\": \"ed25519\",\n"
                    "      \"public_key\": \"%s\",\n      \"not_after\": null\n    }",
                    hex, b64);
        free(b64);
    }
    pol_buf_add(b, "%s],", o->n_trusted ? "\n  " : "");
    int rc = ca ? init_ca(o, b) : 0;
    if (rc) return rc;
    const char *suites = o->fips_only ? "\"" TSEAL_SUITE_NAME_FIPS "\""
                         : ca         ? "\"" TSEAL_SUITE_NAME_V1 "\", \"" TSEAL_SUITE_NAME_FIPS "\""
                                      : "\"" TSEAL_SUITE_NAME_V1 "\"";
    pol_buf_add(b,
                "\n  \"revoked_key_ids\": [],\n  \"signature_threshold\": %u,\n"
                "  \"allowed_suites\": [%s],\n  \"models\": [\n    {\"model_id\": ",
                threshold, suites);
    pol_buf_str(b, o->model_id);
    pol_buf_add(b,
                ", \"min_version\": %llu}\n  ],\n  \"limits\": {},\n"
                "  \"required_attestations\": [],\n  \"require_rollback_state\": false\n}\n",
                (unsigned long long)o->min_version);
    return b->failed ? tseal_err(TSEAL_E_NOMEM, "out of memory") : 0;
}

int tseal_policy_init(const tseal_policy_init_opts *o, const char *path, int force) {
    if (!o || !path) return tseal_err(TSEAL_E_INVAL, "policy init: bad arguments");
    int rc = tseal_crypto_init();
    if (rc) return rc;
    pol_buf b = {0};
    if ((rc = init_text(o, &b)) != 0) {
        pol_buf_free(&b);
        tseal_err_context("%s: ", path);
        return rc;
    }
    tseal_policy *check = NULL;
    char *dir = pol_dirname(path);
    rc = dir ? tseal_policy_parse_in((const uint8_t *)b.p, b.len, path, dir, NULL, 0, 0, &check)
             : tseal_err(TSEAL_E_NOMEM, "out of memory");
    free(dir);
    tseal_policy_free(check);
    if (rc) { /* a bug: what init writes must load */
        pol_buf_free(&b);
        return tseal_err(TSEAL_E_INTERNAL, "policy init wrote an invalid policy: %s",
                         tseal_errmsg());
    }
    rc = pol_write_file(path, b.p, b.len, POLICY_FILE_MODE, force);
    pol_buf_free(&b);
    return rc;
}

/* ---- sign ------------------------------------------------------------------------------ */

int tseal_policy_sign(const char *policy_path, const tseal_seckey *key, const char *out_path,
                      int force) {
    if (!policy_path || !key || !key->sk || !out_path)
        return tseal_err(TSEAL_E_INVAL, "policy sign: bad arguments");
    if (key->pub.kind != TSEAL_KEY_SIGN || key->pub.alg != TSEAL_ALG_ED25519)
        return tseal_err(TSEAL_E_INVAL, "policy sign: the key is not an Ed25519 signing key");
    int rc = tseal_crypto_init();
    if (rc) return rc;
    uint8_t *buf = NULL, *payload_dec = NULL, digest[TSEAL_HASH_BYTES], sig[TSEAL_SIG_BYTES];
    size_t len = 0, plen = 0;
    tseal_policy *p = NULL;
    cJSON *root = NULL;
    char *payload_b64 = NULL, *sig_b64 = NULL, *pk_b64 = NULL, *in_dir = NULL, *out_dir = NULL;
    pol_buf b = {0};
    uint8_t id[TSEAL_KEY_ID_BYTES];
    char hex[POL_KEY_HEX_BYTES];
    if ((rc = pol_read_file(policy_path, TSEAL_POLICY_MAX_BYTES, &buf, &len)) != 0) goto out;
    if (!(in_dir = pol_dirname(policy_path)) || !(out_dir = pol_dirname(out_path))) {
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        goto out;
    }
    /* the whole file as the strict reader sees it: a valid policy, every signature valid, every
     * CRL file loaded */
    if ((rc = tseal_policy_parse_in(buf, len, policy_path, in_dir, NULL, 0, 0, &p)) != 0) goto out;
    if ((rc = tseal_key_id_checked(TSEAL_ALG_ED25519, key->pub.pk, id)) != 0) goto out;
    tseal_key_id_hex(id, hex);
    for (unsigned i = 0; i < p->n_sigs; i++)
        if (memcmp(p->sig_key_ids[i], id, TSEAL_KEY_ID_BYTES) == 0) {
            rc = tseal_err(TSEAL_E_INVAL, "%s: already signed by key %s", policy_path, hex);
            goto out;
        }
    if (p->n_sigs >= POL_ENV_MAX_SIGS) {
        rc = tseal_err(TSEAL_E_LIMIT, "%s: already has %d signatures (the limit)", policy_path,
                       POL_ENV_MAX_SIGS);
        goto out;
    }
    const cJSON *sigs = NULL;
    if (p->is_signed) {
        root = cJSON_ParseWithLength((const char *)buf, len); /* parsed strictly above */
        if (!root) {
            rc = tseal_err(TSEAL_E_INTERNAL, "%s: cannot re-read the envelope", policy_path);
            goto out;
        }
        sigs = cJSON_GetObjectItemCaseSensitive(root, "signatures");
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(root, "payload");
        if ((rc = pol_unb64_alloc(pl->valuestring, TSEAL_POLICY_MAX_BYTES, &payload_dec, &plen,
                                  "payload")) != 0)
            goto out;
        if (!(payload_b64 = strdup(pl->valuestring))) {
            rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
            goto out;
        }
    } else {
        payload_dec = buf;
        plen = len;
        buf = NULL;
        if (!(payload_b64 = pol_b64(payload_dec, plen))) {
            rc = TSEAL_E_NOMEM;
            goto out;
        }
    }
    if ((rc = tseal_sha256(payload_dec, plen, digest)) != 0 ||
        (rc = tseal_sign(key, TSEAL_POLICY_SIG_TYPE, digest, sig)) != 0)
        goto out;
    if (!(sig_b64 = pol_b64(sig, sizeof sig)) || !(pk_b64 = pol_b64(key->pub.pk, TSEAL_PK_BYTES))) {
        rc = TSEAL_E_NOMEM;
        goto out;
    }
    pol_buf_add(&b, "{\n  \"payloadType\": \"%s\",\n  \"payload\": \"%s\",\n  \"signatures\": [",
                TSEAL_POLICY_SIG_TYPE, payload_b64);
    unsigned k = 0;
    for (const cJSON *c = sigs ? sigs->child : NULL; c; c = c->next, k++)
        pol_buf_add(&b, "%s\n    {\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}",
                    k ? "," : "", cJSON_GetObjectItemCaseSensitive(c, "key_id")->valuestring,
                    cJSON_GetObjectItemCaseSensitive(c, "public_key")->valuestring,
                    cJSON_GetObjectItemCaseSensitive(c, "sig")->valuestring);
    pol_buf_add(&b,
                "%s\n    {\"key_id\": \"%s\", \"public_key\": \"%s\", \"sig\": \"%s\"}\n  ]\n}\n",
                k ? "," : "", hex, pk_b64, sig_b64);
    if (b.failed) {
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        goto out;
    }
    if (b.len > TSEAL_POLICY_MAX_BYTES) {
        rc = tseal_err(TSEAL_E_LIMIT,
                       "%s: the signed envelope would be %zu bytes, over the limit "
                       "of %u",
                       out_path, b.len, TSEAL_POLICY_MAX_BYTES);
        goto out;
    }
    bool crls = p->n_crls > 0;
    tseal_policy_free(p);
    p = NULL;
    /* as it will be read where it is written: relative crl_files must be found from there */
    if ((rc = tseal_policy_parse_in((const uint8_t *)b.p, b.len, out_path, out_dir, &key->pub, 1, 1,
                                    &p))) {
        if (crls && (rc == TSEAL_E_IO || rc == TSEAL_E_CORRUPT || rc == TSEAL_E_LIMIT))
            tseal_err_context("the signed policy would not load where it is written (crl_files "
                              "are relative to its folder): ");
        else
            rc = tseal_err(TSEAL_E_INTERNAL, "policy sign wrote an invalid envelope: %s",
                           tseal_errmsg());
        goto out;
    }
    rc = pol_write_file(out_path, b.p, b.len, POLICY_FILE_MODE, force);
out:
    tseal_wipe(sig, sizeof sig);
    pol_buf_free(&b);
    free(sig_b64);
    free(pk_b64);
    free(payload_b64);
    free(payload_dec);
    free(buf);
    free(in_dir);
    free(out_dir);
    cJSON_Delete(root);
    tseal_policy_free(p);
    return rc;
}

/* ---- explain --------------------------------------------------------------------------- */

char *tseal_policy_explain(const tseal_policy *p) {
    if (!p) return NULL;
    pol_buf b = {0};
    char when[32], hex[POL_KEY_HEX_BYTES], dhex[2 * TSEAL_HASH_BYTES + 1];
    pol_hex(p->digest, TSEAL_HASH_BYTES, dhex);
    pol_buf_add(&b, "policy %s\n  file digest (SHA-256): %s\n", p->id, dhex);
    if (p->has_expires) {
        pol_fmt_time(p->expires, when);
        pol_buf_add(&b, "  expires: %s\n", when);
    } else {
        pol_buf_add(&b, "  expires: never\n");
    }
    if (p->is_signed) {
        pol_buf_add(&b, "  signed: yes, by %u key%s:", p->n_sigs, p->n_sigs == 1 ? "" : "s");
        for (unsigned i = 0; i < p->n_sigs; i++) {
            tseal_key_id_hex(p->sig_key_ids[i], hex);
            pol_buf_add(&b, " %s", hex);
        }
        pol_buf_add(&b, "\n");
    } else {
        pol_buf_add(&b, "  signed: no (a bare policy file)\n");
    }
    pol_buf_add(&b, "trusted signers: %u, threshold: %u signature%s required\n", p->n_signers,
                p->threshold, p->threshold == 1 ? "" : "s");
    for (unsigned i = 0; i < p->n_signers; i++) {
        const pol_signer *s = &p->signers[i];
        tseal_key_id_hex(s->key_id, hex);
        if (s->has_not_after) pol_fmt_time(s->not_after, when);
        pol_buf_add(&b, "  %s  key %s  not after: %s\n", s->name, hex,
                    s->has_not_after ? when : "never");
    }
    pol_buf_add(&b, "trusted CAs (X.509 signers):%s\n", p->n_cas ? "" : " none");
    for (unsigned i = 0; i < p->n_cas; i++) {
        const pol_ca *c = &p->cas[i];
        pol_hex(c->fingerprint, TSEAL_HASH_BYTES, dhex);
        pol_fmt_time(c->not_after, when);
        pol_buf_add(&b, "  %s  root %s\n    SHA-256 fingerprint %s  not after: %s\n", c->name,
                    c->subject, dhex, when);
        pol_buf_add(&b, "    allowed identities:");
        for (unsigned j = 0; j < c->n_identities; j++)
            pol_buf_add(&b, "%s %s", j ? "," : "", c->identities[j]);
        pol_buf_add(&b, "\n");
    }
    if (p->n_cas)
        pol_buf_add(&b, "CRL files:%s\n",
                    p->n_crls ? " (revocation checked for every certificate of a chain)"
                              : " none (revocation is not checked)");
    for (unsigned i = 0; i < p->n_crls; i++) {
        pol_buf_add(&b, "  %s", p->crl_files[i]);
        if (strcmp(p->crl_files[i], p->crl_paths[i]) != 0)
            pol_buf_add(&b, "  (%s)", p->crl_paths[i]);
        pol_buf_add(&b, "\n");
    }
    pol_buf_add(&b, "revoked keys:%s\n", p->n_revoked ? "" : " none");
    for (unsigned i = 0; i < p->n_revoked; i++) {
        tseal_key_id_hex(p->revoked[i], hex);
        pol_buf_add(&b, "  %s\n", hex);
    }
    pol_buf_add(&b, "allowed suites:\n");
    for (unsigned i = 0; i < p->n_suites; i++) pol_buf_add(&b, "  %s\n", p->suites[i]);
    pol_buf_add(&b, "allowed models (any other is denied):\n");
    for (unsigned i = 0; i < p->n_models; i++) {
        const pol_model *m = &p->models[i];
        pol_buf_add(&b, "  %s  minimum version %llu  pinned digests:%s\n", m->model_id,
                    (unsigned long long)m->min_version, m->has_pins ? "" : " any digest");
        for (unsigned j = 0; j < m->n_pins; j++) {
            pol_hex(m->pins[j], TSEAL_HASH_BYTES, dhex);
            pol_buf_add(&b, "    %s\n", dhex);
        }
    }
    pol_buf_add(&b, "limits:%s\n",
                p->max_header_bytes || p->max_tensors || p->max_recipients || p->max_tensor_bytes
                    ? ""
                    : " none");
    if (p->max_header_bytes)
        pol_buf_add(&b, "  max_header_bytes: %llu\n", (unsigned long long)p->max_header_bytes);
    if (p->max_tensors)
        pol_buf_add(&b, "  max_tensors: %llu\n", (unsigned long long)p->max_tensors);
    if (p->max_recipients)
        pol_buf_add(&b, "  max_recipients: %llu\n", (unsigned long long)p->max_recipients);
    if (p->max_tensor_bytes)
        pol_buf_add(&b, "  max_tensor_bytes: %llu\n", (unsigned long long)p->max_tensor_bytes);
    pol_buf_add(&b, "required attestations:%s\n", p->n_attest ? "" : " none");
    for (unsigned i = 0; i < p->n_attest; i++) {
        tseal_key_id_hex(p->attest[i].auditor_key_id, hex);
        pol_buf_add(&b, "  %s passed, by auditor key %s\n", p->attest[i].type, hex);
    }
    pol_buf_add(&b, "rollback state file: %s\n",
                p->require_state ? "required (--state)" : "optional");
    if (b.failed) {
        pol_buf_free(&b);
        tseal_err(TSEAL_E_NOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}
