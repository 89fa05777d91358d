/*
 * util.c - small shared pieces: dtypes, number conversions, clocks, I/O helpers, atomic
 * output files, a fork-join thread helper, UTF-8 validation.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- dtypes ---------------------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t size;
} dtype_table[TSEAL_DT_COUNT] = {
    [TSEAL_DT_BOOL] = {"BOOL", 1},       [TSEAL_DT_U8] = {"U8", 1},
    [TSEAL_DT_I8] = {"I8", 1},           [TSEAL_DT_F8_E5M2] = {"F8_E5M2", 1},
    [TSEAL_DT_F8_E4M3] = {"F8_E4M3", 1}, [TSEAL_DT_I16] = {"I16", 2},
    [TSEAL_DT_U16] = {"U16", 2},         [TSEAL_DT_F16] = {"F16", 2},
    [TSEAL_DT_BF16] = {"BF16", 2},       [TSEAL_DT_I32] = {"I32", 4},
    [TSEAL_DT_U32] = {"U32", 4},         [TSEAL_DT_F32] = {"F32", 4},
    [TSEAL_DT_F64] = {"F64", 8},         [TSEAL_DT_I64] = {"I64", 8},
    [TSEAL_DT_U64] = {"U64", 8},
};

size_t tseal_dtype_size(tseal_dtype dt) {
    return (unsigned)dt < TSEAL_DT_COUNT ? dtype_table[dt].size : 0;
}

const char *tseal_dtype_name(tseal_dtype dt) {
    return (unsigned)dt < TSEAL_DT_COUNT ? dtype_table[dt].name : NULL;
}

int tseal_dtype_parse(const char *s, tseal_dtype *out) {
    for (int i = 0; i < TSEAL_DT_COUNT; i++) {
        if (strcmp(s, dtype_table[i].name) == 0) {
            *out = (tseal_dtype)i;
            return 0;
        }
    }
    return tseal_err(TSEAL_E_UNSUPPORTED, "unknown dtype \"%.64s\"", s);
}

/* ---- numbers --------------------------------------------------------------------------- */

