/*
 * tseal.h - public API of tseal, a secure, lossless model-artifact packaging system.
 *
 * Conventions (the whole library follows them):
 *   - Functions return 0 on success or a negative TSEAL_E_* code.
 *   - On failure, tseal_errmsg() returns a thread-local message that names what was wrong
 *     and where (file, tensor, offset), e.g.
 *       "model.safetensors: tensor 'lm_head.weight': data_offsets [10, 8]: begin > end".
 *   - Sizes and limits are macros (TSEAL_*); objects are opaque and freed by *_close/_free.
 *   - Hot paths take caller-provided buffers and do not allocate.
 */
#ifndef TSEAL_H
#define TSEAL_H

#include <stddef.h>
#include <stdint.h>

#include "tseal_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TSEAL_VERSION_STRING "0.1.0"

/* The library's version (TSEAL_VERSION_STRING of the build), for bindings to check. */
const char *tseal_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

enum {
    TSEAL_OK = 0,
    TSEAL_E_INVAL = -1,       /* bad argument or usage */
    TSEAL_E_NOMEM = -2,       /* out of memory */
    TSEAL_E_IO = -3,          /* read/write/open failed */
    TSEAL_E_CORRUPT = -4,     /* malformed or hostile input */
    TSEAL_E_UNSUPPORTED = -5, /* valid but not supported (dtype, version, ...) */
    TSEAL_E_LIMIT = -6,       /* input exceeds a safety limit */
    TSEAL_E_VERIFY = -7,      /* signature or digest mismatch */
    TSEAL_E_CRYPTO = -8,      /* cryptographic library failure */
    TSEAL_E_NO_GPU = -9,      /* no CUDA device, or built without CUDA */
    TSEAL_E_CUDA = -10,       /* CUDA runtime error */
    TSEAL_E_DENIED = -11,     /* deployment policy denies */
    TSEAL_E_NOTFOUND = -12,   /* named item does not exist */
    TSEAL_E_INTERNAL = -13,   /* broken invariant (a bug) */
};

/* Static description of a code ("corrupt input"). */
const char *tseal_strerror(int code);
/* Thread-local message of the last failure in this thread (never NULL), at most
 * TSEAL_ERRMSG_MAX bytes with its terminating NUL. */
#define TSEAL_ERRMSG_MAX 1024
const char *tseal_errmsg(void);
/* Record a failure: formats the message, returns `code` (for `return tseal_err(...)`). */
int tseal_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context to the current message ("file.safetensors: " + old message). */
void tseal_err_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tseal_err_clear(void);

/* ------------------------------------------------------------------------------------------ */
/* Data types                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef enum {
    TSEAL_DT_BOOL,
    TSEAL_DT_U8,
    TSEAL_DT_I8,
    TSEAL_DT_F8_E5M2,
    TSEAL_DT_F8_E4M3,
    TSEAL_DT_I16,
    TSEAL_DT_U16,
    TSEAL_DT_F16,
    TSEAL_DT_BF16,
    TSEAL_DT_I32,
    TSEAL_DT_U32,
    TSEAL_DT_F32,
    TSEAL_DT_F64,
    TSEAL_DT_I64,
    TSEAL_DT_U64,
    TSEAL_DT_COUNT
} tseal_dtype;

/* Bytes per element; 0 for an invalid value. */
size_t tseal_dtype_size(tseal_dtype dt);
/* safetensors spelling ("BF16"); NULL for an invalid value. */
const char *tseal_dtype_name(tseal_dtype dt);
/* Parse a safetensors dtype string; TSEAL_E_UNSUPPORTED for unknown names. */
int tseal_dtype_parse(const char *s, tseal_dtype *out);

/* ------------------------------------------------------------------------------------------ */
/* safetensors: strict reader and streaming writer                                            */
/* ------------------------------------------------------------------------------------------ */

/* Limits applied by the reader (bad input beyond them is rejected, never allocated). */
#define TSEAL_ST_MAX_HEADER   100000000ull /* header JSON bytes, as the reference implementation */
#define TSEAL_MAX_RANK        8            /* dimensions per tensor */
#define TSEAL_ST_MAX_DIM      (1ull << 53) /* largest exactly-representable JSON integer */
#define TSEAL_ST_MAX_NAME     4096         /* bytes in a tensor name or metadata key/value */
#define TSEAL_ST_MAX_TENSORS  1000000      /* tensors in one file */
#define TSEAL_MODEL_MAX_FILES 4096         /* shards in one model */

typedef struct {
    const char *name; /* NUL-terminated, valid UTF-8 */
    tseal_dtype dtype;
    uint32_t rank;
    uint64_t shape[TSEAL_MAX_RANK];
    uint64_t n_elems;    /* product of shape (1 for rank 0) */
    uint64_t begin, end; /* byte offsets relative to the data buffer */
} tseal_st_tensor;

typedef struct tseal_st tseal_st;

/* Open and fully validate a safetensors file. Data is read on demand (pread), never copied whole.
 */
int tseal_st_open(const char *path, tseal_st **out);
/* Same checks over an in-memory file image (tests, fuzzing). `buf` must outlive the handle. */
int tseal_st_open_mem(const void *buf, size_t len, const char *label, tseal_st **out);
void tseal_st_close(tseal_st *st);

