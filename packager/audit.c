/*
 * audit.c - `tseal audit` and `tseal audit-verify`: decode every tensor of a container (CPU,
 * locked memory; nothing decoded is written to disk), check each against its signed digest
 * and, with a reference model, against the original files; and emit a signed report.
 *
 * The report is an in-toto Statement (subjects: the artifact digest = SHA-256 of the
 * container's public header, and the model root digest) in a DSSE-style envelope:
 *   {"payloadType": "application/vnd.in-toto+json", "payload": base64(statement),
 *    "signatures": [{"keyid": hex, "public_key": base64, "sig": base64}]}
 * signed with tseal_sign(payload type "tseal/audit-report", SHA-256(statement bytes)).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "model_internal.h"
#include "verify_internal.h"

#define REPORT_SIG_TYPE     "tseal/audit-report"
#define REPORT_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define REPORT_PREDICATE    "https://tseal.dev/audit-report/v1"
#define REPORT_MAX_BYTES    (256u << 20)

/* ---- model root digest ------------------------------------------------------------------ */

int tseal_mf_model_root(const tseal_manifest *m, uint8_t out[TSEAL_HASH_BYTES]) {
    tseal_sha256_ctx *c;
    static const char prefix[] = "tseal-model-root-v1";
    int r = tseal_sha256_new(&c);
    if (!r) r = tseal_sha256_update(c, prefix, sizeof prefix);
    for (uint32_t i = 0; !r && i < m->n_files; i++) {
        r = tseal_sha256_update(c, m->files[i].path, strlen(m->files[i].path) + 1);
        if (!r) r = tseal_sha256_update(c, m->files[i].sha256, TSEAL_HASH_BYTES);
    }
    for (uint32_t i = 0; !r && i < m->n_tensors; i++) {
        r = tseal_sha256_update(c, m->tensors[i].name, strlen(m->tensors[i].name) + 1);
        if (!r) r = tseal_sha256_update(c, m->tensors[i].sha256, TSEAL_HASH_BYTES);
    }
    if (!r) r = tseal_sha256_final(c, out);
    tseal_sha256_free(c);
    return r;
}

/* ---- audit state ------------------------------------------------------------------------- */

typedef struct {
    const tseal_audit_opts *o;
    cJSON *tensors, *files, *failures;
    unsigned n_fail;
    uint32_t tensors_seen, tensors_ok, files_seen, files_ok, ref_mismatch;
    int opened;
    uint8_t artifact[TSEAL_HASH_BYTES], model_root[TSEAL_HASH_BYTES];
    int have_root;
    char model_id[TSEAL_MAX_MODEL_ID + 1];
    uint64_t version;
    cJSON *signers, *policy;
    /* reference: the safetensors file of the file being audited, opened lazily */
    const tseal_mf_file *ref_for;
    tseal_st *ref_st;
    char first_failure[512];
} audit_ctx;

