/*
 * container.h - the signed, encrypted container (layout: docs/FORMAT.md section 5).
 * Internal to the library: pack, inspect, verify, unpack and the loader share it.
 *
 * File:
 *   offset      size  field
 *   0           8     magic "TSEAL\0\r\n"
 *   8           4     header length H (u32, TSEAL_HDR_MIN..TSEAL_HDR_MAX)
 *   12          H     public header (below); signed
 *   12+H        4     signature block length S (u32, <= TSEAL_SIGBLOCK_MAX)
 *   16+H        S     signature block (below)
 *   P = 16+H+S        payload: segment i at P + offset_i; the file ends at P + payload_bytes
 *
 * Public header (little-endian):
 *   0    2   format_version (1)          52   2   recipient_count R (1..64)
 *   2    2   suite (1 or 2)              54   2   model_id length M (1..256)
 *   4    4   flags (0: no critical extension is defined)
 *   8    16  container_id (random)       56   4   segment_count N
 *   24   8   created (unix s)            60   16  signer_key_id (primary signer)
 *   32   8   expires (unix s, 0 = never) 76   32  key_commitment
 *   40   8   model version               108  8   payload_bytes
 *   48   4   chunk_size (2^12..2^24)     116  8   original_bytes
 *                                        124  4   reserved (0)
 *   128  M   model_id (UTF-8, printable)
 *   ...  ZR  recipient stanzas: type(1) = 1 X25519 / 2 P-256 | reserved(3) |
 *             recipient key_id(16) | ephemeral public key(32 / 65) | wrapped content key(48);
 *             Z = 100 (suite 1) or 133 (suite 2)
 *   ...  64N segment entries: kind(1) | reserved(3) | chunk_count(4) | offset(8) |
 *             plaintext_len(8) | chunk_list_hash(32) | reserved(8)
 *   H == 128 + M + ZR + 64N exactly.
 *
 * Segment i on disk: its chunks (chunk j: min(chunk_size, rest) plaintext bytes + 16-byte tag),
 * then the chunk hash list (chunk_count x SHA-256 of each chunk's ciphertext); the header
 * holds SHA-256 of that list. chunk_count = max(1, ceil(plaintext_len / chunk_size)).
 * Keys: segment key = HKDF-SHA256(content_key, salt = container_id, info = "tseal v1 segment"
 * || u32be(i)); nonce of chunk j = u64be(j) || u32be(last ? 1 : 0); AD = container_id ||
 * u32be(i) || kind. Key commitment = HKDF-SHA256(content_key, container_id,
 * "tseal v1 key commitment"). Chunks: ChaCha20-Poly1305 (suite 1), AES-256-GCM (suite 2).
 *
 * Signature block: count K (u16, 1..16) | reserved (u16, 0) | K entries, one after the other:
 *   suite 1: alg(1) = 1 Ed25519 | reserved(3) | key_id(16) | public key(32) | signature(64)
 *   suite 2: alg(1) = 3 ECDSA P-256 | reserved(3) | key_id(16) | r || s (64) |
 *            chain_len (u32) | certificates (u32be length || DER each, leaf first)
 * each over the message "TSEAL-SIG-V1" 0 "tseal/container-header" 0 SHA-256(header).
 */
#ifndef TSEAL_CONTAINER_H
#define TSEAL_CONTAINER_H

#include <stdint.h>

#include "tseal.h"
#include "tseal_crypto.h"
#include "tseal_fips.h"

#define TSEAL_MAGIC          "TSEAL\0\r\n"
#define TSEAL_MAGIC_BYTES    8
#define TSEAL_FORMAT_VERSION 1
#define TSEAL_HDR_FIXED      128
#define TSEAL_STANZA_BYTES   100 /* suite 1: X25519 stanza */
#define TSEAL_STANZA_BYTES_FIPS                                                                    \
    133 /* suite 2: type | reserved(3) | key_id | P-256 point(65) | wrapped */
#define TSEAL_SEGENT_BYTES   64
#define TSEAL_HDR_MIN        (TSEAL_HDR_FIXED + 1 + TSEAL_STANZA_BYTES + TSEAL_SEGENT_BYTES)
#define TSEAL_HDR_MAX        (64u << 20)
#define TSEAL_MAX_RECIPIENTS 64
#define TSEAL_MAX_MODEL_ID   256
#define TSEAL_MAX_SEGMENTS   ((TSEAL_HDR_MAX - TSEAL_HDR_FIXED) / TSEAL_SEGENT_BYTES)
#define TSEAL_SIGENT_BYTES   116 /* alg 1 (Ed25519) entry */
#define TSEAL_SIGENT_ECDSA_FIXED                                                                   \
    88 /* alg 2 (ECDSA P-256): then chain_len bytes of certificates                                \
        */
