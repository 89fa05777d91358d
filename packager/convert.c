/*
 * convert.c - F32/F16 -> BF16 copy of a safetensors file.
 *
 * The input is validated by the strict reader, then streamed tensor by tensor in chunks of
 * CONVERT_CHUNK input bytes, so memory stays bounded whatever the file size. The output goes
 * through the atomic writer: a failure leaves no file behind.
 */
#include <stdlib.h>

#include "internal.h"

#define CONVERT_CHUNK (1u << 20) /* input bytes per read; a multiple of 4 (and 2) */

static tseal_dtype convert_target(tseal_dtype dt) {
    return dt == TSEAL_DT_F32 || dt == TSEAL_DT_F16 ? TSEAL_DT_BF16 : dt;
}

/* Converts n elements of `dt` (F32 or F16, little-endian) in `in` to BF16 in `out`. */
static void convert_chunk(tseal_dtype dt, const uint8_t *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float f;
        if (dt == TSEAL_DT_F32) {
            uint32_t u = tseal_load_le32(in + 4 * i);
            memcpy(&f, &u, 4);
        } else {
            /* F16 -> F32 is exact, so the only rounding is the final one */
            f = tseal_f16_to_f32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
        }
        uint16_t h = tseal_f32_to_bf16(f);
        uint8_t *o = (uint8_t *)&out[i];
        o[0] = (uint8_t)h; /* the file is little-endian whatever the host */
        o[1] = (uint8_t)(h >> 8);
    }
}

static int convert_tensor(const tseal_st *in, size_t i, tseal_st_writer *w, uint8_t *ibuf,
                          uint16_t *obuf) {
    const tseal_st_tensor *t = tseal_st_get(in, i);
    uint64_t size = t->end - t->begin;
    bool widen = convert_target(t->dtype) != t->dtype;
    size_t esize = tseal_dtype_size(t->dtype);
    for (uint64_t off = 0; off < size;) {
        size_t len = size - off < CONVERT_CHUNK ? (size_t)(size - off) : CONVERT_CHUNK;
        int rc = tseal_st_read(in, i, off, ibuf, len);
        if (rc) return rc;
        if (widen) {
            convert_chunk(t->dtype, ibuf, obuf, len / esize);
            rc = tseal_st_writer_write(w, obuf, len / esize * 2);
        } else {
            rc = tseal_st_writer_write(w, ibuf, len);
        }
        if (rc) return rc;
        off += len;
    }
    return 0;
}

static int convert_declare(const tseal_st *in, tseal_st_writer *w) {
    int rc = 0;
    for (size_t i = 0; i < tseal_st_meta_count(in) && !rc; i++) {
        const char *k, *v;
        rc = tseal_st_meta_get(in, i, &k, &v);
        if (!rc) rc = tseal_st_writer_meta(w, k, v);
    }
    for (size_t i = 0; i < tseal_st_count(in) && !rc; i++) {
        const tseal_st_tensor *t = tseal_st_get(in, i);
        rc = tseal_st_writer_add(w, t->name, convert_target(t->dtype), t->rank, t->shape);
    }
    return rc;
}

int tseal_convert_to_bf16(const char *in_path, const char *out_path) {
    if (!in_path || !out_path) return tseal_err(TSEAL_E_INVAL, "convert: path is NULL");
    tseal_st *in = NULL;
    tseal_st_writer *w = NULL;
    uint8_t *ibuf = malloc(CONVERT_CHUNK);
    uint16_t *obuf = malloc(CONVERT_CHUNK); /* F16 keeps its size, F32 halves */
    int rc = 0;
    if (!ibuf || !obuf) rc = tseal_err(TSEAL_E_NOMEM, "convert: out of memory");
    if (!rc) rc = tseal_st_open(in_path, &in);
    if (!rc) rc = tseal_st_writer_open(out_path, &w);
    if (!rc) rc = convert_declare(in, w);
    for (size_t i = 0; !rc && i < tseal_st_count(in); i++)
        rc = convert_tensor(in, i, w, ibuf, obuf);
    if (w) {
        if (rc)
            tseal_st_writer_abort(w);
        else
            rc = tseal_st_writer_commit(w);
    }
    tseal_st_close(in);
    free(ibuf);
    free(obuf);
    return rc;
}
