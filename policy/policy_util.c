/*
 * policy_util.c - helpers of the policy/ files: text and member-path checks, hex and base64,
 * dates, the strict JSON front end (policy, envelope and state files), file reading and
 * atomic writing (docs/POLICY.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "internal.h"
#include "model_internal.h"
#include "policy_internal.h"

/* ---- text ------------------------------------------------------------------------------ */

const char *pol_text_problem(const char *s, size_t len, size_t max) {
    if (len == 0) return "is empty";
    if (len > max) return "is too long";
    const uint8_t *u = (const uint8_t *)s;
    if (!tseal_utf8_valid(u, len)) return "is not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        if (u[i] < 0x20 || u[i] == 0x7F) return "has a control character";
        if (u[i] == 0xC2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
            return "has a control character"; /* C1: U+0080..U+009F */
    }
    return NULL;
}

void pol_quote(const char *s, char *out, size_t cap) {
    const size_t keep = cap - 4; /* room for "..." and the NUL */
    size_t i = 0;
    for (; s[i] && i < keep; i++) {
        unsigned char c = (unsigned char)s[i];
        bool c1 = c == 0xC2 && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] < 0xA0;
        out[i] = (c < 0x20 || c == 0x7F || c1) ? '?' : (char)c;
        if (c1 && i + 1 < keep) out[++i] = '?';
    }
    if (s[i]) {
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
        memcpy(out + i, "...", 4);
    } else {
        out[i] = 0;
    }
}

void pol_path(char out[POL_PATH_MAX], const char *parent, const char *member) {
    if (!parent || !parent[0])
        snprintf(out, POL_PATH_MAX, "%s", member);
    else
        snprintf(out, POL_PATH_MAX, "%s.%s", parent, member);
}

void pol_path_index(char out[POL_PATH_MAX], const char *parent, unsigned i) {
    snprintf(out, POL_PATH_MAX, "%s[%u]", parent, i);
}

void pol_hex(const uint8_t *b, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = 0;
}

