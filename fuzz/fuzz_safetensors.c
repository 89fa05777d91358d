/*
 * fuzz_safetensors.c - the strict safetensors reader over arbitrary bytes: open, walk tensors
 * and metadata, read a few bytes of each tensor, check the invariants the reader promises.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tseal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tseal_st *st;
    if (tseal_st_open_mem(data, size, "fuzz.safetensors", &st) != 0) {
        CHECK(tseal_errmsg()[0] != 0);
        return 0;
    }
    size_t hlen;
    const uint8_t *h = tseal_st_header_bytes(st, &hlen);
    CHECK(8 + hlen == tseal_st_data_offset(st) && memcmp(h, data + 8, hlen) == 0);
    uint64_t expect = 0, buf_size = size - tseal_st_data_offset(st);
    for (size_t i = 0; i < tseal_st_count(st); i++) {
        const tseal_st_tensor *t = tseal_st_get(st, i);
        CHECK(t->begin == expect && t->end <= buf_size); /* data order, no holes */
        CHECK(t->end - t->begin == t->n_elems * tseal_dtype_size(t->dtype));
        expect = t->end;
        size_t idx;
        CHECK(tseal_st_find(st, t->name, &idx) == 0 && idx == i);
        uint8_t b[16];
        uint64_t n = t->end - t->begin, len = n < sizeof b ? n : sizeof b;
        CHECK(tseal_st_read(st, i, 0, b, len) == 0);
        CHECK(memcmp(b, data + tseal_st_data_offset(st) + t->begin, len) == 0);
        CHECK(tseal_st_read(st, i, n - len, b, len) == 0);
        CHECK(tseal_st_read(st, i, n, b, 1) == TSEAL_E_INVAL); /* past the span */
    }
    CHECK(expect == buf_size);
    for (size_t i = 0; i < tseal_st_meta_count(st); i++) {
        const char *k, *v;
        CHECK(tseal_st_meta_get(st, i, &k, &v) == 0 && k && v);
    }
    tseal_st_close(st);
    return 0;
}
