/*
 * container.c - public header and signature block (de)serialisation, signature and key
 * checks, the key schedule and the verifying segment reader (layout: container.h and
 * docs/FORMAT.md section 5). Every byte read from a container is hostile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"

/* ---- sizes ---------------------------------------------------------------------------- */

uint32_t tseal_seg_chunk_count(uint64_t pt_len, uint32_t chunk_size) {
    uint64_t n = pt_len / chunk_size + (pt_len % chunk_size != 0);
    return n == 0 ? 1 : (uint32_t)n;
}

uint64_t tseal_seg_ct_len(uint64_t pt_len, uint32_t chunk_count) {
    return pt_len + (uint64_t)chunk_count * (TSEAL_AEAD_TAG_BYTES + TSEAL_HASH_BYTES);
}

uint32_t tseal_stanza_bytes(uint16_t suite) {
    return suite == TSEAL_SUITE_FIPS ? TSEAL_STANZA_BYTES_FIPS : TSEAL_STANZA_BYTES;
}

const char *tseal_suite_name(uint16_t suite) {
    switch (suite) {
    case TSEAL_SUITE_V1:
        return "ed25519-x25519-chacha20poly1305-sha256";
    case TSEAL_SUITE_FIPS:
        return "fips-p256-aes256gcm-sha256";
    default:
        return "unknown";
    }
}

/* Ephemeral public key bytes in a stanza of `suite`. */
static uint32_t eph_bytes(uint16_t suite) {
    return suite == TSEAL_SUITE_FIPS ? TSEAL_P256_PK_BYTES : TSEAL_PK_BYTES;
}

int tseal_suite_seal(uint16_t suite, uint8_t *ct, const uint8_t *pt, size_t pt_len,
                     const uint8_t *ad, size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                     const uint8_t *key) {
    if (suite == TSEAL_SUITE_FIPS)
        return tseal_aesgcm_encrypt(ct, pt, pt_len, ad, ad_len, nonce, key);
    return tseal_aead_encrypt(ct, pt, pt_len, ad, ad_len, nonce, key);
}

int tseal_suite_open(uint16_t suite, uint8_t *pt, const uint8_t *ct, size_t ct_len,
                     const uint8_t *ad, size_t ad_len, const uint8_t nonce[TSEAL_AEAD_NONCE_BYTES],
                     const uint8_t *key) {
    if (suite == TSEAL_SUITE_FIPS)
        return tseal_aesgcm_decrypt(pt, ct, ct_len, ad, ad_len, nonce, key);
    return tseal_aead_decrypt(pt, ct, ct_len, ad, ad_len, nonce, key);
}

