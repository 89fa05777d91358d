/*
 * fault.c - fault injection for the tseal command (tests/fault/run.sh, tests/fault/README.md).
 *
 * Linked into a separate CLI binary with GNU ld's --wrap: every call that tseal's own objects
 * make to a wrapped function lands in __wrap_NAME here, which counts it and either fails it or
 * passes it on to __real_NAME (libc, ASan's interceptor, libsodium, OpenSSL or cJSON). Calls
 * made inside those libraries are not wrapped.
 *
 *   TSEAL_FAULT_ALLOC=N    fail the Nth allocating call (NULL / false, errno ENOMEM)
 *   TSEAL_FAULT_IO=N       fail the Nth I/O call (-1 / NULL, errno EIO)
 *   TSEAL_FAULT_PERSIST=1  fail the Nth call and every later one of the same class
 *   TSEAL_FAULT_SHORT=1    with TSEAL_FAULT_IO: a hit read/pread/write/pwrite is not failed but
 *                          made short (half the bytes, at least 1), as POSIX allows; other I/O
 *                          calls pass through
 *   TSEAL_FAULT_TRACE=1    print the stack of each failed call (ASan builds; for debugging)
 *   TSEAL_FAULT_REPORT=1   at exit, print one line to stderr:
 *       tseal-fault: alloc=A io=I injected=K fds=F secure=S
 *     A, I: calls counted; K: calls failed; F: file descriptors above 2 still open;
 *     S: sodium_malloc blocks (secrets) never given to sodium_free.
 * N counts from 1; unset or 0: nothing is failed. Nothing else is ever printed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

enum { FAULT_ALLOC, FAULT_IO, FAULT_CLASSES };

static unsigned long target[FAULT_CLASSES];
static int persist, report, trace, shortio;
static atomic_ulong calls[FAULT_CLASSES];
static atomic_ulong injected;
static atomic_long secure_live;

static unsigned long env_ulong(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return *end ? 0 : v;
}

__attribute__((constructor(101))) static void fault_init(void) {
    target[FAULT_ALLOC] = env_ulong("TSEAL_FAULT_ALLOC");
    target[FAULT_IO] = env_ulong("TSEAL_FAULT_IO");
    persist = env_ulong("TSEAL_FAULT_PERSIST") != 0;
    report = env_ulong("TSEAL_FAULT_REPORT") != 0;
    trace = env_ulong("TSEAL_FAULT_TRACE") != 0;
    shortio = env_ulong("TSEAL_FAULT_SHORT") != 0;
}

void __sanitizer_print_stack_trace(void) __attribute__((weak)); /* ASan runtime */

/* Count one call of class c; true if it must fail (errno is then set). */
static int fault_hit(int c) {
    unsigned long n = atomic_fetch_add(&calls[c], 1ul) + 1;
    unsigned long t = target[c];
    if (!t || (persist ? n < t : n != t)) return 0;
    atomic_fetch_add(&injected, 1ul);
    if (trace && __sanitizer_print_stack_trace) __sanitizer_print_stack_trace();
    errno = c == FAULT_ALLOC ? ENOMEM : EIO;
    return 1;
}

#define ALLOC_FAIL() fault_hit(FAULT_ALLOC)
#define IO_FAIL()    fault_hit(FAULT_IO)

DIR *__real_opendir(const char *name);

/* Descriptors above 2 open at exit (the listing's own excepted). */
static int open_fds(void) {
    DIR *d = __real_opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0, self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name) continue;
        if (fd > 2 && fd != self) n++;
    }
    closedir(d);
    return n;
}

ssize_t __real_write(int fd, const void *buf, size_t n);

