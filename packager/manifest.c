/*
 * manifest.c - build, serialise and strictly parse the encrypted manifest.
 *
 * The manifest is signed (its ciphertext is committed by the header) but is still parsed as
 * hostile input: a malicious signer must not be able to make unpack write outside its output
 * folder, read out of bounds, or reuse a segment twice.
 *
 * {
 *   "tseal_manifest": 1, "model_id": "...", "version": 12,
 *   "files": [ {"path": "model.safetensors", "kind": "safetensors", "size": N,
 *               "sha256": "<64 hex>", "segment": S, "first_tensor": T, "tensor_count": C},
 *              {"path": "config.json", "kind": "blob", "size": N, "sha256": "...", "segment": S} ],
 *   "tensors": [ {"name": "...", "dtype": "BF16", "shape": [..], "bytes": N, "segment": S,
 *                 "encoding": "tsc1" | "raw", "sha256": "<64 hex of the original bytes>"} ]
 * }
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "manifest.h"
#include "model_internal.h"

void tseal_hex(const uint8_t *b, size_t n, char *out) {
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* ---- building --------------------------------------------------------------------------- */

static int grow(void **arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap) return 0;
    uint32_t nc = *cap ? 2 * *cap : 16;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return -1;
    memset((uint8_t *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = p;
    *cap = nc;
    return 0;
}

tseal_mf_file *tseal_mf_add_file(tseal_manifest *m, const char *path, int kind) {
    if (grow((void **)&m->files, &m->cap_files, m->n_files, sizeof *m->files)) return NULL;
    tseal_mf_file *f = &m->files[m->n_files];
    f->path = strdup(path);
    if (!f->path) return NULL;
    f->kind = kind;
    f->first_tensor = m->n_tensors;
    m->n_files++;
    return f;
}

tseal_mf_tensor *tseal_mf_add_tensor(tseal_manifest *m, const tseal_st_tensor *t) {
    if (grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors, sizeof *m->tensors)) return NULL;
    tseal_mf_tensor *x = &m->tensors[m->n_tensors];
    x->name = strdup(t->name);
    if (!x->name) return NULL;
    x->dtype = t->dtype;
    x->rank = t->rank;
    memcpy(x->shape, t->shape, sizeof x->shape);
    x->bytes = t->end - t->begin;
    m->n_tensors++;
    return x;
}

/* Every cJSON call below allocates and may fail: any failure fails the whole manifest (a
 * manifest missing an entry would be signed and written, and only fail at verification). */
int tseal_mf_serialize(const tseal_manifest *m, char **json, size_t *len) {
    cJSON *root = cJSON_CreateObject(), *files, *tensors;
    char hex[2 * TSEAL_HASH_BYTES + 1];
    *json = NULL;
    if (!root) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int ok = cJSON_AddNumberToObject(root, "tseal_manifest", 1) &&
             cJSON_AddStringToObject(root, "model_id", m->model_id) &&
             cJSON_AddNumberToObject(root, "version", (double)m->version);
    files = ok ? cJSON_AddArrayToObject(root, "files") : NULL;
    ok = files != NULL;
    for (uint32_t i = 0; ok && i < m->n_files; i++) {
        const tseal_mf_file *f = &m->files[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(files, o)) {
            cJSON_Delete(o);
            ok = 0;
            break;
        }
        tseal_hex(f->sha256, TSEAL_HASH_BYTES, hex);
        ok = cJSON_AddStringToObject(o, "path", f->path) &&
             cJSON_AddStringToObject(o, "kind",
                                     f->kind == TSEAL_FILE_SAFETENSORS ? "safetensors" : "blob") &&
             cJSON_AddNumberToObject(o, "size", (double)f->size) &&
             cJSON_AddStringToObject(o, "sha256", hex) &&
             cJSON_AddNumberToObject(o, "segment", f->segment);
        if (ok && f->kind == TSEAL_FILE_SAFETENSORS)
            ok = cJSON_AddNumberToObject(o, "first_tensor", f->first_tensor) &&
                 cJSON_AddNumberToObject(o, "tensor_count", f->n_tensors);
    }
    tensors = ok ? cJSON_AddArrayToObject(root, "tensors") : NULL;
    ok = tensors != NULL;
    for (uint32_t i = 0; ok && i < m->n_tensors; i++) {
        const tseal_mf_tensor *t = &m->tensors[i];
        cJSON *o = cJSON_CreateObject(), *shape;
        if (!o || !cJSON_AddItemToArray(tensors, o)) {
            cJSON_Delete(o);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(o, "name", t->name) &&
             cJSON_AddStringToObject(o, "dtype", tseal_dtype_name(t->dtype));
        shape = ok ? cJSON_AddArrayToObject(o, "shape") : NULL;
        ok = shape != NULL;
        for (uint32_t k = 0; ok && k < t->rank; k++) {
            cJSON *d = cJSON_CreateNumber((double)t->shape[k]);
            if (!d || !cJSON_AddItemToArray(shape, d)) {
                cJSON_Delete(d);
                ok = 0;
            }
        }
        tseal_hex(t->sha256, TSEAL_HASH_BYTES, hex);
        ok = ok && cJSON_AddNumberToObject(o, "bytes", (double)t->bytes) &&
             cJSON_AddNumberToObject(o, "segment", t->segment) &&
             cJSON_AddStringToObject(o, "encoding", t->coded ? "tsc1" : "raw") &&
             cJSON_AddStringToObject(o, "tree_sha256", hex);
    }
    if (ok) *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!*json) return tseal_err(TSEAL_E_NOMEM, "out of memory serialising the manifest");
    *len = strlen(*json);
    return 0;
}