uint64_t tseal_header_size(const tseal_header *h) {
    return TSEAL_HDR_FIXED + strlen(h->model_id) +
           (uint64_t)tseal_stanza_bytes(h->suite) * h->n_recipients +
           (uint64_t)TSEAL_SEGENT_BYTES * h->n_segments;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- header writer -------------------------------------------------------------------- */

int tseal_header_write(const tseal_header *h, uint8_t *b, uint64_t size) {
    size_t m = strlen(h->model_id);
    if (size != tseal_header_size(h)) return tseal_err(TSEAL_E_INTERNAL, "header size mismatch");
    memset(b, 0, size);
    put16(b, h->format_version);
    put16(b + 2, h->suite);
    tseal_store_le32(b + 4, h->flags);
    memcpy(b + 8, h->container_id, 16);
    tseal_store_le64(b + 24, (uint64_t)h->created);
    tseal_store_le64(b + 32, (uint64_t)h->expires);
    tseal_store_le64(b + 40, h->model_version);
    tseal_store_le32(b + 48, h->chunk_size);
    put16(b + 52, (uint16_t)h->n_recipients);
    put16(b + 54, (uint16_t)m);
    tseal_store_le32(b + 56, h->n_segments);
    memcpy(b + 60, h->signer_key_id, TSEAL_KEY_ID_BYTES);
    memcpy(b + 76, h->key_commitment, TSEAL_HASH_BYTES);
    tseal_store_le64(b + 108, h->payload_bytes);
    tseal_store_le64(b + 116, h->original_bytes);
    memcpy(b + TSEAL_HDR_FIXED, h->model_id, m);
    uint8_t *p = b + TSEAL_HDR_FIXED + m;
    uint32_t eb = eph_bytes(h->suite);
    for (uint32_t i = 0; i < h->n_recipients; i++, p += tseal_stanza_bytes(h->suite)) {
        p[0] = h->suite == TSEAL_SUITE_FIPS ? 2 : 1; /* stanza type: X25519 or P-256 */
        memcpy(p + 4, h->stanzas[i].key_id, TSEAL_KEY_ID_BYTES);
        memcpy(p + 20, h->stanzas[i].eph_pk, eb);
        memcpy(p + 20 + eb, h->stanzas[i].wrapped, TSEAL_WRAPPED_KEY_BYTES);
    }
    for (uint32_t i = 0; i < h->n_segments; i++, p += TSEAL_SEGENT_BYTES) {
        const tseal_segment *s = &h->segments[i];
        p[0] = s->kind;
        tseal_store_le32(p + 4, s->chunk_count);
        tseal_store_le64(p + 8, s->offset);
        tseal_store_le64(p + 16, s->pt_len);
        memcpy(p + 24, s->list_hash, TSEAL_HASH_BYTES);
    }
    return 0;
}

/* ---- header parser -------------------------------------------------------------------- */

static int hdr_err(const char *label, uint64_t off, const char *what) {
    return tseal_err(TSEAL_E_CORRUPT, "%s: header offset %llu: %s", label, (unsigned long long)off,
                     what);
}

int tseal_text_printable(const uint8_t *s, size_t n) {
    if (!tseal_utf8_valid(s, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7F) return 0;                  /* C0 controls, DEL */
        if (s[i] == 0xC2 && i + 1 < n && s[i + 1] < 0xA0) return 0; /* C1: U+0080..U+009F */
    }
    return 1;
}

static int parse_fixed(const uint8_t *b, uint64_t len, const char *label, tseal_header *h) {
    h->format_version = get16(b);
    h->suite = get16(b + 2);
    h->flags = tseal_load_le32(b + 4);
    if (h->format_version != TSEAL_FORMAT_VERSION)
        return tseal_err(TSEAL_E_UNSUPPORTED, "%s: unknown format version %u (this tseal reads %u)",
                         label, h->format_version, TSEAL_FORMAT_VERSION);
    if (h->suite != TSEAL_SUITE_V1 && h->suite != TSEAL_SUITE_FIPS)
        return tseal_err(TSEAL_E_UNSUPPORTED, "%s: unknown or unsupported cipher suite %u", label,
                         h->suite);
    if (h->flags != 0)
        return tseal_err(TSEAL_E_UNSUPPORTED, "%s: unknown critical flags 0x%08x", label, h->flags);
    memcpy(h->container_id, b + 8, 16);
    h->created = (int64_t)tseal_load_le64(b + 24);
    h->expires = (int64_t)tseal_load_le64(b + 32);
    h->model_version = tseal_load_le64(b + 40);
    h->chunk_size = tseal_load_le32(b + 48);
    h->n_recipients = get16(b + 52);
    size_t m = get16(b + 54);
    h->n_segments = tseal_load_le32(b + 56);
    memcpy(h->signer_key_id, b + 60, TSEAL_KEY_ID_BYTES);
    memcpy(h->key_commitment, b + 76, TSEAL_HASH_BYTES);
    h->payload_bytes = tseal_load_le64(b + 108);
    h->original_bytes = tseal_load_le64(b + 116);
    if (h->created < 0 || h->expires < 0) return hdr_err(label, 24, "negative time");
    if (h->chunk_size < TSEAL_CHUNK_MIN || h->chunk_size > TSEAL_CHUNK_MAX ||
        (h->chunk_size & (h->chunk_size - 1)))
        return hdr_err(label, 48, "chunk size is not a power of two in 4 KiB..16 MiB");
    if (h->n_recipients < 1 || h->n_recipients > TSEAL_MAX_RECIPIENTS)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %u recipient stanzas (allowed 1..%u)", label,
                         h->n_recipients, TSEAL_MAX_RECIPIENTS);
    if (m < 1 || m > TSEAL_MAX_MODEL_ID) return hdr_err(label, 54, "model id length out of range");
    if (h->n_segments < 2 || h->n_segments > TSEAL_MAX_SEGMENTS)
        return hdr_err(label, 56, "segment count out of range");
    if (!tseal_all_zero(b + 124, 4)) return hdr_err(label, 124, "nonzero reserved bytes");
    uint64_t want = TSEAL_HDR_FIXED + m + (uint64_t)tseal_stanza_bytes(h->suite) * h->n_recipients +
                    (uint64_t)TSEAL_SEGENT_BYTES * h->n_segments;
    if (len != want)
        return tseal_err(TSEAL_E_CORRUPT, "%s: header is %llu bytes, its counts say %llu", label,
                         (unsigned long long)len, (unsigned long long)want);
    if (!tseal_text_printable(b + TSEAL_HDR_FIXED, m))
        return hdr_err(label, TSEAL_HDR_FIXED, "model id is not printable UTF-8");
    memcpy(h->model_id, b + TSEAL_HDR_FIXED, m);
    h->model_id[m] = 0;
    return 0;
}

static int parse_stanzas(const uint8_t *b, uint64_t off, const char *label, tseal_header *h) {
    h->stanzas = calloc(h->n_recipients, sizeof *h->stanzas);
    if (!h->stanzas) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    uint32_t eb = eph_bytes(h->suite), type = h->suite == TSEAL_SUITE_FIPS ? 2 : 1;
    for (uint32_t i = 0; i < h->n_recipients; i++, off += tseal_stanza_bytes(h->suite)) {
        const uint8_t *p = b + off;
        if (p[0] != type)
            return hdr_err(label, off, "recipient stanza type does not match the suite");
        if (p[1] | p[2] | p[3])
            return hdr_err(label, off + 1, "nonzero reserved bytes in a stanza");
        memcpy(h->stanzas[i].key_id, p + 4, TSEAL_KEY_ID_BYTES);
        memcpy(h->stanzas[i].eph_pk, p + 20, eb);
        memcpy(h->stanzas[i].wrapped, p + 20 + eb, TSEAL_WRAPPED_KEY_BYTES);
        if (tseal_all_zero(p + 20, eb)) return hdr_err(label, off + 20, "all-zero ephemeral key");
        if (type == 2 && p[20] != 0x04)
            return hdr_err(label, off + 20, "ephemeral P-256 key is not an uncompressed point");
        for (uint32_t k = 0; k < i; k++)
            if (memcmp(h->stanzas[k].key_id, p + 4, TSEAL_KEY_ID_BYTES) == 0)
                return hdr_err(label, off + 4, "two stanzas for the same recipient");
    }
    return 0;
}

