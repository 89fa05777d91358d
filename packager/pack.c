/*
 * pack.c - model (file or folder) -> signed, encrypted container.
 *
 * One pass over the input files in name order, each written as segments straight into the
 * output's temporary file: a safetensors file as its header bytes plus one segment per tensor
 * (BF16 tensors coded with the exponent codec, others raw), any other file as an opaque blob.
 * Room for the header and signature block is reserved first (their sizes depend only on
 * counts known up front); they are written last, once every segment's hash is known.
 * Memory: one tensor in memory up to 64 MiB, beyond that the streaming encoder; chunk buffers.
 */
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "manifest.h"

#define INMEM_TENSOR_MAX (64ull << 20) /* larger BF16 tensors use the streaming encoder */
#define MAX_INPUT_FILES  100000
#define READ_BLOCK       (1u << 20)

/* ---- input files ------------------------------------------------------------------------ */

typedef struct {
    char *rel; /* path inside the model, '/'-separated */
    char *abs;
    int is_st;
    tseal_st *st;
    uint64_t size;
} in_file;

typedef struct {
    in_file *v;
    size_t n, cap;
} in_list;

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int add_file(in_list *l, const char *rel, const char *abs, uint64_t size) {
    if (l->n >= MAX_INPUT_FILES)
        return tseal_err(TSEAL_E_LIMIT, "%s: more than %u files", abs, MAX_INPUT_FILES);
    if (!tseal_mf_path_ok(rel))
        return tseal_err(TSEAL_E_INVAL,
                         "%s: file name cannot be packed (control characters or not UTF-8)", abs);
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        in_file *v = realloc(l->v, nc * sizeof *v);
        if (!v) return tseal_err(TSEAL_E_NOMEM, "out of memory");
        l->v = v;
        l->cap = nc;
    }
    in_file *f = &l->v[l->n];
    memset(f, 0, sizeof *f);
    f->rel = strdup(rel);
    f->abs = strdup(abs);
    f->size = size;
    f->is_st = ends_with(rel, ".safetensors");
    l->n++;
    if (!f->rel || !f->abs) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    return 0;
}

static int walk(in_list *l, const char *dir, const char *rel_prefix, unsigned depth) {
    if (depth > 64) return tseal_err(TSEAL_E_LIMIT, "%s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d) return tseal_err(TSEAL_E_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int r = 0;
    struct dirent *e;
    while (!r && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t na = strlen(dir) + strlen(e->d_name) + 2,
               nr = strlen(rel_prefix) + strlen(e->d_name) + 2;
        char *abs = malloc(na), *rel = malloc(nr);
        if (!abs || !rel) {
            free(abs);
            free(rel);
            r = tseal_err(TSEAL_E_NOMEM, "out of memory");
            break;
        }
        snprintf(abs, na, "%s/%s", dir, e->d_name);
        snprintf(rel, nr, "%s%s%s", rel_prefix, *rel_prefix ? "/" : "", e->d_name);
        struct stat st;
        if (lstat(abs, &st) != 0)
            r = tseal_err(TSEAL_E_IO, "%s: %s", abs, strerror(errno));
        else if (S_ISLNK(st.st_mode))
            r = tseal_err(TSEAL_E_INVAL,
                          "%s: symbolic links are not packed (copy the file instead)", abs);
        else if (S_ISDIR(st.st_mode))
            r = walk(l, abs, rel, depth + 1);
        else if (S_ISREG(st.st_mode))
            r = add_file(l, rel, abs, (uint64_t)st.st_size);
        else
            r = tseal_err(TSEAL_E_INVAL, "%s: not a regular file or folder", abs);
        free(abs);
        free(rel);
    }
    closedir(d);
    return r;
}

static int cmp_rel(const void *a, const void *b) {
    return strcmp(((const in_file *)a)->rel, ((const in_file *)b)->rel);
}

static void free_inputs(in_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].rel);
        free(l->v[i].abs);
        tseal_st_close(l->v[i].st);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int collect_inputs(const char *input, in_list *l) {
    struct stat st;
    if (stat(input, &st) != 0)
        return tseal_err(errno == ENOENT ? TSEAL_E_NOTFOUND : TSEAL_E_IO, "%s: %s", input,
                         strerror(errno));
    int r;
    if (S_ISDIR(st.st_mode)) {
        r = walk(l, input, "", 0);
    } else if (S_ISREG(st.st_mode) && ends_with(input, ".safetensors")) {
        const char *base = strrchr(input, '/');
        r = add_file(l, base ? base + 1 : input, input, (uint64_t)st.st_size);
    } else {
        return tseal_err(TSEAL_E_INVAL, "%s: expected a .safetensors file or a model folder",
                         input);
    }
    if (!r && l->n == 0) r = tseal_err(TSEAL_E_INVAL, "%s: no files to pack", input);
    if (r) return r;
    qsort(l->v, l->n, sizeof *l->v, cmp_rel);
    for (size_t i = 0; i < l->n && !r; i++)
        if (l->v[i].is_st) {
            r = tseal_st_open(l->v[i].abs, &l->v[i].st);
            if (!r && tseal_st_file_size(l->v[i].st) != l->v[i].size)
                r = tseal_err(TSEAL_E_IO, "%s: changed while packing", l->v[i].abs);
        }
    return r;
}

