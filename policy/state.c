/*
 * state.c - the rollback state file: per (model id, signer key id) the highest version ever
 * accepted (docs/POLICY.md, "Rollback state file").
 *
 * {"tseal_state": 1, "accepted": [{"model_id": ..., "signer_key_id": ..., "version": N}, ...]}
 * parsed as strictly as a policy. Updates only raise versions and rewrite the whole file
 * atomically (temporary file, fsync, rename, fsync of the folder); the in-memory state changes
 * only once the new file is in place.
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

#define STATE_MAX_TOKENS (8ull + 7ull * TSEAL_STATE_MAX_ENTRIES)

static int entry_cmp(const char *model, const uint8_t *signer, const pol_state_entry *e) {
    int c = strcmp(model, e->model_id);
    return c ? c : memcmp(signer, e->signer, TSEAL_KEY_ID_BYTES);
}

static int qsort_cmp(const void *a, const void *b) {
    const pol_state_entry *x = a;
    return entry_cmp(x->model_id, x->signer, b);
}

/* Lower bound of (model, signer): *found if equal. */
static size_t find_pos(const tseal_state *s, const char *model, const uint8_t *signer, int *found) {
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(model, signer, &s->e[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n && entry_cmp(model, signer, &s->e[lo]) == 0;
    return lo;
}

void tseal_state_free(tseal_state *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->e[i].model_id);
    free(s->e);
    free(s);
}

size_t tseal_state_count(const tseal_state *s) {
    return s ? s->n : 0;
}

uint64_t tseal_state_get(const tseal_state *s, const char *model_id,
                         const uint8_t signer[TSEAL_KEY_ID_BYTES], int *found) {
    int f = 0;
    uint64_t v = 0;
    if (s && model_id && signer) {
        size_t i = find_pos(s, model_id, signer, &f);
        if (f) v = s->e[i].version;
    }
    if (found) *found = f;
    return v;
}

/* ---- parsing --------------------------------------------------------------------------- */

static const char *const top_names[] = {"tseal_state", "accepted"};
static const char *const entry_names[] = {"model_id", "signer_key_id", "version"};

static int parse_entry(const cJSON *o, const char *path, pol_state_entry *e) {
    const cJSON *m[3];
    char sub[POL_PATH_MAX];
    int rc = pol_want(o, cJSON_IsObject, "an object", path);
    if (!rc) rc = pol_members(o, path, entry_names, 3, m);
    for (unsigned i = 0; !rc && i < 3; i++)
        if (!m[i])
            rc = tseal_err(TSEAL_E_CORRUPT, "%s: missing member \"%s\"", path, entry_names[i]);
    if (rc) return rc;
    pol_path(sub, path, "model_id");
    if ((rc = pol_want_string(m[0], sub)) != 0) return rc;
    const char *pr =
        pol_text_problem(m[0]->valuestring, strlen(m[0]->valuestring), POL_MODEL_ID_MAX);
    if (pr)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %s (1..%d bytes of printable UTF-8)", sub, pr,
                         POL_MODEL_ID_MAX);
    pol_path(sub, path, "signer_key_id");
    if ((rc = pol_want_string(m[1], sub)) != 0) return rc;
    if (!pol_unhex(m[1]->valuestring, e->signer, TSEAL_KEY_ID_BYTES))
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not a key id (32 lower-case hex digits)", sub);
    pol_path(sub, path, "version");
    if ((rc = pol_want_uint(m[2], POL_INT_MAX, sub, &e->version)) != 0) return rc;
    if (!(e->model_id = strdup(m[0]->valuestring)))
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    return 0;
}

static int state_parse(const uint8_t *buf, size_t len, tseal_state *s) {
    if (len > TSEAL_STATE_MAX_BYTES)
        return tseal_err(TSEAL_E_LIMIT, "%zu bytes, over the limit of %u bytes of a state file",
                         len, TSEAL_STATE_MAX_BYTES);
    cJSON *root = NULL;
    const cJSON *m[2];
    int rc = pol_json_parse(buf, len, STATE_MAX_TOKENS, &root);
    if (rc) return rc;
    rc = pol_members(root, "", top_names, 2, m);
    for (unsigned i = 0; !rc && i < 2; i++)
        if (!m[i]) rc = tseal_err(TSEAL_E_CORRUPT, "missing member \"%s\"", top_names[i]);
    uint64_t ver = 0;
    if (!rc) rc = pol_want_uint(m[0], POL_INT_MAX, "tseal_state", &ver);
    if (!rc && ver != 1)
        rc = tseal_err(TSEAL_E_UNSUPPORTED,
                       "tseal_state: version %llu is not supported (this tseal reads 1)",
                       (unsigned long long)ver);
    if (!rc) rc = pol_want(m[1], cJSON_IsArray, "an array", "accepted");
    size_t n = 0;
    for (const cJSON *c = rc ? NULL : m[1]->child; c; c = c->next)
        if (++n > TSEAL_STATE_MAX_ENTRIES) {
            rc = tseal_err(TSEAL_E_LIMIT, "accepted: more than %u entries (the limit)",
                           TSEAL_STATE_MAX_ENTRIES);
            break;
        }
    if (!rc && n && !(s->e = calloc(n, sizeof *s->e)))
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!rc) s->cap = n;
    for (const cJSON *c = rc ? NULL : m[1]->child; c && !rc; c = c->next) {
        char path[POL_PATH_MAX];
        pol_path_index(path, "accepted", (unsigned)s->n);
        rc = parse_entry(c, path, &s->e[s->n]);
        if (!rc) s->n++;
    }
    cJSON_Delete(root);
    if (rc) return rc;
    if (s->n > 1) qsort(s->e, s->n, sizeof *s->e, qsort_cmp);
    for (size_t i = 1; i < s->n; i++)
        if (qsort_cmp(&s->e[i - 1], &s->e[i]) == 0) {
            char hex[POL_KEY_HEX_BYTES], q[TSEAL_QUOTE_MAX];
            tseal_key_id_hex(s->e[i].signer, hex);
            return tseal_err(TSEAL_E_CORRUPT, "accepted: model %s with signer %s is listed twice",
                             tseal_quote(s->e[i].model_id, q), hex);
        }
    return 0;
}