static int parse_segments(const uint8_t *b, uint64_t off, const char *label, tseal_header *h) {
    h->segments = calloc(h->n_segments, sizeof *h->segments);
    if (!h->segments) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    uint64_t pos = 0;
    for (uint32_t i = 0; i < h->n_segments; i++, off += TSEAL_SEGENT_BYTES) {
        const uint8_t *p = b + off;
        tseal_segment *s = &h->segments[i];
        s->kind = p[0];
        s->chunk_count = tseal_load_le32(p + 4);
        s->offset = tseal_load_le64(p + 8);
        s->pt_len = tseal_load_le64(p + 16);
        memcpy(s->list_hash, p + 24, TSEAL_HASH_BYTES);
        if (s->kind < TSEAL_SEG_MANIFEST || s->kind > TSEAL_SEG_BLOB)
            return hdr_err(label, off, "unknown segment kind");
        if ((s->kind == TSEAL_SEG_MANIFEST) != (i == h->n_segments - 1))
            return hdr_err(label, off, "the manifest must be the last segment, and the only one");
        if (!tseal_all_zero(p + 1, 3) || !tseal_all_zero(p + 56, 8))
            return hdr_err(label, off, "nonzero reserved bytes in a segment entry");
        if (s->pt_len > (UINT64_MAX >> 2))
            return hdr_err(label, off + 16, "segment length out of range");
        if (s->chunk_count != tseal_seg_chunk_count(s->pt_len, h->chunk_size))
            return tseal_err(TSEAL_E_CORRUPT,
                             "%s: segment %u: chunk count %u does not match its length %llu", label,
                             i, s->chunk_count, (unsigned long long)s->pt_len);
        if (s->offset != pos)
            return tseal_err(
                TSEAL_E_CORRUPT,
                "%s: segment %u: offset %llu, expected %llu (segments must be contiguous)", label,
                i, (unsigned long long)s->offset, (unsigned long long)pos);
        uint64_t ct = tseal_seg_ct_len(s->pt_len, s->chunk_count);
        if (tseal_add_ovf(pos, ct, &pos)) return hdr_err(label, off, "payload size overflows");
    }
    if (pos != h->payload_bytes)
        return tseal_err(TSEAL_E_CORRUPT, "%s: segments cover %llu payload bytes, header says %llu",
                         label, (unsigned long long)pos, (unsigned long long)h->payload_bytes);
    return 0;
}

int tseal_header_parse(const uint8_t *b, uint64_t len, const char *label, tseal_header *h) {
    memset(h, 0, sizeof *h);
    if (len < TSEAL_HDR_MIN || len > TSEAL_HDR_MAX)
        return hdr_err(label, 0, "header length out of range");
    int r = parse_fixed(b, len, label, h);
    uint64_t off = TSEAL_HDR_FIXED + strlen(h->model_id);
    if (!r) r = parse_stanzas(b, off, label, h);
    if (!r)
        r = parse_segments(b, off + (uint64_t)tseal_stanza_bytes(h->suite) * h->n_recipients, label,
                           h);
    if (r) tseal_header_free(h);
    return r;
}

void tseal_header_free(tseal_header *h) {
    free(h->stanzas);
    free(h->segments);
    h->stanzas = NULL;
    h->segments = NULL;
}

/* ---- opening ---------------------------------------------------------------------------- */

/* One Ed25519 entry (suite 1): alg | reserved(3) | key_id | public key | signature. */
static int parse_sig_ed25519(tseal_container *c, uint32_t i, const uint8_t *p, tseal_sigent *s) {
    memcpy(s->key_id, p + 4, TSEAL_KEY_ID_BYTES);
    memcpy(s->pk, p + 20, TSEAL_PK_BYTES);
    memcpy(s->sig, p + 52, TSEAL_SIG_BYTES);
    uint8_t id[TSEAL_KEY_ID_BYTES];
    tseal_key_id(TSEAL_ALG_ED25519, s->pk, id);
    if (memcmp(id, s->key_id, TSEAL_KEY_ID_BYTES) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: signature %u: key id does not match its public key",
                         c->path, i);
    return 0;
}

/* One ECDSA P-256 entry (suite 2): alg | reserved(3) | key_id | r || s | u32 chain_len |
 * certificates (leaf first); the key is the leaf certificate's. */
static int parse_sig_ecdsa(tseal_container *c, uint32_t i, const uint8_t *p, uint32_t chain_len,
                           tseal_sigent *s) {
    memcpy(s->key_id, p + 4, TSEAL_KEY_ID_BYTES);
    memcpy(s->sig, p + 20, TSEAL_ECDSA_SIG_BYTES);
    s->chain_der = malloc(chain_len ? chain_len : 1);
    if (!s->chain_der) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    memcpy(s->chain_der, p + TSEAL_SIGENT_ECDSA_FIXED, chain_len);
    s->chain_len = chain_len;
    int r = tseal_x509_chain_decode(s->chain_der, chain_len, c->path, &s->chain);
    if (!r) r = tseal_x509_leaf_pubkey(s->chain, s->pk);
    if (r) {
        tseal_err_context("signature %u: ", i);
        return r;
    }
    uint8_t id[TSEAL_KEY_ID_BYTES];
    tseal_p256_key_id(s->pk, id);
    if (memcmp(id, s->key_id, TSEAL_KEY_ID_BYTES) != 0)
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: signature %u: key id does not match its certificate's key", c->path,
                         i);
    return 0;
}