__attribute__((destructor(101))) static void fault_report(void) {
    if (!report) return;
    char line[200];
    int k = snprintf(line, sizeof line,
                     "tseal-fault: alloc=%lu io=%lu injected=%lu fds=%d secure=%ld\n",
                     atomic_load(&calls[FAULT_ALLOC]), atomic_load(&calls[FAULT_IO]),
                     atomic_load(&injected), open_fds(), atomic_load(&secure_live));
    if (k > 0) {
        ssize_t w = __real_write(2, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
        (void)w;
    }
}

/* ---- allocations -------------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_sodium_malloc(size_t n);
void __real_sodium_free(void *p);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_sodium_malloc(size_t n);
void __wrap_sodium_free(void *p);

void *__wrap_malloc(size_t n) {
    return ALLOC_FAIL() ? NULL : __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size) {
    return ALLOC_FAIL() ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n) {
    return ALLOC_FAIL() ? NULL : __real_realloc(p, n); /* on failure p stays valid */
}
char *__wrap_strdup(const char *s) {
    return ALLOC_FAIL() ? NULL : __real_strdup(s);
}
char *__wrap_strndup(const char *s, size_t n) {
    return ALLOC_FAIL() ? NULL : __real_strndup(s, n);
}
void *__wrap_sodium_malloc(size_t n) {
    if (ALLOC_FAIL()) return NULL;
    void *p = __real_sodium_malloc(n);
    if (p) atomic_fetch_add(&secure_live, 1l);
    return p;
}
void __wrap_sodium_free(void *p) {
    if (p) atomic_fetch_sub(&secure_live, 1l);
    __real_sodium_free(p);
}

/* OpenSSL and cJSON calls that allocate (and fail only when an allocation fails). */
EVP_MD_CTX *__real_EVP_MD_CTX_new(void);
EVP_KDF *__real_EVP_KDF_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *props);
EVP_KDF_CTX *__real_EVP_KDF_CTX_new(EVP_KDF *kdf);
EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void);
EVP_KDF *__wrap_EVP_KDF_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *props);
EVP_KDF_CTX *__wrap_EVP_KDF_CTX_new(EVP_KDF *kdf);

EVP_MD_CTX *__wrap_EVP_MD_CTX_new(void) {
    return ALLOC_FAIL() ? NULL : __real_EVP_MD_CTX_new();
}
EVP_KDF *__wrap_EVP_KDF_fetch(OSSL_LIB_CTX *libctx, const char *algorithm, const char *props) {
    return ALLOC_FAIL() ? NULL : __real_EVP_KDF_fetch(libctx, algorithm, props);
}
EVP_KDF_CTX *__wrap_EVP_KDF_CTX_new(EVP_KDF *kdf) {
    return ALLOC_FAIL() ? NULL : __real_EVP_KDF_CTX_new(kdf);
}

/*
 * The FIPS suite (crypto/fips.c, crypto/x509.c): OpenSSL constructors, fetches and parsers
 * that return NULL (or 0 / -1 where noted) when an allocation fails. The library's own
 * failure pushes an error on OpenSSL's queue (3.0) or not (3.2 and later); these push none.
 */
#define WRAP_OSSL(ret, name, params, args)                                                         \
    ret __real_##name params;                                                                      \
    ret __wrap_##name params;                                                                      \
    ret __wrap_##name params {                                                                     \
        return ALLOC_FAIL() ? 0 : __real_##name args;                                              \
    }

WRAP_OSSL(EVP_CIPHER *, EVP_CIPHER_fetch, (OSSL_LIB_CTX * c, const char *alg, const char *props),
          (c, alg, props))
WRAP_OSSL(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_new, (void), ())
WRAP_OSSL(EVP_PKEY_CTX *, EVP_PKEY_CTX_new_from_name,
          (OSSL_LIB_CTX * c, const char *name, const char *props), (c, name, props))
WRAP_OSSL(EVP_PKEY_CTX *, EVP_PKEY_CTX_new_from_pkey,
          (OSSL_LIB_CTX * c, EVP_PKEY *pkey, const char *props), (c, pkey, props))
