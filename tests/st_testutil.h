/*
 * st_testutil.h - helpers for the safetensors, model and tools tests: a per-test temporary
 * directory, file writers and hand-built safetensors images.
 */
#ifndef TSEAL_ST_TESTUTIL_H
#define TSEAL_ST_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tseal.h"

static char tu_dir[64];

static inline void tu_setup(void) {
    snprintf(tu_dir, sizeof tu_dir, "/tmp/tseal-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tu_dir), "mkdtemp");
}

static inline int tu_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static inline void tu_teardown(void) {
    if (tu_dir[0]) nftw(tu_dir, tu_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Path of `name` inside the test directory (a few rotating buffers). */
static inline const char *tu_path(const char *name) {
    static char buf[8][512];
    static unsigned k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tu_dir, name);
    return p;
}

static inline void tu_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "fopen %s", path);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static inline void tu_write_str(const char *path, const char *s) {
    tu_write(path, s, strlen(s));
}

/* Reads a whole file (NUL-terminated); NULL if it does not exist. */
static inline uint8_t *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static inline bool tu_exists(const char *path) {
    return access(path, F_OK) == 0;
}

/* Entries in the test directory (excluding . and ..). */
static inline int tu_count_entries(void) {
    DIR *d = opendir(tu_dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* 8-byte length prefix + header (hlen bytes) + data_len bytes of data (pattern, or zeros). */
static inline uint8_t *tu_image(const char *header, size_t hlen, const void *data, size_t data_len,
                                size_t *len) {
    *len = 8 + hlen + data_len;
    uint8_t *b = calloc(1, *len);
    cr_assert_not_null(b);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, header, hlen);
    if (data) memcpy(b + 8 + hlen, data, data_len);
    return b;
}

static inline void tu_write_st(const char *path, const char *header, const void *data,
                               size_t data_len) {
    size_t len;
    uint8_t *b = tu_image(header, strlen(header), data, data_len, &len);
    tu_write(path, b, len);
    free(b);
}

/* Asserts a failure with `code` whose message holds `substr`. */
#define tu_assert_err(rc, code, substr)                                                            \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        cr_assert_eq(rc_, (code), "rc %d, expected %d; message: %s", rc_, (code), tseal_errmsg()); \
        cr_assert_not_null(strstr(tseal_errmsg(), (substr)), "message \"%s\" lacks \"%s\"",        \
                           tseal_errmsg(), (substr));                                              \
    } while (0)

#endif