/* ---- segment writer --------------------------------------------------------------------- */

typedef struct {
    int fd;
    const char *path;
    uint32_t chunk_size;
    const uint8_t *content_key;
    const uint8_t *container_id;
    uint8_t *key; /* secure: current segment key */
    uint8_t *buf; /* secure: pending plaintext chunk */
    uint8_t *ct;
    size_t fill;
    uint8_t kind;
    uint32_t index, chunks;
    uint64_t pt_len, offset; /* offset of the segment in the payload */
    uint8_t *list;
    size_t list_cap;
    tseal_segment *segs;
    uint32_t n_segs, cap_segs;
    uint64_t payload_pos;
    tseal_sha256_ctx *sha;
    uint16_t suite; /* chunk AEAD: ChaCha20-Poly1305 or AES-256-GCM */
} segwriter;

static int sw_flush(segwriter *w, int last) {
    uint8_t nonce[TSEAL_AEAD_NONCE_BYTES], ad[TSEAL_CHUNK_AD_BYTES];
    tseal_chunk_nonce(w->chunks, last, nonce);
    tseal_chunk_ad(w->container_id, w->index, w->kind, ad);
    int r = tseal_suite_seal(w->suite, w->ct, w->buf, w->fill, ad, sizeof ad, nonce, w->key);
    size_t n = w->fill + TSEAL_AEAD_TAG_BYTES;
    if (!r) r = tseal_write_full(w->fd, w->ct, n, w->path);
    if (!r && (size_t)(w->chunks + 1) * TSEAL_HASH_BYTES > w->list_cap) {
        size_t nc = w->list_cap ? 2 * w->list_cap : 64 * TSEAL_HASH_BYTES;
        uint8_t *p = realloc(w->list, nc);
        if (!p) return tseal_err(TSEAL_E_NOMEM, "out of memory");
        w->list = p;
        w->list_cap = nc;
    }
    if (!r) r = tseal_sha256(w->ct, n, w->list + (size_t)w->chunks * TSEAL_HASH_BYTES);
    tseal_wipe(w->buf, w->fill);
    w->fill = 0;
    w->chunks++;
    w->payload_pos += n;
    return r;
}

static int sw_begin(segwriter *w, uint8_t kind) {
    w->kind = kind;
    w->index = w->n_segs;
    w->chunks = 0;
    w->pt_len = 0;
    w->fill = 0;
    w->offset = w->payload_pos;
    return tseal_segment_key(w->content_key, w->container_id, w->index, w->key);
}

static int sw_write(void *ctx, const void *data, size_t len) {
    segwriter *w = ctx;
    const uint8_t *p = data;
    while (len) {
        if (w->fill == w->chunk_size) {
            int r = sw_flush(w, 0);
            if (r) return r;
        }
        size_t k = w->chunk_size - w->fill < len ? w->chunk_size - w->fill : len;
        memcpy(w->buf + w->fill, p, k);
        w->fill += k;
        w->pt_len += k;
        p += k;
        len -= k;
    }
    return 0;
}