/* 0: *ppkey is left as it was (NULL in tseal), as OpenSSL leaves a key it did not allocate */
WRAP_OSSL(int, EVP_PKEY_fromdata, (EVP_PKEY_CTX * ctx, EVP_PKEY **ppkey, int sel, OSSL_PARAM *p),
          (ctx, ppkey, sel, p))
WRAP_OSSL(int, EVP_PKEY_get_bn_param, (const EVP_PKEY *pkey, const char *key, BIGNUM **bn),
          (pkey, key, bn))
WRAP_OSSL(ECDSA_SIG *, ECDSA_SIG_new, (void), ())
WRAP_OSSL(ECDSA_SIG *, d2i_ECDSA_SIG, (ECDSA_SIG * *sig, const unsigned char **pp, long len),
          (sig, pp, len))
WRAP_OSSL(BIGNUM *, BN_bin2bn, (const unsigned char *s, int len, BIGNUM *ret), (s, len, ret))
WRAP_OSSL(BIO *, BIO_new, (const BIO_METHOD *type), (type))
WRAP_OSSL(BIO *, BIO_new_mem_buf, (const void *buf, int len), (buf, len))
WRAP_OSSL(EVP_PKEY *, PEM_read_bio_PrivateKey_ex,
          (BIO * bio, EVP_PKEY **x, pem_password_cb *cb, void *u, OSSL_LIB_CTX *c,
           const char *props),
          (bio, x, cb, u, c, props))
WRAP_OSSL(EVP_PKEY *, PEM_read_bio_PUBKEY_ex,
          (BIO * bio, EVP_PKEY **x, pem_password_cb *cb, void *u, OSSL_LIB_CTX *c,
           const char *props),
          (bio, x, cb, u, c, props))
WRAP_OSSL(X509 *, PEM_read_bio_X509, (BIO * bio, X509 **x, pem_password_cb *cb, void *u),
          (bio, x, cb, u))
WRAP_OSSL(X509_CRL *, PEM_read_bio_X509_CRL,
          (BIO * bio, X509_CRL **x, pem_password_cb *cb, void *u), (bio, x, cb, u))
WRAP_OSSL(X509 *, d2i_X509, (X509 * *x, const unsigned char **in, long len), (x, in, len))
WRAP_OSSL(X509_STORE *, X509_STORE_new, (void), ())
WRAP_OSSL(X509_STORE_CTX *, X509_STORE_CTX_new, (void), ())
WRAP_OSSL(int, X509_STORE_add_cert, (X509_STORE * st, X509 *x), (st, x))
WRAP_OSSL(int, X509_STORE_add_crl, (X509_STORE * st, X509_CRL *x), (st, x))
WRAP_OSSL(OPENSSL_STACK *, OPENSSL_sk_new_null, (void), ()) /* sk_X509_new_null() */

/* -1 */
int __real_ASN1_STRING_to_UTF8(unsigned char **out, const ASN1_STRING *in);
int __wrap_ASN1_STRING_to_UTF8(unsigned char **out, const ASN1_STRING *in);
int __wrap_ASN1_STRING_to_UTF8(unsigned char **out, const ASN1_STRING *in) {
    return ALLOC_FAIL() ? -1 : __real_ASN1_STRING_to_UTF8(out, in);
}

/* Only the form that allocates its output (*out NULL) is counted; -1. */
int __real_i2d_X509(const X509 *x, unsigned char **out);
int __wrap_i2d_X509(const X509 *x, unsigned char **out);
int __wrap_i2d_X509(const X509 *x, unsigned char **out) {
    if (out && !*out && ALLOC_FAIL()) return -1;
    return __real_i2d_X509(x, out);
}

/* NULL, with *crit as OpenSSL sets it when the extension is present but cannot be decoded
 * (its criticality, 0 or 1) or absent (-1); idx is not supported (tseal passes NULL). */
