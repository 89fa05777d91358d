/*
 * unpack.c - inspect, verify and unpack a container.
 *
 * Order of checks (verify before decrypt): header and signature block parsed from one read;
 * every signature valid and one by a trusted key; expiry; with a key, the content key
 * unwrapped and checked against the signed commitment; then segment by segment the chunk
 * hash list against the header, each chunk against its list entry, and only those same bytes
 * decrypted (tseal_segreader). Unpack rebuilds every file in a temporary folder, checks each
 * file's SHA-256 (and each tensor's), and renames the folder only when everything matched.
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "internal.h"
#include "manifest.h"
#include "verify_internal.h"

#define DECODE_BATCH_BYTES (16ull << 20) /* decoded BF16 bytes held at a time */

/* ---- inspect ---------------------------------------------------------------------------- */

int tseal_inspect(const char *path, tseal_container_info *info) {
    memset(info, 0, sizeof *info);
    tseal_container *c;
    int r = tseal_container_open(path, &c);
    if (r) return r;
    const tseal_header *h = &c->h;
    info->format_version = h->format_version;
    info->suite = h->suite;
    snprintf(info->suite_name, sizeof info->suite_name, "%s", tseal_suite_name(h->suite));
    snprintf(info->model_id, sizeof info->model_id, "%s", h->model_id);
    info->version = h->model_version;
    info->created = h->created;
    info->expires = h->expires;
    tseal_hex(h->container_id, 16, info->container_id);
    tseal_hex(c->header_digest, TSEAL_HASH_BYTES, info->artifact_digest);
    info->chunk_size = h->chunk_size;
    info->recipient_count = h->n_recipients;
    for (uint32_t i = 0; i < h->n_recipients; i++)
        tseal_key_id_hex(h->stanzas[i].key_id, info->recipient_key_ids[i]);
    info->signature_count = c->n_sigs;
    for (uint32_t i = 0; i < c->n_sigs && !r; i++) {
        tseal_key_id_hex(c->sigs[i].key_id, info->signer_key_ids[i]);
        if (c->sigs[i].chain)
            r = tseal_x509_leaf_describe(c->sigs[i].chain, info->signer_subjects[i],
                                         sizeof info->signer_subjects[i], info->signer_issuers[i],
                                         sizeof info->signer_issuers[i],
                                         &info->signer_not_after[i]);
    }
    tseal_key_id_hex(h->signer_key_id, info->primary_signer_key_id);
    info->segment_count = h->n_segments;
    info->payload_bytes = h->payload_bytes;
    info->container_bytes = c->file_size;
    info->original_bytes = h->original_bytes;
    tseal_container_close(c);
    return r;
}

/* ---- shared verification state ------------------------------------------------------------ */

typedef struct {
    const tseal_verify_opts *o;
    tseal_verify_report *rep;
    tseal_container *c;
    uint8_t *content_key; /* secure; NULL without a key */
    uint8_t *chunk;       /* secure: one plaintext chunk */
    tseal_manifest m;
    tseal_sha256_ctx *file_sha;
    tseal_tree_ctx *tensor_tree;
    uint8_t *blob; /* secure: a whole decrypted segment, reused (grows) */
    uint64_t blob_cap;
    uint8_t *dec; /* secure: decoded BF16 rows, reused */
    uint64_t dec_cap;
    const char *outdir;              /* temporary folder for unpack, NULL for verify */
    const tseal_verify_hooks *hooks; /* audit: record every digest instead of stopping */
    const tseal_mf_file *cur_file;   /* the file being rebuilt */
    int fd;                          /* file being written, or -1 */
    uint64_t done_bytes, total_bytes;
    uint32_t done_items, total_items;
} vctx;

static void progress(vctx *v, const char *stage, const char *item) {
    if (!v->o->progress) return;
    tseal_progress p = {stage, item, v->done_bytes, v->total_bytes, v->done_items, v->total_items};
    v->o->progress(v->o->progress_ctx, &p);
}