/* Append a finished segment's table entry. */
static tseal_segment *sw_record(segwriter *w, uint8_t kind, uint32_t chunks, uint64_t offset,
                                uint64_t pt_len) {
    if (w->n_segs == w->cap_segs) {
        uint32_t nc = w->cap_segs ? 2 * w->cap_segs : 64;
        tseal_segment *s = realloc(w->segs, nc * sizeof *s);
        if (!s) {
            tseal_err(TSEAL_E_NOMEM, "out of memory");
            return NULL;
        }
        w->segs = s;
        w->cap_segs = nc;
    }
    tseal_segment *s = &w->segs[w->n_segs++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->chunk_count = chunks;
    s->offset = offset;
    s->pt_len = pt_len;
    return s;
}

static int sw_end(segwriter *w) {
    int r = sw_flush(w, 1);
    size_t list_len = (size_t)w->chunks * TSEAL_HASH_BYTES;
    if (!r) r = tseal_write_full(w->fd, w->list, list_len, w->path);
    if (r) return r;
    w->payload_pos += list_len;
    tseal_segment *s = sw_record(w, w->kind, w->chunks, w->offset, w->pt_len);
    return s ? tseal_sha256(w->list, list_len, s->list_hash) : TSEAL_E_NOMEM;
}

/* A segment encrypted in one go (several threads): write it and record its entry. */
static int sw_put_whole(segwriter *w, uint8_t kind, const uint8_t *pt, uint64_t pt_len,
                        unsigned threads) {
    uint32_t index = w->n_segs, chunks = tseal_seg_chunk_count(pt_len, w->chunk_size);
    uint64_t ct_len = tseal_seg_ct_len(pt_len, chunks);
    uint8_t *ct = malloc(ct_len), list_hash[TSEAL_HASH_BYTES];
    if (!ct)
        return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)", (unsigned long long)ct_len);
    int r = tseal_segment_key(w->content_key, w->container_id, index, w->key);
    if (!r)
        r = tseal_segment_encrypt_all(w->suite, w->key, w->container_id, index, kind, w->chunk_size,
                                      pt, pt_len, ct, list_hash, threads);
    if (!r) r = tseal_write_full(w->fd, ct, ct_len, w->path);
    free(ct);
    if (r) return r;
    tseal_segment *s = sw_record(w, kind, chunks, w->payload_pos, pt_len);
    if (!s) return TSEAL_E_NOMEM;
    memcpy(s->list_hash, list_hash, TSEAL_HASH_BYTES);
    w->payload_pos += ct_len;
    return 0;
}

/* ---- tensors and files ----------------------------------------------------------------- */

typedef struct {
    const tseal_pack_opts *o;
    segwriter *w;
    tseal_manifest *m;
    tseal_sha256_ctx *file_sha;
    tseal_tree_ctx *tensor_tree; /* the tensor digest (tree hash) */
    tseal_pack_report *rep;
    uint64_t done_bytes, total_bytes;
    uint32_t done_items, total_items;
    unsigned threads;
} pack_ctx;

static void progress(pack_ctx *c, const char *item) {
    if (!c->o->progress) return;
    tseal_progress p = {"pack", item, c->done_bytes, c->total_bytes, c->done_items, c->total_items};
    c->o->progress(c->o->progress_ctx, &p);
}

/* Streaming-encoder reader: every full sequential pass over the tensor must see the same
 * bytes (a fast checksum), and the first pass feeds the SHA-256s, so a file changing under
 * the packer cannot yield a digest that differs from what was encoded. */
typedef struct {
    const tseal_st *st;
    size_t index;
    uint64_t n, pos, sum, first_sum;
    unsigned passes;
    int mismatch;
    pack_ctx *c;
} stream_src;

static uint64_t mix(uint64_t h, const uint16_t *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) h = (h ^ x[i]) * 0x100000001B3ull;
    return h;
}

static int stream_read(void *ctx, uint64_t first, uint16_t *buf, uint64_t n) {
    stream_src *s = ctx;
    if (first == 0) {
        if (s->passes > 0 && s->pos == s->n && s->sum != s->first_sum) s->mismatch = 1;
        s->passes++;
        s->pos = 0;
        s->sum = 0xCBF29CE484222325ull;
    }
    int r = tseal_st_read(s->st, s->index, 2 * first, buf, 2 * n);
    if (r) return r;
    if (first == s->pos) {
        s->sum = mix(s->sum, buf, n);
        s->pos += n;
        if (s->passes == 1) {
            if ((r = tseal_tree_update(s->c->tensor_tree, buf, 2 * n)) ||
                (r = tseal_sha256_update(s->c->file_sha, buf, 2 * n)))
                return r;
            if (s->pos == s->n) s->first_sum = s->sum;
        }
    }
    return 0;
}

static void geometry(const tseal_st_tensor *t, uint64_t *rows, uint64_t *cols) {
    if (t->rank >= 2 && t->shape[t->rank - 1] > 0) {
        *cols = t->shape[t->rank - 1];
        *rows = t->n_elems / *cols;
    } else {
        *rows = 1;
        *cols = t->n_elems;
    }
}

/* In-memory tensors: the two digests and the encoder run side by side. */
typedef struct {
    pack_ctx *c;
    const uint16_t *x;
    uint64_t bytes, rows, cols;
    tseal_buf blob;
} coded_job;

static int coded_part(void *arg, unsigned item) {
    coded_job *j = arg;
    if (item == 0)
        return tseal_codec_encode(j->x, j->rows, j->cols, &j->c->o->codec, &j->blob, NULL);
    if (item == 1) return tseal_tree_update(j->c->tensor_tree, j->x, j->bytes);
    return tseal_sha256_update(j->c->file_sha, j->x, j->bytes);
}

