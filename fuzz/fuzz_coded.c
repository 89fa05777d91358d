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

/* A slice cut from the compressed streams (rows, and columns on segment boundaries) is a valid
 * blob decoding to that part of the tensor. */
static void check_slice(const tseal_ct_view *v, const uint8_t *decoded, size_t seed) {
    uint64_t r0 = seed % v->rows, r1 = r0 + 1 + (seed / 7) % (v->rows - r0);
    uint64_t S = v->mode == TSEAL_CT_MODE_HUFF ? 1ull << v->seg_log2 : 1;
    uint64_t units = (v->cols + S - 1) / S, c0 = (seed / 13) % units * S;
    uint64_t c1 = c0 + S * (1 + (seed / 17) % 3);
    if (c1 > v->cols) c1 = v->cols;
    tseal_buf s;
    if (tseal_codec_slice(v, r0, r1, c0, c1, &s) != 0) {
        fprintf(stderr, "slice [%llu, %llu) x [%llu, %llu) of a valid blob failed: %s\n",
                (unsigned long long)r0, (unsigned long long)r1, (unsigned long long)c0,
                (unsigned long long)c1, tseal_errmsg());
        abort();
    }
    tseal_ct_view sv;
    const uint64_t es = v->elem_size, w = (c1 - c0) * es, n = (r1 - r0) * w;
    uint8_t *got = malloc(n ? n : 1);
    int bad = got &&
              (tseal_codec_view(s.data, s.size, &sv) != 0 || tseal_codec_decode_ref(&sv, got) != 0);
    for (uint64_t r = r0; got && !bad && r < r1; r++)
        bad = memcmp(got + (r - r0) * w, decoded + (r * v->cols + c0) * es, w) != 0;
    if (bad) {
        fprintf(stderr, "slice [%llu, %llu) x [%llu, %llu) does not decode to its part\n",
                (unsigned long long)r0, (unsigned long long)r1, (unsigned long long)c0,
                (unsigned long long)c1);
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
            if (ra == 0 && v.rows > 0 && v.cols > 0) check_slice(&v, a, size);
        }
        free(a);
        free(b);
    }
    free(copy);
    return 0;
}
