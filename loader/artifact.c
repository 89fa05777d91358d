/*
 * artifact.c - a verified artifact opened for reading (tseal_open): tensor metadata from the
 * decrypted manifest, tensors decoded on demand into caller buffers, carried files.
 *
 * Every read goes through the container's segment reader: each chunk is checked against the
 * signed hash list before it is decrypted, and a whole tensor is checked against its signed
 * tree digest after decoding (a row range cannot be: its chunks are authenticated instead).
 * Decrypted coded blobs live in secure (locked, wiped) memory only while a call runs.
 */
#include <stdlib.h>
#include <string.h>

#include "loader_internal.h"

static const char *file_of(const tseal_manifest *m, uint32_t tensor) {
    for (uint32_t f = 0; f < m->n_files; f++) {
        const tseal_mf_file *file = &m->files[f];
        if (file->kind == TSEAL_FILE_SAFETENSORS && tensor >= file->first_tensor &&
            tensor - file->first_tensor < file->n_tensors)
            return file->path;
    }
    return "";
}

int tseal_open(const char *path, const tseal_verify_opts *opts, tseal_artifact **out) {
    if (!out) return tseal_err(TSEAL_E_INVAL, "tseal_open: out is NULL");
    *out = NULL;
    if (!path) return tseal_err(TSEAL_E_INVAL, "tseal_open: path is NULL");
    tseal_artifact *a = calloc(1, sizeof *a);
    if (!a) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = tseal_verified_open(path, opts, &a->v);
    if (r) {
        free(a);
        return r;
    }
    a->threads = opts->threads;
    *out = a;
    return 0;
}

void tseal_close(tseal_artifact *a) {
    if (!a) return;
    tseal_verified_close(&a->v);
    free(a);
}

const char *tseal_artifact_model_id(const tseal_artifact *a) {
    return a ? a->v.c->h.model_id : "";
}

uint64_t tseal_artifact_version(const tseal_artifact *a) {
    return a ? a->v.c->h.model_version : 0;
}

size_t tseal_artifact_tensor_count(const tseal_artifact *a) {
    return a ? a->v.m.n_tensors : 0;
}

static int bad_index(const tseal_artifact *a, size_t i) {
    if (!a) return tseal_err(TSEAL_E_INVAL, "artifact is NULL");
    if (i >= a->v.m.n_tensors)
        return tseal_err(TSEAL_E_NOTFOUND, "%s: no tensor %zu (the artifact has %u)", a->v.c->path,
                         i, a->v.m.n_tensors);
    return 0;
}

/* Geometry of a coded tensor, as the encoder cut it: cols = last dimension. */
static void geometry(const tseal_mf_tensor *t, uint64_t *rows, uint64_t *cols) {
    uint64_t n = t->dtype == TSEAL_DT_BF16 ? t->bytes / 2 : 0;
    uint64_t c = t->rank ? t->shape[t->rank - 1] : 1;
    *cols = c;
    *rows = c ? n / c : 0;
}

int tseal_artifact_tensor_info(const tseal_artifact *a, size_t i, tseal_tensor_info *info) {
    int r = bad_index(a, i);
    if (r) return r;
    const tseal_mf_tensor *t = &a->v.m.tensors[i];
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->dtype = t->dtype;
    info->rank = t->rank;
    memcpy(info->shape, t->shape, sizeof info->shape);
    info->n_elems = 1;
    for (uint32_t d = 0; d < t->rank; d++) info->n_elems *= t->shape[d];
    info->bytes = t->bytes;
    info->coded = t->coded;
    if (t->coded) geometry(t, &info->rows, &info->cols);
    info->coded_bytes = a->v.c->h.segments[t->segment].pt_len;
    info->file = file_of(&a->v.m, (uint32_t)i);
    memcpy(info->sha256, t->sha256, sizeof info->sha256);
    return 0;
}

int tseal_artifact_find(const tseal_artifact *a, const char *name, size_t *index) {
    if (!a || !name) return tseal_err(TSEAL_E_INVAL, "tseal_artifact_find: NULL argument");
    for (uint32_t i = 0; i < a->v.m.n_tensors; i++)
        if (strcmp(a->v.m.tensors[i].name, name) == 0) {
            if (index) *index = i;
            return 0;
        }
    return tseal_err(TSEAL_E_NOTFOUND, "%s: no tensor named '%.200s'", a->v.c->path, name);
}