/* ---- parsing ---------------------------------------------------------------------------- */

int tseal_mf_path_ok(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > TSEAL_MF_MAX_PATH || p[0] == '/' || !tseal_utf8_valid((const uint8_t *)p, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7F || p[i] == '\\') return 0;
    const char *s = p;
    for (;;) { /* each '/'-separated part: not empty, not "." or ".." */
        const char *e = strchr(s, '/');
        size_t k = e ? (size_t)(e - s) : strlen(s);
        if (k == 0 || (k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.')) return 0;
        if (!e) break;
        s = e + 1;
    }
    return 1;
}

typedef struct {
    const char *label;
    const tseal_header *h;
    uint8_t *seg_used; /* per segment */
} mf_ctx;

static int bad(const mf_ctx *c, const char *where, const char *what) {
    return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: %s", c->label, where, what);
}

/* Exactly these member names, each once. */
static int members_exact(const mf_ctx *c, const cJSON *o, const char *where,
                         const char *const *names, int n, int n_opt) {
    if (!cJSON_IsObject(o)) return bad(c, where, "not an object");
    int count = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        int known = 0;
        for (int i = 0; i < n + n_opt; i++) known |= strcmp(it->string, names[i]) == 0;
        if (!known)
            return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: unknown member \"%.64s\"",
                             c->label, where, it->string);
        for (const cJSON *jt = it->next; jt; jt = jt->next)
            if (strcmp(it->string, jt->string) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: duplicate member \"%.64s\"",
                                 c->label, where, it->string);
        count++;
    }
    for (int i = 0; i < n; i++)
        if (!cJSON_GetObjectItemCaseSensitive(o, names[i]))
            return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: missing \"%s\"", c->label, where,
                             names[i]);
    (void)count;
    return 0;
}

static int get_u64(const mf_ctx *c, const cJSON *o, const char *key, const char *where,
                   uint64_t max, uint64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: \"%s\" is not a number", c->label,
                         where, key);
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d) || (uint64_t)d > max)
        return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: \"%s\" out of range", c->label, where,
                         key);
    *out = (uint64_t)d;
    return 0;
}

static int get_str(const mf_ctx *c, const cJSON *o, const char *key, const char *where,
                   const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || !v->valuestring)
        return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: %s: \"%s\" is not a string", c->label,
                         where, key);
    *out = v->valuestring;
    return 0;
}