const char *tseal_st_path(const tseal_st *st);
uint64_t tseal_st_file_size(const tseal_st *st);
/* Offset of the data buffer in the file (8 + header length). */
uint64_t tseal_st_data_offset(const tseal_st *st);
/* Raw header bytes exactly as in the file (JSON plus padding), for byte-identical rebuilds. */
const uint8_t *tseal_st_header_bytes(const tseal_st *st, size_t *len);
/* Tensors in data order (ascending offsets). */
size_t tseal_st_count(const tseal_st *st);
const tseal_st_tensor *tseal_st_get(const tseal_st *st, size_t i);
int tseal_st_find(const tseal_st *st, const char *name, size_t *index);
/* __metadata__ entries (string to string), in file order. */
size_t tseal_st_meta_count(const tseal_st *st);
int tseal_st_meta_get(const tseal_st *st, size_t i, const char **key, const char **value);
/* Read `len` bytes at `offset` inside tensor i's byte span. */
int tseal_st_read(const tseal_st *st, size_t i, uint64_t offset, void *buf, size_t len);

typedef struct tseal_st_writer tseal_st_writer;

/* Start writing `path` (through a temporary file, renamed by commit). */
int tseal_st_writer_open(const char *path, tseal_st_writer **out);
/* Declare tensors in data order, and metadata, before any data. */
int tseal_st_writer_add(tseal_st_writer *w, const char *name, tseal_dtype dt, uint32_t rank,
                        const uint64_t *shape);
int tseal_st_writer_meta(tseal_st_writer *w, const char *key, const char *value);
/* Stream tensor bytes, in declaration order (any chunking). The header is written first. */
int tseal_st_writer_write(tseal_st_writer *w, const void *buf, size_t len);
/* Check every declared byte was written, fsync, rename into place. Frees `w` in all cases. */
int tseal_st_writer_commit(tseal_st_writer *w);
/* Drop the temporary file. Frees `w`. */
void tseal_st_writer_abort(tseal_st_writer *w);

/* ------------------------------------------------------------------------------------------ */
/* Models: a safetensors file, a sharded checkpoint (model.safetensors.index.json) or a folder */
/* ------------------------------------------------------------------------------------------ */

typedef struct tseal_model tseal_model;

/*
 * `path` is a .safetensors file, an index .json, or a directory. A directory with a
 * model.safetensors.index.json (or any single *.safetensors.index.json) is read as that sharded
 * checkpoint; otherwise every top-level *.safetensors file in it, in name order.
 * Tensor names must be unique across the model; a sharded index must list exactly the
 * tensors found in its shards, each in the shard it names.
 */
int tseal_model_open(const char *path, tseal_model **out);
void tseal_model_close(tseal_model *m);
size_t tseal_model_file_count(const tseal_model *m);
const tseal_st *tseal_model_file(const tseal_model *m, size_t i);
/* Index file path, or NULL when the model is not a sharded checkpoint. */
const char *tseal_model_index_path(const tseal_model *m);
/* All tensors, file by file in data order. */
size_t tseal_model_tensor_count(const tseal_model *m);
const tseal_st_tensor *tseal_model_tensor(const tseal_model *m, size_t i, size_t *file_index);
int tseal_model_read(const tseal_model *m, size_t i, uint64_t offset, void *buf, size_t len);

/* ------------------------------------------------------------------------------------------ */
/* Exponent codec (stream layout: tseal_layout.h and docs/FORMAT.md)                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    uint8_t max_code_bits; /* Huffman length limit L, TSEAL_HUFF_MIN_LIMIT..TSEAL_HUFF_MAX_BITS */
    uint8_t seg_log2;      /* log2 of weights per segment, TSEAL_SEG_LOG2_MIN..MAX */
} tseal_codec_params;

void tseal_codec_params_default(tseal_codec_params *p);

/* What one encode produced (for benchmarks and reports). */
typedef struct {
    uint8_t mode; /* TSEAL_CT_MODE_* chosen */
    uint64_t n_elems;
    uint32_t n_symbols;       /* distinct exponent values */
    double exp_entropy_bits;  /* Shannon entropy of the exponents, bits per weight */
    uint64_t exp_stream_bits; /* Huffman-coded exponent bits (no padding) */
    uint64_t index_bytes;     /* group bases + segment lengths */
    uint64_t total_bytes;     /* whole coded blob: header, tables, index, streams, padding */
} tseal_codec_stats;

/* A heap buffer owned by the caller after a successful call; free with tseal_buf_free. */
typedef struct {
    uint8_t *data;
    size_t size;
} tseal_buf;
void tseal_buf_free(tseal_buf *b);

/*
 * Encode a BF16 tensor seen as `rows` x `cols` (row-major; cols = last dimension) into a
 * self-describing coded blob. Picks RAW, CONST or HUFF, whichever is smallest.
 * `stats` may be NULL.
 */
int tseal_codec_encode(const uint16_t *bf16, uint64_t rows, uint64_t cols,
                       const tseal_codec_params *params, tseal_buf *out, tseal_codec_stats *stats);

/* Streaming encoder I/O: read n elements starting at element `first` into buf; receive the
 * next `len` bytes of the blob. Both return 0 or a negative TSEAL_E_* code (which aborts). */
typedef int (*tseal_read_fn)(void *ctx, uint64_t first, uint16_t *buf, uint64_t n);
typedef int (*tseal_write_fn)(void *ctx, const void *buf, size_t len);