/* Entries one after the other; the suite fixes the algorithm (no mixing, no downgrade). */
static int parse_sigblock(tseal_container *c, const uint8_t *b, uint32_t len) {
    if (len < 4) return tseal_err(TSEAL_E_CORRUPT, "%s: signature block too short", c->path);
    uint32_t k = get16(b);
    if (k < 1 || k > TSEAL_MAX_SIGNATURES)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %u signatures (allowed 1..%u)", c->path, k,
                         TSEAL_MAX_SIGNATURES);
    if (get16(b + 2) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: nonzero reserved bytes in the signature block",
                         c->path);
    uint8_t want = c->h.suite == TSEAL_SUITE_FIPS ? TSEAL_ALG_SIG_ECDSA_P256 : TSEAL_ALG_ED25519;
    uint64_t off = 4;
    for (uint32_t i = 0; i < k; i++) {
        tseal_sigent *s = &c->sigs[i];
        c->n_sigs = i + 1; /* so that close frees what this entry allocates */
        if (len - off < 4)
            return tseal_err(TSEAL_E_CORRUPT, "%s: signature %u: truncated", c->path, i);
        const uint8_t *p = b + off;
        s->alg = p[0];
        if (s->alg != want)
            return tseal_err(TSEAL_E_UNSUPPORTED,
                             "%s: signature %u: algorithm %u does not belong to suite %u", c->path,
                             i, s->alg, c->h.suite);
        if (p[1] | p[2] | p[3])
            return tseal_err(TSEAL_E_CORRUPT, "%s: signature %u: nonzero reserved bytes", c->path,
                             i);
        int r;
        if (want == TSEAL_ALG_ED25519) {
            if (len - off < TSEAL_SIGENT_BYTES)
                return tseal_err(TSEAL_E_CORRUPT, "%s: signature %u: truncated", c->path, i);
            r = parse_sig_ed25519(c, i, p, s);
            off += TSEAL_SIGENT_BYTES;
        } else {
            if (len - off < TSEAL_SIGENT_ECDSA_FIXED)
                return tseal_err(TSEAL_E_CORRUPT, "%s: signature %u: truncated", c->path, i);
            uint32_t cl = tseal_load_le32(p + 84);
            if (cl > TSEAL_X509_MAX_CHAIN_BYTES || cl > len - off - TSEAL_SIGENT_ECDSA_FIXED)
                return tseal_err(TSEAL_E_CORRUPT,
                                 "%s: signature %u: certificate chain length %u out of range",
                                 c->path, i, cl);
            r = parse_sig_ecdsa(c, i, p, cl, s);
            off += TSEAL_SIGENT_ECDSA_FIXED + (uint64_t)cl;
        }
        if (r) return r;
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(c->sigs[j].key_id, s->key_id, TSEAL_KEY_ID_BYTES) == 0)
                return tseal_err(TSEAL_E_CORRUPT, "%s: two signatures by the same key", c->path);
    }
    if (off != len)
        return tseal_err(TSEAL_E_CORRUPT, "%s: %llu bytes after the last signature", c->path,
                         (unsigned long long)(len - off));
    return 0;
}

/* Parse magic, header and signature block from the first bytes (`pre`, `pre_len` known). */
typedef int (*read_at_fn)(void *ctx, uint64_t off, void *buf, size_t len);

static int container_load(tseal_container *c, read_at_fn rd, void *ctx) {
    uint8_t pre[12];
    if (c->file_size < 16 + TSEAL_HDR_MIN)
        return tseal_err(TSEAL_E_CORRUPT, "%s: too short to be a tseal container", c->path);
    int r = rd(ctx, 0, pre, sizeof pre);
    if (r) return r;
    if (memcmp(pre, TSEAL_MAGIC, TSEAL_MAGIC_BYTES) != 0)
        return tseal_err(TSEAL_E_CORRUPT, "%s: not a tseal container (bad magic)", c->path);
    uint32_t hl = tseal_load_le32(pre + 8);
    if (hl < TSEAL_HDR_MIN || hl > TSEAL_HDR_MAX || (uint64_t)hl + 16 > c->file_size)
        return tseal_err(TSEAL_E_CORRUPT, "%s: header length %u out of range (file is %llu bytes)",
                         c->path, hl, (unsigned long long)c->file_size);
    c->header_bytes = malloc(hl);
    if (!c->header_bytes) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    c->header_len = hl;
    uint8_t sl_b[4];
    if ((r = rd(ctx, 12, c->header_bytes, hl)) || (r = rd(ctx, 12 + (uint64_t)hl, sl_b, 4)))
        return r;
    uint32_t sl = tseal_load_le32(sl_b);
    if (sl > TSEAL_SIGBLOCK_MAX || 16 + (uint64_t)hl + sl > c->file_size)
        return tseal_err(TSEAL_E_CORRUPT, "%s: signature block length %u out of range", c->path,
                         sl);
    uint8_t *sb = malloc(sl ? sl : 1);
    if (!sb) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    if ((r = rd(ctx, 16 + (uint64_t)hl, sb, sl))) {
        free(sb);
        return r;
    }
    r = tseal_sha256(c->header_bytes, hl, c->header_digest);
    if (!r) r = tseal_header_parse(c->header_bytes, hl, c->path, &c->h);
    if (!r) r = parse_sigblock(c, sb, sl);
    free(sb);
    if (r) return r;
    c->payload_start = 16 + (uint64_t)hl + sl;
    if (c->payload_start + c->h.payload_bytes != c->file_size) {
        if (c->payload_start + c->h.payload_bytes > c->file_size)
            return tseal_err(TSEAL_E_CORRUPT,
                             "%s: truncated: payload needs %llu bytes, file has %llu", c->path,
                             (unsigned long long)c->h.payload_bytes,
                             (unsigned long long)(c->file_size - c->payload_start));
        return tseal_err(
            TSEAL_E_CORRUPT, "%s: %llu bytes of data after the payload", c->path,
            (unsigned long long)(c->file_size - c->payload_start - c->h.payload_bytes));
    }
    return 0;
}

static int read_fd(void *ctx, uint64_t off, void *buf, size_t len) {
    tseal_container *c = ctx;
    return tseal_pread_full(c->fd, buf, len, off, c->path);
}

typedef struct {
    const uint8_t *buf;
    uint64_t len;
} mem_src;