#define TSEAL_ALG_SIG_ECDSA_P256 TSEAL_ALG_P256 /* = 3, the key alg code */
#define TSEAL_MAX_SIGNATURES     16
#define TSEAL_SIGBLOCK_MAX                                                                         \
    (4 + TSEAL_MAX_SIGNATURES * (TSEAL_SIGENT_ECDSA_FIXED + TSEAL_X509_MAX_CHAIN_BYTES))
#define TSEAL_CHUNK_MIN       (1u << 12)
#define TSEAL_CHUNK_MAX       (1u << 24)
#define TSEAL_CHUNK_DEFAULT   (1u << 16)
#define TSEAL_SIG_TYPE_HEADER "tseal/container-header"

enum {
    TSEAL_SEG_MANIFEST = 1,
    TSEAL_SEG_TENSOR = 2,
    TSEAL_SEG_FILE_HEADER = 3,
    TSEAL_SEG_BLOB = 4
};

typedef struct {
    uint8_t kind;
    uint32_t chunk_count;
    uint64_t offset; /* relative to the payload start */
    uint64_t pt_len;
    uint8_t list_hash[TSEAL_HASH_BYTES];
} tseal_segment;

typedef struct {
    uint8_t key_id[TSEAL_KEY_ID_BYTES];
    uint8_t eph_pk[TSEAL_PK_MAX_BYTES]; /* 32 bytes (X25519) or 65 (P-256) */
    uint8_t wrapped[TSEAL_WRAPPED_KEY_BYTES];
} tseal_stanza;

typedef struct {
    uint8_t alg; /* 1 Ed25519, 2 ECDSA P-256 (suite 2) */
    uint8_t key_id[TSEAL_KEY_ID_BYTES];
    uint8_t pk[TSEAL_PK_MAX_BYTES]; /* Ed25519 key, or the leaf certificate's P-256 key */
    uint8_t sig[TSEAL_SIG_BYTES];   /* Ed25519, or raw ECDSA r || s */
    uint8_t *chain_der;             /* alg 2: the certificates as carried (malloc'd) */
    uint32_t chain_len;
    tseal_x509_chain *chain; /* alg 2: parsed */
} tseal_sigent;

typedef struct {
    uint16_t format_version, suite;
    uint32_t flags;
    uint8_t container_id[16];
    int64_t created, expires;
    uint64_t model_version;
    uint32_t chunk_size;
    char model_id[TSEAL_MAX_MODEL_ID + 1];
    uint8_t signer_key_id[TSEAL_KEY_ID_BYTES];
    uint8_t key_commitment[TSEAL_HASH_BYTES];
    uint64_t payload_bytes, original_bytes;
    uint32_t n_recipients;
    tseal_stanza *stanzas;
    uint32_t n_segments;
    tseal_segment *segments;
} tseal_header;

/* Valid UTF-8 without C0 or C1 control characters (model ids: they reach terminals). */
int tseal_text_printable(const uint8_t *s, size_t n);

/* Bytes of one recipient stanza in a container of `suite`. */
uint32_t tseal_stanza_bytes(uint16_t suite);
/* The suite's name (what policies allow), e.g. "ed25519-x25519-chacha20poly1305-sha256". */
const char *tseal_suite_name(uint16_t suite);

/* Chunk AEAD of a suite: ChaCha20-Poly1305 (1) or AES-256-GCM (2); same sizes. */
int tseal_suite_seal(uint16_t suite, uint8_t *ct, const uint8_t *pt, size_t pt_len,
                     const uint8_t *ad, size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                     const uint8_t *key);
int tseal_suite_open(uint16_t suite, uint8_t *pt, const uint8_t *ct, size_t ct_len,
                     const uint8_t *ad, size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                     const uint8_t *key);

/* Sizes of a segment on disk. */
uint32_t tseal_seg_chunk_count(uint64_t pt_len, uint32_t chunk_size);
uint64_t tseal_seg_ct_len(uint64_t pt_len, uint32_t chunk_count);

/* Header <-> bytes. Parsing checks every field, limit and the segment table's contiguity. */
uint64_t tseal_header_size(const tseal_header *h);
int tseal_header_write(const tseal_header *h, uint8_t *out, uint64_t size);
int tseal_header_parse(const uint8_t *b, uint64_t len, const char *label, tseal_header *h);
void tseal_header_free(tseal_header *h);

/* An open container: header and signatures parsed from one read of the file. */
typedef struct {
    char *path;
    int fd;
    uint64_t file_size;
    uint8_t *header_bytes; /* H bytes as read (what the signatures cover) */
    uint64_t header_len;
    uint8_t header_digest[TSEAL_HASH_BYTES];
    tseal_header h;
    uint32_t n_sigs;
    tseal_sigent sigs[TSEAL_MAX_SIGNATURES];
    uint64_t payload_start;
} tseal_container;

int tseal_container_open(const char *path, tseal_container **out);
/* Same checks over an in-memory image (fuzzing); the image must outlive the handle. */
int tseal_container_parse_mem(const uint8_t *buf, uint64_t len, const char *label,
                              tseal_container **out);
void tseal_container_close(tseal_container *c);

