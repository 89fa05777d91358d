/*
 * model_internal.h - packager internals shared by safetensors.c, model.c, the tests and the
 * fuzz targets (not installed).
 */
#ifndef TSEAL_MODEL_INTERNAL_H
#define TSEAL_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tseal.h"

/* Largest sharded-checkpoint index file read (the reference tools write a few MB at most). */
#define TSEAL_INDEX_MAX_BYTES 100000000ull

/*
 * Lexical checks cJSON does not make (it is lenient): control characters outside the JSON
 * whitespace set, raw control characters or "\u0000" inside strings (a decoded NUL would
 * silently truncate a name), numbers outside the RFC 8259 grammar (leading zeros, "1.", "-.5"),
 * nesting deeper than `max_depth`, more than `max_tokens` values and keys in all (bounds what
 * cJSON allocates), and more than `max_top_keys` members in the top-level object.
 * Messages give positions as "<where> <offset>" (e.g. "header offset 12") but no file name
 * (callers add it with tseal_err_context).
 */
int tseal_json_lex_check(const uint8_t *s, size_t n, unsigned max_depth, uint64_t max_tokens,
                         uint64_t max_top_keys, const char *where);

/*
 * Parse exactly `len` bytes with cJSON: one JSON value, then only bytes from `pad` (" " for a
 * safetensors header, " \t\r\n" elsewhere). Errors: "<what> is not valid JSON (error at
 * <where> N)" and "byte 0xXX at <where> N after the JSON value<pad_hint>" (what may be NULL).
 * Run tseal_json_lex_check first: cJSON alone is too lenient. *out is freed with cJSON_Delete.
 */
/* Every number outside strings must be a non-negative integer <= 2^53 (no sign, fraction or
 * exponent), so that no two parsers read a different value. */
int tseal_json_integers_only(const uint8_t *s, size_t n, const char *where);

struct cJSON;
int tseal_json_parse_exact(const uint8_t *s, size_t len, const char *pad, const char *what,
                           const char *where, const char *pad_hint, struct cJSON **out);

/* One weight_map entry of a sharded-checkpoint index. */
typedef struct {
    char *tensor;   /* tensor name, valid UTF-8 */
    uint32_t shard; /* index into tseal_st_index.shards */
} tseal_st_index_entry;

typedef struct {
    size_t n_entries;
    tseal_st_index_entry *entries; /* sorted by tensor name (unique) */
    size_t n_shards;
    char **shards; /* distinct shard file names, sorted; each a plain file name */
} tseal_st_index;

/*
 * Parse and validate the bytes of a *.safetensors.index.json ({"metadata": {...},
 * "weight_map": {tensor: shard file name}}) without touching any file. `label` names the
 * index in messages.
 */
int tseal_st_index_parse(const void *buf, size_t len, const char *label, tseal_st_index **out);
void tseal_st_index_free(tseal_st_index *ix);
/* Binary search for a tensor name; TSEAL_E_NOTFOUND (without a message) when absent. */
int tseal_st_index_find(const tseal_st_index *ix, const char *tensor, size_t *pos);

/* Printable, length-capped copy of an untrusted name for error messages. */
#define TSEAL_QUOTE_MAX 160
const char *tseal_quote(const char *s, char out[TSEAL_QUOTE_MAX]);

#endif
