/*
 * fuzz_coded.c - the coded-tensor parser and both CPU decoders on arbitrary bytes: they must
 * never crash, never read out of bounds, and always agree (same error, or same output).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1); /* exact-size heap copy: over-reads are caught */
    if (!copy) return 0;
    memcpy(copy, data, size);
    tseal_ct_view v;
    if (tseal_codec_view(copy, size, &v) == 0) {
        size_t out = (size_t)(v.n_elems * v.elem_size);
        uint8_t *a = malloc(out ? out : 1), *b = malloc(out ? out : 1);
        if (a && b) {
            int ra = tseal_codec_decode_ref(&v, a);
            int rb = tseal_codec_decode_fast(&v, b, 1 + (unsigned)(size % 3));
            if (ra != rb || (ra == 0 && memcmp(a, b, out) != 0)) {
                fprintf(stderr, "decoders disagree: ref %d, fast %d\n", ra, rb);
                abort();
            }
        }
        free(a);
        free(b);
    }
    free(copy);
    return 0;
}