void *__real_X509_get_ext_d2i(const X509 *x, int nid, int *crit, int *idx);
void *__wrap_X509_get_ext_d2i(const X509 *x, int nid, int *crit, int *idx);
void *__wrap_X509_get_ext_d2i(const X509 *x, int nid, int *crit, int *idx) {
    if (!idx && ALLOC_FAIL()) {
        if (crit) {
            int i = X509_get_ext_by_NID(x, nid, -1);
            *crit = i < 0 ? -1 : X509_EXTENSION_get_critical(X509_get_ext(x, i));
        }
        return NULL;
    }
    return __real_X509_get_ext_d2i(x, nid, crit, idx);
}

/* Variadic: the trailing argument is the curve name for "EC", the bit count for "RSA", and
 * nothing for the other types (OpenSSL's EVP_PKEY_Q_keygen). */
EVP_PKEY *__real_EVP_PKEY_Q_keygen(OSSL_LIB_CTX *c, const char *props, const char *type, ...);
EVP_PKEY *__wrap_EVP_PKEY_Q_keygen(OSSL_LIB_CTX *c, const char *props, const char *type, ...);
EVP_PKEY *__wrap_EVP_PKEY_Q_keygen(OSSL_LIB_CTX *c, const char *props, const char *type, ...) {
    if (ALLOC_FAIL()) return NULL;
    va_list ap;
    va_start(ap, type);
    EVP_PKEY *k;
    if (strcmp(type, "EC") == 0) {
        const char *curve = va_arg(ap, const char *);
        k = __real_EVP_PKEY_Q_keygen(c, props, type, curve);
    } else if (strcmp(type, "RSA") == 0) {
        size_t bits = va_arg(ap, size_t);
        k = __real_EVP_PKEY_Q_keygen(c, props, type, bits);
    } else {
        k = __real_EVP_PKEY_Q_keygen(c, props, type);
    }
    va_end(ap);
    return k;
}

#define WRAP_JSON(ret, name, params, args)                                                         \
    ret __real_##name params;                                                                      \
    ret __wrap_##name params;                                                                      \
    ret __wrap_##name params {                                                                     \
        return ALLOC_FAIL() ? 0 : __real_##name args;                                              \
    }

WRAP_JSON(cJSON *, cJSON_CreateObject, (void), ())
WRAP_JSON(cJSON *, cJSON_CreateArray, (void), ())
WRAP_JSON(cJSON *, cJSON_CreateString, (const char *s), (s))
WRAP_JSON(cJSON *, cJSON_CreateNumber, (double v), (v))
WRAP_JSON(char *, cJSON_Print, (const cJSON *j), (j))
WRAP_JSON(char *, cJSON_PrintUnformatted, (const cJSON *j), (j))
WRAP_JSON(cJSON *, cJSON_Duplicate, (const cJSON *j, cJSON_bool rec), (j, rec))
WRAP_JSON(cJSON *, cJSON_ParseWithLength, (const char *s, size_t n), (s, n))
WRAP_JSON(cJSON *, cJSON_ParseWithLengthOpts,
          (const char *s, size_t n, const char **end, cJSON_bool nul), (s, n, end, nul))
WRAP_JSON(cJSON_bool, cJSON_AddItemToObject, (cJSON * o, const char *k, cJSON *it), (o, k, it))
WRAP_JSON(cJSON *, cJSON_AddNullToObject, (cJSON *const o, const char *const k), (o, k))
WRAP_JSON(cJSON *, cJSON_AddTrueToObject, (cJSON *const o, const char *const k), (o, k))
WRAP_JSON(cJSON *, cJSON_AddFalseToObject, (cJSON *const o, const char *const k), (o, k))
WRAP_JSON(cJSON *, cJSON_AddBoolToObject, (cJSON *const o, const char *const k, cJSON_bool b),
          (o, k, b))
WRAP_JSON(cJSON *, cJSON_AddNumberToObject, (cJSON *const o, const char *const k, double v),
          (o, k, v))
