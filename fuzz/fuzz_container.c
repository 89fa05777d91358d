/*
 * fuzz_container.c - the container's public header, recipient stanzas, segment table and
 * signature block parser on arbitrary bytes (the file is parsed from memory; signatures are
 * then checked, which must fail cleanly).
 */
#include <stdlib.h>
#include <string.h>

#include "container.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    tseal_container *c;
    if (tseal_container_parse_mem(copy, size, "fuzz", &c) == 0) {
        tseal_container_check_signatures(c, NULL, 0, NULL);
        tseal_container_close(c);
    }
    free(copy);
    return 0;
}
