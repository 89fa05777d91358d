/*
 * safetensors.c - strict safetensors reader and streaming writer.
 *
 * File layout (all integers little-endian):
 *
 *   offset   size  field
 *   0        8     N: header length in bytes (<= TSEAL_ST_MAX_HEADER, <= file size - 8)
 *   8        N     header: a UTF-8 JSON object, then only spaces (0x20) up to N bytes
 *   8 + N    rest  data buffer; each tensor's data_offsets [begin, end) are relative to it
 *
 *   header = {"__metadata__": {str: str, ...},                       (optional)
 *             "<name>": {"dtype": "BF16", "shape": [d0, ...], "data_offsets": [b, e]}, ...}
 *
 * Every byte of a file is hostile. The reader checks the length prefix before allocating,
 * reads only the header (pread), validates it completely (see tseal.h and the checks below)
 * and reads tensor data only on demand, inside a tensor's span. Tensors must tile the data
 * buffer exactly: no holes, no overlaps, no trailing bytes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "model_internal.h"

/* A valid header has depth 3 at most: top object > tensor entry > shape / data_offsets. */
#define ST_MAX_DEPTH 3
/* Values and keys in a header. A tensor entry of rank 8 spends 19 of them; the cap keeps what
 * cJSON allocates proportional to the tensor limit, with room for metadata. */
#define ST_MAX_TOKENS (20ull * TSEAL_ST_MAX_TENSORS + 4000000ull)

typedef struct {
    char *key;
    char *value;
} st_meta;

struct tseal_st {
    char *label;          /* path, or the caller's label for a memory image */
    int fd;               /* -1 for a memory image */
    const uint8_t *mem;   /* memory image, or NULL */
    uint64_t file_size;   /* bytes in the file / image */
    uint64_t data_offset; /* 8 + header length */
    uint8_t *header;      /* raw header bytes, NUL-terminated (the NUL is not counted) */
    size_t header_len;    /* N */
    size_t n;             /* tensors */
    tseal_st_tensor *t;   /* in data order */
    uint32_t *by_name;    /* indices into t, sorted by name */
    char *names;          /* arena holding the tensor names */
    size_t n_meta;
    st_meta *meta;    /* file order */
    char *meta_arena; /* holds the metadata strings */
};

/* ---- messages --------------------------------------------------------------------------- */

const char *tseal_quote(const char *s, char out[TSEAL_QUOTE_MAX]) {
    const size_t keep = TSEAL_QUOTE_MAX - 4; /* room for "..." and the NUL */
    size_t i = 0;
    for (; s[i] && i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        /* no terminal control (C0, DEL, C1 = C2 80..9F) in messages */
        int c1 = c == 0xC2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] < 0xA0;
        out[i] = (c < 0x20 || c == 0x7F || c1) ? '?' : (char)c;
        if (c1 && i + 1 < keep) out[++i] = '?';
    }
    if (s[i]) { /* truncated: cut back to a UTF-8 character boundary */
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
        memcpy(out + i, "...", 4);
    } else {
        out[i] = 0;
    }
    return out;
}

/* Offset of the first byte that is not part of a valid UTF-8 character (n if none). */
static size_t st_utf8_bad_offset(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        if (len > n - i || !tseal_utf8_valid(s + i, len)) return i;
        i += len;
    }
    return n;
}

/* ---- JSON lexical checks -------------------------------------------------------------- */

static bool json_digit(uint8_t c) {
    return c >= '0' && c <= '9';
}

/* End of the string token opening at s[i] ('"'), or 0 after recording an error. */
static size_t json_lex_string(const uint8_t *s, size_t n, size_t i, const char *where) {
    size_t start = i++;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"') return i + 1;
        if (c < 0x20) {
            tseal_err(TSEAL_E_CORRUPT, "raw control character 0x%02x in a string at %s %zu", c,
                      where, i);
            return 0;
        }
        if (c == '\\') {
            if (n - i >= 6 && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
                tseal_err(TSEAL_E_CORRUPT, "\\u0000 escape (NUL) in a string at %s %zu", where, i);
                return 0;
            }
            i += 2; /* cJSON validates the escape itself */
            continue;
        }
        i++;
    }
    tseal_err(TSEAL_E_CORRUPT, "unterminated string at %s %zu", where, start);
    return 0;
}

/* End of the number token at s[i] per RFC 8259, or 0 after recording an error. */
static size_t json_lex_number(const uint8_t *s, size_t n, size_t i, const char *where) {
    size_t j = i;
    bool ok = true;
    if (s[j] == '-') j++;
    if (j < n && s[j] == '0') {
        j++;
    } else if (j < n && json_digit(s[j])) {
        while (j < n && json_digit(s[j])) j++;
    } else {
        ok = false;
    }
    if (ok && j < n && s[j] == '.') {
        j++;
        ok = j < n && json_digit(s[j]);
        while (j < n && json_digit(s[j])) j++;
    }
    if (ok && j < n && (s[j] == 'e' || s[j] == 'E')) {
        j++;
        if (j < n && (s[j] == '+' || s[j] == '-')) j++;
        ok = j < n && json_digit(s[j]);
        while (j < n && json_digit(s[j])) j++;
    }
    /* cJSON would read on through any of these (e.g. "01" as 1): refuse instead */
    if (ok && j < n && memchr("0123456789+-.eE", s[j], 15)) ok = false;
    if (!ok) {
        tseal_err(TSEAL_E_CORRUPT, "malformed number at %s %zu", where, i);
        return 0;
    }
    return j;
}

