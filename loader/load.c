/*
 * load.c - load a verified artifact onto a GPU, keeping every tensor compressed there.
 *
 * Pipeline, per segment of ciphertext (one tensor), in pieces of at most `staging_bytes`
 * (a whole number of chunks):
 *
 *   host threads:  pread + SHA-256 vs signed list + AEAD open  ->  pinned staging[k % 2]
 *   copy stream:                                  staging[k % 2] ->  device blob (async DMA)
 *
 * With decrypt_on_gpu (default suite, coded tensors) the staging buffers hold the checked
 * ciphertext instead, a ChaCha20 kernel decrypts each piece on the device after its copy, and
 * the host decrypts only the chunks holding the blob's header and index (for validation).
 *
 * Piece k+1 is read and decrypted into the other staging buffer while piece k is copied; a
 * buffer is reused only after the event recorded behind its last copy has completed, and it
 * is wiped then (and both are wiped before they are freed). Host memory thus holds at most
 * 2 x staging_bytes of compressed plaintext at any time and never any decoded BF16 weight.
 *
 * A coded blob is validated before its tensor is made usable (tseal_codec_view_regions on the
 * parts kept on the host: header, code table, index sections, paddings, stream tail); the
 * chunks themselves were authenticated by the signed hashes and the AEAD. Raw (non-BF16)
 * tensors are checked against their signed tree digest while they stream past.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_internal.h"
#include "loader_internal.h"

#define DEFAULT_STAGING (64ull << 20)

struct tseal_gpu_model {
    int device;
    size_t n;
    tseal_gpu_tensor **t; /* one per artifact tensor; NULL when not loaded */
};

/* The pipeline's state. */
typedef struct {
    tseal_artifact *a;
    const tseal_gpu_load_opts *o;
    tseal_gpu_load_report *rep;
    int device;
    void *stream;
    uint8_t *stage[2];
    uint64_t stage_used[2]; /* bytes of each buffer to wipe once its copy is done */
    void *done[2];          /* event behind each buffer's last copy */
    int pending[2];
    uint64_t stage_bytes;
    unsigned next;    /* the buffer the next piece goes to */
    uint8_t *scratch; /* decrypt_on_gpu: one chunk decrypted on the host (secure) */
} pipe_t;

/* What a tensor's pieces leave on the host: the blob's head and the regions the validation
 * needs (coded), or the running digest (raw). */
typedef struct {
    uint8_t head[TSEAL_CT_HEAD_BYTES];
    tseal_ct_region regs[2];
    uint8_t *keep[2]; /* malloc'd copies of regs (not plaintext weights: index and padding) */
    int have_regs;
    tseal_tree_ctx *tree; /* raw tensors */
} capture_t;

static void copy_overlap(uint8_t *dst, uint64_t dst_off, uint64_t dst_len, const uint8_t *src,
                         uint64_t src_off, uint64_t src_len) {
    uint64_t lo = dst_off > src_off ? dst_off : src_off;
    uint64_t hi = dst_off + dst_len < src_off + src_len ? dst_off + dst_len : src_off + src_len;
    if (lo < hi) memcpy(dst + (lo - dst_off), src + (lo - src_off), hi - lo);
}

static int capture_piece(capture_t *cap, const tseal_mf_tensor *t, uint64_t blob_len,
                         const uint8_t *p, uint64_t off, uint64_t n) {
    if (!t->coded) return tseal_tree_update(cap->tree, p, n);
    copy_overlap(cap->head, 0, sizeof cap->head, p, off, n);
    if (!cap->have_regs && off + n >= (blob_len < sizeof cap->head ? blob_len : sizeof cap->head)) {
        int r = tseal_codec_kept_regions(cap->head, blob_len, cap->regs);
        if (r) return r;
        for (int k = 0; k < 2; k++) {
            cap->keep[k] = malloc(cap->regs[k].len ? cap->regs[k].len : 1);
            if (!cap->keep[k]) return tseal_err(TSEAL_E_NOMEM, "out of memory");
            cap->regs[k].p = cap->keep[k];
        }
        cap->have_regs = 1;
    }
    if (cap->have_regs)
        for (int k = 0; k < 2; k++)
            copy_overlap(cap->keep[k], cap->regs[k].off, cap->regs[k].len, p, off, n);
    return 0;
}

