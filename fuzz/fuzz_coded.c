/*
 * fuzz_coded.c - the coded-tensor parser and both CPU decoders on arbitrary bytes: they must
 * never crash, never read out of bounds, and always agree (same error, or same output). The
 * streaming loader's validation (tseal_codec_kept_regions + tseal_codec_view_regions over
 * separate exact-size copies of the kept parts) must reach the same verdict as the full parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a loader keeps on the host, each part in its own heap block. */
static void check_regions(const uint8_t *blob, size_t size, int full) {
    uint8_t head[TSEAL_CT_HEAD_BYTES];
    size_t hn = size < sizeof head ? size : sizeof head;
    memcpy(head, blob, hn);
    tseal_ct_region regs[3] = {{head, 0, hn}};
    uint8_t *keep[2] = {NULL, NULL};
    int r = tseal_codec_kept_regions(head, size, regs + 1);
    for (int k = 1; k < 3 && r == 0; k++) {
        if (regs[k].off > size || regs[k].len > size - regs[k].off) {
            fprintf(stderr, "kept region %d out of the blob\n", k);
            abort();
        }
        keep[k - 1] = malloc(regs[k].len ? regs[k].len : 1);
        if (!keep[k - 1]) goto out;
        memcpy(keep[k - 1], blob + regs[k].off, regs[k].len);
        regs[k].p = keep[k - 1];
    }
    tseal_ct_view v;
    if (r == 0) r = tseal_codec_view_regions(size, regs, 3, &v);
    if ((r == 0) != (full == 0) || r == TSEAL_E_INTERNAL) {
        fprintf(stderr, "kept-region validation %d, full parser %d\n", r, full);
        abort();
    }
out:
    free(keep[0]);
    free(keep[1]);
}

/* A row slice cut from the compressed streams is a valid blob decoding to those rows. */
static void check_slice(const tseal_ct_view *v, const uint8_t *decoded, size_t seed) {
    uint64_t r0 = seed % v->rows, r1 = r0 + 1 + (seed / 7) % (v->rows - r0);
    tseal_buf s;
    if (tseal_codec_slice_rows(v, r0, r1, &s) != 0) {
        fprintf(stderr, "slice [%llu, %llu) of a valid blob failed\n", (unsigned long long)r0,
                (unsigned long long)r1);
        abort();
    }
    tseal_ct_view sv;
    uint64_t n = (r1 - r0) * v->cols * v->elem_size;
    uint8_t *got = malloc(n ? n : 1);
    if (got && (tseal_codec_view(s.data, s.size, &sv) != 0 || tseal_codec_decode_ref(&sv, got) ||
                memcmp(got, decoded + r0 * v->cols * v->elem_size, n) != 0)) {
        fprintf(stderr, "slice [%llu, %llu) does not decode to its rows\n", (unsigned long long)r0,
                (unsigned long long)r1);
        abort();
    }
    free(got);
    tseal_buf_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1); /* exact-size heap copy: over-reads are caught */
    if (!copy) return 0;
    memcpy(copy, data, size);
    tseal_ct_view v;
    int full = tseal_codec_view(copy, size, &v);
    check_regions(copy, size, full);
    if (full == 0) {
        size_t out = (size_t)(v.n_elems * v.elem_size);
        uint8_t *a = malloc(out ? out : 1), *b = malloc(out ? out : 1);
        if (a && b) {
            int ra = tseal_codec_decode_ref(&v, a);
            int rb = tseal_codec_decode_fast(&v, b, 1 + (unsigned)(size % 3));
            if (ra != rb || (ra == 0 && memcmp(a, b, out) != 0)) {
                fprintf(stderr, "decoders disagree: ref %d, fast %d\n", ra, rb);
                abort();
            }
            if (ra == 0 && v.rows > 0) check_slice(&v, a, size);
        }
        free(a);
        free(b);
    }
    free(copy);
    return 0;
}