int tseal_json_lex_check(const uint8_t *s, size_t n, unsigned max_depth, uint64_t max_tokens,
                         uint64_t max_top_keys, const char *where) {
    unsigned depth = 0;
    uint64_t tokens = 0, top_keys = 0;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"' || c == '-' || json_digit(c)) {
            i = c == '"' ? json_lex_string(s, n, i, where) : json_lex_number(s, n, i, where);
            if (i == 0) return TSEAL_E_CORRUPT;
            tokens++;
        } else {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return tseal_err(TSEAL_E_CORRUPT, "control character 0x%02x at %s %zu", c, where,
                                 i);
            if (c == '{' || c == '[') {
                tokens++;
                if (++depth > max_depth)
                    return tseal_err(TSEAL_E_CORRUPT, "JSON nested deeper than %u levels at %s %zu",
                                     max_depth, where, i);
            } else if ((c == '}' || c == ']') && depth > 0) {
                depth--;
            } else if (c == ':' && depth == 1 && ++top_keys > max_top_keys) {
                return tseal_err(TSEAL_E_LIMIT, "more than %llu top-level entries",
                                 (unsigned long long)max_top_keys);
            } else if (c == 't' || c == 'f' || c == 'n') {
                tokens++;
                while (i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z') i++;
            }
            i++;
        }
        if (tokens > max_tokens)
            return tseal_err(TSEAL_E_LIMIT, "more than %llu JSON values and keys",
                             (unsigned long long)max_tokens);
    }
    return 0;
}

/* ---- header validation ---------------------------------------------------------------- */

/*
 * A JSON number that is an exact integer in [0, max]. cJSON keeps numbers as doubles, so
 * integrality and range are checked on the double (max <= 2^53 keeps it exact).
 * `what` names the field ("shape[2]") for messages.
 */
static int st_json_uint(const cJSON *v, uint64_t max, int limit_code, const char *what,
                        uint64_t *out) {
    if (!cJSON_IsNumber(v)) return tseal_err(TSEAL_E_CORRUPT, "%s is not a number", what);
    double d = v->valuedouble;
    if (!isfinite(d)) return tseal_err(TSEAL_E_CORRUPT, "%s is not finite", what);
    if (d < 0) return tseal_err(TSEAL_E_CORRUPT, "%s is negative (%.17g)", what, d);
    if (floor(d) != d) return tseal_err(TSEAL_E_CORRUPT, "%s is not an integer (%.17g)", what, d);
    if (d > (double)max)
        return tseal_err(limit_code, "%s = %.17g exceeds the limit %llu", what, d,
                         (unsigned long long)max);
    *out = (uint64_t)d;
    return 0;
}

/*
 * A tensor name or metadata string: not empty (names only), short enough, valid UTF-8.
 * `bad` is the code for a malformed string: TSEAL_E_CORRUPT in a file, TSEAL_E_INVAL from a
 * caller of the writer.
 */
static int st_check_string(const char *s, bool allow_empty, const char *what, int bad) {
    char q[TSEAL_QUOTE_MAX];
    size_t len = strlen(s);
    if (len == 0 && !allow_empty) return tseal_err(bad, "%s is empty", what);
    if (len > TSEAL_ST_MAX_NAME)
        return tseal_err(TSEAL_E_LIMIT, "%s '%s' is %zu bytes, over the limit of %d", what,
                         tseal_quote(s, q), len, TSEAL_ST_MAX_NAME);
    if (!tseal_utf8_valid((const uint8_t *)s, len))
        return tseal_err(bad, "%s '%s' is not valid UTF-8", what, tseal_quote(s, q));
    return 0;
}

static int st_parse_shape(const cJSON *shape, tseal_st_tensor *t) {
    if (!cJSON_IsArray(shape)) return tseal_err(TSEAL_E_CORRUPT, "shape is not an array");
    uint32_t rank = 0;
    bool zero = false;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        if (rank == TSEAL_MAX_RANK)
            return tseal_err(TSEAL_E_LIMIT, "shape has %d dimensions, over the limit of %d",
                             cJSON_GetArraySize(shape), TSEAL_MAX_RANK);
        char what[32];
        snprintf(what, sizeof what, "shape[%u]", rank);
        int rc = st_json_uint(d, TSEAL_ST_MAX_DIM, TSEAL_E_LIMIT, what, &t->shape[rank]);
        if (rc) return rc;
        zero |= t->shape[rank] == 0;
        rank++;
    }
    t->rank = rank;
    /* A zero dimension makes the tensor empty whatever the others are. */
    uint64_t n = 1;
    for (uint32_t i = 0; i < rank && !zero; i++)
        if (tseal_mul_ovf(n, t->shape[i], &n))
            return tseal_err(TSEAL_E_CORRUPT, "shape product overflows 64 bits at dimension %u", i);
    t->n_elems = zero ? 0 : n;
    return 0;
}