static int read_mem(void *ctx, uint64_t off, void *buf, size_t len) {
    const mem_src *m = ctx;
    if (off > m->len || len > m->len - off) return tseal_err(TSEAL_E_CORRUPT, "read past the end");
    memcpy(buf, m->buf + off, len);
    return 0;
}

static tseal_container *container_new(const char *label) {
    tseal_container *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = -1;
    c->path = strdup(label);
    if (!c->path) {
        free(c);
        return NULL;
    }
    return c;
}

int tseal_container_open(const char *path, tseal_container **out) {
    *out = NULL;
    int r = tseal_crypto_init();
    if (r) return r;
    tseal_container *c = container_new(path);
    if (!c) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    struct stat st;
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (c->fd < 0)
        r = tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: cannot open: %s", path,
                      strerror(errno));
    else if (fstat(c->fd, &st) != 0 || !S_ISREG(st.st_mode))
        r = tseal_err(TSEAL_E_IO, "%s: not a regular file", path);
    else {
        c->file_size = (uint64_t)st.st_size;
        r = container_load(c, read_fd, c);
    }
    if (r) {
        tseal_container_close(c);
        return r;
    }
    *out = c;
    return 0;
}

int tseal_container_parse_mem(const uint8_t *buf, uint64_t len, const char *label,
                              tseal_container **out) {
    *out = NULL;
    int r = tseal_crypto_init();
    if (r) return r;
    tseal_container *c = container_new(label ? label : "<memory>");
    if (!c) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    mem_src m = {buf, len};
    c->file_size = len;
    r = container_load(c, read_mem, &m);
    if (r) {
        tseal_container_close(c);
        return r;
    }
    *out = c;
    return 0;
}

void tseal_container_close(tseal_container *c) {
    if (!c) return;
    for (uint32_t i = 0; i < c->n_sigs; i++) {
        free(c->sigs[i].chain_der);
        tseal_x509_chain_free(c->sigs[i].chain);
    }
    if (c->fd >= 0) close(c->fd);
    tseal_header_free(&c->h);
    free(c->header_bytes);
    free(c->path);
    free(c);
}

/* ---- signatures and keys -------------------------------------------------------------- */

/* A trusted key of the signature's algorithm with exactly its public key. */
static int pinned(const tseal_sigent *s, const tseal_pubkey *trusted, unsigned n_trusted) {
    uint8_t alg = s->alg == TSEAL_ALG_SIG_ECDSA_P256 ? TSEAL_ALG_P256 : TSEAL_ALG_ED25519;
    for (unsigned t = 0; t < n_trusted; t++)
        if (trusted[t].kind == TSEAL_KEY_SIGN && trusted[t].alg == alg &&
            memcmp(trusted[t].pk, s->pk, tseal_pk_len(alg)) == 0)
            return 1;
    return 0;
}

/* 1 if the signer's chain verifies against the CAs and matches an identity; else 0 with the
 * reason in `why` (the first refusal is kept); the error code if the chain could not be
 * checked at all (out of memory, an OpenSSL failure): that is no verdict on the signer. */
static int ca_trusts(const tseal_ca_trust *cas, const tseal_sigent *s, char *why, size_t why_len) {
    tseal_x509_identity id;
    int r = tseal_x509_verify(cas->store, s->chain, cas->at, &id);
    if (r == TSEAL_E_NOMEM || r == TSEAL_E_CRYPTO || r == TSEAL_E_INTERNAL) return r;
    if (r) {
        if (!why[0]) snprintf(why, why_len, ": %s", tseal_errmsg());
        return 0;
    }
    for (unsigned k = 0; k < cas->n_identities; k++)
        if (tseal_x509_identity_matches(&id, cas->identities[k])) return 1;
    if (cas->n_identities && !why[0])
        snprintf(why, why_len, ": certificate subject \"%.200s\" matches no trusted identity",
                 id.subject);
    return cas->n_identities == 0;
}

int tseal_container_check_signatures_ca(const tseal_container *c, const tseal_pubkey *trusted,
                                        unsigned n_trusted, const tseal_ca_trust *cas,
                                        unsigned *n_trusted_ok) {
    unsigned ok = 0;
    int primary = 0;
    char why[600] = "";
    for (uint32_t i = 0; i < c->n_sigs; i++) {
        const tseal_sigent *s = &c->sigs[i];
        char hex[2 * TSEAL_KEY_ID_BYTES + 1];
        tseal_key_id_hex(s->key_id, hex);
        int bad = s->alg == TSEAL_ALG_SIG_ECDSA_P256
                      ? tseal_p256_verify(s->pk, TSEAL_SIG_TYPE_HEADER, c->header_digest, s->sig)
                      : tseal_sign_verify(s->pk, TSEAL_SIG_TYPE_HEADER, c->header_digest, s->sig);
        if (bad == TSEAL_E_VERIFY || bad == TSEAL_E_CORRUPT)
            return tseal_err(TSEAL_E_VERIFY,
                             "%s: signature by key %s is invalid (header modified or forged)",
                             c->path, hex);
        if (bad) { /* not checked (out of memory, an OpenSSL failure): not "forged" */
            tseal_err_context("%s: signature by key %s: ", c->path, hex);
            return bad;
        }
        primary |= memcmp(s->key_id, c->h.signer_key_id, TSEAL_KEY_ID_BYTES) == 0;
        if (pinned(s, trusted, n_trusted)) {
            ok++;
        } else if (cas && s->chain) {
            int t = ca_trusts(cas, s, why, sizeof why);
            if (t < 0) {
                tseal_err_context("%s: signature by key %s: ", c->path, hex);
                return t;
            }
            ok += (unsigned)t;
        }
    }
    if (!primary)
        return tseal_err(TSEAL_E_VERIFY, "%s: no signature by the signer the header names",
                         c->path);
    if (n_trusted_ok) *n_trusted_ok = ok;
    if ((n_trusted > 0 || cas) && ok == 0) {
        char hex[2 * TSEAL_KEY_ID_BYTES + 1];
        tseal_key_id_hex(c->h.signer_key_id, hex);
        return tseal_err(TSEAL_E_VERIFY, "%s: signed by key %s, which is not trusted%s", c->path,
                         hex, why);
    }
    return 0;
}

