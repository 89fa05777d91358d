/*
 * model.c - a model is one safetensors file, a sharded checkpoint (an index JSON naming the
 * shard of every tensor) or a folder holding either.
 *
 * Sharded index (*.safetensors.index.json), as written by Hugging Face tools:
 *
 *   {"metadata": {"total_size": <bytes>, ...},      optional, not interpreted
 *    "weight_map": {"<tensor>": "<shard file name>", ...}}
 *
 * The index is untrusted: shard names must be plain file names in the index's directory, the
 * weight_map must list exactly the tensors found in the shards, each under the shard that
 * holds it, and tensor names must be unique across the whole model.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "model_internal.h"

#define INDEX_MAX_DEPTH    16          /* metadata may nest a little; weight_map is depth 2 */
#define INDEX_MAX_TOKENS   24000000ull /* bounds what cJSON allocates */
#define INDEX_MAX_TOP_KEYS 64          /* "metadata", "weight_map", maybe a few more */
#define SHARD_NAME_MAX     255         /* NAME_MAX */

typedef struct {
    uint32_t file, idx; /* tensor idx of file */
} model_ref;

struct tseal_model {
    char *index_path; /* NULL unless sharded */
    size_t n_files;
    tseal_st **files;
    size_t n_tensors;
    model_ref *refs; /* model tensor i -> (file, index in file) */
};

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* ---- index parsing (no file access; fuzzed by fuzz/fuzz_st_index.c) --------------------- */

/* A shard must be a plain file name in the index's directory: no path, no traversal. */
static const char *shard_name_problem(const char *s) {
    size_t n = strlen(s);
    if (n == 0) return "is empty";
    if (n > SHARD_NAME_MAX) return "is longer than 255 bytes";
    if (strchr(s, '/') || strchr(s, '\\')) return "is not a plain file name (has a path separator)";
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return "is not a plain file name";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) return "has a control character";
    return NULL;
}