static void fail(audit_ctx *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(audit_ctx *a, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (a->n_fail++ == 0) { /* keep the start of the first problem for the summary */
        memcpy(a->first_failure, msg, sizeof a->first_failure - 1);
        a->first_failure[sizeof a->first_failure - 1] = 0;
    }
    cJSON_AddItemToArray(a->failures, cJSON_CreateString(msg));
}

static void hexs(const uint8_t *b, size_t n, char *out) {
    tseal_hex(b, n, out);
}

static int audit_opened(void *ctx, const tseal_container *c, const tseal_gate_result *g,
                        int denied) {
    audit_ctx *a = ctx;
    a->opened = 1;
    memcpy(a->artifact, c->header_digest, TSEAL_HASH_BYTES);
    snprintf(a->model_id, sizeof a->model_id, "%s", c->h.model_id);
    a->version = c->h.model_version;
    for (uint32_t i = 0; i < c->n_sigs; i++) {
        char id[33];
        tseal_key_id_hex(c->sigs[i].key_id, id);
        cJSON_AddItemToArray(a->signers, cJSON_CreateString(id));
    }
    if (a->policy) {
        cJSON_AddStringToObject(a->policy, "decision", denied ? "deny" : "allow");
        cJSON *reasons = cJSON_AddArrayToObject(a->policy, "reasons");
        for (unsigned i = 0; g && i < g->n_reasons; i++) {
            cJSON_AddItemToArray(reasons, cJSON_CreateString(g->reasons[i]));
            fail(a, "policy: %s", g->reasons[i]);
        }
    }
    return 0;
}

static int audit_manifest(void *ctx, const tseal_manifest *m) {
    audit_ctx *a = ctx;
    int r = tseal_mf_model_root(m, a->model_root);
    a->have_root = r == 0;
    return r;
}

/* Reference tensor digest, streamed from the reference safetensors file. */
static int ref_tensor_digest(audit_ctx *a, const tseal_mf_file *f, const char *name,
                             uint8_t out[TSEAL_HASH_BYTES], int *found) {
    *found = 0;
    if (a->ref_for != f) {
        tseal_st_close(a->ref_st);
        a->ref_st = NULL;
        a->ref_for = f;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", a->o->reference, f->path);
        struct stat st;
        if (stat(a->o->reference, &st) == 0 && S_ISREG(st.st_mode))
            snprintf(p, sizeof p, "%s", a->o->reference);
        if (tseal_st_open(p, &a->ref_st) != 0) {
            fail(a, "reference %s: %s", p, tseal_errmsg());
            a->ref_st = NULL;
        }
    }
    size_t idx;
    if (!a->ref_st || tseal_st_find(a->ref_st, name, &idx) != 0) return 0;
    const tseal_st_tensor *t = tseal_st_get(a->ref_st, idx);
    tseal_tree_ctx *tc;
    uint8_t *buf = malloc(1 << 20);
    int r = buf ? tseal_tree_new(&tc) : tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (r) {
        free(buf);
        return r;
    }
    uint64_t n = t->end - t->begin;
    for (uint64_t off = 0; off < n && !r; off += 1 << 20) {
        size_t k = n - off < (1u << 20) ? (size_t)(n - off) : 1u << 20;
        r = tseal_st_read(a->ref_st, idx, off, buf, k);
        if (!r) r = tseal_tree_update(tc, buf, k);
    }
    if (!r) r = tseal_tree_final(tc, out);
    tseal_tree_free(tc);
    free(buf);
    *found = r == 0;
    return r;
}

static int audit_tensor(void *ctx, const tseal_mf_file *f, const tseal_mf_tensor *t,
                        const uint8_t actual[TSEAL_HASH_BYTES]) {
    audit_ctx *a = ctx;
    char e[65], g[65];
    hexs(t->sha256, TSEAL_HASH_BYTES, e);
    hexs(actual, TSEAL_HASH_BYTES, g);
    int ok = tseal_equal(t->sha256, actual, TSEAL_HASH_BYTES);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "file", f->path);
    cJSON_AddStringToObject(o, "expected", e);
    cJSON_AddStringToObject(o, "actual", g);
    cJSON_AddBoolToObject(o, "match", ok);
    a->tensors_seen++;
    a->tensors_ok += (uint32_t)ok;
    if (!ok) fail(a, "tensor '%.200s': decoded digest %.16s... != signed %.16s...", t->name, g, e);
    if (a->o->reference) {
        uint8_t rd[TSEAL_HASH_BYTES];
        int found;
        int r = ref_tensor_digest(a, f, t->name, rd, &found);
        if (r) return r;
        const char *state = !found                                      ? "absent"
                            : tseal_equal(rd, actual, TSEAL_HASH_BYTES) ? "match"
                                                                        : "differs";
        cJSON_AddStringToObject(o, "reference", state);
        if (strcmp(state, "match") != 0) {
            a->ref_mismatch++;
            fail(a, "tensor '%.200s' (%s): %s the reference", t->name, f->path,
                 found ? "differs from" : "is absent from");
        }
    }
    cJSON_AddItemToArray(a->tensors, o);
    return 0;
}