/* Trusted signer keys: tseal public key files (Ed25519) or PEM public keys (ECDSA P-256). */
static int load_trust(const tseal_verify_opts *o, tseal_pubkey **keys) {
    *keys = NULL;
    if (!o->n_trust) return 0;
    *keys = calloc(o->n_trust, sizeof **keys);
    if (!*keys) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < o->n_trust; i++) {
        int r = tseal_file_is_pem(o->trust[i]);
        if (r >= 0)
            r = r ? tseal_p256_pubkey_read_pem(o->trust[i], TSEAL_KEY_SIGN, &(*keys)[i])
                  : tseal_pubkey_read(o->trust[i], &(*keys)[i]);
        if (r) return r;
        if ((*keys)[i].kind != TSEAL_KEY_SIGN)
            return tseal_err(TSEAL_E_INVAL, "%s: not a signing public key", o->trust[i]);
    }
    return 0;
}

/* Trusted CA roots (and CRLs) for X.509 signers (the FIPS suite). */
static int load_cas(const tseal_verify_opts *o, tseal_x509_trust **t) {
    *t = NULL;
    if (!o->n_trust_cas) {
        if (o->n_crls || o->n_identities)
            return tseal_err(TSEAL_E_INVAL, "CRLs and identities need a trusted CA (--trust-ca)");
        return 0;
    }
    int r = tseal_x509_trust_new(t);
    for (unsigned i = 0; !r && i < o->n_trust_cas; i++)
        r = tseal_x509_trust_add_ca_file(*t, o->trust_cas[i]);
    for (unsigned i = 0; !r && i < o->n_crls; i++)
        r = tseal_x509_trust_add_crl_file(*t, o->crls[i]);
    return r;
}

static int check_expiry(const vctx *v) {
    int64_t now = v->o->now ? v->o->now : (int64_t)time(NULL);
    if (v->c->h.expires && now > v->c->h.expires) {
        char buf[32];
        time_t t = (time_t)v->c->h.expires;
        struct tm tm;
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&t, &tm));
        return tseal_err(TSEAL_E_VERIFY, "%s: artifact expired %s", v->c->path, buf);
    }
    return 0;
}

static int unwrap_key(vctx *v) {
    char *pass = NULL;
    size_t pass_len = 0;
    tseal_seckey *sk = NULL;
    int r =
        v->o->passphrase_file ? tseal_passphrase_read(v->o->passphrase_file, &pass, &pass_len) : 0;
    int pem = r ? 0 : tseal_file_is_pem(v->o->key);
    if (pem < 0)
        r = pem;
    else if (!r && pem) /* a P-256 key (the FIPS suite) */
        r = tseal_p256_seckey_read_pem(v->o->key, pass, pass_len, TSEAL_KEY_RECIPIENT, &sk);
    else if (!r)
        r = tseal_seckey_read(v->o->key, pass, pass_len, &sk);
    tseal_secure_free(pass);
    if (!r) {
        v->content_key = tseal_secure_alloc(TSEAL_SYM_KEY_BYTES);
        r = v->content_key ? tseal_container_unwrap(v->c, sk, v->content_key) : TSEAL_E_NOMEM;
    }
    tseal_seckey_free(sk);
    return r;
}

/* Hash-check every chunk of a segment (no key). */
static int check_segment(vctx *v, uint32_t i) {
    tseal_segreader sr;
    int r = tseal_segreader_open(&sr, v->c, i, NULL);
    uint64_t len;
    while (!r && (r = tseal_segreader_next(&sr, NULL, &len)) == 1) {
        v->done_bytes += len;
        r = 0;
    }
    tseal_segreader_close(&sr);
    v->rep->segments_checked++;
    return r;
}

/* A reusable secure buffer of at least `n` bytes: allocating (and locking, and faulting in)
 * a fresh one per tensor costs more than decoding it. */
static int reserve(uint8_t **buf, uint64_t *cap, uint64_t n) {
    if (n <= *cap && *buf) return 0;
    tseal_secure_free(*buf);
    *cap = 0;
    *buf = tseal_secure_alloc(n ? n : 1);
    if (!*buf) return TSEAL_E_NOMEM;
    *cap = n;
    return 0;
}