void tseal_st_index_free(tseal_st_index *ix) {
    if (!ix) return;
    for (size_t i = 0; i < ix->n_entries; i++) free(ix->entries[i].tensor);
    for (size_t i = 0; i < ix->n_shards; i++) free(ix->shards[i]);
    free(ix->entries);
    free(ix->shards);
    free(ix);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const tseal_st_index_entry *)a)->tensor,
                  ((const tseal_st_index_entry *)b)->tensor);
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int tseal_st_index_find(const tseal_st_index *ix, const char *tensor, size_t *pos) {
    size_t lo = 0, hi = ix->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(tensor, ix->entries[mid].tensor);
        if (c == 0) {
            *pos = mid;
            return 0;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return TSEAL_E_NOTFOUND;
}

static size_t shard_find(const tseal_st_index *ix, const char *name) {
    const char **hit = bsearch(&name, ix->shards, ix->n_shards, sizeof *ix->shards, cmp_cstr);
    return hit ? (size_t)(hit - (const char **)ix->shards) : SIZE_MAX;
}

/* Validates the weight_map members and copies them; messages lack the label. */
static int index_load_map(tseal_st_index *ix, const cJSON *map) {
    char q[TSEAL_QUOTE_MAX], q2[TSEAL_QUOTE_MAX];
    if (!cJSON_IsObject(map)) return tseal_err(TSEAL_E_CORRUPT, "weight_map is not a JSON object");
    size_t n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, map) {
        size_t len = strlen(c->string);
        if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "weight_map has an empty tensor name");
        if (len > TSEAL_ST_MAX_NAME)
            return tseal_err(TSEAL_E_LIMIT, "weight_map tensor name '%s' is over %d bytes",
                             tseal_quote(c->string, q), TSEAL_ST_MAX_NAME);
        if (!tseal_utf8_valid((const uint8_t *)c->string, len))
            return tseal_err(TSEAL_E_CORRUPT, "weight_map tensor name '%s' is not valid UTF-8",
                             tseal_quote(c->string, q));
        if (!cJSON_IsString(c))
            return tseal_err(TSEAL_E_CORRUPT, "weight_map['%s'] is not a string",
                             tseal_quote(c->string, q));
        const char *why = shard_name_problem(c->valuestring);
        if (why)
            return tseal_err(TSEAL_E_CORRUPT, "weight_map['%s']: shard '%s' %s",
                             tseal_quote(c->string, q), tseal_quote(c->valuestring, q2), why);
        n++;
    }
    /* Distinct shard names: collect, sort, squeeze. */
    const char **names = malloc((n ? n : 1) * sizeof *names);
    ix->entries = calloc(n ? n : 1, sizeof *ix->entries);
    if (!names || !ix->entries) {
        free(names);
        return tseal_err(TSEAL_E_NOMEM, "out of memory for %zu weight_map entries", n);
    }
    size_t i = 0, n_sh = 0;
    cJSON_ArrayForEach(c, map) names[i++] = c->valuestring;
    qsort(names, n, sizeof *names, cmp_cstr);
    for (i = 0; i < n; i++)
        if (n_sh == 0 || strcmp(names[n_sh - 1], names[i]) != 0) names[n_sh++] = names[i];
    int rc = 0;
    if (n_sh > TSEAL_MODEL_MAX_FILES)
        rc = tseal_err(TSEAL_E_LIMIT, "weight_map names %zu shards, over the limit of %d", n_sh,
                       TSEAL_MODEL_MAX_FILES);
    if (!rc && !(ix->shards = calloc(n_sh ? n_sh : 1, sizeof *ix->shards)))
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (i = 0; !rc && i < n_sh; i++, ix->n_shards++)
        if (!(ix->shards[i] = strdup(names[i]))) rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
    free(names);
    if (rc) return rc;

    cJSON_ArrayForEach(c, map) {
        tseal_st_index_entry *e = &ix->entries[ix->n_entries];
        if (!(e->tensor = strdup(c->string))) return tseal_err(TSEAL_E_NOMEM, "out of memory");
        e->shard = (uint32_t)shard_find(ix, c->valuestring);
        ix->n_entries++;
    }
    qsort(ix->entries, n, sizeof *ix->entries, cmp_entry);
    for (i = 1; i < n; i++)
        if (strcmp(ix->entries[i - 1].tensor, ix->entries[i].tensor) == 0)
            return tseal_err(TSEAL_E_CORRUPT, "weight_map lists tensor '%s' twice",
                             tseal_quote(ix->entries[i].tensor, q));
    return 0;
}

static int index_parse_json(tseal_st_index *ix, const uint8_t *s, size_t len) {
    if (!tseal_utf8_valid(s, len))
        return tseal_err(TSEAL_E_CORRUPT, "not valid UTF-8 (or has NUL)");
    int rc = tseal_json_lex_check(s, len, INDEX_MAX_DEPTH, INDEX_MAX_TOKENS, INDEX_MAX_TOP_KEYS,
                                  "offset");
    if (rc) return rc;
    cJSON *root = NULL;
    rc = tseal_json_parse_exact(s, len, " \t\r\n", NULL, "offset", NULL, &root);
    if (rc) return rc;
    const cJSON *c, *map = NULL;
    if (!rc && !cJSON_IsObject(root)) rc = tseal_err(TSEAL_E_CORRUPT, "top level is not an object");
    if (!rc && s[0] != '{' && !memchr(" \t\r\n", s[0], 4)) /* cJSON also skips a BOM */
        rc = tseal_err(TSEAL_E_CORRUPT, "does not start with a JSON object");
    for (c = rc ? NULL : root->child; c && !rc; c = c->next) {
        /* duplicate top-level keys would make the meaning ambiguous */
        for (const cJSON *d = c->next; d && !rc; d = d->next)
            if (strcmp(c->string, d->string) == 0)
                rc = tseal_err(TSEAL_E_CORRUPT, "duplicate top-level key '%.64s'", c->string);
        if (strcmp(c->string, "weight_map") == 0)
            map = c;
        else if (strcmp(c->string, "metadata") == 0 && !cJSON_IsObject(c))
            rc = tseal_err(TSEAL_E_CORRUPT, "metadata is not a JSON object");
    }
    if (!rc && !map) rc = tseal_err(TSEAL_E_CORRUPT, "no weight_map");
    if (!rc) rc = index_load_map(ix, map);
    cJSON_Delete(root);
    return rc;
}