/*
 * The same blob as tseal_codec_encode, byte for byte, for tensors too large to hold in memory:
 * the input is read in chunks (four passes) and the blob is written in order through `wr`.
 * Memory stays bounded (a few MiB plus 4 bytes per segment). `blob_size` may be NULL.
 */
int tseal_codec_encode_stream(tseal_read_fn rd, void *rctx, uint64_t rows, uint64_t cols,
                              const tseal_codec_params *params, tseal_write_fn wr, void *wctx,
                              uint64_t *blob_size, tseal_codec_stats *stats);

/* Parse and validate a coded blob (every field, table, index entry and padding byte). */
int tseal_codec_view(const void *blob, size_t len, tseal_ct_view *view);

/* Streaming loaders keep only parts of a blob on the host (the rest goes to a device). */
typedef struct {
    const uint8_t *p; /* host copy of blob bytes [off, off + len) */
    uint64_t off, len;
} tseal_ct_region;
#define TSEAL_CT_HEAD_BYTES                                                                        \
    (TSEAL_CT_HEADER_BYTES + TSEAL_CT_LENS_BYTES) /* header + code table                           \
                                                   */
/* From the blob's first TSEAL_CT_HEAD_BYTES (or all of a shorter blob) and its length: the
 * (at most two) other byte ranges tseal_codec_view_regions needs (len 0 = unused): the
 * index sections with the paddings around them, and the stream's last byte with its slack. */
int tseal_codec_kept_regions(const uint8_t head[TSEAL_CT_HEAD_BYTES], uint64_t blob_len,
                             tseal_ct_region regs[2]);
/* tseal_codec_view over the kept regions (head + kept_regions): the same checks of every
 * field, table, index entry and padding byte; plane/exp_stream/raw are NULL when not kept. */
int tseal_codec_view_regions(uint64_t blob_len, const tseal_ct_region *regs, unsigned n,
                             tseal_ct_view *view);

/*
 * Reference decoder: bit-by-bit canonical Huffman, obviously correct; the oracle of the tests.
 * `out` receives n_elems * elem_size bytes (BF16 values for CONST and HUFF). Rejects any
 * segment that does not end exactly where its length says.
 */
int tseal_codec_decode_ref(const tseal_ct_view *view, void *out);

/*
 * Fast decoder: multi-symbol table lookups, 4 interleaved segments per thread, `nthreads`
 * threads over segment ranges (0 = all online CPUs). Same output and errors as the reference.
 */
int tseal_codec_decode_fast(const tseal_ct_view *view, void *out, unsigned nthreads);

/*
 * Fast decoder over the rows [row_begin, row_end) of the segmentation geometry only: `out`
 * receives (row_end - row_begin) * cols elements. Bounds the output buffer of huge tensors.
 */
int tseal_codec_decode_rows(const tseal_ct_view *view, uint64_t row_begin, uint64_t row_end,
                            void *out, unsigned nthreads);

/*
 * Rows [row_begin, row_end) of a coded tensor (its rows x cols geometry) as a coded blob of
 * their own, cut from the compressed sections without decoding (the code table is kept):
 * for tensor-parallel loading. `view` must have every section (tseal_codec_view). Free `out`
 * with tseal_buf_free. TSEAL_E_INVAL for an empty or out-of-range row range.
 */
int tseal_codec_slice_rows(const tseal_ct_view *view, uint64_t row_begin, uint64_t row_end,
                           tseal_buf *out);
/* The same for rows [row_begin, row_end) x columns [col_begin, col_end); for HUFF tensors the
 * columns must start on a segment boundary and end on one or at the last column (else
 * TSEAL_E_INVAL): row-parallel slices of a tensor packed with --segment 256 qualify for
 * K / world_size a multiple of 256. */
int tseal_codec_slice(const tseal_ct_view *view, uint64_t row_begin, uint64_t row_end,
                      uint64_t col_begin, uint64_t col_end, tseal_buf *out);

/* Shannon entropy (bits per weight) of the exponent field of n BF16 values. */
double tseal_codec_exponent_entropy(const uint16_t *bf16, uint64_t n);

/*
 * Expected exponent bits per weight of a length-limited Huffman code over `hist` when the
 * limit is `limit` bits (1..TSEAL_HUFF_MAX_MEASURE_BITS); for measuring what a limit costs.
 * Returns a negative value if no code exists under that limit.
 */
#define TSEAL_HUFF_MAX_MEASURE_BITS 24
double tseal_codec_limited_bits(const uint64_t hist[256], unsigned limit);

/* ------------------------------------------------------------------------------------------ */
/* Container: pack, inspect, verify, unpack (format: docs/FORMAT.md section 5)                */
/* ------------------------------------------------------------------------------------------ */

/* Progress of a long operation (for a CLI's status line). */
typedef struct {
    const char *stage; /* "pack", "verify", "unpack" */
    const char *item;  /* current file or tensor name */
    uint64_t done_bytes, total_bytes;
    uint32_t done_items, total_items;
} tseal_progress;
typedef void (*tseal_progress_fn)(void *ctx, const tseal_progress *p);

/* Cipher suites (docs/FORMAT.md 6): the suite id in a container header. */
#define TSEAL_SUITE_V1   1 /* Ed25519, X25519 + HKDF-SHA256, ChaCha20-Poly1305, SHA-256 */
#define TSEAL_SUITE_FIPS 2 /* ECDSA P-256 + X.509, ECDH P-256 + HKDF-SHA256, AES-256-GCM */