static int st_parse_offsets(const cJSON *offs, tseal_st_tensor *t) {
    if (!cJSON_IsArray(offs)) return tseal_err(TSEAL_E_CORRUPT, "data_offsets is not an array");
    int count = cJSON_GetArraySize(offs);
    if (count != 2)
        return tseal_err(TSEAL_E_CORRUPT, "data_offsets has %d elements, expected exactly 2",
                         count);
    int rc =
        st_json_uint(offs->child, TSEAL_ST_MAX_DIM, TSEAL_E_CORRUPT, "data_offsets[0]", &t->begin);
    if (rc) return rc;
    return st_json_uint(offs->child->next, TSEAL_ST_MAX_DIM, TSEAL_E_CORRUPT, "data_offsets[1]",
                        &t->end);
}

/* One tensor entry (its name is checked by the caller). Messages lack the tensor's name. */
static int st_parse_entry(const cJSON *e, uint64_t buf_size, tseal_st_tensor *t) {
    if (!cJSON_IsObject(e)) return tseal_err(TSEAL_E_CORRUPT, "entry is not a JSON object");
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *c;
    cJSON_ArrayForEach(c, e) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dtype
                             : strcmp(c->string, "shape") == 0        ? &shape
                             : strcmp(c->string, "data_offsets") == 0 ? &offs
                                                                      : NULL;
        char q[TSEAL_QUOTE_MAX];
        if (!slot) return tseal_err(TSEAL_E_CORRUPT, "unknown key '%s'", tseal_quote(c->string, q));
        if (*slot) return tseal_err(TSEAL_E_CORRUPT, "duplicate key '%s'", c->string);
        *slot = c;
    }
    if (!dtype || !shape || !offs)
        return tseal_err(TSEAL_E_CORRUPT, "missing key '%s'",
                         !dtype   ? "dtype"
                         : !shape ? "shape"
                                  : "data_offsets");
    if (!cJSON_IsString(dtype)) return tseal_err(TSEAL_E_CORRUPT, "dtype is not a string");
    int rc = tseal_dtype_parse(dtype->valuestring, &t->dtype);
    if (rc) return rc;
    if ((rc = st_parse_shape(shape, t)) || (rc = st_parse_offsets(offs, t))) return rc;

    uint64_t bytes;
    if (tseal_mul_ovf(t->n_elems, tseal_dtype_size(t->dtype), &bytes))
        return tseal_err(TSEAL_E_CORRUPT, "byte size of %llu %s elements overflows 64 bits",
                         (unsigned long long)t->n_elems, tseal_dtype_name(t->dtype));
    if (t->begin > t->end)
        return tseal_err(TSEAL_E_CORRUPT, "data_offsets [%llu, %llu]: begin > end",
                         (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > buf_size)
        return tseal_err(
            TSEAL_E_CORRUPT, "data_offsets [%llu, %llu]: end is past the %llu-byte data buffer",
            (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)buf_size);
    if (t->end - t->begin != bytes)
        return tseal_err(TSEAL_E_CORRUPT,
                         "data_offsets [%llu, %llu] span %llu bytes, but %llu x %s needs %llu",
                         (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)(t->end - t->begin), (unsigned long long)t->n_elems,
                         tseal_dtype_name(t->dtype), (unsigned long long)bytes);
    return 0;
}

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct {
    const char *s;
    uint32_t idx;
} st_key;

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const st_key *)a)->s, ((const st_key *)b)->s);
}

/* Sorts `keys` (n pointers) and reports the first duplicate (as `bad`); O(n log n). */
static int st_check_unique(const char **keys, size_t n, const char *what, int bad) {
    qsort(keys, n, sizeof *keys, cmp_cstr);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            char q[TSEAL_QUOTE_MAX];
            return tseal_err(bad, "duplicate %s '%s'", what, tseal_quote(keys[i], q));
        }
    }
    return 0;
}

static int st_parse_meta(tseal_st *st, const cJSON *m) {
    if (!cJSON_IsObject(m)) return tseal_err(TSEAL_E_CORRUPT, "__metadata__ is not a JSON object");
    size_t n = 0, bytes = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, m) {
        char q[TSEAL_QUOTE_MAX];
        int rc = st_check_string(c->string, true, "metadata key", TSEAL_E_CORRUPT);
        if (rc) return rc;
        if (!cJSON_IsString(c))
            return tseal_err(TSEAL_E_CORRUPT, "metadata '%s': value is not a string",
                             tseal_quote(c->string, q));
        if ((rc = st_check_string(c->valuestring, true, "metadata value", TSEAL_E_CORRUPT))) {
            tseal_err_context("metadata '%s': ", tseal_quote(c->string, q));
            return rc;
        }
        n++;
        bytes += strlen(c->string) + strlen(c->valuestring) + 2;
    }
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    st->meta = calloc(n ? n : 1, sizeof *st->meta);
    char *arena = st->meta_arena = malloc(bytes ? bytes : 1);
    if (!keys || !st->meta || !arena) {
        free(keys);
        return tseal_err(TSEAL_E_NOMEM, "out of memory for %zu metadata entries", n);
    }
    size_t i = 0;
    cJSON_ArrayForEach(c, m) {
        keys[i] = c->string;
        size_t kl = strlen(c->string) + 1, vl = strlen(c->valuestring) + 1;
        st->meta[i].key = memcpy(arena, c->string, kl);
        st->meta[i].value = memcpy(arena + kl, c->valuestring, vl);
        arena += kl + vl;
        i++;
    }
    st->n_meta = n;
    int rc = st_check_unique(keys, n, "metadata key", TSEAL_E_CORRUPT);
    free(keys);
    return rc;
}

