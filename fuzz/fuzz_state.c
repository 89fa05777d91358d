/*
 * fuzz_state.c - the rollback state parser over arbitrary bytes, without touching files.
 * Whatever is accepted must re-encode to a file that parses back to the same entries (sorted,
 * unique) and re-encodes to the very same bytes, and lookups must find every entry.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tseal_state *s = NULL;
    if (tseal_state_parse(data, size, "fuzz.state", &s) != 0) {
        CHECK(s == NULL);
        return 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        int found = 0;
        CHECK(tseal_state_get(s, s->e[i].model_id, s->e[i].signer, &found) == s->e[i].version);
        CHECK(found == 1);
        if (i) {
            int c = strcmp(s->e[i - 1].model_id, s->e[i].model_id);
            CHECK(c < 0 ||
                  (c == 0 && memcmp(s->e[i - 1].signer, s->e[i].signer, TSEAL_KEY_ID_BYTES) < 0));
        }
    }
    char *a, *b;
    size_t alen, blen;
    CHECK(pol_state_encode(s, &a, &alen) == 0);
    tseal_state *again = NULL;
    CHECK(tseal_state_parse((const uint8_t *)a, alen, "again", &again) == 0);
    CHECK(tseal_state_count(again) == tseal_state_count(s));
    for (size_t i = 0; i < s->n; i++)
        CHECK(strcmp(again->e[i].model_id, s->e[i].model_id) == 0 &&
              memcmp(again->e[i].signer, s->e[i].signer, TSEAL_KEY_ID_BYTES) == 0 &&
              again->e[i].version == s->e[i].version);
    CHECK(pol_state_encode(again, &b, &blen) == 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
    tseal_state_free(again);
    tseal_state_free(s);
    return 0;
}