static int pack_coded(pack_ctx *c, const tseal_st *st, size_t i, const tseal_st_tensor *t,
                      int *whole) {
    uint64_t rows, cols, bytes = t->end - t->begin;
    geometry(t, &rows, &cols);
    int r;
    *whole = 0;
    if (bytes <= INMEM_TENSOR_MAX) {
        uint16_t *x = malloc(bytes);
        if (!x)
            return tseal_err(TSEAL_E_NOMEM, "out of memory (%llu bytes)",
                             (unsigned long long)bytes);
        coded_job j = {c, x, bytes, rows, cols, {0}};
        r = tseal_st_read(st, i, 0, x, bytes);
        if (!r) r = tseal_parallel(3, bytes >= (1u << 20) ? c->threads : 1, coded_part, &j);
        free(x);
        if (!r) r = sw_put_whole(c->w, TSEAL_SEG_TENSOR, j.blob.data, j.blob.size, c->threads);
        tseal_buf_free(&j.blob);
        *whole = 1;
        return r;
    }
    stream_src s = {.st = st, .index = i, .n = t->n_elems, .c = c};
    r = tseal_codec_encode_stream(stream_read, &s, rows, cols, &c->o->codec, sw_write, c->w, NULL,
                                  NULL);
    if (!r && (s.mismatch || (s.pos == s.n && s.sum != s.first_sum)))
        r = tseal_err(TSEAL_E_IO, "tensor changed while it was being packed");
    return r;
}

static int pack_raw_tensor(pack_ctx *c, const tseal_st *st, size_t i, uint64_t bytes) {
    uint8_t *b = malloc(READ_BLOCK);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = 0;
    for (uint64_t off = 0; off < bytes && !r; off += READ_BLOCK) {
        size_t k = bytes - off < READ_BLOCK ? (size_t)(bytes - off) : READ_BLOCK;
        r = tseal_st_read(st, i, off, b, k);
        if (!r) r = tseal_tree_update(c->tensor_tree, b, k);
        if (!r) r = tseal_sha256_update(c->file_sha, b, k);
        if (!r) r = sw_write(c->w, b, k);
    }
    free(b);
    return r;
}

static int pack_safetensors(pack_ctx *c, in_file *f) {
    tseal_mf_file *mf = tseal_mf_add_file(c->m, f->rel, TSEAL_FILE_SAFETENSORS);
    if (!mf) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    size_t hl;
    const uint8_t *hb = tseal_st_header_bytes(f->st, &hl);
    uint8_t prefix[8];
    tseal_store_le64(prefix, hl);
    mf->segment = c->w->n_segs;
    int r = sw_begin(c->w, TSEAL_SEG_FILE_HEADER);
    if (!r) r = sw_write(c->w, prefix, 8);
    if (!r) r = sw_write(c->w, hb, hl);
    if (!r) r = tseal_sha256_update(c->file_sha, prefix, 8);
    if (!r) r = tseal_sha256_update(c->file_sha, hb, hl);
    if (!r) r = sw_end(c->w);
    c->done_bytes += 8 + hl;
    size_t nt = tseal_st_count(f->st);
    for (size_t i = 0; i < nt && !r; i++) {
        const tseal_st_tensor *t = tseal_st_get(f->st, i);
        tseal_mf_tensor *mt = tseal_mf_add_tensor(c->m, t);
        if (!mt) return tseal_err(TSEAL_E_NOMEM, "out of memory");
        progress(c, t->name);
        mt->segment = c->w->n_segs;
        mt->coded = t->dtype == TSEAL_DT_BF16 && t->n_elems > 0;
        int whole = 0; /* encrypted in one go by pack_coded, no streaming segment to close */
        r = sw_begin(c->w, TSEAL_SEG_TENSOR);
        if (!r)
            r = mt->coded ? pack_coded(c, f->st, i, t, &whole)
                          : pack_raw_tensor(c, f->st, i, mt->bytes);
        if (!r) r = tseal_tree_final(c->tensor_tree, mt->sha256);
        if (!r && !whole) r = sw_end(c->w);
        if (r) tseal_err_context("%s: tensor '%.200s': ", f->abs, t->name);
        c->rep->tensors++;
        c->rep->coded_tensors += (uint32_t)mt->coded;
        c->done_bytes += mt->bytes;
        c->done_items++;
    }
    mf->n_tensors = c->m->n_tensors - mf->first_tensor;
    mf->size = f->size;
    return r ? r : tseal_sha256_final(c->file_sha, mf->sha256);
}