int tseal_st_index_parse(const void *buf, size_t len, const char *label, tseal_st_index **out) {
    *out = NULL;
    if (!label) label = "<index>";
    tseal_st_index *ix = calloc(1, sizeof *ix);
    if (!ix) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", label);
    int rc = buf || !len ? index_parse_json(ix, buf ? buf : "", len)
                         : tseal_err(TSEAL_E_INVAL, "buffer is NULL");
    if (rc) {
        tseal_err_context("%s: ", label);
        tseal_st_index_free(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

/* ---- opening a model ---------------------------------------------------------------------- */

void tseal_model_close(tseal_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) tseal_st_close(m->files[i]);
    free(m->files);
    free(m->refs);
    free(m->index_path);
    free(m);
}

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (a && dir[a - 1] != '/') p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

/* Directory part of a path ("." for a bare file name). */
static char *path_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

/* Reads a whole regular file of at most `cap` bytes. */
static int read_file_capped(const char *path, uint64_t cap, uint8_t **out, size_t *len) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: cannot open: %s",
                         path, strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0) {
        rc = tseal_err(TSEAL_E_IO, "%s: fstat: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = tseal_err(TSEAL_E_INVAL, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size > cap) {
        rc = tseal_err(TSEAL_E_LIMIT, "%s: %llu bytes, over the limit of %llu", path,
                       (unsigned long long)sb.st_size, (unsigned long long)cap);
    } else if (!(*out = malloc((size_t)sb.st_size + 1))) {
        rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    } else {
        *len = (size_t)sb.st_size;
        rc = tseal_pread_full(fd, *out, *len, 0, path);
    }
    close(fd);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

static int model_add_file(tseal_model *m, const char *path) {
    if (m->n_files >= TSEAL_MODEL_MAX_FILES)
        return tseal_err(TSEAL_E_LIMIT, "%s: more than %d files in one model", path,
                         TSEAL_MODEL_MAX_FILES);
    return tseal_st_open(path, &m->files[m->n_files++]);
}

typedef struct {
    const char *name;
    uint32_t file;
} model_key;

static int cmp_model_key(const void *a, const void *b) {
    return strcmp(((const model_key *)a)->name, ((const model_key *)b)->name);
}

/* Builds the tensor table and checks names are unique across files; O(n log n). */
static int model_finish(tseal_model *m) {
    size_t total = 0;
    for (size_t f = 0; f < m->n_files; f++) total += tseal_st_count(m->files[f]);
    m->refs = malloc((total ? total : 1) * sizeof *m->refs);
    model_key *keys = malloc((total ? total : 1) * sizeof *keys);
    if (!m->refs || !keys) {
        free(keys);
        return tseal_err(TSEAL_E_NOMEM, "out of memory for %zu tensors", total);
    }
    size_t k = 0;
    for (size_t f = 0; f < m->n_files; f++) {
        for (size_t i = 0; i < tseal_st_count(m->files[f]); i++, k++) {
            m->refs[k] = (model_ref){(uint32_t)f, (uint32_t)i};
            keys[k] = (model_key){tseal_st_get(m->files[f], i)->name, (uint32_t)f};
        }
    }
    m->n_tensors = total;
    qsort(keys, total, sizeof *keys, cmp_model_key);
    int rc = 0;
    for (k = 1; k < total && !rc; k++) {
        if (strcmp(keys[k - 1].name, keys[k].name) == 0) {
            char q[TSEAL_QUOTE_MAX];
            uint32_t a = keys[k - 1].file < keys[k].file ? keys[k - 1].file : keys[k].file;
            uint32_t b = keys[k - 1].file ^ keys[k].file ^ a;
            rc = tseal_err(TSEAL_E_CORRUPT, "tensor '%s' is in both %s and %s",
                           tseal_quote(keys[k].name, q), tseal_st_path(m->files[a]),
                           tseal_st_path(m->files[b]));
        }
    }
    free(keys);
    return rc;
}

/* Every shard tensor listed under its shard, every weight_map entry present in its shard. */
static int model_check_index(const tseal_model *m, const tseal_st_index *ix) {
    char q[TSEAL_QUOTE_MAX], q2[TSEAL_QUOTE_MAX];
    uint8_t *seen = calloc(ix->n_entries ? ix->n_entries : 1, 1);
    if (!seen) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int rc = 0;
    for (size_t f = 0; f < m->n_files && !rc; f++) { /* files[f] is shard f */
        for (size_t i = 0; i < tseal_st_count(m->files[f]) && !rc; i++) {
            const char *name = tseal_st_get(m->files[f], i)->name;
            size_t pos;
            if (tseal_st_index_find(ix, name, &pos) != 0) {
                rc = tseal_err(TSEAL_E_CORRUPT,
                               "tensor '%s' of shard '%s' is not listed in weight_map",
                               tseal_quote(name, q), ix->shards[f]);
            } else if (ix->entries[pos].shard != f) {
                rc = tseal_err(TSEAL_E_CORRUPT,
                               "tensor '%s' is in shard '%s', but weight_map names shard '%s'",
                               tseal_quote(name, q), ix->shards[f],
                               ix->shards[ix->entries[pos].shard]);
            }
            if (!rc) seen[pos] = 1;
        }
    }
    for (size_t e = 0; e < ix->n_entries && !rc; e++)
        if (!seen[e])
            rc = tseal_err(TSEAL_E_CORRUPT,
                           "weight_map lists tensor '%s' in shard '%s', which has no such tensor",
                           tseal_quote(ix->entries[e].tensor, q),
                           tseal_quote(ix->shards[ix->entries[e].shard], q2));
    free(seen);
    return rc;
}

static int model_open_index(tseal_model *m, const char *index_path) {
    uint8_t *buf;
    size_t len = 0;
    tseal_st_index *ix = NULL;
    char *dir = NULL;
    int rc = read_file_capped(index_path, TSEAL_INDEX_MAX_BYTES, &buf, &len);
    if (rc) return rc;
    rc = tseal_st_index_parse(buf, len, index_path, &ix);
    free(buf);
    if (rc) return rc;
    if (!(m->index_path = strdup(index_path)) || !(dir = path_dir(index_path)) ||
        !(m->files = calloc(ix->n_shards ? ix->n_shards : 1, sizeof *m->files)))
        rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", index_path);
    for (size_t i = 0; i < ix->n_shards && !rc; i++) {
        char *path = path_join(dir, ix->shards[i]);
        rc = path ? model_add_file(m, path) : tseal_err(TSEAL_E_NOMEM, "out of memory");
        if (rc) {
            char q[TSEAL_QUOTE_MAX];
            tseal_err_context("%s: shard '%s': ", index_path, tseal_quote(ix->shards[i], q));
        }
        free(path);
    }
    if (!rc && (rc = model_finish(m))) tseal_err_context("%s: ", index_path);
    if (!rc && (rc = model_check_index(m, ix))) tseal_err_context("%s: ", index_path);
    free(dir);
    tseal_st_index_free(ix);
    return rc;
}

typedef struct {
    char **v;
    size_t n, cap;
} name_list;

static int names_push(name_list *l, const char *s) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return TSEAL_E_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return TSEAL_E_NOMEM;
    l->n++;
    return 0;
}

static void names_free(name_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
}

/* Top-level *.safetensors and *.safetensors.index.json names (hidden files skipped, as a glob). */
static int dir_scan(const char *dir, name_list *files, name_list *indexes) {
    DIR *d = opendir(dir);
    if (!d) return tseal_err(TSEAL_E_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        name_list *l = ends_with(e->d_name, ".safetensors")              ? files
                       : ends_with(e->d_name, ".safetensors.index.json") ? indexes
                                                                         : NULL;
        if (!l) continue;
        if (l->n >= TSEAL_MODEL_MAX_FILES)
            rc = tseal_err(TSEAL_E_LIMIT, "%s: more than %d model files", dir,
                           TSEAL_MODEL_MAX_FILES);
        else if (names_push(l, e->d_name))
            rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", dir);
    }
    closedir(d);
    return rc;
}

static int model_open_dir(tseal_model *m, const char *dir) {
    name_list files = {0}, indexes = {0};
    int rc = dir_scan(dir, &files, &indexes);
    const char *index = NULL;
    for (size_t i = 0; i < indexes.n; i++)
        if (strcmp(indexes.v[i], "model.safetensors.index.json") == 0) index = indexes.v[i];
    if (!index && indexes.n == 1) index = indexes.v[0];
    if (!rc && index) {
        char *path = path_join(dir, index);
        rc = path ? model_open_index(m, path) : tseal_err(TSEAL_E_NOMEM, "out of memory");
        free(path);
    } else if (!rc && files.n == 0) {
        rc = tseal_err(TSEAL_E_NOTFOUND, "%s: no *.safetensors files in directory", dir);
    } else if (!rc) {
        qsort(files.v, files.n, sizeof *files.v, cmp_cstr);
        if (!(m->files = calloc(files.n, sizeof *m->files)))
            rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", dir);
        for (size_t i = 0; i < files.n && !rc; i++) {
            char *path = path_join(dir, files.v[i]);
            rc = path ? model_add_file(m, path) : tseal_err(TSEAL_E_NOMEM, "out of memory");
            free(path);
        }
        if (!rc) rc = model_finish(m);
    }
    names_free(&files);
    names_free(&indexes);
    return rc;
}

int tseal_model_open(const char *path, tseal_model **out) {
    *out = NULL;
    if (!path) return tseal_err(TSEAL_E_INVAL, "tseal_model_open: path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: %s", path,
                         strerror(errno));
    tseal_model *m = calloc(1, sizeof *m);
    if (!m) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    int rc;
    if (S_ISDIR(sb.st_mode)) {
        rc = model_open_dir(m, path);
    } else if (ends_with(path, ".json")) {
        rc = model_open_index(m, path);
    } else if (!(m->files = calloc(1, sizeof *m->files))) {
        rc = tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    } else {
        rc = model_add_file(m, path);
        if (!rc) rc = model_finish(m);
    }
    if (rc) {
        tseal_model_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- accessors -------------------------------------------------------------------------- */

size_t tseal_model_file_count(const tseal_model *m) {
    return m->n_files;
}
const char *tseal_model_index_path(const tseal_model *m) {
    return m->index_path;
}
size_t tseal_model_tensor_count(const tseal_model *m) {
    return m->n_tensors;
}

const tseal_st *tseal_model_file(const tseal_model *m, size_t i) {
    return i < m->n_files ? m->files[i] : NULL;
}

const tseal_st_tensor *tseal_model_tensor(const tseal_model *m, size_t i, size_t *file_index) {
    if (i >= m->n_tensors) return NULL;
    if (file_index) *file_index = m->refs[i].file;
    return tseal_st_get(m->files[m->refs[i].file], m->refs[i].idx);
}

int tseal_model_read(const tseal_model *m, size_t i, uint64_t offset, void *buf, size_t len) {
    if (i >= m->n_tensors)
        return tseal_err(TSEAL_E_INVAL, "tensor index %zu out of range (%zu tensors)", i,
                         m->n_tensors);
    return tseal_st_read(m->files[m->refs[i].file], m->refs[i].idx, offset, buf, len);
}
