/*
 * err.c - one error convention for the whole library: 0 / negative TSEAL_E_* code, and a
 * thread-local message that names what was wrong and where.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char errmsg[TSEAL_ERRMSG_MAX];

const char *tseal_version(void) {
    return TSEAL_VERSION_STRING;
}

const char *tseal_strerror(int code) {
    switch (code) {
    case TSEAL_OK:
        return "success";
    case TSEAL_E_INVAL:
        return "invalid argument";
    case TSEAL_E_NOMEM:
        return "out of memory";
    case TSEAL_E_IO:
        return "I/O error";
    case TSEAL_E_CORRUPT:
        return "corrupt input";
    case TSEAL_E_UNSUPPORTED:
        return "unsupported";
    case TSEAL_E_LIMIT:
        return "limit exceeded";
    case TSEAL_E_VERIFY:
        return "verification failed";
    case TSEAL_E_CRYPTO:
        return "cryptographic failure";
    case TSEAL_E_NO_GPU:
        return "no GPU";
    case TSEAL_E_CUDA:
        return "CUDA error";
    case TSEAL_E_DENIED:
        return "denied by policy";
    case TSEAL_E_NOTFOUND:
        return "not found";
    case TSEAL_E_INTERNAL:
        return "internal error";
    default:
        return "unknown error";
    }
}

const char *tseal_errmsg(void) {
    return errmsg[0] ? errmsg : "no error";
}

void tseal_err_clear(void) {
    errmsg[0] = 0;
}

int tseal_err(int code, const char *fmt, ...) {
    char msg[TSEAL_ERRMSG_MAX]; /* an argument may be tseal_errmsg() itself */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(errmsg, msg, sizeof errmsg);
    return code;
}

void tseal_err_context(const char *fmt, ...) {
    char prefix[TSEAL_ERRMSG_MAX], old[TSEAL_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errmsg, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(errmsg, prefix, n);
    size_t m = strnlen(old, sizeof old - 1);
    if (m > sizeof errmsg - 1 - n) m = sizeof errmsg - 1 - n; /* keep the prefix, cut the tail */
    memcpy(errmsg + n, old, m);
    errmsg[n + m] = 0;
}