int tseal_container_check_signatures(const tseal_container *c, const tseal_pubkey *trusted,
                                     unsigned n_trusted, unsigned *n_trusted_ok) {
    return tseal_container_check_signatures_ca(c, trusted, n_trusted, NULL, n_trusted_ok);
}

static void ad_stanza(const tseal_container *c, const uint8_t key_id[TSEAL_KEY_ID_BYTES],
                      uint8_t ad[32]) {
    memcpy(ad, c->h.container_id, 16);
    memcpy(ad + 16, key_id, TSEAL_KEY_ID_BYTES);
}

int tseal_container_unwrap(const tseal_container *c, const tseal_seckey *recipient,
                           uint8_t content_key[TSEAL_SYM_KEY_BYTES]) {
    if (recipient->pub.kind != TSEAL_KEY_RECIPIENT)
        return tseal_err(TSEAL_E_INVAL, "%s: the key given is not a recipient key", c->path);
    for (uint32_t i = 0; i < c->h.n_recipients; i++) {
        const tseal_stanza *s = &c->h.stanzas[i];
        if (memcmp(s->key_id, recipient->pub.key_id, TSEAL_KEY_ID_BYTES) != 0) continue;
        uint8_t ad[32];
        ad_stanza(c, s->key_id, ad);
        int fips = c->h.suite == TSEAL_SUITE_FIPS;
        if (recipient->pub.alg != (fips ? TSEAL_ALG_P256 : TSEAL_ALG_X25519))
            return tseal_err(TSEAL_E_INVAL, "%s: a %s container needs a %s recipient key", c->path,
                             fips ? "FIPS-suite" : "default-suite", fips ? "P-256" : "X25519");
        int r =
            fips
                ? tseal_p256_unwrap(recipient, s->eph_pk, ad, sizeof ad, s->wrapped, content_key)
                : tseal_x25519_unwrap(recipient, s->eph_pk, ad, sizeof ad, s->wrapped, content_key);
        if (r) {
            tseal_err_context("%s: recipient stanza %u: ", c->path, i);
            return r;
        }
        uint8_t commit[TSEAL_HASH_BYTES];
        r = tseal_key_commitment(content_key, c->h.container_id, commit);
        if (!r && !tseal_equal(commit, c->h.key_commitment, TSEAL_HASH_BYTES)) {
            tseal_wipe(content_key, TSEAL_SYM_KEY_BYTES);
            return tseal_err(
                TSEAL_E_VERIFY,
                "%s: recipient stanza %u: content key does not match the signed key commitment",
                c->path, i);
        }
        return r;
    }
    char hex[2 * TSEAL_KEY_ID_BYTES + 1];
    tseal_key_id_hex(recipient->pub.key_id, hex);
    return tseal_err(TSEAL_E_VERIFY, "%s: not encrypted for recipient key %s (%u stanzas)", c->path,
                     hex, c->h.n_recipients);
}

int tseal_segment_key(const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                      const uint8_t container_id[16], uint32_t index,
                      uint8_t key[TSEAL_SYM_KEY_BYTES]) {
    uint8_t info[20] = "tseal v1 segment";
    info[16] = (uint8_t)(index >> 24), info[17] = (uint8_t)(index >> 16),
    info[18] = (uint8_t)(index >> 8), info[19] = (uint8_t)index;
    return tseal_hkdf_sha256(content_key, TSEAL_SYM_KEY_BYTES, container_id, 16, info, sizeof info,
                             key, TSEAL_SYM_KEY_BYTES);
}

int tseal_key_commitment(const uint8_t content_key[TSEAL_SYM_KEY_BYTES],
                         const uint8_t container_id[16], uint8_t out[TSEAL_HASH_BYTES]) {
    static const char info[] = "tseal v1 key commitment";
    return tseal_hkdf_sha256(content_key, TSEAL_SYM_KEY_BYTES, container_id, 16,
                             (const uint8_t *)info, sizeof info - 1, out, TSEAL_HASH_BYTES);
}

void tseal_chunk_nonce(uint64_t chunk, int last, uint8_t nonce[TSEAL_AEAD_NONCE_BYTES]) {
    for (int i = 0; i < 8; i++) nonce[i] = (uint8_t)(chunk >> (56 - 8 * i));
    nonce[8] = nonce[9] = nonce[10] = 0;
    nonce[11] = last ? 1 : 0;
}

void tseal_chunk_ad(const uint8_t container_id[16], uint32_t index, uint8_t kind,
                    uint8_t ad[TSEAL_CHUNK_AD_BYTES]) {
    memcpy(ad, container_id, 16);
    ad[16] = (uint8_t)(index >> 24), ad[17] = (uint8_t)(index >> 16),
    ad[18] = (uint8_t)(index >> 8), ad[19] = (uint8_t)index;
    ad[20] = kind;
}

/* ---- verifying segment reader ----------------------------------------------------------- */