uint16_t tseal_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float tseal_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float tseal_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu, u;
    if (e == 0x1F) {
        u = sign | 0x7F800000u | (m << 13);
    } else if (e != 0) {
        u = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0) {
        u = sign;
    } else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400u)) {
            m <<= 1;
            e--;
        }
        u = sign | (e << 23) | ((m & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

unsigned tseal_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

double tseal_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- UTF-8 ----------------------------------------------------------------------------- */

bool tseal_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t len;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* ---- I/O ------------------------------------------------------------------------------- */

int tseal_pread_full(int fd, void *buf, size_t len, uint64_t offset, const char *what) {
    uint8_t *p = buf;
    while (len > 0) {
        if (offset > (uint64_t)LLONG_MAX)
            return tseal_err(TSEAL_E_CORRUPT, "%s: offset %llu out of range", what,
                             (unsigned long long)offset);
        ssize_t r = pread(fd, p, len, (off_t)offset);
        if (r < 0) {
            if (errno == EINTR) continue;
            return tseal_err(TSEAL_E_IO, "%s: read at offset %llu: %s", what,
                             (unsigned long long)offset, strerror(errno));
        }
        if (r == 0)
            return tseal_err(TSEAL_E_CORRUPT, "%s: unexpected end of file at offset %llu", what,
                             (unsigned long long)offset);
        p += r;
        len -= (size_t)r;
        offset += (uint64_t)r;
    }
    return 0;
}

int tseal_write_full(int fd, const void *buf, size_t len, const char *what) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0) {
            if (errno == EINTR) continue;
            return tseal_err(TSEAL_E_IO, "%s: write failed: %s", what, strerror(errno));
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

int tseal_atomic_open(tseal_atomic_file *f, const char *path, unsigned mode) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t n = strlen(path);
    f->path = strdup(path);
    f->tmp_path = malloc(n + 16);
    if (!f->path || !f->tmp_path) {
        tseal_atomic_abort(f);
        return tseal_err(TSEAL_E_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    f->fd = mkstemp(f->tmp_path);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;
        tseal_atomic_abort(f);
        return tseal_err(TSEAL_E_IO, "%s: cannot create temporary file: %s", path, strerror(e));
    }
    if (mode && fchmod(f->fd, mode) != 0) {
        int e = errno;
        tseal_atomic_abort(f);
        return tseal_err(TSEAL_E_IO, "%s: chmod: %s", path, strerror(e));
    }
    return 0;
}

int tseal_atomic_commit(tseal_atomic_file *f) {
    const char *step = NULL;
    int e = 0;
    if (fsync(f->fd) != 0) {
        step = "fsync", e = errno;
    } else {
        int c = close(f->fd);
        f->fd = -1;
        if (c != 0)
            step = "close", e = errno;
        else if (rename(f->tmp_path, f->path) != 0)
            step = "rename", e = errno;
    }
    if (step) { /* the message first: abort frees f->path */
        int r = tseal_err(TSEAL_E_IO, "%s: %s: %s", f->path, step, strerror(e));
        tseal_atomic_abort(f);
        return r;
    }
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
    return 0;
}

int tseal_exists_error(const char *path) {
    return tseal_err(TSEAL_E_INVAL, "%s: file exists (use --force)", path);
}

int tseal_atomic_commit_new(tseal_atomic_file *f, const char *label) {
    if (fsync(f->fd) != 0) {
        int e = errno;
        tseal_atomic_abort(f);
        return tseal_err(TSEAL_E_IO, "%s: fsync: %s", label, strerror(e));
    }
    int c = close(f->fd);
    f->fd = -1;
    if (c != 0) {
        int e = errno;
        tseal_atomic_abort(f);
        return tseal_err(TSEAL_E_IO, "%s: close: %s", label, strerror(e));
    }
    if (link(f->tmp_path, f->path) != 0) {
        int e = errno;
        struct stat st;
        if (e == EEXIST) {
            tseal_atomic_abort(f);
            return tseal_exists_error(label);
        }
        if (e != EPERM && e != ENOTSUP && e != EOPNOTSUPP && e != ENOSYS) {
            tseal_atomic_abort(f);
            return tseal_err(TSEAL_E_IO, "%s: link: %s", label, strerror(e));
        }
        /* a file system without hard links: check, then rename (a small race remains) */
        if (lstat(f->path, &st) == 0) {
            tseal_atomic_abort(f);
            return tseal_exists_error(label);
        }
        if (rename(f->tmp_path, f->path) != 0) {
            e = errno;
            tseal_atomic_abort(f);
            return tseal_err(TSEAL_E_IO, "%s: rename: %s", label, strerror(e));
        }
    } else {
        unlink(f->tmp_path);
    }
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
    return 0;
}

void tseal_atomic_abort(tseal_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->fd = -1;
    f->tmp_path = f->path = NULL;
}

/* ---- fork-join ------------------------------------------------------------------------- */

typedef struct {
    tseal_par_fn fn;
    void *arg;
    unsigned n;
    atomic_uint next;
    atomic_int err;
    char errmsg[1024];
    pthread_mutex_t lock;
} par_ctx;

static void *par_worker(void *p) {
    par_ctx *c = p;
    for (;;) {
        if (atomic_load(&c->err) != 0) break;
        unsigned i = atomic_fetch_add(&c->next, 1u);
        if (i >= c->n) break;
        int r = c->fn(c->arg, i);
        if (r != 0) {
            int zero = 0;
            if (atomic_compare_exchange_strong(&c->err, &zero, r)) {
                pthread_mutex_lock(&c->lock);
                snprintf(c->errmsg, sizeof c->errmsg, "%s", tseal_errmsg());
                pthread_mutex_unlock(&c->lock);
            }
            break;
        }
    }
    return NULL;
}

int tseal_parallel(unsigned n, unsigned nthreads, tseal_par_fn fn, void *arg) {
    if (nthreads == 0) nthreads = tseal_cpu_count();
    if (nthreads > n) nthreads = n;
    if (nthreads <= 1) {
        for (unsigned i = 0; i < n; i++) {
            int r = fn(arg, i);
            if (r) return r;
        }
        return 0;
    }
    par_ctx c = {.fn = fn, .arg = arg, .n = n};
    atomic_init(&c.next, 0u);
    atomic_init(&c.err, 0);
    pthread_mutex_init(&c.lock, NULL);
    pthread_t *th = calloc(nthreads, sizeof *th);
    if (!th) {
        pthread_mutex_destroy(&c.lock);
        return tseal_err(TSEAL_E_NOMEM, "out of memory starting %u threads", nthreads);
    }
    unsigned started = 0;
    for (; started < nthreads - 1; started++)
        if (pthread_create(&th[started], NULL, par_worker, &c) != 0) break;
    par_worker(&c); /* the calling thread works too */
    for (unsigned t = 0; t < started; t++) pthread_join(th[t], NULL);
    free(th);
    pthread_mutex_destroy(&c.lock);
    int r = atomic_load(&c.err);
    if (r) tseal_err(r, "%s", c.errmsg);
    return r;
}