typedef struct {
    uint64_t begin, end;
    uint32_t idx; /* position in the header, the tie-break that keeps the order deterministic */
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Tensors sorted by (begin, end) must tile [0, buf_size) exactly. */
static int st_check_layout(const tseal_st_tensor *t, const st_span *sp, size_t n,
                           uint64_t buf_size) {
    char q1[TSEAL_QUOTE_MAX], q2[TSEAL_QUOTE_MAX];
    if (n == 0 && buf_size != 0)
        return tseal_err(TSEAL_E_CORRUPT, "no tensors, but the data buffer holds %llu bytes",
                         (unsigned long long)buf_size);
    uint64_t expect = 0;
    for (size_t k = 0; k < n; k++) {
        const tseal_st_tensor *a = &t[sp[k].idx];
        if (k == 0 && a->begin != 0)
            return tseal_err(TSEAL_E_CORRUPT,
                             "first tensor '%s' begins at data offset %llu, not 0 (hole)",
                             tseal_quote(a->name, q1), (unsigned long long)a->begin);
        const tseal_st_tensor *p = k > 0 ? &t[sp[k - 1].idx] : NULL;
        if (p && a->begin > expect)
            return tseal_err(TSEAL_E_CORRUPT,
                             "hole: data bytes [%llu, %llu) between tensors '%s' and '%s' are "
                             "not covered",
                             (unsigned long long)expect, (unsigned long long)a->begin,
                             tseal_quote(p->name, q1), tseal_quote(a->name, q2));
        if (p && a->begin < expect)
            return tseal_err(TSEAL_E_CORRUPT,
                             "overlap: tensor '%s' [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
                             tseal_quote(a->name, q2), (unsigned long long)a->begin,
                             (unsigned long long)a->end, tseal_quote(p->name, q1),
                             (unsigned long long)p->begin, (unsigned long long)p->end);
        expect = a->end;
    }
    if (n > 0 && expect != buf_size)
        return tseal_err(TSEAL_E_CORRUPT,
                         "%llu trailing data bytes after the last tensor '%s' (ends at %llu, "
                         "buffer is %llu bytes)",
                         (unsigned long long)(buf_size - expect),
                         tseal_quote(t[sp[n - 1].idx].name, q1), (unsigned long long)expect,
                         (unsigned long long)buf_size);
    return 0;
}

/* Builds st->t (data order), st->names and st->by_name from the parsed tensors. */
static int st_finish_tensors(tseal_st *st, const tseal_st_tensor *tmp, const st_span *sp,
                             size_t n) {
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += strlen(tmp[i].name) + 1;
    st->t = calloc(n ? n : 1, sizeof *st->t);
    st->names = malloc(bytes ? bytes : 1);
    st->by_name = malloc((n ? n : 1) * sizeof *st->by_name);
    if (!st->t || !st->names || !st->by_name)
        return tseal_err(TSEAL_E_NOMEM, "out of memory for %zu tensors", n);
    char *p = st->names;
    for (size_t k = 0; k < n; k++) {
        st->t[k] = tmp[sp[k].idx];
        size_t len = strlen(st->t[k].name) + 1;
        st->t[k].name = memcpy(p, st->t[k].name, len);
        p += len;
    }
    st->n = n;
    st_key *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return tseal_err(TSEAL_E_NOMEM, "out of memory for %zu tensors", n);
    for (size_t k = 0; k < n; k++) keys[k] = (st_key){st->t[k].name, (uint32_t)k};
    qsort(keys, n, sizeof *keys, cmp_key);
    for (size_t k = 0; k < n; k++) st->by_name[k] = keys[k].idx;
    free(keys);
    return 0;
}

static int st_parse_tensors(tseal_st *st, const cJSON *root, size_t n, uint64_t buf_size) {
    tseal_st_tensor *tmp = calloc(n ? n : 1, sizeof *tmp);
    st_span *sp = malloc((n ? n : 1) * sizeof *sp);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    int rc = 0;
    if (!tmp || !sp || !keys) {
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory for %zu tensors", n);
        goto out;
    }
    size_t i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) continue;
        char q[TSEAL_QUOTE_MAX];
        if ((rc = st_check_string(c->string, false, "tensor name", TSEAL_E_CORRUPT))) goto out;
        tmp[i].name = c->string; /* borrowed from the cJSON tree until st_finish_tensors */
        if ((rc = st_parse_entry(c, buf_size, &tmp[i]))) {
            tseal_err_context("tensor '%s': ", tseal_quote(c->string, q));
            goto out;
        }
        keys[i] = c->string;
        sp[i] = (st_span){tmp[i].begin, tmp[i].end, (uint32_t)i};
        i++;
    }
    if ((rc = st_check_unique(keys, n, "tensor name", TSEAL_E_CORRUPT))) goto out;
    qsort(sp, n, sizeof *sp, cmp_span);
    if ((rc = st_check_layout(tmp, sp, n, buf_size))) goto out;
    rc = st_finish_tensors(st, tmp, sp, n);