static int file_sha256(const char *path, uint8_t out[TSEAL_HASH_BYTES]) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tseal_err(TSEAL_E_IO, "%s: %s", path, strerror(errno));
    tseal_sha256_ctx *c;
    uint8_t *buf = malloc(1 << 20);
    int r = buf ? tseal_sha256_new(&c) : tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (ssize_t n; !r && (n = read(fd, buf, 1 << 20)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            r = tseal_err(TSEAL_E_IO, "%s: %s", path, strerror(errno));
            break;
        }
        r = tseal_sha256_update(c, buf, (size_t)n);
    }
    if (!r) r = tseal_sha256_final(c, out);
    if (buf) tseal_sha256_free(c);
    free(buf);
    close(fd);
    return r;
}

static int audit_file(void *ctx, const tseal_mf_file *f, const uint8_t actual[TSEAL_HASH_BYTES]) {
    audit_ctx *a = ctx;
    char e[65], g[65];
    hexs(f->sha256, TSEAL_HASH_BYTES, e);
    hexs(actual, TSEAL_HASH_BYTES, g);
    int ok = tseal_equal(f->sha256, actual, TSEAL_HASH_BYTES);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", f->path);
    cJSON_AddStringToObject(o, "expected", e);
    cJSON_AddStringToObject(o, "actual", g);
    cJSON_AddBoolToObject(o, "match", ok);
    a->files_seen++;
    a->files_ok += (uint32_t)ok;
    if (!ok) fail(a, "file '%.200s': rebuilt SHA-256 %.16s... != signed %.16s...", f->path, g, e);
    if (a->o->reference) {
        char p[8192];
        struct stat st;
        int single = stat(a->o->reference, &st) == 0 && S_ISREG(st.st_mode);
        snprintf(p, sizeof p, "%s/%s", a->o->reference, f->path);
        if (single) snprintf(p, sizeof p, "%s", a->o->reference);
        const char *state;
        uint8_t rd[TSEAL_HASH_BYTES];
        if (single && f->kind != TSEAL_FILE_SAFETENSORS) {
            state = "not compared";
        } else if (access(p, R_OK) != 0) {
            state = "absent";
        } else {
            int r = file_sha256(p, rd);
            if (r) return r;
            state = tseal_equal(rd, actual, TSEAL_HASH_BYTES) ? "identical" : "differs";
        }
        cJSON_AddStringToObject(o, "reference", state);
        if (!strcmp(state, "absent") || !strcmp(state, "differs")) {
            a->ref_mismatch++;
            fail(a, "file '%.200s': %s the reference", f->path,
                 !strcmp(state, "absent") ? "is absent from" : "is not byte-identical to");
        }
    }
    cJSON_AddItemToArray(a->files, o);
    return 0;
}

/* ---- report ------------------------------------------------------------------------------ */

