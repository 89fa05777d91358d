/*
 * internal.h - helpers shared by the library's parts (not installed).
 */
#ifndef TSEAL_INTERNAL_H
#define TSEAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tseal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Checked arithmetic: return true on overflow. */
static inline bool tseal_mul_ovf(uint64_t a, uint64_t b, uint64_t *r) {
    return __builtin_mul_overflow(a, b, r);
}
static inline bool tseal_add_ovf(uint64_t a, uint64_t b, uint64_t *r) {
    return __builtin_add_overflow(a, b, r);
}

static inline void tseal_store_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tseal_store_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t tseal_load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* True if every byte of p[0..n) is zero. */
static inline bool tseal_all_zero(const uint8_t *p, size_t n) {
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) acc |= p[i];
    return acc == 0;
}

/* Strict UTF-8 validation (no overlongs, surrogates, > U+10FFFF; NUL rejected too). */
bool tseal_utf8_valid(const uint8_t *s, size_t n);

/* Read exactly len bytes at offset (retrying short reads); TSEAL_E_IO or TSEAL_E_CORRUPT (EOF). */
int tseal_pread_full(int fd, void *buf, size_t len, uint64_t offset, const char *what);
/* Write exactly len bytes; TSEAL_E_IO on failure. */
int tseal_write_full(int fd, const void *buf, size_t len, const char *what);

/*
 * Atomic output: create a temporary file next to `path` (mode 0600 unless `mode` given),
 * write, then tseal_atomic_commit fsyncs and renames it over `path`. abort unlinks it.
 */
typedef struct {
    int fd;
    char *path;
    char *tmp_path;
} tseal_atomic_file;
int tseal_atomic_open(tseal_atomic_file *f, const char *path, unsigned mode);
int tseal_atomic_commit(tseal_atomic_file *f);
/* Commit without ever replacing an existing file (link(2); EEXIST is "file exists (use
 * --force)", TSEAL_E_INVAL, from tseal_exists_error). `label` names the file in messages. */
int tseal_atomic_commit_new(tseal_atomic_file *f, const char *label);
int tseal_exists_error(const char *path);
void tseal_atomic_abort(tseal_atomic_file *f);

/* Run fn(arg, i) for i in [0, n) on up to `nthreads` threads (1 = inline). First error wins. */
typedef int (*tseal_par_fn)(void *arg, unsigned i);
int tseal_parallel(unsigned n, unsigned nthreads, tseal_par_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