int tseal_segreader_open(tseal_segreader *r, const tseal_container *c, uint32_t index,
                         const uint8_t *content_key) {
    memset(r, 0, sizeof *r);
    if (index >= c->h.n_segments)
        return tseal_err(TSEAL_E_INVAL, "%s: no segment %u", c->path, index);
    r->c = c;
    r->index = index;
    r->seg = &c->h.segments[index];
    uint64_t list_len = (uint64_t)r->seg->chunk_count * TSEAL_HASH_BYTES;
    r->list = malloc(list_len);
    r->ct = malloc((size_t)c->h.chunk_size + TSEAL_AEAD_TAG_BYTES);
    int rc = (!r->list || !r->ct) ? tseal_err(TSEAL_E_NOMEM, "out of memory") : 0;
    if (!rc && content_key) {
        r->key = tseal_secure_alloc(TSEAL_SYM_KEY_BYTES);
        rc = r->key ? tseal_segment_key(content_key, c->h.container_id, index, r->key)
                    : TSEAL_E_NOMEM;
    }
    uint64_t list_off = c->payload_start + r->seg->offset + r->seg->pt_len +
                        (uint64_t)r->seg->chunk_count * TSEAL_AEAD_TAG_BYTES;
    if (!rc) rc = tseal_pread_full(c->fd, r->list, list_len, list_off, c->path);
    if (!rc) {
        uint8_t h[TSEAL_HASH_BYTES];
        rc = tseal_sha256(r->list, list_len, h);
        if (!rc && !tseal_equal(h, r->seg->list_hash, TSEAL_HASH_BYTES))
            rc = tseal_err(TSEAL_E_VERIFY,
                           "%s: segment %u: chunk hash list does not match the signed header",
                           c->path, index);
    }
    if (rc) tseal_segreader_close(r);
    return rc;
}

int tseal_segreader_next(tseal_segreader *r, uint8_t *pt, uint64_t *len) {
    const tseal_segment *s = r->seg;
    if (r->next_chunk >= s->chunk_count) return 0;
    uint32_t j = r->next_chunk;
    uint64_t cs = r->c->h.chunk_size, first = (uint64_t)j * cs;
    uint64_t n = s->pt_len - first < cs ? s->pt_len - first : cs;
    uint64_t off = r->c->payload_start + s->offset + first + (uint64_t)j * TSEAL_AEAD_TAG_BYTES;
    int rc = tseal_pread_full(r->c->fd, r->ct, n + TSEAL_AEAD_TAG_BYTES, off, r->c->path);
    uint8_t h[TSEAL_HASH_BYTES];
    if (!rc) rc = tseal_sha256(r->ct, n + TSEAL_AEAD_TAG_BYTES, h);
    if (!rc && !tseal_equal(h, r->list + (uint64_t)j * TSEAL_HASH_BYTES, TSEAL_HASH_BYTES))
        rc = tseal_err(TSEAL_E_VERIFY, "%s: segment %u: chunk %u does not match its signed hash",
                       r->c->path, r->index, j);
    if (!rc && r->key) {
        uint8_t nonce[TSEAL_AEAD_NONCE_BYTES], ad[TSEAL_CHUNK_AD_BYTES];
        tseal_chunk_nonce(j, j + 1 == s->chunk_count, nonce);
        tseal_chunk_ad(r->c->h.container_id, r->index, s->kind, ad);
        rc = tseal_suite_open(r->c->h.suite, pt, r->ct, n + TSEAL_AEAD_TAG_BYTES, ad, sizeof ad,
                              nonce, r->key);
        if (rc) tseal_err_context("%s: segment %u: chunk %u: ", r->c->path, r->index, j);
    }
    if (rc) return rc;
    *len = n;
    r->next_chunk++;
    return 1;
}

void tseal_segreader_close(tseal_segreader *r) {
    free(r->list);
    free(r->ct);
    tseal_secure_free(r->key);
    r->list = r->ct = r->key = NULL;
}

/* ---- whole segments on several threads ----------------------------------------------------- */

#define CHUNKS_PER_ITEM 16

typedef struct {
    const tseal_container *c;
    uint32_t index;
    const tseal_segment *seg;
    const uint8_t *list;
    const uint8_t *key;
    uint8_t *out; /* receives chunks [chunk0, chunk_end) */
    uint32_t chunk0, chunk_end;
} dec_job;

static int decrypt_chunks(void *arg, unsigned item) {
    const dec_job *d = arg;
    uint64_t cs = d->c->h.chunk_size;
    uint8_t *ct = malloc(cs + TSEAL_AEAD_TAG_BYTES);
    if (!ct) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = 0;
    uint32_t j0 = d->chunk0 + item * CHUNKS_PER_ITEM, j1 = j0 + CHUNKS_PER_ITEM;
    if (j1 > d->chunk_end) j1 = d->chunk_end;
    for (uint32_t j = j0; j < j1 && !r; j++) {
        uint64_t first = j * cs, n = d->seg->pt_len - first < cs ? d->seg->pt_len - first : cs;
        uint64_t off =
            d->c->payload_start + d->seg->offset + first + (uint64_t)j * TSEAL_AEAD_TAG_BYTES;
        uint8_t h[TSEAL_HASH_BYTES], nonce[TSEAL_AEAD_NONCE_BYTES], ad[TSEAL_CHUNK_AD_BYTES];
        r = tseal_pread_full(d->c->fd, ct, n + TSEAL_AEAD_TAG_BYTES, off, d->c->path);
        if (!r) r = tseal_sha256(ct, n + TSEAL_AEAD_TAG_BYTES, h);
        if (!r && !tseal_equal(h, d->list + (uint64_t)j * TSEAL_HASH_BYTES, TSEAL_HASH_BYTES))
            r = tseal_err(TSEAL_E_VERIFY, "%s: segment %u: chunk %u does not match its signed hash",
                          d->c->path, d->index, j);
        if (!r && !d->key) { /* checked ciphertext only (decrypted on a GPU) */
            memcpy(d->out + (first - (uint64_t)d->chunk0 * cs), ct, n);
        } else if (!r) {
            tseal_chunk_nonce(j, j + 1 == d->seg->chunk_count, nonce);
            tseal_chunk_ad(d->c->h.container_id, d->index, d->seg->kind, ad);
            r = tseal_suite_open(d->c->h.suite, d->out + (first - (uint64_t)d->chunk0 * cs), ct,
                                 n + TSEAL_AEAD_TAG_BYTES, ad, sizeof ad, nonce, d->key);
            if (r) tseal_err_context("%s: segment %u: chunk %u: ", d->c->path, d->index, j);
        }
    }
    free(ct);
    return r;
}