static void capture_free(capture_t *cap) {
    for (int k = 0; k < 2; k++) free(cap->keep[k]);
    tseal_tree_free(cap->tree);
    tseal_wipe(cap->head, sizeof cap->head);
}

/* Wait for a staging buffer's last copy, then wipe what it held. */
static int reclaim(pipe_t *p, unsigned k) {
    if (!p->pending[k]) return 0;
    double t0 = tseal_now();
    int r = tseal_gpu_event_wait(p->done[k]);
    p->rep->copy_wait_seconds += tseal_now() - t0;
    p->pending[k] = 0;
    tseal_wipe(p->stage[k], p->stage_used[k]);
    p->stage_used[k] = 0;
    return r;
}

static int overlaps(uint64_t off, uint64_t n, uint64_t roff, uint64_t rlen) {
    return rlen && off < roff + rlen && roff < off + n;
}

/* decrypt_on_gpu: the chunks of a piece that hold bytes the validation keeps (the head, then
 * the regions it names) are decrypted on the host, one at a time, and captured. */
static int capture_chunks(pipe_t *p, tseal_segreader *sr, capture_t *cap, const tseal_mf_tensor *t,
                          uint32_t c0, uint32_t k) {
    const uint64_t cs = p->a->v.c->h.chunk_size, len = sr->seg->pt_len;
    int r = 0;
    for (uint32_t j = c0; j < c0 + k && !r; j++) {
        uint64_t off = (uint64_t)j * cs, n = len - off < cs ? len - off : cs;
        int need = overlaps(off, n, 0, TSEAL_CT_HEAD_BYTES);
        for (int q = 0; q < 2 && cap->have_regs; q++)
            need |= overlaps(off, n, cap->regs[q].off, cap->regs[q].len);
        if (!need) continue;
        r = tseal_segreader_decrypt_range(sr, j, 1, p->scratch, 1);
        if (!r) r = capture_piece(cap, t, len, p->scratch, off, n);
        tseal_wipe(p->scratch, n);
    }
    return r;
}

/* Stream one segment to `dev` (+ `dev_off`), piece by piece. */
static int stream_segment(pipe_t *p, const tseal_mf_tensor *t, uint8_t *dev, uint64_t dev_off,
                          capture_t *cap) {
    tseal_artifact *a = p->a;
    tseal_segreader sr;
    int r = tseal_segreader_open(&sr, a->v.c, t->segment, a->v.content_key);
    if (r) return r;
    const uint64_t cs = a->v.c->h.chunk_size, len = sr.seg->pt_len;
    const uint32_t per_piece = (uint32_t)(p->stage_bytes / cs);
    const int on_gpu = p->scratch && t->coded && a->v.c->h.suite == TSEAL_SUITE_V1;
    for (uint32_t c0 = 0; !r && c0 < sr.seg->chunk_count; c0 += per_piece) {
        uint32_t k = sr.seg->chunk_count - c0 < per_piece ? sr.seg->chunk_count - c0 : per_piece;
        uint64_t off = (uint64_t)c0 * cs, n = len - off < (uint64_t)k * cs ? len - off : k * cs;
        unsigned b = p->next;
        p->next ^= 1;
        r = reclaim(p, b);
        double t0 = tseal_now();
        if (!r && on_gpu)
            r = tseal_segreader_read_range(&sr, c0, k, p->stage[b], p->o->threads);
        else if (!r)
            r = tseal_segreader_decrypt_range(&sr, c0, k, p->stage[b], p->o->threads);
        p->rep->decrypt_seconds += tseal_now() - t0;
        if (r) break;
        p->stage_used[b] = n;
        r = on_gpu ? capture_chunks(p, &sr, cap, t, c0, k)
                   : capture_piece(cap, t, len, p->stage[b], off, n);
        if (!r) r = tseal_gpu_copy_h2d_async(dev + dev_off + off, p->stage[b], n, p->stream);
        if (!r && on_gpu)
            r = tseal_gpu_chacha_xor_async(dev + dev_off + off, n, sr.key, c0, (uint32_t)cs,
                                           sr.seg->chunk_count - 1, p->stream);
        if (!r) r = tseal_gpu_event_record(p->done[b], p->stream);
        if (!r) p->pending[b] = 1;
        p->rep->compressed_bytes += r ? 0 : n;
    }
    tseal_segreader_close(&sr);
    return r;
}