static int pack_blob(pack_ctx *c, in_file *f) {
    tseal_mf_file *mf = tseal_mf_add_file(c->m, f->rel, TSEAL_FILE_BLOB);
    if (!mf) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    progress(c, f->rel);
    mf->segment = c->w->n_segs;
    mf->size = f->size;
    int fd = open(f->abs, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tseal_err(TSEAL_E_IO, "%s: cannot open: %s", f->abs, strerror(errno));
    uint8_t *b = malloc(READ_BLOCK);
    int r = b ? sw_begin(c->w, TSEAL_SEG_BLOB) : tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (uint64_t off = 0; off < f->size && !r; off += READ_BLOCK) {
        size_t k = f->size - off < READ_BLOCK ? (size_t)(f->size - off) : READ_BLOCK;
        r = tseal_pread_full(fd, b, k, off, f->abs);
        if (!r) r = tseal_sha256_update(c->file_sha, b, k);
        if (!r) r = sw_write(c->w, b, k);
    }
    uint8_t extra;
    ssize_t more = r ? 0 : pread(fd, &extra, 1, (off_t)f->size); /* grown since stat()? */
    if (more < 0)
        r = tseal_err(TSEAL_E_IO, "%s: read at offset %llu: %s", f->abs,
                      (unsigned long long)f->size, strerror(errno));
    else if (more == 1)
        r = tseal_err(TSEAL_E_IO, "%s: changed while packing", f->abs);
    if (!r) r = sw_end(c->w);
    if (!r) r = tseal_sha256_final(c->file_sha, mf->sha256);
    free(b);
    close(fd);
    c->done_bytes += f->size;
    c->done_items++;
    return r;
}

/* ---- keys and the header ----------------------------------------------------------------- */

typedef struct {
    uint16_t suite;
    tseal_seckey *signer;
    tseal_x509_chain *chain; /* suite 2: the signer's certificate and intermediates */
    uint8_t *chain_der;
    size_t chain_len;
    tseal_pubkey *recipients;
    unsigned n_recipients;
} pack_keys;

static void free_keys(pack_keys *k) {
    tseal_seckey_free(k->signer);
    tseal_x509_chain_free(k->chain);
    free(k->chain_der);
    free(k->recipients);
}

/* Signature block bytes: one Ed25519 entry, or one ECDSA entry with its certificates. */
static uint64_t sigblock_bytes(const pack_keys *k) {
    return 4 + (k->suite == TSEAL_SUITE_FIPS ? TSEAL_SIGENT_ECDSA_FIXED + k->chain_len
                                             : TSEAL_SIGENT_BYTES);
}

/* Suite 2: the signer is an ECDSA P-256 PEM key with its X.509 certificate (and chain): the
 * signature entry carries the certificates, and the public key is the leaf's. */
static int load_fips_signer(const tseal_pack_opts *o, const char *pass, size_t pass_len,
                            pack_keys *k) {
    if (!o->sign_cert)
        return tseal_err(TSEAL_E_INVAL, "the FIPS suite signs with a certificate (--sign-cert)");
    int r = tseal_p256_seckey_read_pem(o->sign_key, pass, pass_len, TSEAL_KEY_SIGN, &k->signer);
    if (!r) r = tseal_x509_chain_load(o->sign_cert, o->sign_chain, &k->chain);
    uint8_t cert_pk[TSEAL_P256_PK_BYTES]; /* not tseal_x509_leaf_matches: it hides errors */
    if (!r && (r = tseal_x509_leaf_pubkey(k->chain, cert_pk)) != 0)
        tseal_err_context("%s: ", o->sign_cert);
    if (!r && memcmp(cert_pk, k->signer->pub.pk, sizeof cert_pk) != 0)
        r = tseal_err(TSEAL_E_INVAL, "%s: the certificate is not for the key %s", o->sign_cert,
                      o->sign_key);
    if (!r) r = tseal_x509_chain_encode(k->chain, &k->chain_der, &k->chain_len);
    if (!r && k->chain_len > TSEAL_X509_MAX_CHAIN_BYTES)
        r = tseal_err(TSEAL_E_LIMIT, "%s: certificate chain over %u bytes", o->sign_cert,
                      TSEAL_X509_MAX_CHAIN_BYTES);
    return r;
}

static int read_recipient(const tseal_pack_opts *o, unsigned i, tseal_pubkey *pk, uint16_t suite) {
    int pem = tseal_file_is_pem(o->recipients[i]);
    if (pem < 0) return pem;
    if (suite == TSEAL_SUITE_FIPS && !pem && access(o->recipients[i], R_OK) == 0)
        return tseal_err(TSEAL_E_INVAL,
                         "%s: a tseal (X25519) key file; the FIPS suite needs a P-256 PEM "
                         "recipient key (tseal keygen --recipient NAME --suite fips)",
                         o->recipients[i]);
    if (suite != TSEAL_SUITE_FIPS && pem)
        return tseal_err(TSEAL_E_INVAL,
                         "%s: a PEM (P-256) key belongs to the FIPS suite (--suite fips)",
                         o->recipients[i]);
    int r = suite == TSEAL_SUITE_FIPS
                ? tseal_p256_pubkey_read_pem(o->recipients[i], TSEAL_KEY_RECIPIENT, pk)
                : tseal_pubkey_read(o->recipients[i], pk);
    if (!r && pk->kind != TSEAL_KEY_RECIPIENT)
        r = tseal_err(TSEAL_E_INVAL, "%s: not a recipient public key", o->recipients[i]);
    if (!r && pk->alg != (suite == TSEAL_SUITE_FIPS ? TSEAL_ALG_P256 : TSEAL_ALG_X25519))
        r = tseal_err(TSEAL_E_INVAL, "%s: a %s recipient key cannot be used in this suite",
                      o->recipients[i], pk->alg == TSEAL_ALG_P256 ? "P-256" : "X25519");
    return r;
}

static int load_keys(const tseal_pack_opts *o, pack_keys *k) {
    if (!o->sign_key) return tseal_err(TSEAL_E_INVAL, "a signing key is required (--sign-key)");
    if (o->n_recipients < 1)
        return tseal_err(TSEAL_E_INVAL, "at least one recipient is required (-r)");
    if (o->n_recipients > TSEAL_MAX_RECIPIENTS)
        return tseal_err(TSEAL_E_LIMIT, "%u recipients (at most %u)", o->n_recipients,
                         TSEAL_MAX_RECIPIENTS);
    k->suite = o->suite == TSEAL_SUITE_FIPS ? TSEAL_SUITE_FIPS : TSEAL_SUITE_V1;
    if (o->suite > TSEAL_SUITE_FIPS) return tseal_err(TSEAL_E_INVAL, "unknown suite %u", o->suite);
    if (k->suite == TSEAL_SUITE_V1 && (o->sign_cert || o->sign_chain))
        return tseal_err(TSEAL_E_INVAL, "certificates sign FIPS-suite containers (--suite fips)");
    char *pass = NULL;
    size_t pass_len = 0;
    int r = o->sign_passphrase_file
                ? tseal_passphrase_read(o->sign_passphrase_file, &pass, &pass_len)
                : 0;
    if (!r && k->suite == TSEAL_SUITE_FIPS)
        r = load_fips_signer(o, pass, pass_len, k);
    else if (!r)
        r = tseal_seckey_read(o->sign_key, pass, pass_len, &k->signer);
    tseal_secure_free(pass);
    if (r) return r;
    if (k->signer->pub.kind != TSEAL_KEY_SIGN)
        return tseal_err(TSEAL_E_INVAL, "%s: not a signing key", o->sign_key);
    k->recipients = calloc(o->n_recipients, sizeof *k->recipients);
    if (!k->recipients) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < o->n_recipients; i++) {
        if ((r = read_recipient(o, i, &k->recipients[i], k->suite))) return r;
        for (unsigned j = 0; j < i; j++)
            if (memcmp(k->recipients[j].key_id, k->recipients[i].key_id, TSEAL_KEY_ID_BYTES) == 0)
                return tseal_err(TSEAL_E_INVAL, "%s: recipient given twice", o->recipients[i]);
    }
    k->n_recipients = o->n_recipients;
    return 0;
}

