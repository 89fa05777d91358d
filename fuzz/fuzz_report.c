/*
 * fuzz_report.c - the audit report envelope parser (JSON, base64, signatures, then the signed
 * in-toto statement) that `tseal audit-verify` and `verify --attestation` run on files an
 * attacker may hand over. Must never crash or leak.
 */
#include <stdlib.h>
#include <string.h>

#include "verify_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    tseal_attestation a;
    tseal_report_attestation_mem(copy, size, "fuzz", &a);
    free(copy);
    return 0;
}
