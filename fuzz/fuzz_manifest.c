/*
 * fuzz_manifest.c - the encrypted manifest's parser, fed decrypted (as the packer would have
 * written it) against a fixed header of 8 segments: 2 file headers, 1 blob, 4 tensors and the
 * manifest. Must never crash, leak or accept an unsafe path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t kinds[8] = {TSEAL_SEG_BLOB,   TSEAL_SEG_FILE_HEADER, TSEAL_SEG_TENSOR,
                                     TSEAL_SEG_TENSOR, TSEAL_SEG_FILE_HEADER, TSEAL_SEG_TENSOR,
                                     TSEAL_SEG_TENSOR, TSEAL_SEG_MANIFEST};
    static const uint64_t lens[8] = {20, 88, 6, 40, 80, 2, 4, 0};
    tseal_segment segs[8];
    memset(segs, 0, sizeof segs);
    for (int i = 0; i < 8; i++) {
        segs[i].kind = kinds[i];
        segs[i].pt_len = lens[i];
    }
    tseal_header h;
    memset(&h, 0, sizeof h);
    snprintf(h.model_id, sizeof h.model_id, "acme/m");
    h.model_version = 3;
    h.n_segments = 8;
    h.segments = segs;
    h.original_bytes = 20 + 88 + 6 + 40 + 80 + 2 + 4;
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    tseal_manifest m;
    if (tseal_mf_parse(copy, size, &h, "fuzz", &m) == 0) {
        for (uint32_t i = 0; i < m.n_files; i++)
            if (!tseal_mf_path_ok(m.files[i].path)) abort();
        tseal_mf_free(&m);
    }
    free(copy);
    return 0;
}