typedef struct {
    const char *model_id;             /* required: printable UTF-8, 1..256 bytes */
    uint64_t version;                 /* model version (rollback protection compares it) */
    int64_t expires;                  /* unix seconds, 0 = never */
    uint32_t chunk_size;              /* 0 = 64 KiB; a power of two, 4 KiB..16 MiB */
    tseal_codec_params codec;         /* zero = defaults */
    const char *sign_key;             /* signer's secret key file */
    const char *sign_passphrase_file; /* NULL if the key is not protected */
    unsigned suite;                   /* 0 = TSEAL_SUITE_V1 (default), or TSEAL_SUITE_FIPS */
    const char *sign_cert;            /* FIPS: the signer's X.509 certificate (PEM) */
    const char *sign_chain;           /* FIPS: intermediate certificates (PEM), may be NULL */
    const char *const *recipients;    /* recipient public key files, 1..64 */
    unsigned n_recipients;
    unsigned threads; /* 0 = all online CPUs */
    tseal_progress_fn progress;
    void *progress_ctx;
    /* For published test vectors only: all randomness from this 32-byte seed, and this
     * creation time. NULL / 0 in real use. */
    const uint8_t *test_seed;
    int64_t test_created;
} tseal_pack_opts;

typedef struct {
    uint32_t files, tensors, coded_tensors, segments;
    uint64_t original_bytes;  /* all input files */
    uint64_t payload_bytes;   /* encrypted segments */
    uint64_t plaintext_bytes; /* segment plaintexts: coded tensors, file parts, manifest */
    uint64_t manifest_bytes;
    uint64_t container_bytes; /* the whole output file */
    char signer_key_id[33];
} tseal_pack_report;

/*
 * Pack `input` (a .safetensors file, or a folder: *.safetensors files become coded tensors,
 * every other regular file an opaque blob) into the container `output`, written through a
 * temporary file renamed on success. Memory stays bounded whatever the model size.
 */
int tseal_pack(const char *input, const char *output, const tseal_pack_opts *opts,
               tseal_pack_report *report);

/* The public header, readable without any key and not verified. */
typedef struct {
    uint32_t format_version, suite;
    char suite_name[64];
    char model_id[257];
    uint64_t version;
    int64_t created, expires;
    char container_id[33];
    char artifact_digest[65]; /* SHA-256 of the public header: what policies pin, audits name */
    uint32_t chunk_size;
    uint32_t recipient_count;
    char recipient_key_ids[64][33];
    uint32_t signature_count;
    char signer_key_ids[16][33];
    /* FIPS suite: each signer certificate's subject and issuer (RFC 2253) and notAfter, as the
     * certificate claims them (not verified here); "" and 0 for Ed25519 signers. */
    char signer_subjects[16][256], signer_issuers[16][256];
    int64_t signer_not_after[16];
    char primary_signer_key_id[33];
    uint32_t segment_count;
    uint64_t payload_bytes, container_bytes, original_bytes;
} tseal_container_info;

int tseal_inspect(const char *path, tseal_container_info *info);

typedef struct {
    const char *const *trust; /* trusted signer public key files (verify requires >= 1) */
    unsigned n_trust;
    const char *const *trust_cas; /* FIPS: CA root certificates (PEM) trusted for X.509 signers */
    unsigned n_trust_cas;
    const char *const *crls; /* with trust_cas: CRL files (PEM); then every certificate of a
                              * chain must be covered by its issuer's CRL */
    unsigned n_crls;
    const char *const *identities; /* with trust_cas: the signer certificate must match one
                                    * ("subject:", "email:", "uri:", "dns:" + text, one '*') */
    unsigned n_identities;
    const char *key; /* recipient secret key file: enables decryption checks */
    const char *passphrase_file;
    int64_t now;      /* 0 = the current time (expiry check) */
    unsigned threads; /* decoder threads, 0 = all online CPUs */
    tseal_progress_fn progress;
    void *progress_ctx;
    /* Deployment policy (docs/POLICY.md): the source of trust instead of `trust`. */
    const char *policy;
    const char *const *policy_keys; /* if any, the policy must be signed by one of them */
    unsigned n_policy_keys;
    const char *state;               /* rollback state: checked, raised after full verification */
    const char *const *attestations; /* audit reports offered to the policy */
    unsigned n_attestations;
    int gpu; /* decode coded tensors on CUDA device `gpu_device` (digests on the host) */
    int gpu_device;
} tseal_verify_opts;

typedef struct {
    int signature_ok; /* every signature valid and >= 1 by a trusted key */
    unsigned trusted_signatures;
    int decrypted; /* a key was given and every chunk authenticated */
    uint32_t segments_checked, tensors_checked, files_checked;
    uint64_t bytes_checked;
    int policy_allowed; /* a policy was given and allowed the artifact */
    int state_updated;  /* the rollback state file was raised */
    char policy_id[129];
} tseal_verify_report;

/*
 * Verify the signature(s) against the trusted keys, the expiry, and every chunk of every
 * segment against its signed hash. With a key: also unwrap the content key, check the key
 * commitment, authenticate and decrypt every chunk, parse the manifest, decode every tensor
 * and check it against its signed SHA-256.
 */
int tseal_verify(const char *path, const tseal_verify_opts *opts, tseal_verify_report *report);

/*
 * Verify and restore every original file, byte for byte, under `outdir` (which must not exist
 * or be empty), checking each file's SHA-256. Writes into a temporary folder renamed on
 * success: a failure leaves nothing. Without trusted keys the signature is checked for
 * consistency only (report->trusted_signatures == 0).
 */