int tseal_state_parse(const uint8_t *buf, size_t len, const char *label, tseal_state **out) {
    if (!label) label = "state";
    if (out) *out = NULL;
    if (!out || (!buf && len)) return tseal_err(TSEAL_E_INVAL, "%s: bad arguments", label);
    tseal_state *s = calloc(1, sizeof *s);
    if (!s) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", label);
    int rc = state_parse(buf ? buf : (const uint8_t *)"", len, s);
    if (rc) {
        tseal_err_context("%s: ", label);
        tseal_state_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int tseal_state_load(const char *path, tseal_state **out) {
    if (out) *out = NULL;
    if (!path || !out) return tseal_err(TSEAL_E_INVAL, "state: bad arguments");
    uint8_t *buf;
    size_t len;
    int rc = pol_read_file(path, TSEAL_STATE_MAX_BYTES, &buf, &len);
    if (rc == TSEAL_E_NOTFOUND) { /* no file yet: nothing accepted so far */
        tseal_err_clear();
        if (!(*out = calloc(1, sizeof **out)))
            return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
        return 0;
    }
    if (rc) return rc;
    rc = tseal_state_parse(buf, len, path, out);
    free(buf);
    return rc;
}

/* ---- writing --------------------------------------------------------------------------- */

int pol_state_encode(const tseal_state *s, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    pol_buf b = {0};
    pol_buf_add(&b, "{\n  \"tseal_state\": 1,\n  \"accepted\": [");
    for (size_t i = 0; i < s->n; i++) {
        char hex[POL_KEY_HEX_BYTES];
        tseal_key_id_hex(s->e[i].signer, hex);
        pol_buf_add(&b, "%s\n    {\"model_id\": ", i ? "," : "");
        pol_buf_str(&b, s->e[i].model_id);
        pol_buf_add(&b, ", \"signer_key_id\": \"%s\", \"version\": %llu}", hex,
                    (unsigned long long)s->e[i].version);
    }
    pol_buf_add(&b, "%s]\n}\n", s->n ? "\n  " : "");
    if (b.failed) {
        pol_buf_free(&b);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

static tseal_state *state_clone(const tseal_state *s, size_t extra) {
    tseal_state *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = s->n + extra;
    if (c->cap && !(c->e = calloc(c->cap, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    for (; c->n < s->n; c->n++) {
        c->e[c->n] = s->e[c->n];
        if (!(c->e[c->n].model_id = strdup(s->e[c->n].model_id))) {
            tseal_state_free(c);
            return NULL;
        }
    }
    return c;
}

/* Raise (model, signer) to at least `version`, inserting it in order if new. */
static int raise_entry(tseal_state *s, const char *model, const uint8_t *signer, uint64_t version) {
    int found;
    size_t i = find_pos(s, model, signer, &found);
    if (found) {
        if (s->e[i].version < version) s->e[i].version = version;
        return 0;
    }
    if (s->n == s->cap) return tseal_err(TSEAL_E_INTERNAL, "state: no room");
    char *m = strdup(model);
    if (!m) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    memmove(&s->e[i + 1], &s->e[i], (s->n - i) * sizeof *s->e);
    s->e[i].model_id = m;
    memcpy(s->e[i].signer, signer, TSEAL_KEY_ID_BYTES);
    s->e[i].version = version;
    s->n++;
    return 0;
}

int tseal_state_record(tseal_state *s, const char *path, const char *model_id,
                       const uint8_t (*signers)[TSEAL_KEY_ID_BYTES], unsigned n, uint64_t version) {
    if (!s || !path || !model_id || (n && !signers))
        return tseal_err(TSEAL_E_INVAL, "state: bad arguments");
    const char *pr = pol_text_problem(model_id, strlen(model_id), POL_MODEL_ID_MAX);
    if (pr)
        return tseal_err(TSEAL_E_INVAL, "%s: model id %s (1..%d bytes of printable UTF-8)", path,
                         pr, POL_MODEL_ID_MAX);
    if (version > POL_INT_MAX)
        return tseal_err(TSEAL_E_INVAL, "%s: version %llu is over 2^53", path,
                         (unsigned long long)version);
    tseal_state *ns = state_clone(s, n);
    if (!ns) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    int rc = 0;
    for (unsigned i = 0; i < n && !rc; i++) rc = raise_entry(ns, model_id, signers[i], version);
    if (!rc && ns->n > TSEAL_STATE_MAX_ENTRIES)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: more than %u entries (the limit)", path,
                       TSEAL_STATE_MAX_ENTRIES);
    char *json = NULL;
    size_t len = 0;
    if (!rc) rc = pol_state_encode(ns, &json, &len);
    if (!rc && len > TSEAL_STATE_MAX_BYTES)
        rc = tseal_err(TSEAL_E_LIMIT, "%s: would be %zu bytes, over the limit of %u", path, len,
                       TSEAL_STATE_MAX_BYTES);
    if (!rc) rc = pol_write_file(path, json, len, 0600, 1);
    free(json);
    if (rc) {
        tseal_state_free(ns);
        return rc;
    }
    /* the file is in place: take the new entries, free the old ones */
    tseal_state old = *s;
    *s = *ns;
    *ns = old;
    tseal_state_free(ns);
    return 0;
}