static int get_hash(const mf_ctx *c, const cJSON *o, const char *key, const char *where,
                    uint8_t out[TSEAL_HASH_BYTES]) {
    const char *s = NULL;
    int r = get_str(c, o, key, where, &s);
    if (r) return r;
    if (strlen(s) != 2 * TSEAL_HASH_BYTES) return bad(c, where, "digest is not 64 hex digits");
    for (int i = 0; i < 2 * TSEAL_HASH_BYTES; i++) {
        int v = (s[i] >= '0' && s[i] <= '9')   ? s[i] - '0'
                : (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10
                                               : -1;
        if (v < 0) return bad(c, where, "digest is not lower-case hex");
        if (i & 1)
            out[i / 2] |= (uint8_t)v;
        else
            out[i / 2] = (uint8_t)(v << 4);
    }
    return 0;
}

/* Claim a segment of the given kind for one entry. */
static int use_segment(const mf_ctx *c, uint64_t s, uint8_t kind, const char *where) {
    if (s >= c->h->n_segments) return bad(c, where, "segment index out of range");
    if (c->h->segments[s].kind != kind) return bad(c, where, "segment of the wrong kind");
    if (c->seg_used[s]) return bad(c, where, "segment used twice");
    c->seg_used[s] = 1;
    return 0;
}

static int parse_tensor(const mf_ctx *c, const cJSON *o, uint32_t i, tseal_mf_tensor *t) {
    static const char *const names[] = {"name",    "dtype",    "shape",      "bytes",
                                        "segment", "encoding", "tree_sha256"};
    char where[64];
    snprintf(where, sizeof where, "tensor %u", i);
    int r = members_exact(c, o, where, names, 7, 0);
    const char *s = NULL;
    uint64_t v;
    if (r || (r = get_str(c, o, "name", where, &s))) return r;
    if (!*s || strlen(s) > TSEAL_ST_MAX_NAME || !tseal_utf8_valid((const uint8_t *)s, strlen(s)))
        return bad(c, where, "bad name");
    if (!(t->name = strdup(s))) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    if ((r = get_str(c, o, "dtype", where, &s))) return r;
    if (tseal_dtype_parse(s, &t->dtype)) return bad(c, where, "unknown dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > TSEAL_MAX_RANK)
        return bad(c, where, "bad shape");
    uint64_t n = 1;
    t->rank = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (!cJSON_IsNumber(d) || !(d->valuedouble >= 0) ||
            d->valuedouble > (double)TSEAL_ST_MAX_DIM || d->valuedouble != floor(d->valuedouble))
            return bad(c, where, "bad dimension");
        t->shape[t->rank++] = (uint64_t)d->valuedouble;
        if (tseal_mul_ovf(n, (uint64_t)d->valuedouble, &n))
            return bad(c, where, "shape product overflows");
    }
    if ((r = get_u64(c, o, "bytes", where, UINT64_MAX, &t->bytes))) return r;
    if (tseal_mul_ovf(n, tseal_dtype_size(t->dtype), &v) || v != t->bytes)
        return bad(c, where, "bytes != shape x dtype size");
    if ((r = get_u64(c, o, "segment", where, UINT32_MAX, &v))) return r;
    if ((r = use_segment(c, v, TSEAL_SEG_TENSOR, where))) return r;
    t->segment = (uint32_t)v;
    if ((r = get_str(c, o, "encoding", where, &s))) return r;
    if (strcmp(s, "tsc1") == 0)
        t->coded = 1;
    else if (strcmp(s, "raw") == 0)
        t->coded = 0;
    else
        return bad(c, where, "unknown encoding");
    if (t->coded && t->dtype != TSEAL_DT_BF16)
        return bad(c, where, "tsc1 encoding of a non-BF16 tensor");
    if (!t->coded && c->h->segments[t->segment].pt_len != t->bytes)
        return bad(c, where, "raw segment length != tensor bytes");
    return get_hash(c, o, "tree_sha256", where, t->sha256);
}

static int parse_file(const mf_ctx *c, const cJSON *o, uint32_t i, const tseal_manifest *m,
                      tseal_mf_file *f) {
    static const char *const names[] = {"path",    "kind",         "size",        "sha256",
                                        "segment", "first_tensor", "tensor_count"};
    char where[64];
    snprintf(where, sizeof where, "file %u", i);
    int r = members_exact(c, o, where, names, 5, 2);
    const char *s = NULL;
    uint64_t v, first = 0, count = 0;
    if (r || (r = get_str(c, o, "path", where, &s))) return r;
    if (!tseal_mf_path_ok(s)) return bad(c, where, "unsafe or invalid path");
    if (!(f->path = strdup(s))) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    if ((r = get_str(c, o, "kind", where, &s))) return r;
    f->kind = strcmp(s, "safetensors") == 0 ? TSEAL_FILE_SAFETENSORS
              : strcmp(s, "blob") == 0      ? TSEAL_FILE_BLOB
                                            : 0;
    if (!f->kind) return bad(c, where, "unknown kind");
    if ((r = get_u64(c, o, "size", where, UINT64_MAX, &f->size)) ||
        (r = get_hash(c, o, "sha256", where, f->sha256)))
        return r;
    if ((r = get_u64(c, o, "segment", where, UINT32_MAX, &v))) return r;
    f->segment = (uint32_t)v;
    int is_st = f->kind == TSEAL_FILE_SAFETENSORS;
    if ((r = use_segment(c, v, is_st ? TSEAL_SEG_FILE_HEADER : TSEAL_SEG_BLOB, where))) return r;
    int has_t = cJSON_GetObjectItemCaseSensitive(o, "first_tensor") ||
                cJSON_GetObjectItemCaseSensitive(o, "tensor_count");
    if (!is_st) {
        if (has_t) return bad(c, where, "a blob has no tensors");
        if (f->size != c->h->segments[f->segment].pt_len)
            return bad(c, where, "size != segment length");
        return 0;
    }
    if ((r = get_u64(c, o, "first_tensor", where, m->n_tensors, &first)) ||
        (r = get_u64(c, o, "tensor_count", where, m->n_tensors, &count)))
        return r;
    if (first + count > m->n_tensors) return bad(c, where, "tensor range out of bounds");
    f->first_tensor = (uint32_t)first;
    f->n_tensors = (uint32_t)count;
    uint64_t total = c->h->segments[f->segment].pt_len;
    for (uint64_t k = first; k < first + count; k++)
        if (tseal_add_ovf(total, m->tensors[k].bytes, &total))
            return bad(c, where, "size overflows");
    if (total != f->size) return bad(c, where, "size != header + tensor bytes");
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Unique paths, and no file is also a directory of another ("a" and "a/b"). */
static int check_paths(const mf_ctx *c, const tseal_manifest *m) {
    const char **p = malloc((m->n_files ? m->n_files : 1) * sizeof *p);
    if (!p) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < m->n_files; i++) p[i] = m->files[i].path;
    qsort(p, m->n_files, sizeof *p, cmp_str);
    int r = 0;
    for (uint32_t i = 0; i + 1 < m->n_files && !r; i++)
        if (strcmp(p[i], p[i + 1]) == 0) r = bad(c, "files", "duplicate path");
    for (uint32_t i = 0; i < m->n_files && !r; i++) {
        char buf[TSEAL_MF_MAX_PATH + 1];
        snprintf(buf, sizeof buf, "%s", m->files[i].path);
        for (char *s = strchr(buf, '/'); s && !r; s = strchr(s + 1, '/')) {
            *s = 0;
            const char *key = buf;
            if (bsearch(&key, p, m->n_files, sizeof *p, cmp_str))
                r = bad(c, "files", "a path is both a file and a directory");
            *s = '/';
        }
    }
    free(p);
    return r;
}

/* Tensors belong to exactly one safetensors file each, in order. */
static int check_coverage(const mf_ctx *c, const tseal_manifest *m) {
    uint64_t next = 0, total = 0;
    for (uint32_t i = 0; i < m->n_files; i++) {
        const tseal_mf_file *f = &m->files[i];
        if (f->kind == TSEAL_FILE_SAFETENSORS) {
            if (f->first_tensor != next)
                return bad(c, "files", "tensor ranges are not consecutive");
            next += f->n_tensors;
        }
        if (tseal_add_ovf(total, f->size, &total)) return bad(c, "files", "sizes overflow");
    }
    if (next != m->n_tensors) return bad(c, "files", "tensors not covered by files");
    for (uint32_t s = 0; s + 1 < c->h->n_segments; s++)
        if (!c->seg_used[s])
            return tseal_err(TSEAL_E_CORRUPT, "%s: manifest: segment %u is not used", c->label, s);
    if (total != c->h->original_bytes)
        return bad(c, "files", "sizes do not add up to the header's original_bytes");
    return 0;
}

static int parse_root(const mf_ctx *c, const cJSON *root, tseal_manifest *m) {
    static const char *const names[] = {"tseal_manifest", "model_id", "version", "files",
                                        "tensors"};
    int r = members_exact(c, root, "top level", names, 5, 0);
    uint64_t v;
    const char *s = NULL;
    if (r || (r = get_u64(c, root, "tseal_manifest", "top level", UINT64_MAX, &v))) return r;
    if (v != 1) return bad(c, "top level", "unknown manifest version");
    if ((r = get_str(c, root, "model_id", "top level", &s))) return r;
    if (strcmp(s, c->h->model_id) != 0)
        return bad(c, "top level", "model id differs from the signed header");
    snprintf(m->model_id, sizeof m->model_id, "%s", s);
    if ((r = get_u64(c, root, "version", "top level", UINT64_MAX, &m->version))) return r;
    if (m->version != c->h->model_version)
        return bad(c, "top level", "version differs from the signed header");
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files"),
                *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    if (!cJSON_IsArray(files) || !cJSON_IsArray(tensors))
        return bad(c, "top level", "files and tensors must be arrays");
    int nf = cJSON_GetArraySize(files), nt = cJSON_GetArraySize(tensors);
    if (nf < 1 || (uint32_t)nf + (uint32_t)nt + 1 != c->h->n_segments)
        return bad(c, "top level", "entry count does not match the segments");
    m->tensors = calloc(nt ? (size_t)nt : 1, sizeof *m->tensors);
    m->files = calloc((size_t)nf, sizeof *m->files);
    if (!m->tensors || !m->files) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    m->cap_tensors = (uint32_t)nt;
    m->cap_files = (uint32_t)nf;
    uint32_t i = 0;
    for (const cJSON *t = tensors->child; t && !r; t = t->next, i++) {
        r = parse_tensor(c, t, i, &m->tensors[i]);
        m->n_tensors = i + 1;
    }
    i = 0;
    for (const cJSON *f = files->child; f && !r; f = f->next, i++) {
        r = parse_file(c, f, i, m, &m->files[i]);
        m->n_files = i + 1;
    }
    if (!r) r = check_paths(c, m);
    if (!r) r = check_coverage(c, m);
    return r;
}

int tseal_mf_parse(const uint8_t *json, size_t len, const tseal_header *h, const char *label,
                   tseal_manifest *m) {
    memset(m, 0, sizeof *m);
    mf_ctx c = {label, h, calloc(h->n_segments, 1)};
    if (!c.seg_used) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = 0;
    if (len > TSEAL_MF_MAX_BYTES) r = bad(&c, "size", "too large");
    if (!r && !tseal_utf8_valid(json, len)) r = bad(&c, "text", "not valid UTF-8");
    if (!r && ((r = tseal_json_lex_check(json, len, 4, 64ull * h->n_segments + 64, 8,
                                         "manifest offset")) ||
               (r = tseal_json_integers_only(json, len, "manifest offset"))))
        tseal_err_context("%s: manifest: ", label);
    cJSON *root = NULL;
    if (!r &&
        (r = tseal_json_parse_exact(json, len, " \t\r\n", NULL, "manifest offset", NULL, &root)))
        tseal_err_context("%s: manifest: ", label);
    if (!r) r = parse_root(&c, root, m);
    cJSON_Delete(root);
    free(c.seg_used);
    if (r) tseal_mf_free(m);
    return r;
}

void tseal_mf_free(tseal_manifest *m) {
    for (uint32_t i = 0; i < m->n_files; i++) free(m->files[i].path);
    for (uint32_t i = 0; i < m->n_tensors; i++) free(m->tensors[i].name);
    free(m->files);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}