/* A raw (non-BF16) tensor: a RAW view over the bytes placed after a 64-byte gap, as the
 * device tensor expects them (tseal_gpu_tensor_adopt: raw = blob + TSEAL_CT_HEADER_BYTES). */
static int load_raw(pipe_t *p, const tseal_mf_tensor *t, tseal_gpu_tensor **out) {
    capture_t cap = {0};
    void *dev = NULL;
    size_t es = tseal_dtype_size(t->dtype);
    int r = tseal_tree_new(&cap.tree);
    if (!r && (es == 0 || es > 8 || t->bytes % es))
        r = tseal_err(TSEAL_E_CORRUPT, "raw tensor of %llu bytes is not whole %s elements",
                      (unsigned long long)t->bytes, tseal_dtype_name(t->dtype));
    if (!r) r = tseal_gpu_blob_alloc(p->device, TSEAL_CT_HEADER_BYTES + t->bytes, &dev);
    if (!r) r = stream_segment(p, t, dev, TSEAL_CT_HEADER_BYTES, &cap);
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r) r = tseal_tree_final(cap.tree, h);
    if (!r && !tseal_equal(h, t->sha256, TSEAL_HASH_BYTES))
        r = tseal_err(TSEAL_E_VERIFY, "bytes do not match the signed digest");
    capture_free(&cap);
    if (r) {
        tseal_gpu_mem_free(dev);
        return r;
    }
    tseal_ct_view v;
    memset(&v, 0, sizeof v);
    v.mode = TSEAL_CT_MODE_RAW;
    v.elem_size = (uint8_t)es;
    v.n_elems = t->bytes / es;
    v.rows = v.n_elems;
    v.cols = 1;
    v.blob_bytes = TSEAL_CT_HEADER_BYTES + t->bytes;
    return tseal_gpu_tensor_adopt(&v, p->device, dev, t->name, t->bytes, out);
}

static int load_coded(pipe_t *p, const tseal_mf_tensor *t, tseal_gpu_tensor **out) {
    capture_t cap = {0};
    void *dev = NULL;
    const uint64_t len = p->a->v.c->h.segments[t->segment].pt_len;
    int r = tseal_gpu_blob_alloc(p->device, len, &dev);
    if (!r) r = stream_segment(p, t, dev, 0, &cap);
    if (!r && !cap.have_regs) r = tseal_err(TSEAL_E_CORRUPT, "coded blob shorter than its header");
    tseal_ct_view v;
    if (!r) {
        tseal_ct_region regs[3] = {
            {cap.head, 0, len < sizeof cap.head ? len : sizeof cap.head}, cap.regs[0], cap.regs[1]};
        r = tseal_codec_view_regions(len, regs, 3, &v);
    }
    uint64_t rows = 0, cols = t->rank ? t->shape[t->rank - 1] : 1;
    if (cols) rows = t->bytes / 2 / cols;
    if (!r && (t->dtype != TSEAL_DT_BF16 || v.elem_size != 2 || v.n_elems * 2 != t->bytes ||
               v.rows != rows || v.cols != cols))
        r = tseal_err(TSEAL_E_CORRUPT, "coded tensor is %llu x %llu, the manifest says %llu bytes",
                      (unsigned long long)v.rows, (unsigned long long)v.cols,
                      (unsigned long long)t->bytes);
    if (!r) {
        r = tseal_gpu_tensor_adopt(&v, p->device, dev, t->name, t->bytes, out);
        dev = NULL; /* adopted, also on failure */
    }
    capture_free(&cap);
    tseal_gpu_mem_free(dev);
    return r;
}