out:
    free(tmp);
    free(sp);
    free(keys);
    return rc;
}

/* Validates st->header (N bytes) against a data buffer of buf_size bytes. */
static int st_parse_header(tseal_st *st, uint64_t buf_size) {
    const uint8_t *h = st->header;
    size_t n = st->header_len;
    const uint8_t *nul = memchr(h, 0, n);
    if (nul) return tseal_err(TSEAL_E_CORRUPT, "NUL byte at header offset %zu", (size_t)(nul - h));
    if (!tseal_utf8_valid(h, n))
        return tseal_err(TSEAL_E_CORRUPT, "header is not valid UTF-8 (at header offset %zu)",
                         st_utf8_bad_offset(h, n));
    int rc = tseal_json_lex_check(h, n, ST_MAX_DEPTH, ST_MAX_TOKENS, TSEAL_ST_MAX_TENSORS + 1ull,
                                  "header offset");
    if (rc) return rc;

    cJSON *root = NULL;
    rc = tseal_json_parse_exact(h, n, " ", "header", "header offset",
                                " (only spaces may pad the header)", &root);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) {
        rc = tseal_err(TSEAL_E_CORRUPT, "header top level is not a JSON object");
    } else if (h[0] != '{') { /* cJSON skips a BOM and leading whitespace; the format does not */
        rc = tseal_err(TSEAL_E_CORRUPT, "header must start with '{', found byte 0x%02x", h[0]);
    }
    if (rc) goto out;

    size_t n_tensors = 0, n_meta_keys = 0;
    const cJSON *c, *meta = NULL;
    cJSON_ArrayForEach(c, root) {
        if (strcmp(c->string, "__metadata__") == 0) {
            n_meta_keys++;
            meta = c;
        } else {
            n_tensors++;
        }
    }
    if (n_tensors > TSEAL_ST_MAX_TENSORS) {
        rc = tseal_err(TSEAL_E_LIMIT, "%zu tensors, over the limit of %d", n_tensors,
                       TSEAL_ST_MAX_TENSORS);
    } else if (n_meta_keys > 1) {
        rc = tseal_err(TSEAL_E_CORRUPT, "duplicate key '__metadata__'");
    } else {
        if (meta) rc = st_parse_meta(st, meta);
        if (!rc) rc = st_parse_tensors(st, root, n_tensors, buf_size);
        /* Last, once the specific checks named the tensor: every number must be spelled as
         * an exact integer. "2.0", "1e3", "-0" or 2^53 + 1 pass cJSON (which keeps doubles)
         * but other parsers read them differently or refuse them. */
        if (!rc) rc = tseal_json_integers_only(h, n, "header offset");
    }
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- opening ------------------------------------------------------------------------------ */

static int st_src_read(const tseal_st *st, void *buf, size_t len, uint64_t off) {
    if (st->mem) {
        if (off > st->file_size || len > st->file_size - off)
            return tseal_err(TSEAL_E_CORRUPT, "%s: read of %zu bytes at offset %llu past the end",
                             st->label, len, (unsigned long long)off);
        memcpy(buf, st->mem + off, len);
        return 0;
    }
    return tseal_pread_full(st->fd, buf, len, off, st->label);
}

/*
 * Checks the length prefix against the file size before allocating anything, reads the
 * header and validates it. Messages get the label prefixed here, once.
 */
static int st_load(tseal_st *st) {
    uint8_t pre[8];
    int rc;
    if (st->file_size < 8) {
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: file is %llu bytes, shorter than the 8-byte header length", st->label,
                         (unsigned long long)st->file_size);
    }
    if ((rc = st_src_read(st, pre, 8, 0))) return rc;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | pre[i];
    if (n > TSEAL_ST_MAX_HEADER)
        return tseal_err(TSEAL_E_LIMIT, "%s: header length %llu exceeds the limit of %llu bytes",
                         st->label, (unsigned long long)n, TSEAL_ST_MAX_HEADER);
    if (n > st->file_size - 8)
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: header length %llu exceeds the %llu bytes after the length prefix",
                         st->label, (unsigned long long)n, (unsigned long long)(st->file_size - 8));
    if (n == 0) return tseal_err(TSEAL_E_CORRUPT, "%s: header length is 0", st->label);
    st->header_len = (size_t)n;
    st->data_offset = 8 + n;
    st->header = malloc((size_t)n + 1);
    if (!st->header)
        return tseal_err(TSEAL_E_NOMEM, "%s: out of memory for a %llu-byte header", st->label,
                         (unsigned long long)n);
    if ((rc = st_src_read(st, st->header, (size_t)n, 8))) return rc;
    st->header[n] = 0;
    if ((rc = st_parse_header(st, st->file_size - st->data_offset)))
        tseal_err_context("%s: ", st->label);
    return rc;
}

static tseal_st *st_new(const char *label) {
    tseal_st *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->fd = -1;
    st->label = strdup(label);
    if (!st->label) {
        free(st);
        return NULL;
    }
    return st;
}