int tseal_unpack(const char *path, const char *outdir, const tseal_verify_opts *opts,
                 tseal_verify_report *report);

/* Add a signature (e.g. an internal validation team's) to a container: every existing
 * signature must be valid; the header and payload are unchanged. Writes `out` (NULL = replace
 * `path`) through a temporary file. */
int tseal_sign_add(const char *path, const char *sign_key, const char *passphrase_file,
                   const char *out);
/* The same for a FIPS-suite container: a P-256 PEM key with its X.509 certificate (and
 * intermediates). */
int tseal_sign_add_cert(const char *path, const char *sign_key, const char *sign_cert,
                        const char *sign_chain, const char *passphrase_file, const char *out);

/* ------------------------------------------------------------------------------------------ */
/* Audit (docs/POLICY.md, "Auditor's workflow")                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *key, *passphrase_file; /* a recipient key of the container */
    const char *policy;                /* the site policy (or `trust`) */
    const char *const *policy_keys;
    unsigned n_policy_keys;
    const char *state; /* read only: an audit never raises the rollback state */
    const char *const *trust;
    unsigned n_trust;
    const char *const *trust_cas, *const *crls, *const *identities; /* as tseal_verify_opts */
    unsigned n_trust_cas, n_crls, n_identities;
    const char *reference; /* original model folder (or .safetensors file) */
    const char *device;    /* "cpu", "gpu" or "auto" (NULL) */
    const char *report;    /* signed report to write */
    const char *audit_key, *audit_passphrase_file; /* the auditor's signing key */
    unsigned threads;
    tseal_progress_fn progress;
    void *progress_ctx;
    const uint8_t *test_nonce; /* tests only: 16 bytes, and the time */
    int64_t test_time;
} tseal_audit_opts;

typedef struct {
    int passed;
    char device[8];
    uint32_t tensors, tensors_ok, files, files_ok, reference_mismatches;
    char first_failure[512];
} tseal_audit_result;

/*
 * Decode every tensor (CPU, locked memory; nothing decoded is written to disk), check each
 * against its signed digest, each rebuilt file against its signed SHA-256 and, with a
 * reference, against the original files; run the policy gate; write a signed report (also
 * when the audit fails, once the artifact could be identified). Returns 0 if it passed,
 * TSEAL_E_VERIFY naming the first problem otherwise.
 */
int tseal_audit(const char *path, const tseal_audit_opts *opts, tseal_audit_result *res);

typedef struct {
    int passed;
    char model_id[257];
    uint64_t version;
    char artifact_digest[65], model_root[65], auditor_key_id[33], policy_id[129];
    char time[32], device[8];
    uint32_t tensors, failures;
    char first_failure[512];
} tseal_report_info;

/* Check a report's signatures (one by a trusted auditor key) and read it. TSEAL_E_VERIFY if
 * any byte was changed, or if the authentic report records a failed audit. */
int tseal_audit_verify(const char *report, const char *const *trust, unsigned n_trust,
                       tseal_report_info *info);

/* ------------------------------------------------------------------------------------------ */
/* Model tools: dtype conversion and the synthetic sample model                               */
/* ------------------------------------------------------------------------------------------ */

/*
 * Write a copy of safetensors file `in_path` at `out_path` whose F32 and F16 tensors are
 * converted to BF16 (round to nearest even; NaN stays NaN); other dtypes and __metadata__ are
 * copied unchanged. Streams tensor by tensor; output is written atomically (temp + rename).
 */
int tseal_convert_to_bf16(const char *in_path, const char *out_path);

/* Synthetic Llama-architecture model presets: "tiny" (~2M params, tests and demo),
 * "small" (~60M, benchmarks), "1b" (~1.2B, end-to-end and memory benchmarks). */
typedef struct {
    const char *preset; /* NULL = "tiny" */
    uint64_t seed;      /* same seed, same bytes */
    unsigned shards;    /* 0 or 1: model.safetensors; N > 1: sharded with an index */
} tseal_synth_opts;

/*
 * Create directory `dir` (must not exist or be empty) holding a deterministic BF16 model:
 * config.json (LlamaForCausalLM), model.safetensors (or shards + model.safetensors.index.json),
 * generation_config.json. Weights are N(0, sigma) with realistic per-layer-type sigmas; norms
 * are near 1; embeddings N(0, 0.02).
 */
int tseal_synth_model(const char *dir, const tseal_synth_opts *opts);

/* ------------------------------------------------------------------------------------------ */
/* Utilities shared by the tools                                                              */
/* ------------------------------------------------------------------------------------------ */

/* Round-to-nearest-even F32 -> BF16 (NaN stays NaN, quieted) and exact widenings. */
uint16_t tseal_f32_to_bf16(float f);
float tseal_bf16_to_f32(uint16_t h);
float tseal_f16_to_f32(uint16_t h);

/* Online CPU count (at least 1). */
unsigned tseal_cpu_count(void);
/* Monotonic clock in seconds. */
double tseal_now(void);

/* ------------------------------------------------------------------------------------------ */
/* GPU (kernels/; without CUDA every call returns TSEAL_E_NO_GPU)                             */
/* ------------------------------------------------------------------------------------------ */