static int wanted(const tseal_gpu_load_opts *o, const char *name) {
    if (!o->n_only) return 1;
    for (unsigned i = 0; i < o->n_only; i++)
        if (strcmp(o->only[i], name) == 0) return 1;
    return 0;
}

static int pipe_open(pipe_t *p) {
    const uint64_t cs = p->a->v.c->h.chunk_size;
    uint64_t want = p->o->staging_bytes ? p->o->staging_bytes : DEFAULT_STAGING;
    p->stage_bytes = want < cs ? cs : want - want % cs;
    int r = tseal_gpu_stream_new(p->device, &p->stream);
    for (int k = 0; k < 2 && !r; k++) {
        r = tseal_gpu_pinned_alloc(p->stage_bytes, (void **)&p->stage[k]);
        if (!r) r = tseal_gpu_event_new(&p->done[k]);
    }
    p->rep->staging_bytes = 2 * p->stage_bytes;
    if (!r && p->o->decrypt_on_gpu) {
        p->scratch = tseal_secure_alloc(cs);
        if (!p->scratch) r = tseal_err(TSEAL_E_NOMEM, "out of locked memory");
    }
    return r;
}

static int pipe_close(pipe_t *p, int r) {
    int s = p->stream ? tseal_gpu_stream_sync(p->stream) : 0; /* no copy may still read */
    for (int k = 0; k < 2; k++) {
        p->pending[k] = 0;
        if (p->stage[k]) tseal_wipe(p->stage[k], p->stage_bytes);
        tseal_gpu_pinned_free(p->stage[k]);
        tseal_gpu_event_free(p->done[k]);
    }
    tseal_gpu_stream_free(p->stream);
    tseal_secure_free(p->scratch); /* wipes */
    return r ? r : s;
}

static void load_progress(pipe_t *p, const char *item, uint32_t done, uint32_t total) {
    if (!p->o->progress) return;
    tseal_progress pr = {"load", item, p->rep->compressed_bytes, p->a->v.c->h.payload_bytes,
                         done,   total};
    p->o->progress(p->o->progress_ctx, &pr);
}