int tseal_st_open(const char *path, tseal_st **out) {
    *out = NULL;
    if (!path) return tseal_err(TSEAL_E_INVAL, "tseal_st_open: path is NULL");
    tseal_st *st = st_new(path);
    if (!st) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    struct stat sb;
    int rc = 0;
    st->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (st->fd < 0) {
        rc = tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: cannot open: %s", path,
                       strerror(errno));
    } else if (fstat(st->fd, &sb) != 0) {
        rc = tseal_err(TSEAL_E_IO, "%s: fstat: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = tseal_err(TSEAL_E_INVAL, "%s: not a regular file", path);
    } else {
        st->file_size = (uint64_t)sb.st_size;
        rc = st_load(st);
    }
    if (rc) {
        tseal_st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

int tseal_st_open_mem(const void *buf, size_t len, const char *label, tseal_st **out) {
    *out = NULL;
    if (!label) label = "<memory>";
    if (!buf && len) return tseal_err(TSEAL_E_INVAL, "%s: buffer is NULL", label);
    tseal_st *st = st_new(label);
    if (!st) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", label);
    static const uint8_t empty[1];
    st->mem = buf ? buf : empty;
    st->file_size = len;
    int rc = st_load(st);
    if (rc) {
        tseal_st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void tseal_st_close(tseal_st *st) {
    if (!st) return;
    if (st->fd >= 0) close(st->fd);
    free(st->meta);
    free(st->meta_arena);
    free(st->t);
    free(st->names);
    free(st->by_name);
    free(st->header);
    free(st->label);
    free(st);
}

/* ---- accessors -------------------------------------------------------------------------- */

const char *tseal_st_path(const tseal_st *st) {
    return st->label;
}
uint64_t tseal_st_file_size(const tseal_st *st) {
    return st->file_size;
}
uint64_t tseal_st_data_offset(const tseal_st *st) {
    return st->data_offset;
}
size_t tseal_st_count(const tseal_st *st) {
    return st->n;
}
size_t tseal_st_meta_count(const tseal_st *st) {
    return st->n_meta;
}

const uint8_t *tseal_st_header_bytes(const tseal_st *st, size_t *len) {
    if (len) *len = st->header_len;
    return st->header;
}

const tseal_st_tensor *tseal_st_get(const tseal_st *st, size_t i) {
    return i < st->n ? &st->t[i] : NULL;
}

int tseal_st_find(const tseal_st *st, const char *name, size_t *index) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->t[st->by_name[mid]].name);
        if (c == 0) {
            if (index) *index = st->by_name[mid];
            return 0;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    char q[TSEAL_QUOTE_MAX];
    return tseal_err(TSEAL_E_NOTFOUND, "%s: no tensor named '%s'", st->label, tseal_quote(name, q));
}

int tseal_st_meta_get(const tseal_st *st, size_t i, const char **key, const char **value) {
    if (i >= st->n_meta)
        return tseal_err(TSEAL_E_INVAL, "%s: metadata index %zu out of range (%zu entries)",
                         st->label, i, st->n_meta);
    if (key) *key = st->meta[i].key;
    if (value) *value = st->meta[i].value;
    return 0;
}

int tseal_st_read(const tseal_st *st, size_t i, uint64_t offset, void *buf, size_t len) {
    if (i >= st->n)
        return tseal_err(TSEAL_E_INVAL, "%s: tensor index %zu out of range (%zu tensors)",
                         st->label, i, st->n);
    const tseal_st_tensor *t = &st->t[i];
    uint64_t size = t->end - t->begin;
    if (offset > size || len > size - offset) {
        char q[TSEAL_QUOTE_MAX];
        return tseal_err(TSEAL_E_INVAL,
                         "%s: tensor '%s': read of %zu bytes at offset %llu is outside its %llu "
                         "bytes",
                         st->label, tseal_quote(t->name, q), len, (unsigned long long)offset,
                         (unsigned long long)size);
    }
    if (len == 0) return 0;
    return st_src_read(st, buf, len, st->data_offset + t->begin + offset);
}

/* ---- writer --------------------------------------------------------------------------- */

typedef struct {
    char *name;
    tseal_dtype dt;
    uint32_t rank;
    uint64_t shape[TSEAL_MAX_RANK];
    uint64_t bytes;
} st_wtensor;

struct tseal_st_writer {
    tseal_atomic_file f;
    st_wtensor *t;
    size_t n, cap;
    st_meta *meta;
    size_t n_meta, cap_meta;
    uint64_t total;   /* declared data bytes */
    uint64_t written; /* data bytes written so far */
    bool started;     /* header written: no more declarations */
    int failed;       /* first error; sticky, commit refuses */
};

/* Growable byte buffer for the header; `oom` is sticky. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} st_sbuf;

static void sb_put(st_sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_puts(st_sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void sb_u64(st_sbuf *b, uint64_t v) {
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)k);
}

/* JSON string with the escapes serde_json and Python's json use; UTF-8 passes through. */
static void sb_json_str(st_sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        const char *e = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                                    : NULL;
        if (!e && c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            e = esc;
        }
        if (e)
            sb_puts(b, e);
        else
            sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static int w_fail(tseal_st_writer *w, int rc) {
    if (!w->failed) w->failed = rc;
    return rc;
}

int tseal_st_writer_open(const char *path, tseal_st_writer **out) {
    *out = NULL;
    if (!path) return tseal_err(TSEAL_E_INVAL, "tseal_st_writer_open: path is NULL");
    tseal_st_writer *w = calloc(1, sizeof *w);
    if (!w) return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    int rc = tseal_atomic_open(&w->f, path, 0644);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int tseal_st_writer_add(tseal_st_writer *w, const char *name, tseal_dtype dt, uint32_t rank,
                        const uint64_t *shape) {
    char q[TSEAL_QUOTE_MAX];
    if (w->started)
        return w_fail(w, tseal_err(TSEAL_E_INVAL, "%s: tensor '%s' declared after data", w->f.path,
                                   tseal_quote(name, q)));
    int rc = st_check_string(name, false, "tensor name", TSEAL_E_INVAL);
    if (!rc && strcmp(name, "__metadata__") == 0)
        rc = tseal_err(TSEAL_E_INVAL, "tensor name '__metadata__' is reserved");
    if (!rc && tseal_dtype_size(dt) == 0) rc = tseal_err(TSEAL_E_INVAL, "invalid dtype %d", dt);
    if (!rc && rank > TSEAL_MAX_RANK)
        rc = tseal_err(TSEAL_E_LIMIT, "rank %u over the limit of %d", rank, TSEAL_MAX_RANK);
    uint64_t n = 1;
    for (uint32_t i = 0; !rc && i < rank; i++) {
        if (shape[i] > TSEAL_ST_MAX_DIM)
            rc = tseal_err(TSEAL_E_LIMIT, "shape[%u] = %llu over the limit", i,
                           (unsigned long long)shape[i]);
        else if (tseal_mul_ovf(n, shape[i], &n))
            rc = tseal_err(TSEAL_E_INVAL, "shape product overflows");
    }
    uint64_t bytes = 0, total = 0;
    if (!rc &&
        (tseal_mul_ovf(n, tseal_dtype_size(dt), &bytes) || tseal_add_ovf(w->total, bytes, &total)))
        rc = tseal_err(TSEAL_E_INVAL, "byte size overflows");
    if (!rc && w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        st_wtensor *t = realloc(w->t, cap * sizeof *t);
        if (t) {
            w->t = t;
            w->cap = cap;
        } else {
            rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        }
    }
    st_wtensor *t = rc ? NULL : &w->t[w->n];
    if (t && !(t->name = strdup(name))) rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (rc) {
        tseal_err_context("%s: tensor '%s': ", w->f.path, tseal_quote(name, q));
        return w_fail(w, rc);
    }
    t->dt = dt;
    t->rank = rank;
    memset(t->shape, 0, sizeof t->shape);
    if (rank) memcpy(t->shape, shape, rank * sizeof *shape);
    t->bytes = bytes;
    w->total = total;
    w->n++;
    return 0;
}

int tseal_st_writer_meta(tseal_st_writer *w, const char *key, const char *value) {
    char q[TSEAL_QUOTE_MAX];
    if (w->started)
        return w_fail(w, tseal_err(TSEAL_E_INVAL, "%s: metadata '%s' declared after data",
                                   w->f.path, tseal_quote(key, q)));
    int rc = st_check_string(key, true, "metadata key", TSEAL_E_INVAL);
    if (!rc) rc = st_check_string(value, true, "metadata value", TSEAL_E_INVAL);
    if (!rc && w->n_meta == w->cap_meta) {
        size_t cap = w->cap_meta ? 2 * w->cap_meta : 8;
        st_meta *m = realloc(w->meta, cap * sizeof *m);
        if (m) {
            w->meta = m;
            w->cap_meta = cap;
        } else {
            rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        }
    }
    if (!rc) {
        st_meta *m = &w->meta[w->n_meta];
        m->key = strdup(key);
        m->value = strdup(value);
        if (!m->key || !m->value) {
            free(m->key);
            free(m->value);
            rc = tseal_err(TSEAL_E_NOMEM, "out of memory");
        } else {
            w->n_meta++;
        }
    }
    if (rc) {
        tseal_err_context("%s: ", w->f.path);
        return w_fail(w, rc);
    }
    return 0;
}

/* Duplicate names (tensors, metadata keys) are found here, once, by sorting. */
static int w_check_unique(const tseal_st_writer *w) {
    size_t n = w->n > w->n_meta ? w->n : w->n_meta;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (!keys) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (size_t i = 0; i < w->n; i++) keys[i] = w->t[i].name;
    int rc = st_check_unique(keys, w->n, "tensor name", TSEAL_E_INVAL);
    for (size_t i = 0; !rc && i < w->n_meta; i++) keys[i] = w->meta[i].key;
    if (!rc) rc = st_check_unique(keys, w->n_meta, "metadata key", TSEAL_E_INVAL);
    free(keys);
    return rc;
}

/*
 * Compact header JSON: "__metadata__" first, tensors in declaration (= data) order, keys in
 * the reference order, then spaces so the data buffer starts 8-byte aligned.
 */
static int w_write_header(tseal_st_writer *w) {
    int rc = w_check_unique(w);
    if (rc) return rc;
    st_sbuf b = {0};
    sb_put(&b, "{", 1);
    if (w->n_meta) {
        sb_puts(&b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) sb_put(&b, ",", 1);
            sb_json_str(&b, w->meta[i].key);
            sb_put(&b, ":", 1);
            sb_json_str(&b, w->meta[i].value);
        }
        sb_puts(&b, "}");
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        if (i || w->n_meta) sb_put(&b, ",", 1);
        sb_json_str(&b, t->name);
        sb_puts(&b, ":{\"dtype\":\"");
        sb_puts(&b, tseal_dtype_name(t->dt));
        sb_puts(&b, "\",\"shape\":[");
        for (uint32_t k = 0; k < t->rank; k++) {
            if (k) sb_put(&b, ",", 1);
            sb_u64(&b, t->shape[k]);
        }
        sb_puts(&b, "],\"data_offsets\":[");
        sb_u64(&b, off);
        sb_put(&b, ",", 1);
        sb_u64(&b, off + t->bytes);
        sb_puts(&b, "]}");
        off += t->bytes;
    }
    sb_put(&b, "}", 1);
    while (b.len % 8) sb_put(&b, " ", 1);
    if (b.oom)
        rc = tseal_err(TSEAL_E_NOMEM, "out of memory for the header");
    else if (b.len > TSEAL_ST_MAX_HEADER)
        rc = tseal_err(TSEAL_E_LIMIT, "header of %zu bytes exceeds the limit of %llu", b.len,
                       TSEAL_ST_MAX_HEADER);
    if (!rc) {
        uint8_t pre[8];
        tseal_store_le64(pre, b.len);
        rc = tseal_write_full(w->f.fd, pre, 8, "header length");
        if (!rc) rc = tseal_write_full(w->f.fd, b.p, b.len, "header");
    }
    free(b.p);
    w->started = true;
    return rc;
}

int tseal_st_writer_write(tseal_st_writer *w, const void *buf, size_t len) {
    if (w->failed)
        return tseal_err(w->failed, "%s: writer failed earlier; nothing more is written",
                         w->f.path);
    int rc = 0;
    if (!w->started) rc = w_write_header(w);
    if (!rc && len > w->total - w->written)
        rc = tseal_err(TSEAL_E_INVAL,
                       "writing %zu bytes at data offset %llu exceeds the %llu declared bytes", len,
                       (unsigned long long)w->written, (unsigned long long)w->total);
    if (!rc && len) rc = tseal_write_full(w->f.fd, buf, len, "tensor data");
    if (rc) {
        tseal_err_context("%s: ", w->f.path);
        return w_fail(w, rc);
    }
    w->written += len;
    return 0;
}

static void w_free(tseal_st_writer *w) {
    for (size_t i = 0; i < w->n; i++) free(w->t[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

int tseal_st_writer_commit(tseal_st_writer *w) {
    int rc = 0;
    if (w->failed) {
        rc = tseal_err(w->failed, "%s: not committed: an earlier call failed", w->f.path);
    } else if (!w->started && (rc = w_write_header(w))) {
        tseal_err_context("%s: ", w->f.path);
    } else if (w->written != w->total) {
        rc = tseal_err(TSEAL_E_INVAL, "%s: not committed: %llu of %llu declared data bytes written",
                       w->f.path, (unsigned long long)w->written, (unsigned long long)w->total);
    }
    if (rc)
        tseal_atomic_abort(&w->f);
    else
        rc = tseal_atomic_commit(&w->f);
    w_free(w);
    return rc;
}

void tseal_st_writer_abort(tseal_st_writer *w) {
    if (!w) return;
    tseal_atomic_abort(&w->f);
    w_free(w);
}

int tseal_json_parse_exact(const uint8_t *s, size_t len, const char *pad, const char *what,
                           const char *where, const char *pad_hint, cJSON **out) {
    const char *end = NULL;
    *out = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)s, len, &end, 0);
    if (!root) {
        size_t at = end && end >= (const char *)s ? (size_t)(end - (const char *)s) : 0;
        return tseal_err(TSEAL_E_CORRUPT, "%s%snot valid JSON (error at %s %zu)", what ? what : "",
                         what ? " is " : "", where, at);
    }
    for (size_t at = (size_t)(end - (const char *)s); at < len; at++) {
        if (!memchr(pad, s[at], strlen(pad))) {
            cJSON_Delete(root);
            return tseal_err(TSEAL_E_CORRUPT, "byte 0x%02x at %s %zu after the JSON value%s", s[at],
                             where, at, pad_hint ? pad_hint : "");
        }
    }
    *out = root;
    return 0;
}

int tseal_json_integers_only(const uint8_t *s, size_t n, const char *where) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\')
                i++; /* skip the escaped character */
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i;
            uint64_t v = 0;
            int big = 0;
            for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
                big |= v > (TSEAL_ST_MAX_DIM - (uint64_t)(s[j] - '0')) / 10;
                if (!big) v = v * 10 + (uint64_t)(s[j] - '0');
            }
            if (c == '-' || (j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E')))
                return tseal_err(TSEAL_E_CORRUPT, "number at %s %zu is not a non-negative integer",
                                 where, i);
            if (big) return tseal_err(TSEAL_E_CORRUPT, "integer at %s %zu exceeds 2^53", where, i);
            i = j - 1;
        }
    }
    return 0;
}