int tseal_loader_decrypt_segment(tseal_artifact *a, uint32_t seg, uint8_t **out, uint64_t *len) {
    const tseal_segment *s = &a->v.c->h.segments[seg];
    *out = tseal_secure_alloc(s->pt_len ? s->pt_len : 1);
    if (!*out)
        return tseal_err(TSEAL_E_NOMEM, "out of locked memory for a %llu-byte segment",
                         (unsigned long long)s->pt_len);
    int r = tseal_segment_decrypt_all(a->v.c, seg, a->v.content_key, *out, a->threads);
    if (r) {
        tseal_secure_free(*out);
        *out = NULL;
        return r;
    }
    *len = s->pt_len;
    return 0;
}

int tseal_loader_view(const tseal_artifact *a, const tseal_mf_tensor *t, const uint8_t *blob,
                      uint64_t len, tseal_ct_view *cv) {
    int r = tseal_codec_view(blob, len, cv);
    if (r) return r;
    uint64_t rows, cols;
    geometry(t, &rows, &cols);
    if (t->dtype != TSEAL_DT_BF16 || cv->elem_size != 2 || cv->n_elems * 2 != t->bytes ||
        cv->rows != rows || cv->cols != cols)
        return tseal_err(TSEAL_E_CORRUPT,
                         "%s: coded tensor is %llu x %llu, the manifest says %s %llu bytes",
                         a->v.c->path, (unsigned long long)cv->rows, (unsigned long long)cv->cols,
                         tseal_dtype_name(t->dtype), (unsigned long long)t->bytes);
    return 0;
}

static int decode_into(tseal_artifact *a, const tseal_mf_tensor *t, uint64_t row0, uint64_t row1,
                       void *dst, unsigned threads) {
    uint8_t *blob = NULL;
    uint64_t len = 0;
    int r = tseal_loader_decrypt_segment(a, t->segment, &blob, &len);
    if (r) return r;
    tseal_ct_view cv;
    r = tseal_loader_view(a, t, blob, len, &cv);
    if (!r && row1 > cv.rows)
        r = tseal_err(TSEAL_E_INVAL, "rows [%llu, %llu) out of range (%llu rows)",
                      (unsigned long long)row0, (unsigned long long)row1,
                      (unsigned long long)cv.rows);
    if (!r) r = tseal_codec_decode_rows(&cv, row0, row1, dst, threads);
    tseal_wipe(blob, len);
    tseal_secure_free(blob);
    return r;
}

int tseal_artifact_read_tensor(tseal_artifact *a, size_t i, void *dst, uint64_t dst_len,
                               unsigned threads) {
    int r = bad_index(a, i);
    if (r) return r;
    const tseal_mf_tensor *t = &a->v.m.tensors[i];
    if (!dst && t->bytes)
        return tseal_err(TSEAL_E_INVAL, "tseal_artifact_read_tensor: dst is NULL");
    if (dst_len < t->bytes)
        return tseal_err(TSEAL_E_INVAL, "tensor '%.200s': buffer holds %llu bytes, it needs %llu",
                         t->name, (unsigned long long)dst_len, (unsigned long long)t->bytes);
    if (t->coded) {
        uint64_t rows, cols;
        geometry(t, &rows, &cols);
        r = decode_into(a, t, 0, rows, dst, threads);
    } else {
        r = tseal_segment_decrypt_all(a->v.c, t->segment, a->v.content_key, dst, threads);
    }
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r) r = tseal_tree_hash(dst, t->bytes, threads, h);
    if (!r && !tseal_equal(h, t->sha256, TSEAL_HASH_BYTES))
        r = tseal_err(TSEAL_E_VERIFY, "decoded bytes do not match the signed digest");
    if (r) {
        if (dst) tseal_wipe(dst, t->bytes);
        tseal_err_context("tensor '%.200s': ", t->name);
    }
    return r;
}

