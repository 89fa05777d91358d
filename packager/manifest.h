/*
 * manifest.h - the encrypted manifest of a container (JSON; docs/FORMAT.md section 5.4):
 * which files the model had, how each is rebuilt byte for byte, and each tensor's name,
 * dtype, shape, segment and SHA-256 of its original bytes.
 */
#ifndef TSEAL_MANIFEST_H
#define TSEAL_MANIFEST_H

#include <stdint.h>

#include "container.h"

#define TSEAL_MF_MAX_BYTES (256u << 20) /* manifest plaintext limit */
#define TSEAL_MF_MAX_PATH  4096

enum { TSEAL_FILE_SAFETENSORS = 1, TSEAL_FILE_BLOB = 2 };

typedef struct {
    char *name;
    tseal_dtype dtype;
    uint32_t rank;
    uint64_t shape[TSEAL_MAX_RANK];
    uint64_t bytes;                   /* original tensor bytes */
    uint32_t segment;                 /* TENSOR segment */
    int coded;                        /* 1: a TSC1 coded blob; 0: the raw bytes */
    uint8_t sha256[TSEAL_HASH_BYTES]; /* tree digest of the original bytes (tseal_tree_hash) */
} tseal_mf_tensor;

typedef struct {
    char *path; /* relative, '/'-separated, validated */
    int kind;   /* TSEAL_FILE_* */
    uint64_t size;
    uint8_t sha256[TSEAL_HASH_BYTES];
    uint32_t segment;                 /* FILE_HEADER (safetensors) or BLOB segment */
    uint32_t first_tensor, n_tensors; /* safetensors: its tensors, in data order */
} tseal_mf_file;

typedef struct {
    char model_id[TSEAL_MAX_MODEL_ID + 1];
    uint64_t version;
    uint32_t n_files, cap_files;
    tseal_mf_file *files;
    uint32_t n_tensors, cap_tensors;
    tseal_mf_tensor *tensors;
} tseal_manifest;

/* Building (pack). */
tseal_mf_file *tseal_mf_add_file(tseal_manifest *m, const char *path, int kind);
tseal_mf_tensor *tseal_mf_add_tensor(tseal_manifest *m, const tseal_st_tensor *t);
/* JSON text (malloc'd, NUL-terminated); *len excludes the NUL. */
int tseal_mf_serialize(const tseal_manifest *m, char **json, size_t *len);

/*
 * Parse and validate against the container header: structure and types, safe unique paths,
 * every segment referenced exactly once by an entry of the right kind, sizes consistent with
 * the segments, model id, version and original_bytes equal to the signed header's.
 */
int tseal_mf_parse(const uint8_t *json, size_t len, const tseal_header *h, const char *label,
                   tseal_manifest *m);
void tseal_mf_free(tseal_manifest *m);

/* A relative path a manifest may name (no "..", ".", empty parts, leading '/', '\\', NUL,
 * control characters; valid UTF-8; <= TSEAL_MF_MAX_PATH bytes). */
int tseal_mf_path_ok(const char *p);

void tseal_hex(const uint8_t *b, size_t n, char *out);

/* Model root digest (docs/FORMAT.md 5.5): files' SHA-256 and tensors' digests, in order. */
int tseal_mf_model_root(const tseal_manifest *m, uint8_t out[TSEAL_HASH_BYTES]);

#endif