/* Decrypt a whole segment into v->blob (manifest, coded tensors). The caller wipes it. */
static int read_segment(vctx *v, uint32_t i, uint64_t max, uint64_t *len) {
    const tseal_segment *s = &v->c->h.segments[i];
    if (s->pt_len > max)
        return tseal_err(TSEAL_E_LIMIT, "%s: segment %u is %llu bytes (limit %llu)", v->c->path, i,
                         (unsigned long long)s->pt_len, (unsigned long long)max);
    int r = reserve(&v->blob, &v->blob_cap, s->pt_len);
    if (!r) r = tseal_segment_decrypt_all(v->c, i, v->content_key, v->blob, v->o->threads);
    if (r) return r;
    uint64_t pos = s->pt_len;
    v->rep->segments_checked++;
    *len = pos;
    return 0;
}

/* Plaintext out: to the file hash, the tensor hash (verify only: when unpacking, the file's
 * signed SHA-256 covers every tensor byte already) and the output file (unpack only). The two
 * consumers of a large piece run on two threads. */
typedef struct {
    vctx *v;
    const void *p;
    size_t n;
    int tensor;
} emit_job;

static int emit_part(void *arg, unsigned item) {
    const emit_job *e = arg;
    if (item == 0) return tseal_sha256_update(e->v->file_sha, e->p, e->n);
    if (e->tensor && !e->v->outdir) return tseal_tree_update(e->v->tensor_tree, e->p, e->n);
    if (e->v->fd >= 0)
        return tseal_write_full(e->v->fd, e->p, e->n,
                                e->v->cur_file ? e->v->cur_file->path : "output file");
    return 0;
}

static int emit(vctx *v, const void *p, size_t n, int tensor) {
    emit_job e = {v, p, n, tensor};
    v->done_bytes += n;
    return tseal_parallel(2, n >= (1u << 20) && v->o->threads != 1 ? 2 : 1, emit_part, &e);
}

/* Stream a segment's chunks to emit(). */
static int stream_segment(vctx *v, uint32_t i, int tensor) {
    tseal_segreader sr;
    int r = tseal_segreader_open(&sr, v->c, i, v->content_key);
    uint64_t n;
    while (!r && (r = tseal_segreader_next(&sr, v->chunk, &n)) == 1) {
        r = emit(v, v->chunk, n, tensor);
        tseal_wipe(v->chunk, n);
    }
    tseal_segreader_close(&sr);
    if (!r) v->rep->segments_checked++;
    return r;
}

/* Decode on the GPU (what serves the model), then bring the rows back in batches into locked
 * host memory for hashing; the device copy is wiped before it is freed. */
static int decode_on_gpu(vctx *v, const tseal_ct_view *cv, uint64_t bytes) {
    tseal_gpu_tensor *gt = NULL;
    uint8_t *d = NULL;
    int dev = v->o->gpu_device;
    int r = tseal_gpu_tensor_upload(cv, dev, &gt);
    if (!r) r = tseal_gpu_malloc(dev, bytes ? bytes : 2, (void **)&d);
    if (!r) r = tseal_gpu_tensor_decode(gt, d, NULL);
    if (!r) r = reserve(&v->dec, &v->dec_cap, DECODE_BATCH_BYTES);
    for (uint64_t off = 0; !r && off < bytes; off += DECODE_BATCH_BYTES) {
        uint64_t k = bytes - off < DECODE_BATCH_BYTES ? bytes - off : DECODE_BATCH_BYTES;
        r = tseal_gpu_memcpy_d2h(v->dec, d + off, k);
        if (!r) r = emit(v, v->dec, k, 1);
    }
    if (v->dec) tseal_wipe(v->dec, v->dec_cap);
    if (d) tseal_gpu_memset(d, 0, bytes ? bytes : 2);
    tseal_gpu_mem_free(d);
    tseal_gpu_tensor_free(gt);
    return r;
}

static int decode_coded(vctx *v, const tseal_mf_tensor *t, const uint8_t *blob, uint64_t len) {
    tseal_ct_view cv;
    int r = tseal_codec_view(blob, len, &cv);
    if (r) return r;
    if (cv.elem_size != 2 || cv.n_elems * 2 != t->bytes)
        return tseal_err(TSEAL_E_CORRUPT,
                         "coded tensor holds %llu elements, the manifest says %llu bytes",
                         (unsigned long long)cv.n_elems, (unsigned long long)t->bytes);
    if (v->o->gpu) return decode_on_gpu(v, &cv, t->bytes);
    uint64_t row_bytes = cv.cols * 2, rows_per = row_bytes ? DECODE_BATCH_BYTES / row_bytes : 1;
    if (rows_per == 0) rows_per = 1;
    uint64_t buf_bytes = (rows_per < cv.rows ? rows_per : cv.rows) * row_bytes;
    if ((r = reserve(&v->dec, &v->dec_cap, buf_bytes))) return r;
    for (uint64_t row = 0; row < cv.rows && !r; row += rows_per) {
        uint64_t end = row + rows_per < cv.rows ? row + rows_per : cv.rows;
        r = tseal_codec_decode_rows(&cv, row, end, v->dec, v->o->threads);
        if (!r) r = emit(v, v->dec, (end - row) * row_bytes, 1);
    }
    tseal_wipe(v->dec, buf_bytes);
    return r;
}