int tseal_gpu_load(tseal_artifact *a, const tseal_gpu_load_opts *opts, tseal_gpu_model **out,
                   tseal_gpu_load_report *report) {
    tseal_gpu_load_report dummy;
    tseal_gpu_load_opts dflt;
    memset(&dflt, 0, sizeof dflt);
    if (!report) report = &dummy;
    memset(report, 0, sizeof *report);
    if (!out) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_load: out is NULL");
    *out = NULL;
    if (!a) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_load: artifact is NULL");
    if (!opts) opts = &dflt;
    const double t_start = tseal_now();
    int n_dev = tseal_gpu_device_count();
    if (n_dev == 0) return TSEAL_E_NO_GPU; /* message set */
    if (opts->device < 0 || opts->device >= n_dev)
        return tseal_err(TSEAL_E_INVAL, "GPU %d does not exist (%d device%s)", opts->device, n_dev,
                         n_dev == 1 ? "" : "s");
    const tseal_manifest *m = &a->v.m;
    for (unsigned i = 0; i < opts->n_only; i++)
        if (tseal_artifact_find(a, opts->only[i], NULL) != 0) return TSEAL_E_NOTFOUND;

    tseal_gpu_model *g = calloc(1, sizeof *g);
    if (g) g->t = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *g->t);
    if (!g || !g->t) {
        free(g);
        return tseal_err(TSEAL_E_NOMEM, "out of memory");
    }
    g->device = opts->device;
    g->n = m->n_tensors;
    pipe_t p = {.a = a, .o = opts, .rep = report, .device = opts->device};
    int caller_device = 0;
    int r = tseal_gpu_current_device(&caller_device);
    if (!r) r = pipe_open(&p);
    uint32_t total = 0, done = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) total += wanted(opts, m->tensors[i].name);
    for (uint32_t i = 0; i < m->n_tensors && !r; i++) {
        const tseal_mf_tensor *t = &m->tensors[i];
        if (!wanted(opts, t->name)) continue;
        load_progress(&p, t->name, done, total);
        r = t->coded ? load_coded(&p, t, &g->t[i]) : load_raw(&p, t, &g->t[i]);
        if (r) {
            tseal_err_context("tensor '%.200s': ", t->name);
            break;
        }
        report->tensors++;
        report->original_bytes += t->bytes;
        report->device_bytes += tseal_gpu_tensor_device_bytes(g->t[i]);
        done++;
    }
    r = pipe_close(&p, r);
    tseal_gpu_restore_device(caller_device);
    if (!r) load_progress(&p, "", done, total);
    report->seconds = tseal_now() - t_start;
    if (r) {
        tseal_gpu_free(g);
        return r;
    }
    *out = g;
    return 0;
}

void tseal_gpu_free(tseal_gpu_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) tseal_gpu_tensor_free(m->t[i]);
    free(m->t);
    free(m);
}

size_t tseal_gpu_model_count(const tseal_gpu_model *m) {
    return m ? m->n : 0;
}

const tseal_gpu_tensor *tseal_gpu_model_tensor(const tseal_gpu_model *m, size_t i) {
    return m && i < m->n ? m->t[i] : NULL;
}

const tseal_gpu_tensor *tseal_gpu_model_find(const tseal_gpu_model *m, const char *name) {
    for (size_t i = 0; m && name && i < m->n; i++)
        if (m->t[i] && strcmp(tseal_gpu_tensor_name(m->t[i]), name) == 0) return m->t[i];
    tseal_err(TSEAL_E_NOTFOUND, "no loaded tensor named '%.200s'", name ? name : "(null)");
    return NULL;
}

int tseal_gpu_decode_bf16(const tseal_gpu_tensor *t, void *dst, void *stream) {
    return tseal_gpu_tensor_decode(t, dst, stream);
}

/* ---- checking what was loaded ---------------------------------------------------------------- */

#define CHECK_BATCH (16ull << 20) /* decoded bytes brought back at a time */

/* Wipe a decoded copy on the device before it is freed. A copy that could not be wiped fails the
 * check; when the check had already failed, its message is kept. */
static int wipe_decoded(void *d, uint64_t bytes, int r) {
    if (!d) return r;
    char first[TSEAL_ERRMSG_MAX];
    snprintf(first, sizeof first, "%s", r ? tseal_errmsg() : "");
    const int w = tseal_gpu_memset(d, 0, bytes ? bytes : 2);
    if (!w) return r;
    if (!r) return tseal_err(w, "could not wipe the decoded copy on the GPU: %s", tseal_errmsg());
    return tseal_err(r, "%s", first);
}