int tseal_artifact_read_rows(tseal_artifact *a, size_t i, uint64_t row_begin, uint64_t row_end,
                             void *dst, uint64_t dst_len, unsigned threads) {
    int r = bad_index(a, i);
    if (r) return r;
    const tseal_mf_tensor *t = &a->v.m.tensors[i];
    uint64_t rows, cols;
    geometry(t, &rows, &cols);
    if (!t->coded)
        return tseal_err(TSEAL_E_UNSUPPORTED,
                         "tensor '%.200s': stored raw (%s); read it whole with "
                         "tseal_artifact_read_tensor",
                         t->name, tseal_dtype_name(t->dtype));
    if (row_begin > row_end || row_end > rows)
        return tseal_err(TSEAL_E_INVAL, "tensor '%.200s': rows [%llu, %llu) out of range (%llu)",
                         t->name, (unsigned long long)row_begin, (unsigned long long)row_end,
                         (unsigned long long)rows);
    uint64_t need = (row_end - row_begin) * cols * 2;
    if (!dst && need) return tseal_err(TSEAL_E_INVAL, "tseal_artifact_read_rows: dst is NULL");
    if (dst_len < need)
        return tseal_err(TSEAL_E_INVAL, "tensor '%.200s': buffer holds %llu bytes, rows need %llu",
                         t->name, (unsigned long long)dst_len, (unsigned long long)need);
    if (row_begin == row_end) return 0;
    r = decode_into(a, t, row_begin, row_end, dst, threads);
    if (r) {
        tseal_wipe(dst, need);
        tseal_err_context("tensor '%.200s': ", t->name);
    }
    return r;
}

size_t tseal_artifact_file_count(const tseal_artifact *a) {
    return a ? a->v.m.n_files : 0;
}

int tseal_artifact_file_info(const tseal_artifact *a, size_t i, const char **path, uint64_t *size,
                             int *is_safetensors) {
    if (!a) return tseal_err(TSEAL_E_INVAL, "artifact is NULL");
    if (i >= a->v.m.n_files) return tseal_err(TSEAL_E_NOTFOUND, "no file %zu", i);
    const tseal_mf_file *f = &a->v.m.files[i];
    if (path) *path = f->path;
    if (size) *size = f->size;
    if (is_safetensors) *is_safetensors = f->kind == TSEAL_FILE_SAFETENSORS;
    return 0;
}

int tseal_artifact_read_file(tseal_artifact *a, const char *path, uint64_t max, tseal_buf *out) {
    if (!a || !path || !out) return tseal_err(TSEAL_E_INVAL, "tseal_artifact_read_file: NULL");
    memset(out, 0, sizeof *out);
    const tseal_mf_file *f = NULL;
    for (uint32_t i = 0; i < a->v.m.n_files && !f; i++)
        if (strcmp(a->v.m.files[i].path, path) == 0) f = &a->v.m.files[i];
    if (!f) return tseal_err(TSEAL_E_NOTFOUND, "%s: no file '%.200s'", a->v.c->path, path);
    if (f->kind != TSEAL_FILE_BLOB)
        return tseal_err(TSEAL_E_UNSUPPORTED,
                         "%s: '%.200s' is a safetensors file (rebuilt from its tensors: read them, "
                         "or unpack)",
                         a->v.c->path, path);
    if (f->size > max)
        return tseal_err(TSEAL_E_LIMIT, "%s: '%.200s' is %llu bytes (limit %llu)", a->v.c->path,
                         path, (unsigned long long)f->size, (unsigned long long)max);
    out->data = malloc(f->size ? f->size : 1);
    if (!out->data) return tseal_err(TSEAL_E_NOMEM, "out of memory");
    int r = tseal_segment_decrypt_all(a->v.c, f->segment, a->v.content_key, out->data, a->threads);
    uint8_t h[TSEAL_HASH_BYTES];
    if (!r) r = tseal_sha256(out->data, f->size, h);
    if (!r && !tseal_equal(h, f->sha256, TSEAL_HASH_BYTES))
        r = tseal_err(TSEAL_E_VERIFY, "%s: '%.200s' does not match its signed SHA-256",
                      a->v.c->path, path);
    if (r) {
        tseal_buf_free(out);
        return r;
    }
    out->size = f->size;
    return 0;
}

void *tseal_secure_buffer(size_t bytes) {
    return tseal_secure_alloc(bytes ? bytes : 1);
}

void tseal_secure_buffer_free(void *p) {
    tseal_secure_free(p);
}