static int restore_tensor(vctx *v, const tseal_mf_tensor *t) {
    progress(v, v->fd >= 0 ? "unpack" : "verify", t->name);
    int r;
    if (t->coded) {
        uint64_t len = 0;
        r = read_segment(v, t->segment, UINT64_MAX, &len);
        if (!r) r = decode_coded(v, t, v->blob, len);
        tseal_wipe(v->blob, len);
    } else {
        r = stream_segment(v, t->segment, 1);
    }
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r && !v->outdir) {
        r = tseal_tree_final(v->tensor_tree, h);
        if (!r && v->hooks)
            r = v->hooks->tensor(v->hooks->ctx, v->cur_file, t, h);
        else if (!r && !tseal_equal(h, t->sha256, TSEAL_HASH_BYTES))
            r = tseal_err(TSEAL_E_VERIFY, "decoded bytes do not match the signed digest");
    }
    if (r) tseal_err_context("tensor '%.200s': ", t->name);
    v->rep->tensors_checked += r == 0;
    v->done_items++;
    return r;
}

/* Create the parent folders of `rel` under the output folder. */
static int make_parents(const char *root, const char *rel) {
    char p[TSEAL_MF_MAX_PATH + 4096 + 2];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return tseal_err(TSEAL_E_IO, "%s: mkdir: %s", p, strerror(errno));
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            return tseal_err(TSEAL_E_CORRUPT, "%s: not a folder", p);
        *s = '/';
    }
    return 0;
}

static int restore_file(vctx *v, const tseal_mf_file *f) {
    int r = 0;
    v->cur_file = f;
    if (v->outdir) {
        char p[TSEAL_MF_MAX_PATH + 4096 + 2];
        r = make_parents(v->outdir, f->path);
        snprintf(p, sizeof p, "%s/%s", v->outdir, f->path);
        if (!r && (v->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644)) < 0)
            r = tseal_err(TSEAL_E_IO, "%s: cannot create: %s", p, strerror(errno));
    }
    if (!r && f->kind == TSEAL_FILE_BLOB) {
        progress(v, v->fd >= 0 ? "unpack" : "verify", f->path);
        r = stream_segment(v, f->segment, 0);
        v->done_items++;
    } else if (!r) {
        r = stream_segment(v, f->segment, 0);
        for (uint32_t k = 0; k < f->n_tensors && !r; k++)
            r = restore_tensor(v, &v->m.tensors[f->first_tensor + k]);
    }
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r) r = tseal_sha256_final(v->file_sha, h);
    if (!r && v->hooks)
        r = v->hooks->file(v->hooks->ctx, f, h);
    else if (!r && !tseal_equal(h, f->sha256, TSEAL_HASH_BYTES))
        r = tseal_err(TSEAL_E_VERIFY,
                      "%s: file '%s': rebuilt bytes do not match the signed SHA-256", v->c->path,
                      f->path);
    if (v->fd >= 0) {
        if (!r && fsync(v->fd) != 0)
            r = tseal_err(TSEAL_E_IO, "%s: fsync: %s", f->path, strerror(errno));
        if (close(v->fd) != 0 && !r)
            r = tseal_err(TSEAL_E_IO, "%s: close: %s", f->path, strerror(errno));
        v->fd = -1;
    }
    v->rep->files_checked += r == 0;
    return r;
}