static int check_one(const tseal_gpu_tensor *t, const uint8_t digest[TSEAL_HASH_BYTES], int device,
                     uint8_t *host, void *stream) {
    uint64_t bytes = tseal_gpu_tensor_bytes(t);
    uint8_t *d = NULL;
    tseal_tree_ctx *tree = NULL;
    int r = tseal_tree_new(&tree);
    if (!r) r = tseal_gpu_malloc(device, bytes ? bytes : 2, (void **)&d);
    if (!r) r = tseal_gpu_decode_bf16(t, d, stream);
    for (uint64_t off = 0; !r && off < bytes; off += CHECK_BATCH) {
        uint64_t k = bytes - off < CHECK_BATCH ? bytes - off : CHECK_BATCH;
        r = tseal_gpu_memcpy_d2h(host, d + off, k);
        if (!r) r = tseal_tree_update(tree, host, k);
        tseal_wipe(host, k);
    }
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r) r = tseal_tree_final(tree, h);
    if (!r && !tseal_equal(h, digest, TSEAL_HASH_BYTES))
        r = tseal_err(TSEAL_E_VERIFY, "decoded on the GPU, does not match the signed digest");
    r = wipe_decoded(d, bytes, r);
    tseal_gpu_mem_free(d);
    tseal_tree_free(tree);
    return r;
}

int tseal_gpu_model_check(const tseal_artifact *a, const tseal_gpu_model *m, uint32_t *n_checked) {
    if (n_checked) *n_checked = 0;
    if (!a || !m) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_model_check: NULL argument");
    uint8_t *host = tseal_secure_alloc(CHECK_BATCH);
    if (!host) return tseal_err(TSEAL_E_NOMEM, "out of locked memory");
    int r = 0;
    for (size_t i = 0; i < m->n && !r; i++) {
        if (!m->t[i]) continue;
        const tseal_mf_tensor *t = &a->v.m.tensors[i];
        r = check_one(m->t[i], t->sha256, m->device, host, NULL);
        if (r)
            tseal_err_context("tensor '%.200s': ", t->name);
        else if (n_checked)
            (*n_checked)++;
    }
    tseal_secure_free(host);
    return r;
}

int tseal_gpu_decode_bf16_async(const tseal_gpu_tensor *t, void *dst, void *stream) {
    if (!t) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_decode_bf16_async: tensor is NULL");
    return tseal_gpu_tensor_decode_launch(t, dst, stream);
}

int tseal_gpu_load_slice(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                         uint64_t col_begin, uint64_t col_end, int device, tseal_gpu_tensor **out) {
    if (!out) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_load_slice: out is NULL");
    *out = NULL;
    if (!a) return tseal_err(TSEAL_E_INVAL, "tseal_gpu_load_slice: artifact is NULL");
    if (i >= a->v.m.n_tensors) return tseal_err(TSEAL_E_NOTFOUND, "no tensor %zu", i);
    const tseal_mf_tensor *t = &a->v.m.tensors[i];
    if (!t->coded)
        return tseal_err(TSEAL_E_UNSUPPORTED, "tensor '%.200s': stored raw (%s); not sliceable",
                         t->name, tseal_dtype_name(t->dtype));
    if (tseal_gpu_device_count() == 0) return TSEAL_E_NO_GPU;
    uint8_t *blob = NULL;
    uint64_t len = 0;
    tseal_ct_view cv, sv;
    tseal_buf slice = {NULL, 0};
    int r = tseal_loader_decrypt_segment(a, t->segment, &blob, &len);
    if (!r) r = tseal_loader_view(a, t, blob, len, &cv);
    if (!r && col_end == UINT64_MAX) col_end = cv.cols;
    if (!r) r = tseal_codec_slice(&cv, row_begin, row_end, col_begin, col_end, &slice);
    if (!r) r = tseal_codec_view(slice.data, slice.size, &sv);
    if (!r) r = tseal_gpu_tensor_upload(&sv, device, out);
    if (slice.data) tseal_wipe(slice.data, slice.size);
    tseal_buf_free(&slice);
    if (blob) tseal_wipe(blob, len);
    tseal_secure_free(blob);
    if (r) tseal_err_context("tensor '%.200s': ", t->name);
    return r;
}

int tseal_gpu_load_rows(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                        int device, tseal_gpu_tensor **out) {
    return tseal_gpu_load_slice(a, i, row_begin, row_end, 0, UINT64_MAX, device, out);
}