/*
 * Check every signature (an invalid one fails the whole container: extra signatures never
 * widen anything) and count those by `trusted` keys. With n_trusted == 0 only the signatures'
 * own consistency is checked. Returns TSEAL_E_VERIFY unless >= 1 valid signature is trusted
 * (or n_trusted == 0). *n_trusted_ok may be NULL.
 */
int tseal_container_check_signatures(const tseal_container *c, const tseal_pubkey *trusted,
                                     unsigned n_trusted, unsigned *n_trusted_ok);
/* CA trust for X.509 signers (suite 2): a signature counts as trusted when its chain verifies
 * against `store` at time `at` and, if identities are given, its leaf matches one of them
 * (tseal_x509_identity_matches patterns). */
typedef struct {
    const tseal_x509_trust *store;
    const char *const *identities;
    unsigned n_identities;
    int64_t at;
} tseal_ca_trust;

/* tseal_container_check_signatures, where signers whose chains `cas` accepts (cas may be
 * NULL) are trusted too. When no signature is trusted, the error says why the first chain
 * was refused (expired, revoked, other CA, identity). */
int tseal_container_check_signatures_ca(const tseal_container *c, const tseal_pubkey *trusted,
                                        unsigned n_trusted, const tseal_ca_trust *cas,
                                        unsigned *n_trusted_ok);

/* Unwrap the content key with a recipient key and check the key commitment. */
int tseal_container_unwrap(const tseal_container *c, const tseal_seckey *recipient,
                           uint8_t content_key[TSEAL_SYM_KEY_BYTES]);

/* Key schedule. */
int tseal_segment_key(const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                      const uint8_t container_id[16], uint32_t index,
                      uint8_t key[TSEAL_SYM_KEY_BYTES]);
int tseal_key_commitment(const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                         const uint8_t container_id[16], uint8_t out[TSEAL_HASH_BYTES]);
void tseal_chunk_nonce(uint64_t chunk, int last, uint8_t nonce[TSEAL_AEAD_NONCE_BYTES]);
#define TSEAL_CHUNK_AD_BYTES 21
void tseal_chunk_ad(const uint8_t container_id[16], uint32_t index, uint8_t kind,
                    uint8_t ad[TSEAL_CHUNK_AD_BYTES]);

/*
 * Segment reader: reads and checks the chunk hash list against the signed header once, then
 * each chunk is read into memory, hashed and compared with its list entry, and (if a key is
 * set) decrypted from those same bytes. Nothing unverified is ever decrypted or released.
 */
typedef struct {
    const tseal_container *c;
    uint32_t index;
    const tseal_segment *seg;
    uint8_t *list; /* chunk_count hashes */
    uint8_t *ct;   /* one chunk of ciphertext */
    uint8_t *key;  /* secure memory, or NULL for hash-only verification */
    uint32_t next_chunk;
} tseal_segreader;

int tseal_segreader_open(tseal_segreader *r, const tseal_container *c, uint32_t index,
                         const uint8_t *content_key);
/* Next chunk: `pt` (chunk_size bytes, secure memory) receives the plaintext when a key is set;
 * *len its length. Returns 1 when a chunk was produced, 0 at the end, < 0 on error. */
int tseal_segreader_next(tseal_segreader *r, uint8_t *pt, uint64_t *len);
void tseal_segreader_close(tseal_segreader *r);

/* Chunks [chunk0, chunk0 + n_chunks) of an open reader's segment (with a key), each checked
 * against the signed list and decrypted, on `nthreads` threads, into `out` (the plaintext of
 * those chunks; wiped on failure). The reader's sequential position is not used or moved. */
int tseal_segreader_decrypt_range(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks,
                                  uint8_t *out, unsigned nthreads);
/* The same chunks checked against the signed list but not decrypted: their ciphertext, tags
 * dropped, back to back in `out` (for decryption on a GPU; a failure wipes nothing secret). */
int tseal_segreader_read_range(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks,
                               uint8_t *out, unsigned nthreads);

/*
 * A whole segment at once, chunks checked and decrypted on `nthreads` threads (0 = all
 * CPUs): `out` (plaintext_len bytes, secure memory) receives the plaintext, and nothing of it
 * is valid unless 0 is returned (on failure it is wiped).
 */
int tseal_segment_decrypt_all(const tseal_container *c, uint32_t index, const uint8_t *content_key,
                              uint8_t *out, unsigned nthreads);

/*
 * Encrypt a whole plaintext segment (its length known) on `nthreads` threads: `ct` receives
 * tseal_seg_ct_len bytes laid out as on disk (chunks, then the hash list), `list_hash` the
 * SHA-256 of the hash list.
 */
int tseal_segment_encrypt_all(uint16_t suite, const uint8_t *key, const uint8_t container_id[16],
                              uint32_t index, uint8_t kind, uint32_t chunk_size, const uint8_t *pt,
                              uint64_t pt_len, uint8_t *ct, uint8_t list_hash[TSEAL_HASH_BYTES],
                              unsigned nthreads);

#endif