static int check_opts(const tseal_pack_opts *o, uint32_t *chunk) {
    size_t m = o->model_id ? strlen(o->model_id) : 0;
    if (m < 1 || m > TSEAL_MAX_MODEL_ID)
        return tseal_err(TSEAL_E_INVAL, "model id must be 1..%u bytes", TSEAL_MAX_MODEL_ID);
    if (!tseal_text_printable((const uint8_t *)o->model_id, m))
        return tseal_err(TSEAL_E_INVAL, "model id must be printable UTF-8 (no control characters)");
    if (o->expires < 0) return tseal_err(TSEAL_E_INVAL, "negative expiry time");
    *chunk = o->chunk_size ? o->chunk_size : TSEAL_CHUNK_DEFAULT;
    if (*chunk < TSEAL_CHUNK_MIN || *chunk > TSEAL_CHUNK_MAX || (*chunk & (*chunk - 1)))
        return tseal_err(TSEAL_E_INVAL, "chunk size must be a power of two in 4 KiB..16 MiB");
    return 0;
}

/* Header skeleton: everything but the segment table, known before any payload. */
static int init_header(const tseal_pack_opts *o, const pack_keys *k, uint32_t chunk,
                       uint32_t n_segments, tseal_rng *rng, uint8_t *content_key, tseal_header *h) {
    memset(h, 0, sizeof *h);
    h->format_version = TSEAL_FORMAT_VERSION;
    h->suite = k->suite;
    int r = 0;
    if (h->suite == TSEAL_SUITE_FIPS && !rng) { /* the approved DRBG */
        r = tseal_fips_random(h->container_id, sizeof h->container_id);
        if (!r) r = tseal_fips_random(content_key, TSEAL_SYM_KEY_BYTES);
        if (r) return r;
    } else {
        tseal_random(rng, h->container_id, sizeof h->container_id);
        tseal_random(rng, content_key, TSEAL_SYM_KEY_BYTES);
    }
    h->created = o->test_created ? o->test_created : (int64_t)time(NULL);
    h->expires = o->expires;
    h->model_version = o->version;
    h->chunk_size = chunk;
    snprintf(h->model_id, sizeof h->model_id, "%s", o->model_id);
    memcpy(h->signer_key_id, k->signer->pub.key_id, TSEAL_KEY_ID_BYTES);
    h->n_recipients = k->n_recipients;
    h->n_segments = n_segments;
    h->stanzas = calloc(k->n_recipients, sizeof *h->stanzas);
    h->segments = calloc(n_segments, sizeof *h->segments);
    if (!h->stanzas || !h->segments) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    r = tseal_key_commitment(content_key, h->container_id, h->key_commitment);
    for (unsigned i = 0; i < k->n_recipients && !r; i++) {
        tseal_stanza *s = &h->stanzas[i];
        memcpy(s->key_id, k->recipients[i].key_id, TSEAL_KEY_ID_BYTES);
        uint8_t ad[32];
        memcpy(ad, h->container_id, 16);
        memcpy(ad + 16, s->key_id, TSEAL_KEY_ID_BYTES);
        if (h->suite == TSEAL_SUITE_FIPS)
            r = tseal_p256_wrap(k->recipients[i].pk, ad, sizeof ad, content_key, s->eph_pk,
                                s->wrapped);
        else
            r = tseal_x25519_wrap(k->recipients[i].pk, ad, sizeof ad, content_key, rng, s->eph_pk,
                                  s->wrapped);
    }
    return r;
}