int tseal_segment_decrypt_all(const tseal_container *c, uint32_t index, const uint8_t *content_key,
                              uint8_t *out, unsigned nthreads) {
    tseal_segreader sr; /* reads and checks the hash list, derives the key */
    int r = tseal_segreader_open(&sr, c, index, content_key);
    if (r) return r;
    r = tseal_segreader_decrypt_range(&sr, 0, sr.seg->chunk_count, out, nthreads);
    tseal_segreader_close(&sr);
    return r;
}

static int range_job(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks, uint8_t *out,
                     unsigned nthreads, const uint8_t *key);

int tseal_segreader_decrypt_range(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks,
                                  uint8_t *out, unsigned nthreads) {
    if (!sr->key) return tseal_err(TSEAL_E_INTERNAL, "segment %u: no key", sr->index);
    return range_job(sr, chunk0, n_chunks, out, nthreads, sr->key);
}

int tseal_segreader_read_range(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks,
                               uint8_t *out, unsigned nthreads) {
    return range_job(sr, chunk0, n_chunks, out, nthreads, NULL);
}

/* Check chunks [chunk0, chunk0 + n_chunks) against the list and decrypt them with `key`, or
 * with key NULL copy their ciphertext (tags dropped), into `out`. */
static int range_job(tseal_segreader *sr, uint32_t chunk0, uint32_t n_chunks, uint8_t *out,
                     unsigned nthreads, const uint8_t *key) {
    const uint64_t cs = sr->c->h.chunk_size;
    if (chunk0 > sr->seg->chunk_count || n_chunks > sr->seg->chunk_count - chunk0)
        return tseal_err(TSEAL_E_INTERNAL, "segment %u: chunk range %u+%u out of bounds", sr->index,
                         chunk0, n_chunks);
    if (n_chunks == 0) return 0;
    uint64_t end = (uint64_t)(chunk0 + n_chunks) * cs;
    if (end > sr->seg->pt_len) end = sr->seg->pt_len;
    const uint64_t bytes = end - (uint64_t)chunk0 * cs;
    dec_job d = {sr->c, sr->index, sr->seg, sr->list, key, out, chunk0, chunk0 + n_chunks};
    unsigned items = (n_chunks + CHUNKS_PER_ITEM - 1) / CHUNKS_PER_ITEM;
    if (bytes < (4u << 20)) nthreads = 1;
    int r = tseal_parallel(items, nthreads, decrypt_chunks, &d);
    if (r) tseal_wipe(out, bytes);
    return r;
}

typedef struct {
    const uint8_t *key, *container_id, *pt;
    uint32_t index, chunk_size, chunks;
    uint8_t kind;
    uint64_t pt_len;
    uint8_t *ct;
    uint16_t suite;
} enc_job;

static int encrypt_chunks(void *arg, unsigned item) {
    const enc_job *e = arg;
    uint8_t *list = e->ct + e->pt_len + (uint64_t)e->chunks * TSEAL_AEAD_TAG_BYTES;
    uint32_t j0 = item * CHUNKS_PER_ITEM, j1 = j0 + CHUNKS_PER_ITEM;
    if (j1 > e->chunks) j1 = e->chunks;
    int r = 0;
    for (uint32_t j = j0; j < j1 && !r; j++) {
        uint64_t first = (uint64_t)j * e->chunk_size,
                 n = e->pt_len - first < e->chunk_size ? e->pt_len - first : e->chunk_size;
        uint8_t *out = e->ct + first + (uint64_t)j * TSEAL_AEAD_TAG_BYTES,
                nonce[TSEAL_AEAD_NONCE_BYTES], ad[TSEAL_CHUNK_AD_BYTES];
        tseal_chunk_nonce(j, j + 1 == e->chunks, nonce);
        tseal_chunk_ad(e->container_id, e->index, e->kind, ad);
        r = tseal_suite_seal(e->suite, out, e->pt + first, n, ad, sizeof ad, nonce, e->key);
        if (!r)
            r = tseal_sha256(out, n + TSEAL_AEAD_TAG_BYTES, list + (uint64_t)j * TSEAL_HASH_BYTES);
    }
    return r;
}

int tseal_segment_encrypt_all(uint16_t suite, const uint8_t *key, const uint8_t container_id[16],
                              uint32_t index, uint8_t kind, uint32_t chunk_size, const uint8_t *pt,
                              uint64_t pt_len, uint8_t *ct, uint8_t list_hash[TSEAL_HASH_BYTES],
                              unsigned nthreads) {
    static const uint8_t empty[1];
    enc_job e = {key,   container_id, pt ? pt : empty,
                 index, chunk_size,   tseal_seg_chunk_count(pt_len, chunk_size),
                 kind,  pt_len,       ct,
                 suite};
    if (pt_len < (4u << 20)) nthreads = 1;
    int r = tseal_parallel((e.chunks + CHUNKS_PER_ITEM - 1) / CHUNKS_PER_ITEM, nthreads,
                           encrypt_chunks, &e);
    if (!r)
        r = tseal_sha256(ct + pt_len + (uint64_t)e.chunks * TSEAL_AEAD_TAG_BYTES,
                         (uint64_t)e.chunks * TSEAL_HASH_BYTES, list_hash);
    return r;
}