void pol_short_hex(const uint8_t *b, char out[17]) {
    pol_hex(b, 8, out);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

bool pol_unhex(const char *s, uint8_t *out, size_t n) {
    if (strlen(s) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

char *pol_b64(const uint8_t *b, size_t n) {
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (!s) {
        tseal_err(TSEAL_E_NOMEM, "out of memory");
        return NULL;
    }
    sodium_bin2base64(s, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

/* Canonical: re-encoding the decoded bytes gives the same text (no stray bits in padding). */
static bool b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *got) {
    size_t blen = 0;
    const char *end = NULL;
    if (slen == 0 || slen % 4 != 0) return false;
    if (sodium_base642bin(out, cap, s, slen, NULL, &blen, &end, sodium_base64_VARIANT_ORIGINAL) !=
            0 ||
        end != s + slen)
        return false;
    char *canon = pol_b64(out, blen);
    if (!canon) return false;
    bool ok = strcmp(canon, s) == 0;
    free(canon);
    *got = blen;
    return ok;
}

bool pol_unb64(const char *s, uint8_t *out, size_t n) {
    size_t slen = strlen(s), got = 0;
    if (slen != sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1) return false;
    return b64_decode(s, slen, out, n, &got) && got == n;
}

int pol_unb64_alloc(const char *s, size_t max, uint8_t **out, size_t *len, const char *what) {
    *out = NULL;
    *len = 0;
    size_t slen = strlen(s);
    if (slen / 4 * 3 > max + 2)
        return tseal_err(TSEAL_E_LIMIT, "%s: decodes to more than %zu bytes", what, max);
    size_t cap = slen / 4 * 3 + 1;
    uint8_t *b = malloc(cap);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    size_t got = 0;
    if (!b64_decode(s, slen, b, cap, &got)) {
        free(b);
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not canonical padded base64", what);
    }
    if (got > max) {
        free(b);
        return tseal_err(TSEAL_E_LIMIT, "%s: decodes to %zu bytes, over the limit of %zu", what,
                         got, max);
    }
    *out = b;
    *len = got;
    return 0;
}

/* ---- dates ----------------------------------------------------------------------------- */

static bool digits(const char *s, int n, int *v) {
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

static int days_in_month(int y, int m) {
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

bool pol_parse_date(const char *s, int64_t *out) {
    size_t len = strlen(s);
    int y, mo, d, h = 23, mi = 59, se = 59;
    if (len != 10 && len != 20) return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    if (len == 20 &&
        (s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
         s[16] != ':' || !digits(s + 17, 2, &se) || s[19] != 'Z'))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 59)
        return false;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

void pol_fmt_time(int64_t t, char out[32]) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "@%lld", (long long)t);
}

/* ---- JSON ------------------------------------------------------------------------------ */

/* Every number outside strings a plain non-negative integer <= 2^53 (cJSON keeps doubles:
 * "1.0", "1e0" and 2^53 + 1 would pass unseen). Runs after tseal_json_lex_check. */
static int json_int_scan(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
            i++;
            continue;
        }
        if (c == '-')
            return tseal_err(TSEAL_E_CORRUPT,
                             "negative number at offset %zu (only integers "
                             "0..2^53 are allowed)",
                             i);
        if (c >= '0' && c <= '9') {
            size_t j = i;
            uint64_t v = 0;
            bool big = false;
            for (; j < n && s[j] >= '0' && s[j] <= '9'; j++) {
                if (v > POL_INT_MAX) big = true;
                if (!big) v = v * 10 + (uint64_t)(s[j] - '0');
            }
            if (j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E'))
                return tseal_err(TSEAL_E_CORRUPT,
                                 "number at offset %zu is not a plain integer (write e.g. 12)", i);
            if (big || v > POL_INT_MAX)
                return tseal_err(TSEAL_E_CORRUPT, "number at offset %zu is larger than 2^53", i);
            i = j;
            continue;
        }
        i++;
    }
    return 0;
}

int pol_json_parse(const uint8_t *s, size_t len, uint64_t max_tokens, cJSON **out) {
    *out = NULL;
    if (len == 0) return tseal_err(TSEAL_E_CORRUPT, "empty file");
    if (!tseal_utf8_valid(s, len)) return tseal_err(TSEAL_E_CORRUPT, "not valid UTF-8 (or NUL)");
    size_t i = 0;
    while (i < len && memchr(" \t\r\n", s[i], 4)) i++;
    if (i == len) return tseal_err(TSEAL_E_CORRUPT, "no JSON object (only blanks)");
    if (s[i] != '{')
        return tseal_err(TSEAL_E_CORRUPT,
                         "does not begin with a JSON object (byte 0x%02x at offset %zu)", s[i], i);
    int rc = tseal_json_lex_check(s, len, TSEAL_POLICY_MAX_DEPTH, max_tokens, POL_MAX_TOP_KEYS,
                                  "offset");
    if (rc) return rc;
    if ((rc = json_int_scan(s, len)) != 0) return rc;
    cJSON *root = NULL;
    rc = tseal_json_parse_exact(s, len, " \t\r\n", NULL, "offset", NULL, &root);
    if (rc) return rc;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tseal_err(TSEAL_E_CORRUPT, "not a JSON object");
    }
    *out = root;
    return 0;
}

const char *pol_json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsBool(v)) return "a boolean";
    return "null";
}

int pol_members(const cJSON *obj, const char *path, const char *const *names, unsigned n,
                const cJSON **out) {
    char q[TSEAL_QUOTE_MAX];
    const char *sep = path && path[0] ? ": " : "";
    if (!path) path = "";
    for (unsigned i = 0; i < n; i++) out[i] = NULL;
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *name = c->string ? c->string : "";
        unsigned k = 0;
        while (k < n && strcmp(name, names[k]) != 0) k++;
        if (k == n)
            return tseal_err(TSEAL_E_CORRUPT, "%s%sunknown member \"%s\"", path, sep,
                             tseal_quote(name, q));
        if (out[k])
            return tseal_err(TSEAL_E_CORRUPT, "%s%sduplicate member \"%s\"", path, sep, names[k]);
        out[k] = c;
    }
    return 0;
}

