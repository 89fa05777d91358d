/*
 * fuzz_st_index.c - the sharded-checkpoint index parser (model.safetensors.index.json) over
 * arbitrary bytes, without touching files: parse, then check every entry is found again and
 * every shard name is a plain file name.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../packager/model_internal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tseal_st_index *ix;
    if (tseal_st_index_parse(data, size, "fuzz.index.json", &ix) != 0) return 0;
    for (size_t i = 0; i < ix->n_entries; i++) {
        size_t pos;
        CHECK(tseal_st_index_find(ix, ix->entries[i].tensor, &pos) == 0 && pos == i);
        CHECK(ix->entries[i].shard < ix->n_shards);
    }
    for (size_t s = 0; s < ix->n_shards; s++) {
        const char *n = ix->shards[s];
        CHECK(n[0] && !strchr(n, '/') && !strchr(n, '\\') && strcmp(n, "..") && strcmp(n, "."));
        CHECK(s == 0 || strcmp(ix->shards[s - 1], n) < 0);
    }
    tseal_st_index_free(ix);
    return 0;
}