static char *b64(const uint8_t *b, size_t n) {
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (s) sodium_bin2base64(s, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

static void iso_time(int64_t t, char *buf, size_t n) {
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static cJSON *statement(audit_ctx *a, const char *artifact_name, const char *device, int passed,
                        int64_t now, const uint8_t nonce[16], const tseal_seckey *auditor) {
    char hex[65], t[32], id[33];
    cJSON *st = cJSON_CreateObject(), *subj = cJSON_AddArrayToObject(st, "subject");
    cJSON_AddStringToObject(st, "_type", "https://in-toto.io/Statement/v1");
    cJSON *s0 = cJSON_CreateObject(), *d0 = cJSON_AddObjectToObject(s0, "digest");
    const char *base = strrchr(artifact_name, '/');
    cJSON_AddStringToObject(s0, "name", base ? base + 1 : artifact_name);
    hexs(a->artifact, TSEAL_HASH_BYTES, hex);
    cJSON_AddStringToObject(d0, "sha256", hex);
    cJSON_AddItemToArray(subj, s0);
    if (a->have_root) {
        cJSON *s1 = cJSON_CreateObject(), *d1 = cJSON_AddObjectToObject(s1, "digest");
        char name[300];
        snprintf(name, sizeof name, "model-root:%s", a->model_id);
        cJSON_AddStringToObject(s1, "name", name);
        hexs(a->model_root, TSEAL_HASH_BYTES, hex);
        cJSON_AddStringToObject(d1, "sha256", hex);
        cJSON_AddItemToArray(subj, s1);
    }
    cJSON_AddStringToObject(st, "predicateType", REPORT_PREDICATE);
    cJSON *p = cJSON_AddObjectToObject(st, "predicate"), *tool = cJSON_AddObjectToObject(p, "tool");
    cJSON_AddStringToObject(tool, "name", "tseal");
    cJSON_AddStringToObject(tool, "version", TSEAL_VERSION_STRING);
    cJSON_AddStringToObject(p, "device", device);
    iso_time(now, t, sizeof t);
    cJSON_AddStringToObject(p, "time", t);
    hexs(nonce, 16, hex);
    cJSON_AddStringToObject(p, "nonce", hex);
    cJSON_AddStringToObject(p, "model_id", a->model_id);
    cJSON_AddNumberToObject(p, "version", (double)a->version);
    tseal_key_id_hex(auditor->pub.key_id, id);
    cJSON_AddStringToObject(p, "auditor_key_id", id);
    cJSON_AddItemToObject(p, "signer_key_ids", a->signers);
    a->signers = NULL;
    if (a->policy) {
        cJSON_AddItemToObject(p, "policy", a->policy);
        a->policy = NULL;
    } else {
        cJSON_AddNullToObject(p, "policy");
    }
    if (a->o->reference)
        cJSON_AddStringToObject(p, "reference", a->o->reference);
    else
        cJSON_AddNullToObject(p, "reference");
    cJSON_AddItemToObject(p, "tensors", a->tensors);
    cJSON_AddItemToObject(p, "files", a->files);
    a->tensors = a->files = NULL;
    cJSON_AddStringToObject(p, "result", passed ? "pass" : "fail");
    cJSON_AddItemToObject(p, "failures", a->failures);
    a->failures = NULL;
    return st;
}

static int write_report(const char *path, cJSON *stmt, const tseal_seckey *auditor) {
    char *payload = cJSON_Print(stmt);
    if (!payload) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    size_t n = strlen(payload);
    uint8_t d[TSEAL_HASH_BYTES], sig[TSEAL_SIG_BYTES];
    int r = tseal_sha256(payload, n, d);
    if (!r) r = tseal_sign(auditor, REPORT_SIG_TYPE, d, sig);
    char id[33];
    tseal_key_id_hex(auditor->pub.key_id, id);
    char *p64 = b64((const uint8_t *)payload, n), *k64 = b64(auditor->pub.pk, TSEAL_PK_BYTES),
         *s64 = b64(sig, sizeof sig);
    cJSON *env = cJSON_CreateObject(), *sigs;
    cJSON_AddStringToObject(env, "payloadType", REPORT_PAYLOAD_TYPE);
    cJSON_AddStringToObject(env, "payload", p64 ? p64 : "");
    sigs = cJSON_AddArrayToObject(env, "signatures");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "keyid", id);
    cJSON_AddStringToObject(s, "public_key", k64 ? k64 : "");
    cJSON_AddStringToObject(s, "sig", s64 ? s64 : "");
    cJSON_AddItemToArray(sigs, s);
    char *text = cJSON_Print(env);
    if (!r && (!p64 || !k64 || !s64 || !text)) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
    tseal_atomic_file af;
    if (!r) r = tseal_atomic_open(&af, path, 0644);
    if (!r) {
        r = tseal_write_full(af.fd, text, strlen(text), path);
        if (!r) r = tseal_write_full(af.fd, "\n", 1, path);
        if (!r)
            r = tseal_atomic_commit(&af);
        else
            tseal_atomic_abort(&af);
    }
    free(text);
    cJSON_Delete(env);
    free(p64);
    free(k64);
    free(s64);
    free(payload);
    return r;
}

static int load_seckey(const char *path, const char *passfile, tseal_seckey **out) {
    char *pass = NULL;
    size_t len = 0;
    int r = passfile ? tseal_passphrase_read(passfile, &pass, &len) : 0;
    if (!r) r = tseal_seckey_read(path, pass, len, out);
    tseal_secure_free(pass);
    return r;
}

int tseal_audit(const char *path, const tseal_audit_opts *o, tseal_audit_result *res) {
    tseal_audit_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    const char *device = o->device ? o->device : "auto";
    if (strcmp(device, "cpu") && strcmp(device, "gpu") && strcmp(device, "auto"))
        return tseal_err(TSEAL_E_INVAL, "--device must be gpu, cpu or auto");
    int gpus = strcmp(device, "cpu") ? tseal_gpu_device_count() : 0;
    if (!strcmp(device, "gpu") && gpus == 0) {
        tseal_err_context("--device gpu: ");
        return TSEAL_E_NO_GPU;
    }
    device = gpus > 0 ? "gpu" : "cpu"; /* auto: the GPU when there is one */
    snprintf(res->device, sizeof res->device, "%s", device);
    if (!o->key || !o->report || !o->audit_key)
        return tseal_err(TSEAL_E_INVAL, "audit needs --key, --report and --audit-key");
    if (!o->policy && !o->n_trust && !o->n_trust_cas)
        return tseal_err(TSEAL_E_INVAL, "audit needs a policy (--policy), a trusted key (--trust) "
                                        "or a trusted CA (--trust-ca)");
    tseal_seckey *auditor = NULL;
    int r = tseal_crypto_init();
    if (!r) r = load_seckey(o->audit_key, o->audit_passphrase_file, &auditor);
    if (!r && auditor->pub.kind != TSEAL_KEY_SIGN)
        r = tseal_err(TSEAL_E_INVAL, "%s: not a signing key", o->audit_key);
    if (r) {
        tseal_seckey_free(auditor);
        return r;
    }
    audit_ctx a = {.o = o,
                   .tensors = cJSON_CreateArray(),
                   .files = cJSON_CreateArray(),
                   .failures = cJSON_CreateArray(),
                   .signers = cJSON_CreateArray()};
    if (o->policy) {
        a.policy = cJSON_CreateObject();
        tseal_policy *pol = NULL;
        /* the policy's identity for the report (the gate itself runs in the engine) */
        tseal_pubkey *pk = o->n_policy_keys ? calloc(o->n_policy_keys, sizeof *pk) : NULL;
        for (unsigned i = 0; !r && i < o->n_policy_keys; i++)
            r = tseal_pubkey_read(o->policy_keys[i], &pk[i]);
        if (!r) r = tseal_policy_load(o->policy, pk, o->n_policy_keys, o->n_policy_keys > 0, &pol);
        free(pk);
        if (!r) {
            uint8_t d[TSEAL_HASH_BYTES];
            char hex[65];
            tseal_policy_digest(pol, d);
            hexs(d, sizeof d, hex);
            cJSON_AddStringToObject(a.policy, "id", tseal_policy_id(pol));
            cJSON_AddStringToObject(a.policy, "sha256", hex);
            cJSON_AddBoolToObject(a.policy, "signed", tseal_policy_is_signed(pol));
        }
        tseal_policy_free(pol);
    }
    tseal_verify_hooks hooks = {&a, audit_opened, audit_manifest, audit_tensor, audit_file};
    tseal_verify_opts vo;
    memset(&vo, 0, sizeof vo);
    vo.trust = o->trust;
    vo.n_trust = o->n_trust;
    vo.trust_cas = o->trust_cas;
    vo.n_trust_cas = o->n_trust_cas;
    vo.crls = o->crls;
    vo.n_crls = o->n_crls;
    vo.identities = o->identities;
    vo.n_identities = o->n_identities;
    vo.key = o->key;
    vo.passphrase_file = o->passphrase_file;
    vo.threads = o->threads;
    vo.progress = o->progress;
    vo.progress_ctx = o->progress_ctx;
    vo.policy = o->policy;
    vo.policy_keys = o->policy_keys;
    vo.n_policy_keys = o->n_policy_keys;
    vo.state = o->state;
    vo.now = o->test_time;
    vo.gpu = !strcmp(device, "gpu");
    tseal_verify_report rep;
    int vr = r ? r : tseal_verify_run(path, &vo, &rep, NULL, 1, &hooks);
    if (vr && a.opened) fail(&a, "verification stopped: %s", tseal_errmsg());
    if (a.opened) { /* the artifact is identified: the report records pass or fail */
        int64_t now = o->test_time ? o->test_time : (int64_t)time(NULL);
        uint8_t nonce[16];
        if (o->test_nonce)
            memcpy(nonce, o->test_nonce, sizeof nonce);
        else
            tseal_random(NULL, nonce, sizeof nonce);
        int passed = a.n_fail == 0 && vr == 0;
        cJSON *st = statement(&a, path, device, passed, now, nonce, auditor);
        r = write_report(o->report, st, auditor);
        cJSON_Delete(st);
        res->passed = passed;
        res->tensors = a.tensors_seen;
        res->tensors_ok = a.tensors_ok;
        res->files = a.files_seen;
        res->files_ok = a.files_ok;
        res->reference_mismatches = a.ref_mismatch;
        snprintf(res->first_failure, sizeof res->first_failure, "%s", a.first_failure);
        if (!r && !passed)
            r = tseal_err(TSEAL_E_VERIFY, "audit FAILED (%u problem%s): %s", a.n_fail,
                          a.n_fail == 1 ? "" : "s", a.first_failure);
    } else if (!r) {
        r = vr;
    }
    cJSON_Delete(a.tensors);
    cJSON_Delete(a.files);
    cJSON_Delete(a.failures);
    cJSON_Delete(a.signers);
    cJSON_Delete(a.policy);
    tseal_st_close(a.ref_st);
    tseal_seckey_free(auditor);
    return r;
}

/* ---- reading reports ------------------------------------------------------------------------ */

static int read_small_file(const char *path, size_t max, uint8_t **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        r = tseal_err(TSEAL_E_IO, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > max)
        r = tseal_err(TSEAL_E_LIMIT, "%s: %lld bytes (limit %zu)", path, (long long)st.st_size,
                      max);
    *out = r ? NULL : malloc((size_t)st.st_size + 1);
    if (!r && !*out) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!r) r = tseal_pread_full(fd, *out, (size_t)st.st_size, 0, path);
    if (!r) *len = (size_t)st.st_size;
    close(fd);
    if (r) {
        free(*out);
        *out = NULL;
    }
    return r;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int unb64(const char *s, uint8_t **out, size_t *len, size_t max) {
    size_t n = strlen(s), cap = n / 4 * 3 + 3;
    if (cap > max + 3) return -1;
    *out = malloc(cap + 1);
    if (!*out) return -1;
    if (sodium_base642bin(*out, cap, s, n, NULL, len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(*out);
        *out = NULL;
        return -1;
    }
    (*out)[*len] = 0;
    return 0;
}

static int hex32(const char *s, uint8_t *out, size_t n) {
    if (!s || strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int v = (s[i] >= '0' && s[i] <= '9')   ? s[i] - '0'
                : (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10
                                               : -1;
        if (v < 0) return -1;
        if (i & 1)
            out[i / 2] |= (uint8_t)v;
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

/* Parse and verify an envelope. Every signature must be valid; with trusted keys, one must be
 * by one of them. On success *stmt holds the parsed statement and *signer the key id. */
static int open_report_mem(const uint8_t *buf, size_t len, const char *path,
                           const tseal_pubkey *trust, unsigned n_trust, cJSON **stmt,
                           uint8_t signer[TSEAL_KEY_ID_BYTES]) {
    uint8_t *payload = NULL;
    size_t plen = 0;
    cJSON *env = NULL;
    *stmt = NULL;
    int r = 0;
    if (!r && !tseal_utf8_valid(buf, len)) r = tseal_err(TSEAL_E_CORRUPT, "%s: not UTF-8", path);
    if (!r && (r = tseal_json_lex_check(buf, len, 4, 1u << 16, 8, "offset")))
        tseal_err_context("%s: ", path);
    if (!r && (r = tseal_json_parse_exact(buf, len, " \t\r\n", NULL, "offset", NULL, &env)))
        tseal_err_context("%s: ", path);
    const char *pt = r ? NULL : jstr(env, "payloadType"), *p64 = r ? NULL : jstr(env, "payload");
    const cJSON *sigs = r ? NULL : cJSON_GetObjectItemCaseSensitive(env, "signatures");
    if (!r && (!cJSON_IsObject(env) || cJSON_GetArraySize(env) != 3 || !pt || !p64 ||
               !cJSON_IsArray(sigs)))
        r = tseal_err(TSEAL_E_CORRUPT, "%s: not a tseal audit report envelope", path);
    if (!r && strcmp(pt, REPORT_PAYLOAD_TYPE))
        r = tseal_err(TSEAL_E_VERIFY, "%s: wrong payload type \"%.64s\"", path, pt);
    if (!r && unb64(p64, &payload, &plen, REPORT_MAX_BYTES))
        r = tseal_err(TSEAL_E_CORRUPT, "%s: payload is not base64", path);
    uint8_t d[TSEAL_HASH_BYTES];
    if (!r) r = tseal_sha256(payload, plen, d);
    int n_sigs = r ? 0 : cJSON_GetArraySize(sigs), trusted = 0;
    if (!r && (n_sigs < 1 || n_sigs > 16))
        r = tseal_err(TSEAL_E_CORRUPT, "%s: %d signatures", path, n_sigs);
    for (const cJSON *s = r ? NULL : sigs->child; s && !r; s = s->next) {
        uint8_t id[TSEAL_KEY_ID_BYTES], want[TSEAL_KEY_ID_BYTES], *pk = NULL, *sig = NULL;
        size_t pkl = 0, sgl = 0;
        if (!cJSON_IsObject(s) || cJSON_GetArraySize(s) != 3 ||
            hex32(jstr(s, "keyid"), id, sizeof id) || !jstr(s, "public_key") || !jstr(s, "sig") ||
            unb64(jstr(s, "public_key"), &pk, &pkl, 64) || unb64(jstr(s, "sig"), &sig, &sgl, 128) ||
            pkl != TSEAL_PK_BYTES || sgl != TSEAL_SIG_BYTES) {
            r = tseal_err(TSEAL_E_CORRUPT, "%s: malformed signature entry", path);
        } else {
            tseal_key_id(TSEAL_ALG_ED25519, pk, want);
            if (memcmp(want, id, sizeof id))
                r = tseal_err(TSEAL_E_CORRUPT, "%s: signature key id does not match its key", path);
            if (!r && tseal_sign_verify(pk, REPORT_SIG_TYPE, d, sig))
                r = tseal_err(TSEAL_E_VERIFY,
                              "%s: signature by %.16s... is invalid (the report was modified)",
                              path, jstr(s, "keyid"));
            for (unsigned t = 0; !r && t < n_trust; t++)
                if (!memcmp(trust[t].pk, pk, TSEAL_PK_BYTES)) trusted = 1;
            if (!r && s == sigs->child) memcpy(signer, id, TSEAL_KEY_ID_BYTES);
        }
        free(pk);
        free(sig);
    }
    if (!r && n_trust && !trusted)
        r = tseal_err(TSEAL_E_VERIFY, "%s: not signed by a trusted auditor key", path);
    if (!r) {
        *stmt = cJSON_ParseWithLength((const char *)payload, plen);
        if (!*stmt || !cJSON_IsObject(*stmt))
            r = tseal_err(TSEAL_E_CORRUPT, "%s: payload is not a JSON statement", path);
    }
    if (r) {
        cJSON_Delete(*stmt);
        *stmt = NULL;
    }
    cJSON_Delete(env);
    free(payload);
    return r;
}

static int open_report(const char *path, const tseal_pubkey *trust, unsigned n_trust, cJSON **stmt,
                       uint8_t signer[TSEAL_KEY_ID_BYTES]) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *stmt = NULL;
    int r = read_small_file(path, REPORT_MAX_BYTES, &buf, &len);
    if (!r) r = open_report_mem(buf, len, path, trust, n_trust, stmt, signer);
    free(buf);
    return r;
}

static int statement_facts(const char *path, const cJSON *st, tseal_report_info *info,
                           uint8_t subject[TSEAL_HASH_BYTES]) {
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(st, "subject"),
                *p = cJSON_GetObjectItemCaseSensitive(st, "predicate");
    const char *pt = jstr(st, "predicateType");
    if (!cJSON_IsArray(subj) || cJSON_GetArraySize(subj) < 1 || !cJSON_IsObject(p) || !pt ||
        strcmp(pt, REPORT_PREDICATE))
        return tseal_err(TSEAL_E_CORRUPT, "%s: not a tseal audit statement", path);
    const cJSON *d0 = cJSON_GetObjectItemCaseSensitive(subj->child, "digest");
    const char *h0 = jstr(d0, "sha256"), *res = jstr(p, "result");
    if (!h0 || hex32(h0, subject, TSEAL_HASH_BYTES) || !res ||
        (strcmp(res, "pass") && strcmp(res, "fail")))
        return tseal_err(TSEAL_E_CORRUPT, "%s: statement lacks its subject digest or result", path);
    if (info) {
        info->passed = !strcmp(res, "pass");
        snprintf(info->artifact_digest, sizeof info->artifact_digest, "%s", h0);
        if (cJSON_GetArraySize(subj) > 1) {
            const char *h1 = jstr(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(subj, 1), "digest"), "sha256");
            snprintf(info->model_root, sizeof info->model_root, "%s", h1 ? h1 : "");
        }
        snprintf(info->model_id, sizeof info->model_id, "%s",
                 jstr(p, "model_id") ? jstr(p, "model_id") : "");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "version");
        info->version = cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
        snprintf(info->time, sizeof info->time, "%s", jstr(p, "time") ? jstr(p, "time") : "");
        snprintf(info->device, sizeof info->device, "%s",
                 jstr(p, "device") ? jstr(p, "device") : "");
        const cJSON *pol = cJSON_GetObjectItemCaseSensitive(p, "policy");
        snprintf(info->policy_id, sizeof info->policy_id, "%s",
                 cJSON_IsObject(pol) && jstr(pol, "id") ? jstr(pol, "id") : "");
        const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(p, "tensors"),
                    *fails = cJSON_GetObjectItemCaseSensitive(p, "failures");
        info->tensors = cJSON_IsArray(tensors) ? (uint32_t)cJSON_GetArraySize(tensors) : 0;
        info->failures = cJSON_IsArray(fails) ? (uint32_t)cJSON_GetArraySize(fails) : 0;
        const cJSON *f0 = cJSON_IsArray(fails) ? fails->child : NULL;
        snprintf(info->first_failure, sizeof info->first_failure, "%s",
                 cJSON_IsString(f0) ? f0->valuestring : "");
    }
    return 0;
}

int tseal_audit_verify(const char *report, const char *const *trust, unsigned n_trust,
                       tseal_report_info *info) {
    tseal_report_info dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (!n_trust)
        return tseal_err(TSEAL_E_INVAL, "audit-verify needs the auditor's public key (--trust)");
    int r = tseal_crypto_init();
    tseal_pubkey *keys = calloc(n_trust, sizeof *keys);
    if (!keys) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (unsigned i = 0; !r && i < n_trust; i++) r = tseal_pubkey_read(trust[i], &keys[i]);
    cJSON *st = NULL;
    uint8_t signer[TSEAL_KEY_ID_BYTES], subject[TSEAL_HASH_BYTES];
    if (!r) r = open_report(report, keys, n_trust, &st, signer);
    if (!r) r = statement_facts(report, st, info, subject);
    if (!r) tseal_key_id_hex(signer, info->auditor_key_id);
    if (!r && !info->passed)
        r = tseal_err(TSEAL_E_VERIFY, "%s: authentic, but records a FAILED audit: %s", report,
                      info->first_failure);
    cJSON_Delete(st);
    free(keys);
    return r;
}

int tseal_report_attestation(const char *path, tseal_attestation *out) {
    memset(out, 0, sizeof *out);
    cJSON *st = NULL;
    tseal_report_info info;
    int r = open_report(path, NULL, 0, &st, out->auditor_key_id);
    if (!r) r = statement_facts(path, st, &info, out->subject_digest);
    if (!r) out->passed = info.passed;
    cJSON_Delete(st);
    return r;
}

int tseal_report_attestation_mem(const uint8_t *buf, size_t len, const char *label,
                                 tseal_attestation *out) {
    memset(out, 0, sizeof *out);
    cJSON *st = NULL;
    tseal_report_info info;
    int r = open_report_mem(buf, len, label, NULL, 0, &st, out->auditor_key_id);
    if (!r) r = statement_facts(label, st, &info, out->subject_digest);
    if (!r) out->passed = info.passed;
    cJSON_Delete(st);
    return r;
}