/* Header, signature and the fixed prefix, written over the reserved space at offset 0. */
static int finish_file(int fd, const char *path, tseal_header *h, const pack_keys *k,
                       uint64_t hsize) {
    const tseal_seckey *signer = k->signer;
    uint64_t sblen = sigblock_bytes(k), total = 16 + hsize + sblen;
    uint8_t *b = calloc(1, total);
    if (!b) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    memcpy(b, TSEAL_MAGIC, TSEAL_MAGIC_BYTES);
    tseal_store_le32(b + 8, (uint32_t)hsize);
    int r = tseal_header_write(h, b + 12, hsize);
    uint8_t digest[TSEAL_HASH_BYTES];
    if (!r) r = tseal_sha256(b + 12, hsize, digest);
    uint8_t *sb = b + 12 + hsize;
    tseal_store_le32(sb, (uint32_t)sblen);
    sb += 4;
    sb[0] = 1; /* one signature */
    uint8_t *e = sb + 4;
    memcpy(e + 4, signer->pub.key_id, TSEAL_KEY_ID_BYTES);
    if (k->suite == TSEAL_SUITE_FIPS) { /* ECDSA r || s, then the certificates */
        e[0] = TSEAL_ALG_SIG_ECDSA_P256;
        tseal_store_le32(e + 84, (uint32_t)k->chain_len);
        memcpy(e + TSEAL_SIGENT_ECDSA_FIXED, k->chain_der, k->chain_len);
        if (!r) r = tseal_p256_sign(signer, TSEAL_SIG_TYPE_HEADER, digest, e + 20);
    } else {
        e[0] = TSEAL_ALG_ED25519;
        memcpy(e + 20, signer->pub.pk, TSEAL_PK_BYTES);
        if (!r) r = tseal_sign(signer, TSEAL_SIG_TYPE_HEADER, digest, e + 52);
    }
    for (uint64_t done = 0; !r && done < total;) { /* pwrite may write less than asked */
        ssize_t wr = pwrite(fd, b + done, total - done, (off_t)done);
        if (wr < 0 && errno == EINTR) continue;
        if (wr <= 0)
            r = tseal_err(TSEAL_E_IO, "%s: write failed: %s", path,
                          wr < 0 ? strerror(errno) : "no progress");
        else
            done += (uint64_t)wr;
    }
    free(b);
    return r;
}

/* ---- driver ------------------------------------------------------------------------------ */

static int write_payload(pack_ctx *c, in_list *in) {
    int r = 0;
    for (size_t i = 0; i < in->n && !r; i++) {
        r = in->v[i].is_st ? pack_safetensors(c, &in->v[i]) : pack_blob(c, &in->v[i]);
        c->rep->files++;
        c->rep->original_bytes += in->v[i].size;
    }
    char *json = NULL;
    size_t len = 0;
    if (!r) r = tseal_mf_serialize(c->m, &json, &len);
    if (!r) r = sw_begin(c->w, TSEAL_SEG_MANIFEST);
    if (!r) r = sw_write(c->w, json, len);
    if (!r) r = sw_end(c->w);
    c->rep->manifest_bytes = len;
    if (json) tseal_wipe(json, len);
    free(json);
    return r;
}