WRAP_JSON(cJSON *, cJSON_AddStringToObject,
          (cJSON *const o, const char *const k, const char *const s), (o, k, s))
WRAP_JSON(cJSON *, cJSON_AddObjectToObject, (cJSON *const o, const char *const k), (o, k))
WRAP_JSON(cJSON *, cJSON_AddArrayToObject, (cJSON *const o, const char *const k), (o, k))

/* ---- I/O ---------------------------------------------------------------------------------- */

int __real_open(const char *path, int flags, ...);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real___read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real___pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __real_pwrite(int fd, const void *buf, size_t n, off_t off);
int __real_fsync(int fd);
int __real_close(int fd);
int __real_rename(const char *a, const char *b);
int __real_link(const char *a, const char *b);
int __real_mkstemp(char *tmpl);
char *__real_mkdtemp(char *tmpl);
int __real_mkdir(const char *path, mode_t mode);

int __wrap_open(const char *path, int flags, ...);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap___read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap___pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off);
int __wrap_fsync(int fd);
int __wrap_close(int fd);
int __wrap_rename(const char *a, const char *b);
int __wrap_link(const char *a, const char *b);
int __wrap_mkstemp(char *tmpl);
char *__wrap_mkdtemp(char *tmpl);
int __wrap_mkdir(const char *path, mode_t mode);
DIR *__wrap_opendir(const char *name);

/* A read or write of *n bytes: 1 = fail it; in short mode a hit shortens it instead. */
static int data_hit(size_t *n) {
    int e = errno;
    if (!IO_FAIL()) return 0;
    if (!shortio) return 1;
    errno = e;
    if (*n > 1) *n /= 2;
    return 0;
}

/* In short mode only data transfers are hit. */
static int other_hit(void) {
    return shortio ? 0 : IO_FAIL();
}

int __wrap_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, unsigned);
        va_end(ap);
    }
    return other_hit() ? -1 : __real_open(path, flags, mode);
}
ssize_t __wrap_read(int fd, void *buf, size_t n) {
    return data_hit(&n) ? -1 : __real_read(fd, buf, n);
}
ssize_t __wrap___read_chk(int fd, void *buf, size_t n, size_t buflen) {
    return data_hit(&n) ? -1 : __real___read_chk(fd, buf, n, buflen);
}
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off) {
    return data_hit(&n) ? -1 : __real_pread(fd, buf, n, off);
}
ssize_t __wrap___pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen) {
    return data_hit(&n) ? -1 : __real___pread_chk(fd, buf, n, off, buflen);
}
ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    return data_hit(&n) ? -1 : __real_write(fd, buf, n);
}
ssize_t __wrap_pwrite(int fd, const void *buf, size_t n, off_t off) {
    return data_hit(&n) ? -1 : __real_pwrite(fd, buf, n, off);
}
int __wrap_fsync(int fd) {
    return other_hit() ? -1 : __real_fsync(fd);
}
/* As on Linux, a failed close still releases the descriptor. */
int __wrap_close(int fd) {
    int fail = other_hit();
    int r = __real_close(fd);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return r;
}
int __wrap_rename(const char *a, const char *b) {
    return other_hit() ? -1 : __real_rename(a, b);
}
int __wrap_link(const char *a, const char *b) {
    return other_hit() ? -1 : __real_link(a, b);
}
int __wrap_mkstemp(char *tmpl) {
    return other_hit() ? -1 : __real_mkstemp(tmpl);
}
char *__wrap_mkdtemp(char *tmpl) {
    return other_hit() ? NULL : __real_mkdtemp(tmpl);
}
int __wrap_mkdir(const char *path, mode_t mode) {
    return other_hit() ? -1 : __real_mkdir(path, mode);
}
DIR *__wrap_opendir(const char *name) {
    return other_hit() ? NULL : __real_opendir(name);
}