/* 1 if tseal was built with CUDA, else 0. */
int tseal_gpu_built(void);
/* Number of usable CUDA devices; 0 with a message in tseal_errmsg() when there is none. */
int tseal_gpu_device_count(void);
/* Make `device` current for the calling thread in tseal's CUDA runtime, for the calls that use
 * the current device (tseal_gpu_gemv_ref, tseal_gpu_malloc's copies): a binding whose framework
 * bundles its own runtime (PyTorch) cannot set it otherwise. */
int tseal_gpu_set_device(int device);

/* A coded tensor resident on a GPU (kernels/decode.cu): its sections and its decode table. */
typedef struct tseal_gpu_tensor tseal_gpu_tensor;

/*
 * Copy a validated coded tensor (tseal_codec_view) to device `device`: sections + decode table.
 * The view's blob may be freed afterwards. TSEAL_E_NO_GPU without a device, TSEAL_E_INVAL for a
 * device that does not exist or a view whose geometry is inconsistent, TSEAL_E_NOMEM when the
 * device is out of memory, TSEAL_E_CUDA for other CUDA failures (message names the call).
 */
int tseal_gpu_tensor_upload(const tseal_ct_view *view, int device, tseal_gpu_tensor **out);

/*
 * Decode into `dst` (device memory of the tensor's device, n_elems BF16 values, 2-byte aligned;
 * RAW: n_elems * elem_size bytes) on `stream` (a cudaStream_t, NULL = default). Synchronous
 * error reporting: the call waits for the stream and returns TSEAL_E_CORRUPT if any segment did
 * not end exactly (dst is then unspecified). 16-byte aligned destinations are written with
 * 16-byte stores. Thread-safe; decodes of one tensor run one at a time. n_elems == 0: no-op.
 */
int tseal_gpu_tensor_decode(const tseal_gpu_tensor *t, void *dst, void *stream);
/* How tseal_gpu_tensor_decode writes a coded tensor's output, for benchmarks and tests (same
 * bytes either way; process-wide, for the decodes that follow): 1 each thread stores its own
 * 16-byte chunks; 2 the chunks are staged in shared memory and each warp writes whole 128-byte
 * runs (only where every chunk is whole and aligned: 16-byte aligned dst, cols % 8 == 0; else
 * as 1); 0 automatic (the default: 2). */
void tseal_gpu_decode_tune(unsigned stores);

void tseal_gpu_tensor_free(tseal_gpu_tensor *t);
/* Device memory held by the tensor (0 for NULL). */
uint64_t tseal_gpu_tensor_device_bytes(const tseal_gpu_tensor *t);

/*
 * Plain device memory for C callers built without the CUDA headers (tests, the CLI). Copies and
 * memset are synchronous (legacy default stream); tseal_gpu_mem_free(NULL) is a no-op.
 */
int tseal_gpu_malloc(int device, size_t bytes, void **out);
void tseal_gpu_mem_free(void *dev_ptr);
int tseal_gpu_memcpy_h2d(void *dev_dst, const void *host_src, size_t bytes);
int tseal_gpu_memcpy_d2h(void *host_dst, const void *dev_src, size_t bytes);
int tseal_gpu_memset(void *dev_ptr, int value, size_t bytes);

/* ------------------------------------------------------------------------------------------ */
/* Loader: open a verified artifact, read its tensors, load them onto a GPU (loader/)         */
/* ------------------------------------------------------------------------------------------ */

/* A verified, decryptable artifact: signatures (or the policy), expiry and the key were checked
 * and the manifest decrypted. Tensor bytes are read, checked against the signed chunk hashes,
 * authenticated and decrypted on demand. Safe to use from several threads. */
typedef struct tseal_artifact tseal_artifact;

/*
 * Open `path` for reading with the recipient key opts->key (required) and the trust of
 * tseal_verify_opts (trusted keys, CAs or a policy; a policy's rollback state is checked but
 * never raised here: `tseal verify --state` raises it). Reads only the header, the signature
 * block and the manifest; TSEAL_E_VERIFY / TSEAL_E_DENIED as tseal_verify.
 */
int tseal_open(const char *path, const tseal_verify_opts *opts, tseal_artifact **out);
void tseal_close(tseal_artifact *a);

typedef struct {
    const char *name; /* valid while the artifact is open */
    tseal_dtype dtype;
    uint32_t rank;
    uint64_t shape[TSEAL_MAX_RANK];
    uint64_t n_elems;
    uint64_t bytes;       /* original (decoded) bytes */
    uint64_t rows, cols;  /* coded tensors: the segmentation geometry; else 0 */
    int coded;            /* 1: exponent-coded (BF16); 0: stored as raw bytes */
    uint64_t coded_bytes; /* bytes of its stored (compressed) form */
    const char *file;     /* the safetensors file it came from */
    uint8_t sha256[32];   /* signed tree digest of its original bytes (docs/FORMAT.md 5.5) */
} tseal_tensor_info;

const char *tseal_artifact_model_id(const tseal_artifact *a);
uint64_t tseal_artifact_version(const tseal_artifact *a);
size_t tseal_artifact_tensor_count(const tseal_artifact *a);
int tseal_artifact_tensor_info(const tseal_artifact *a, size_t i, tseal_tensor_info *info);
/* TSEAL_E_NOTFOUND if no tensor has that name. */
int tseal_artifact_find(const tseal_artifact *a, const char *name, size_t *index);

/*
 * Decode tensor i into `dst` (info.bytes bytes, host memory; use locked memory for weights,
 * e.g. tseal_secure_buffer) with `threads` decoder threads (0 = all CPUs), and check the result
 * against the signed digest; on any failure dst is wiped. Temporaries are wiped.
 */