int pol_want(const cJSON *v, int (*is)(const cJSON *), const char *what, const char *path) {
    if (!is(v))
        return tseal_err(TSEAL_E_CORRUPT, "%s: is %s, not %s", path, pol_json_type(v), what);
    return 0;
}

static int is_string(const cJSON *v) {
    return cJSON_IsString(v) && v->valuestring != NULL;
}

int pol_want_string(const cJSON *v, const char *path) {
    return pol_want(v, is_string, "a string", path);
}

int pol_want_uint(const cJSON *v, uint64_t max, const char *path, uint64_t *out) {
    if (!cJSON_IsNumber(v))
        return tseal_err(TSEAL_E_CORRUPT, "%s: is %s, not an integer", path, pol_json_type(v));
    double d = v->valuedouble; /* json_int_scan made it a plain integer <= 2^53: exact */
    if (!(d >= 0) || d > (double)POL_INT_MAX || (double)(uint64_t)d != d)
        return tseal_err(TSEAL_E_CORRUPT, "%s: is not an integer in 0..2^53", path);
    if ((uint64_t)d > max)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %llu is over the limit of %llu", path,
                         (unsigned long long)d, (unsigned long long)max);
    *out = (uint64_t)d;
    return 0;
}

void pol_buf_add(pol_buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= (size_t)n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void pol_buf_str(pol_buf *b, const char *s) {
    pol_buf_add(b, "\"");
    for (const char *c = s; *c && !b->failed; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\')
            pol_buf_add(b, "\\%c", u);
        else if (u == '\n')
            pol_buf_add(b, "\\n"); /* PEM text */
        else if (u < 0x20 || u == 0x7F)
            pol_buf_add(b, "\\u%04x", u);
        else
            pol_buf_add(b, "%c", u);
    }
    pol_buf_add(b, "\"");
}

void pol_buf_free(pol_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- files ----------------------------------------------------------------------------- */

int pol_read_file(const char *path, size_t max, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO named by a policy (crl_files) must not hang; a regular
     * file reads as usual, anything else is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return tseal_err(TSEAL_E_NOTFOUND, "%s: no such file", path);
        return tseal_err(TSEAL_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tseal_err(TSEAL_E_IO, "%s: stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tseal_err(TSEAL_E_INVAL, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return tseal_err(TSEAL_E_LIMIT, "%s: %lld bytes, over the limit of %zu", path,
                         (long long)st.st_size, max);
    }
    uint8_t *b = malloc(max + 1);
    if (!b) {
        close(fd);
        return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    }
    size_t n = 0;
    while (n <= max) { /* read one byte past the limit: a file that grew is still refused */
        ssize_t r = read(fd, b + n, max + 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            free(b);
            return tseal_err(TSEAL_E_IO, "%s: read: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) {
        free(b);
        return tseal_err(TSEAL_E_LIMIT, "%s: larger than the limit of %zu bytes", path, max);
    }
    *buf = b;
    *len = n;
    return 0;
}

char *pol_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
}

static int fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        rc = tseal_err(TSEAL_E_IO, "%s: fsync of the folder: %s", dir, strerror(e));
    }
    if (fd >= 0) close(fd);
    free(dir);
    return rc;
}

int pol_write_file(const char *path, const void *data, size_t len, unsigned mode, int replace) {
    struct stat st;
    if (!replace && lstat(path, &st) == 0) return tseal_exists_error(path);
    tseal_atomic_file f;
    int rc = tseal_atomic_open(&f, path, mode);
    if (rc) return rc;
    if ((rc = tseal_write_full(f.fd, data, len, path)) != 0) {
        tseal_atomic_abort(&f);
        return rc;
    }
    rc = replace ? tseal_atomic_commit(&f) : tseal_atomic_commit_new(&f, path);
    if (rc) return rc;
    return fsync_parent(path);
}