/* Everything after the signature check: segments (and with a key, the whole model). */
static int verify_body(vctx *v) {
    const tseal_header *h = &v->c->h;
    v->total_bytes = h->original_bytes;
    if (!v->content_key) {
        v->total_bytes = h->payload_bytes;
        int r = 0;
        for (uint32_t i = 0; i < h->n_segments && !r; i++) r = check_segment(v, i);
        v->rep->bytes_checked = v->done_bytes;
        return r;
    }
    uint64_t mf_len = 0;
    int r = read_segment(v, h->n_segments - 1, TSEAL_MF_MAX_BYTES, &mf_len);
    if (!r) r = tseal_mf_parse(v->blob, mf_len, h, v->c->path, &v->m);
    if (!r && v->hooks) r = v->hooks->manifest(v->hooks->ctx, &v->m);
    if (!r) tseal_wipe(v->blob, mf_len);
    if (r) return r;
    v->total_items = v->m.n_tensors;
    for (uint32_t i = 0; i < v->m.n_files; i++)
        v->total_items += v->m.files[i].kind == TSEAL_FILE_BLOB;
    for (uint32_t i = 0; i < v->m.n_files && !r; i++) r = restore_file(v, &v->m.files[i]);
    v->rep->decrypted = r == 0;
    v->rep->bytes_checked = v->done_bytes;
    return r;
}

void tseal_container_gate_input(const tseal_container *c, tseal_gate_signers *sg,
                                tseal_gate_input *in) {
    const tseal_header *h = &c->h;
    memset(in, 0, sizeof *in);
    in->model_id = h->model_id;
    in->version = h->model_version;
    in->created = h->created;
    in->expires = h->expires;
    in->suite_name = tseal_suite_name(h->suite);
    in->header_bytes = c->header_len;
    in->recipients = h->n_recipients;
    for (uint32_t i = 0; i < h->n_segments; i++) {
        if (h->segments[i].kind != TSEAL_SEG_TENSOR) continue;
        in->tensors++;
        if (h->segments[i].pt_len > in->largest_tensor_bytes)
            in->largest_tensor_bytes = h->segments[i].pt_len;
    }
    memcpy(in->artifact_digest, c->header_digest, TSEAL_HASH_BYTES);
    memset(sg, 0, sizeof *sg);
    for (uint32_t i = 0; i < c->n_sigs; i++) {
        if (c->sigs[i].alg == TSEAL_ALG_ED25519) memcpy(sg->pks[i], c->sigs[i].pk, TSEAL_PK_BYTES);
        sg->chains[i] = c->sigs[i].chain; /* NULL for Ed25519 signers */
        memcpy(sg->key_ids[i], c->sigs[i].key_id, TSEAL_KEY_ID_BYTES);
    }
    in->signer_pks = (const uint8_t(*)[TSEAL_PK_BYTES])sg->pks;
    in->signer_chains = sg->chains;
    in->signer_key_ids = (const uint8_t(*)[TSEAL_KEY_ID_BYTES])sg->key_ids;
    in->n_signers = c->n_sigs;
}

typedef struct {
    tseal_policy *policy;
    tseal_state *state;
    tseal_gate_result res;
    int have_res, denied;
} gate_ctx;

static int load_policy_keys(const tseal_verify_opts *o, tseal_pubkey **keys) {
    *keys = NULL;
    if (!o->n_policy_keys) return 0;
    *keys = calloc(o->n_policy_keys, sizeof **keys);
    if (!*keys) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    for (unsigned i = 0; i < o->n_policy_keys; i++) {
        int r = tseal_pubkey_read(o->policy_keys[i], &(*keys)[i]);
        if (r) return r;
    }
    return 0;
}