int tseal_artifact_read_tensor(tseal_artifact *a, size_t i, void *dst, uint64_t dst_len,
                               unsigned threads);
/* Rows [row_begin, row_end) of a coded tensor's rows x cols geometry (no digest check: the
 * digest covers the whole tensor; the chunks read are authenticated). For tensor-parallel
 * slices and bounded buffers. */
int tseal_artifact_read_rows(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                             void *dst, uint64_t dst_len, unsigned threads);

/* Files of the original model (safetensors files and other files such as config.json). */
size_t tseal_artifact_file_count(const tseal_artifact *a);
/* Path relative to the model folder, size, and 1 for a safetensors file (rebuilt from tensors). */
int tseal_artifact_file_info(const tseal_artifact *a, size_t i, const char **path, uint64_t *size,
                             int *is_safetensors);
/* Contents of a non-safetensors file (config.json, tokenizer files) into a heap buffer (freed
 * with tseal_buf_free), checked against its signed SHA-256; at most `max` bytes (else
 * TSEAL_E_LIMIT). TSEAL_E_NOTFOUND for an unknown path. */
int tseal_artifact_read_file(tseal_artifact *a, const char *path, uint64_t max, tseal_buf *out);

/* Locked, wiped-on-free host memory for plaintext (sodium_malloc). NULL when out of memory. */
void *tseal_secure_buffer(size_t bytes);
void tseal_secure_buffer_free(void *p);

/* A model loaded onto a GPU: every tensor resident there in its compressed form. */
typedef struct tseal_gpu_model tseal_gpu_model;

typedef struct {
    int device;              /* CUDA device ordinal */
    unsigned threads;        /* CPU threads for hashing and decryption (0 = all) */
    uint64_t staging_bytes;  /* each of the two pinned staging buffers (0 = 64 MiB) */
    const char *const *only; /* if n_only: load just these tensors */
    unsigned n_only;
    tseal_progress_fn progress;
    void *progress_ctx;
    /* Default suite: copy each coded tensor's checked ciphertext to the GPU and decrypt it
     * there (ChaCha20 kernel), so that the host never holds its plaintext, not even
     * compressed; only the chunks holding a blob's header and index are also decrypted on the
     * host, to validate the blob. FIPS-suite artifacts and raw tensors use the host path. */
    int decrypt_on_gpu;
} tseal_gpu_load_opts;

typedef struct {
    uint32_t tensors;
    uint64_t compressed_bytes; /* plaintext bytes copied to the device */
    uint64_t device_bytes;     /* device memory held by the loaded tensors */
    uint64_t original_bytes;   /* BF16 (decoded) size of the loaded tensors */
    uint64_t staging_bytes;    /* pinned host memory used (both buffers) */
    double seconds;            /* wall time of tseal_gpu_load */
    /* decrypt_seconds: reading, hashing and decrypting (one step per piece, so read_seconds
     * stays 0); copy_wait_seconds: waiting for a staging buffer's copy to finish */
    double read_seconds, decrypt_seconds, copy_wait_seconds;
} tseal_gpu_load_report;

/*
 * Load the artifact's tensors onto GPU opts->device: each segment's ciphertext chunks are read,
 * checked against the signed hashes and decrypted (all CPU threads) into one of two pinned
 * staging buffers while the other is copied to the device on a stream; staging is wiped after
 * use and freed. Only compressed plaintext ever exists in host memory. TSEAL_E_NO_GPU without a
 * device (message says so). `report` may be NULL.
 */
int tseal_gpu_load(tseal_artifact *a, const tseal_gpu_load_opts *opts, tseal_gpu_model **out,
                   tseal_gpu_load_report *report);
void tseal_gpu_free(tseal_gpu_model *m);

/*
 * Tensor parallelism: rows [row_begin, row_end) of coded tensor i onto GPU `device`, still
 * compressed (cut from the compressed streams on the host: tseal_codec_slice_rows; the
 * segment's chunks are checked and decrypted into locked memory, wiped after the upload).
 * Free with tseal_gpu_tensor_free. TSEAL_E_UNSUPPORTED for a tensor stored raw.
 */
int tseal_gpu_load_rows(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                        int device, tseal_gpu_tensor **out);
/* Rows x columns (columns as tseal_codec_slice requires): row-parallel slices. */
int tseal_gpu_load_slice(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                         uint64_t col_begin, uint64_t col_end, int device, tseal_gpu_tensor **out);

/* Decode every loaded tensor on the GPU and check it against its signed digest: the decoded
 * bytes come back 16 MiB at a time into locked host memory for hashing and are wiped there
 * (and on the device). For demos and acceptance checks; `tseal audit --device gpu` is the
 * auditable form. TSEAL_E_VERIFY names the first tensor that differs. */
int tseal_gpu_model_check(const tseal_artifact *a, const tseal_gpu_model *m, uint32_t *n_checked);

size_t tseal_gpu_model_count(const tseal_gpu_model *m);
/* The loaded tensor i (in the order of tseal_artifact_tensor_info); NULL if out of range. */
const tseal_gpu_tensor *tseal_gpu_model_tensor(const tseal_gpu_model *m, size_t i);
/* By name; NULL if absent (with a message). */
const tseal_gpu_tensor *tseal_gpu_model_find(const tseal_gpu_model *m, const char *name);
const char *tseal_gpu_tensor_name(const tseal_gpu_tensor *t);
/* Decoded (BF16 / original) size in bytes, and rows x cols geometry (cols = last dim). */
uint64_t tseal_gpu_tensor_bytes(const tseal_gpu_tensor *t);
void tseal_gpu_tensor_shape(const tseal_gpu_tensor *t, uint64_t *rows, uint64_t *cols);

