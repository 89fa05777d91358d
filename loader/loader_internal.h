/*
 * loader_internal.h - shared by the loader's parts: the artifact (artifact.c) and the GPU load
 * pipeline (load.c).
 */
#ifndef TSEAL_LOADER_INTERNAL_H
#define TSEAL_LOADER_INTERNAL_H

#include "internal.h"
#include "manifest.h"
#include "tseal_crypto.h"
#include "verify_internal.h"

struct tseal_artifact {
    tseal_verified v;
    unsigned threads; /* from the open options */
};

/* Decrypt a whole segment (chunks checked against the signed list) into a new secure buffer. */
int tseal_loader_decrypt_segment(tseal_artifact *a, uint32_t seg, uint8_t **out, uint64_t *len);
/* View a coded tensor's blob and check it is the tensor the manifest describes. */
int tseal_loader_view(const tseal_artifact *a, const tseal_mf_tensor *t, const uint8_t *blob,
                      uint64_t len, tseal_ct_view *cv);

#endif