/* The deployment policy decides trust: every reason for a denial, or allow. */
static int apply_policy(vctx *v, gate_ctx *g) {
    const tseal_verify_opts *o = v->o;
    tseal_pubkey *pkeys = NULL;
    tseal_attestation *att = NULL;
    int r = load_policy_keys(o, &pkeys);
    if (!r)
        r = tseal_policy_load(o->policy, pkeys, o->n_policy_keys, o->n_policy_keys > 0, &g->policy);
    free(pkeys);
    if (!r && o->state) r = tseal_state_load(o->state, &g->state);
    if (!r && o->n_attestations) {
        att = calloc(o->n_attestations, sizeof *att);
        if (!att) r = tseal_err(TSEAL_E_NOMEM, "out of memory");
        for (unsigned i = 0; !r && i < o->n_attestations; i++)
            r = tseal_report_attestation(o->attestations[i], &att[i]);
    }
    if (r) {
        free(att);
        return r;
    }
    tseal_gate_signers *sg = calloc(1, sizeof *sg);
    if (!sg) {
        free(att);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    tseal_gate_input in;
    tseal_container_gate_input(v->c, sg, &in);
    in.attestations = att;
    in.n_attestations = o->n_attestations;
    r = tseal_policy_gate(g->policy, &in, g->state, o->now ? o->now : (int64_t)time(NULL), &g->res);
    g->have_res = 1;
    free(att);
    free(sg);
    snprintf(v->rep->policy_id, sizeof v->rep->policy_id, "%s", tseal_policy_id(g->policy));
    if (r == TSEAL_E_DENIED) {
        g->denied = 1;
        if (v->hooks && v->hooks->opened) return 0; /* an audit records the denial */
        tseal_err_context("%s: ", v->c->path);
        return r;
    }
    if (!r) {
        v->rep->policy_allowed = 1;
        v->rep->trusted_signatures = g->res.n_counted; /* the signers the policy counted */
    }
    return r;
}

/* Raise the rollback state for every signer that counted, after full verification only. */
static int record_state(vctx *v, gate_ctx *g) {
    if (!v->o->state || !g->have_res || g->denied || v->hooks) return 0;
    int r = tseal_state_record(g->state, v->o->state, v->c->h.model_id,
                               (const uint8_t(*)[TSEAL_KEY_ID_BYTES])g->res.counted,
                               g->res.n_counted, v->c->h.model_version);
    if (!r) v->rep->state_updated = 1;
    return r;
}

/* Open the container and decide trust: every signature, then the policy gate (or trusted keys
 * or CAs, and the expiry). v->c is set (closed by the caller) even on failure. */
static int open_checked(const char *path, vctx *v, gate_ctx *g) {
    const tseal_verify_opts *o = v->o;
    tseal_pubkey *trusted = NULL;
    tseal_x509_trust *cas = NULL;
    int r = tseal_container_open(path, &v->c);
    if (!r) r = load_trust(o, &trusted);
    if (!r) r = load_cas(o, &cas);
    tseal_ca_trust ca = {.store = cas,
                         .identities = o->identities,
                         .n_identities = o->n_identities,
                         .at = o->now ? o->now : (int64_t)time(NULL)};
    if (!r)
        r = tseal_container_check_signatures_ca(v->c, trusted, o->n_trust, cas ? &ca : NULL,
                                                &v->rep->trusted_signatures);
    if (!r) v->rep->signature_ok = 1;
    if (!r && o->policy) r = apply_policy(v, g);
    if (!r && !o->policy) r = check_expiry(v);
    tseal_x509_trust_free(cas);
    free(trusted);
    return r;
}

static void gate_free(gate_ctx *g) {
    if (g->have_res) tseal_gate_result_free(&g->res);
    tseal_state_free(g->state);
    tseal_policy_free(g->policy);
}

int tseal_verify_run(const char *path, const tseal_verify_opts *o, tseal_verify_report *rep,
                     const char *tmpdir, int need_trust, const tseal_verify_hooks *hooks) {
    tseal_verify_report dummy;
    if (!rep) rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (need_trust && o->n_trust == 0 && o->n_trust_cas == 0 && !o->policy)
        return tseal_err(
            TSEAL_E_INVAL,
            "verify needs a trusted key (--trust), CA (--trust-ca) or policy (--policy)");
    vctx v = {.o = o, .rep = rep, .outdir = tmpdir, .fd = -1, .hooks = hooks};
    gate_ctx g = {0};
    int r = open_checked(path, &v, &g);
    if (!r && hooks && hooks->opened)
        r = hooks->opened(hooks->ctx, v.c, g.have_res ? &g.res : NULL, g.denied);
    if (!r && o->key) r = unwrap_key(&v);
    if (!r) {
        v.chunk = tseal_secure_alloc(v.c->h.chunk_size);
        if (!v.chunk) r = TSEAL_E_NOMEM;
    }
    if (!r) r = tseal_sha256_new(&v.file_sha);
    if (!r) r = tseal_tree_new(&v.tensor_tree);
    if (!r) r = verify_body(&v);
    if (!r) r = record_state(&v, &g);
    if (v.fd >= 0) close(v.fd);
    tseal_sha256_free(v.file_sha);
    tseal_tree_free(v.tensor_tree);
    tseal_secure_free(v.chunk);
    tseal_secure_free(v.blob);
    tseal_secure_free(v.dec);
    tseal_secure_free(v.content_key);
    tseal_mf_free(&v.m);
    tseal_container_close(v.c);
    gate_free(&g);
    return r;
}

/* ---- open for reading (the loader) -------------------------------------------------------- */

int tseal_verified_open(const char *path, const tseal_verify_opts *o, tseal_verified *out) {
    memset(out, 0, sizeof *out);
    if (!o || !o->key) return tseal_err(TSEAL_E_INVAL, "opening an artifact needs a key (--key)");
    if (o->n_trust == 0 && o->n_trust_cas == 0 && !o->policy)
        return tseal_err(TSEAL_E_INVAL, "opening an artifact needs a trusted key (--trust), CA "
                                        "(--trust-ca) or policy (--policy)");
    /* The state is read by the gate but never raised here (no full verification yet). */
    tseal_verify_report rep;
    memset(&rep, 0, sizeof rep);
    vctx v = {.o = o, .rep = &rep, .fd = -1};
    gate_ctx g = {0};
    int r = open_checked(path, &v, &g);
    if (!r) r = unwrap_key(&v);
    uint64_t mf_len = 0;
    if (!r) r = read_segment(&v, v.c->h.n_segments - 1, TSEAL_MF_MAX_BYTES, &mf_len);
    if (!r) r = tseal_mf_parse(v.blob, mf_len, &v.c->h, v.c->path, &out->m);
    if (v.blob) tseal_wipe(v.blob, mf_len);
    tseal_secure_free(v.blob);
    if (!r) {
        out->c = v.c;
        out->content_key = v.content_key;
        out->trusted_signatures = rep.trusted_signatures;
        out->policy_allowed = rep.policy_allowed;
        snprintf(out->policy_id, sizeof out->policy_id, "%s", rep.policy_id);
    } else {
        tseal_mf_free(&out->m);
        tseal_secure_free(v.content_key);
        tseal_container_close(v.c);
        memset(out, 0, sizeof *out);
    }
    gate_free(&g);
    return r;
}

void tseal_verified_close(tseal_verified *x) {
    if (!x) return;
    tseal_mf_free(&x->m);
    tseal_secure_free(x->content_key);
    tseal_container_close(x->c);
    memset(x, 0, sizeof *x);
}

int tseal_verify(const char *path, const tseal_verify_opts *o, tseal_verify_report *rep) {
    return tseal_verify_run(path, o, rep, NULL, 1, NULL);
}

/* ---- unpack ------------------------------------------------------------------------------ */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static int dir_state(const char *dir, int *exists) {
    struct stat st;
    *exists = 0;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : tseal_err(TSEAL_E_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return tseal_err(TSEAL_E_INVAL, "%s: exists and is not a folder", dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return tseal_err(TSEAL_E_IO, "%s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
    closedir(d);
    if (!empty) return tseal_err(TSEAL_E_INVAL, "%s: exists and is not empty", dir);
    *exists = 1;
    return 0;
}

int tseal_unpack(const char *path, const char *outdir, const tseal_verify_opts *o,
                 tseal_verify_report *rep) {
    int exists;
    int r = dir_state(outdir, &exists);
    if (r) return r;
    size_t n = strlen(outdir);
    char *tmp = malloc(n + 16);
    if (!tmp) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    while (n > 1 && outdir[n - 1] == '/') n--;
    snprintf(tmp, n + 16, "%.*s.tmp.XXXXXX", (int)n, outdir);
    if (!mkdtemp(tmp)) {
        r = tseal_err(TSEAL_E_IO, "%s: cannot create a temporary folder: %s", tmp, strerror(errno));
        free(tmp);
        return r;
    }
    r = tseal_verify_run(path, o, rep, tmp, 0, NULL);
    if (!r && exists && rmdir(outdir) != 0)
        r = tseal_err(TSEAL_E_IO, "%s: %s", outdir, strerror(errno));
    if (!r && rename(tmp, outdir) != 0)
        r = tseal_err(TSEAL_E_IO, "%s: rename: %s", outdir, strerror(errno));
    if (r) nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
    return r;
}
