/*
 * fuzz_roundtrip.c - encode arbitrary BF16 data with arbitrary parameters, decode with both
 * decoders, abort unless both reproduce every input bit.
 *
 * Input: byte 0 picks the code-length limit, byte 1 the segment size, byte 2 the row count;
 * the rest is the BF16 tensor (little-endian).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tseal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    tseal_codec_params p = {.max_code_bits = (uint8_t)(1 + data[0] % TSEAL_HUFF_MAX_BITS),
                            .seg_log2 =
                                (uint8_t)(TSEAL_SEG_LOG2_MIN +
                                          data[1] % (TSEAL_SEG_LOG2_MAX - TSEAL_SEG_LOG2_MIN + 1))};
    uint64_t n = (size - 3) / 2, rows = 1 + data[2] % 8;
    if (n % rows) rows = 1;
    uint16_t *x = malloc(n ? 2 * n : 2), *y = malloc(n ? 2 * n : 2);
    if (!x || !y) abort();
    for (uint64_t i = 0; i < n; i++) x[i] = (uint16_t)(data[3 + 2 * i] | data[4 + 2 * i] << 8);
    tseal_buf b;
    if (tseal_codec_encode(x, rows, n / rows, &p, &b, NULL) != 0) {
        fprintf(stderr, "encode failed: %s\n", tseal_errmsg());
        abort();
    }
    tseal_ct_view v;
    if (tseal_codec_view(b.data, b.size, &v) != 0) {
        fprintf(stderr, "own blob rejected: %s\n", tseal_errmsg());
        abort();
    }
    if (tseal_codec_decode_ref(&v, y) != 0 || memcmp(x, y, 2 * n) != 0) abort();
    memset(y, 0, 2 * n);
    if (tseal_codec_decode_fast(&v, y, 2) != 0 || memcmp(x, y, 2 * n) != 0) abort();
    tseal_buf_free(&b);
    free(x);
    free(y);
    return 0;
}