/* Decode one loaded tensor into `dst` (device memory, tseal_gpu_tensor_bytes bytes) on `stream`
 * (cudaStream_t, NULL = default): bit-exact with the C reference decoder. Raw tensors are
 * copied. Errors as tseal_gpu_tensor_decode. */
int tseal_gpu_decode_bf16(const tseal_gpu_tensor *t, void *dst, void *stream);
/* The same, enqueued on `stream` without waiting (serving: decode layer i+1 while layer i
 * runs). A segment that does not decode exactly is not reported (the loaded blob was
 * validated, and its chunks authenticated, at load; tseal_gpu_model_check checks the output). */
int tseal_gpu_decode_bf16_async(const tseal_gpu_tensor *t, void *dst, void *stream);

/*
 * y[b] = W x[b] for b < batch (1..16): W the loaded N x K BF16 tensor (rows x cols, row-major as
 * nn.Linear.weight), x batch x K and y batch x N BF16 in device memory, FP32 accumulation.
 * Decodes the weights in registers/shared memory (never to device memory). Bitwise
 * deterministic, and bit-identical to tseal_gpu_gemv_ref on the decoded weights (reduction
 * order: kernels/gemv.cuh). TSEAL_E_UNSUPPORTED for a tensor that is not 2-D BF16.
 */
int tseal_gpu_gemv(const tseal_gpu_tensor *t, const void *x, void *y, unsigned batch, void *stream);

/* ---- fused GEMV: details, asynchronous form, reference kernel (kernels/gemv.cu, docs/GEMV.md)
 *
 * tseal_gpu_gemv in detail: x (batch x K) and y (batch x N) are device memory of the tensor's
 * device, 2-byte aligned and not overlapping (16-byte aligned x with K % 8 == 0 takes 16-byte
 * loads; same bits either way). The call waits for `stream` and returns TSEAL_E_CORRUPT (the
 * message names the first bad segment; y unspecified) if a segment did not decode exactly;
 * calls on one tensor are serialised like tseal_gpu_tensor_decode. TSEAL_E_INVAL: NULL
 * pointer, batch 0 or > TSEAL_GEMV_MAX_BATCH, misaligned, overlapping or host buffers;
 * TSEAL_E_UNSUPPORTED: a RAW tensor whose elements are not 2 bytes (RAW 2-byte elements are
 * taken as BF16). N == 0: nothing; K == 0: y = +0. NaN: any NaN in a row's sum (NaN weight or
 * x, inf * 0, inf - inf) gives 0x7FC0. */
#define TSEAL_GEMV_MAX_BATCH 16
/* Segment size (log2) of the reduction order for tensors without segments (RAW, CONST). */
#define TSEAL_GEMV_FLAT_SEG_LOG2 8

/* The segment size (log2) that fixes the reduction order of tseal_gpu_gemv on `t`: the
 * tensor's own for HUFF, TSEAL_GEMV_FLAT_SEG_LOG2 for RAW and CONST; 0 for NULL. Pass it to
 * tseal_gpu_gemv_ref to get the same bits from the uncompressed weights. */
unsigned tseal_gpu_gemv_seg_log2(const tseal_gpu_tensor *t);

/* Asynchronous tseal_gpu_gemv for serving: checks the arguments (not where x and y live),
 * enqueues on `stream` and returns; concurrent calls (any streams, same tensor) are fine.
 * A segment that does not decode exactly is not reported: its row's outputs become 0x7FC0
 * (check a tensor once with tseal_gpu_gemv or tseal_gpu_tensor_decode). Rows split over
 * several warp tasks use a stream-ordered scratch buffer (cudaMallocAsync). */
int tseal_gpu_gemv_async(const tseal_gpu_tensor *t, const void *x, void *y, unsigned batch,
                         void *stream);

/* The project's BF16 GEMV reference kernel: y = W x for plain row-major BF16 weights `w_bf16`
 * (n x k, device memory of the current device), in the reduction order of segments of
 * 2^seg_log2 columns (TSEAL_SEG_LOG2_MIN..MAX), asynchronous on `stream`. Same arguments
 * rules as tseal_gpu_gemv_async. */
int tseal_gpu_gemv_ref(const void *w_bf16, uint64_t n, uint64_t k, unsigned seg_log2, const void *x,
                       void *y, unsigned batch, void *stream);

/* How tseal_gpu_gemv cuts its work (docs/GEMV.md, "Kernel design"), for benchmarks and tests:
 * every setting gives the same bits, and the defaults suit. Process-wide, for the launches that
 * follow. tile_log2: tiles of 2^tile_log2 segments for rows longer than 32 segments, 3..5, or
 * 0 automatic (the default; other values are taken as 0). rows_per_lane: 1, 2 (where a pair
 * kernel exists: coded tensors at batch <= 8, and the plan allows it), or 0 automatic (the
 * default: 2 at batch 3..8). */
void tseal_gpu_gemv_tune(unsigned tile_log2, unsigned rows_per_lane);

#ifdef __cplusplus
}
#endif
#endif /* TSEAL_H */