int tseal_pack(const char *input, const char *output, const tseal_pack_opts *o,
               tseal_pack_report *rep) {
    tseal_pack_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    uint32_t chunk = 0;
    int r = tseal_crypto_init();
    if (!r) r = check_opts(o, &chunk);
    if (r) return r;
    tseal_pack_opts oo = *o;
    if (!oo.codec.max_code_bits) tseal_codec_params_default(&oo.codec);
    pack_keys keys = {0};
    in_list in = {0};
    tseal_header h = {0};
    tseal_manifest m = {0};
    tseal_atomic_file af = {.fd = -1};
    tseal_rng rng_state, *rng = NULL;
    if (o->test_seed) {
        memcpy(rng_state.seed, o->test_seed, 32);
        rng_state.counter = 0;
        rng = &rng_state;
    }
    segwriter w = {.chunk_size = chunk, .path = output};
    uint8_t *content_key = tseal_secure_alloc(TSEAL_SYM_KEY_BYTES);
    w.key = tseal_secure_alloc(TSEAL_SYM_KEY_BYTES);
    w.buf = tseal_secure_alloc(chunk);
    w.ct = malloc((size_t)chunk + TSEAL_AEAD_TAG_BYTES);
    pack_ctx c = {.o = &oo,
                  .w = &w,
                  .m = &m,
                  .rep = rep,
                  .threads = o->threads ? o->threads : tseal_cpu_count()};
    if (!content_key || !w.key || !w.buf || !w.ct) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
    if (!r) r = tseal_sha256_new(&c.file_sha);
    if (!r) r = tseal_tree_new(&c.tensor_tree);
    if (!r) r = load_keys(&oo, &keys);
    if (!r) r = collect_inputs(input, &in);
    uint32_t n_segments = 1;
    for (size_t i = 0; !r && i < in.n; i++) {
        uint64_t ns = n_segments + 1 + (in.v[i].is_st ? tseal_st_count(in.v[i].st) : 0);
        if (ns > TSEAL_MAX_SEGMENTS)
            r = tseal_err(TSEAL_E_LIMIT, "%s: too many tensors and files", input);
        n_segments = (uint32_t)ns;
        c.total_bytes += in.v[i].size;
        c.total_items += in.v[i].is_st ? (uint32_t)tseal_st_count(in.v[i].st) : 1;
    }
    if (!r) r = init_header(&oo, &keys, chunk, n_segments, rng, content_key, &h);
    uint64_t hsize = r ? 0 : tseal_header_size(&h);
    if (!r && hsize > TSEAL_HDR_MAX)
        r = tseal_err(TSEAL_E_LIMIT, "%s: header would exceed %u bytes", input, TSEAL_HDR_MAX);
    snprintf(m.model_id, sizeof m.model_id, "%s", oo.model_id);
    m.version = oo.version;
    if (!r) r = tseal_atomic_open(&af, output, 0644);
    if (!r) {
        w.fd = af.fd;
        w.content_key = content_key;
        w.container_id = h.container_id;
        w.suite = h.suite;
        uint64_t reserve = 16 + hsize + sigblock_bytes(&keys);
        if (lseek(af.fd, (off_t)reserve, SEEK_SET) != (off_t)reserve)
            r = tseal_err(TSEAL_E_IO, "%s: seek failed", output);
    }
    if (!r) r = write_payload(&c, &in);
    if (!r && w.n_segs != n_segments)
        r = tseal_err(TSEAL_E_IO, "%s: input changed while packing", input);
    if (!r) {
        memcpy(h.segments, w.segs, n_segments * sizeof *h.segments);
        h.payload_bytes = w.payload_pos;
        h.original_bytes = rep->original_bytes;
        r = finish_file(af.fd, output, &h, &keys, hsize);
    }
    if (!r)
        r = tseal_atomic_commit(&af);
    else if (af.fd >= 0 || af.tmp_path)
        tseal_atomic_abort(&af);
    if (!r) {
        rep->segments = n_segments;
        for (uint32_t i = 0; i < n_segments; i++) rep->plaintext_bytes += h.segments[i].pt_len;
        rep->payload_bytes = h.payload_bytes;
        rep->container_bytes = 16 + hsize + sigblock_bytes(&keys) + h.payload_bytes;
        tseal_key_id_hex(keys.signer->pub.key_id, rep->signer_key_id);
    }
    tseal_secure_free(content_key);
    tseal_secure_free(w.key);
    tseal_secure_free(w.buf);
    free(w.ct);
    free(w.list);
    free(w.segs);
    tseal_sha256_free(c.file_sha);
    tseal_tree_free(c.tensor_tree);
    tseal_header_free(&h);
    tseal_mf_free(&m);
    free_inputs(&in);
    free_keys(&keys);
    return r;
}
