/*
 * simt_model.c - warp issue counts of the GPU decode loop's two forms (simt_model.h).
 */
#include <stdlib.h>
#include <string.h>

#include "gpu_bits.h"
#include "huffman.h"
#include "simt_model.h"
#include "tseal.h"

#define LANES 32

/* One lane's fast region: for each lookup, 1 if it completes a chunk (8 symbols from the
 * segment start); returns the number of lookups (<= nsyms) or -1 for a bad stream. */
static int64_t lane_walk(const tseal_ct_view *v, const uint32_t *dtab, uint64_t j, uint8_t *done) {
    const uint64_t start = tseal_ct_seg_start(v, j);
    const uint32_t seg_len = tseal_ct_seg_bits(v, j), nsyms = tseal_ct_seg_nsyms(v, j);
    if (start > v->exp_bits || seg_len > v->exp_bits - start) return -1;
    const uint32_t *words = (const uint32_t *)(const void *)v->exp_stream;
    uint64_t wi = start >> 5;
    uint32_t w0;
    memcpy(&w0, v->exp_stream + 4 * wi++, 4);
    uint64_t buf = (uint64_t)tseal_gpu_bswap32(w0) << (32 + (start & 31));
    uint32_t avail = 32 - (uint32_t)(start & 31), used = 0, left = nsyms, n = 0;
    int64_t k = 0;
    while (left >= TSEAL_DTAB_MAX_SYMS && used + TSEAL_DTAB_BITS <= seg_len) {
        const uint32_t e = tseal_gpu_lookup(words, dtab, &buf, &avail, &wi);
        if (!e) return -1;
        used += TSEAL_DTAB_NBITS(e);
        left -= TSEAL_DTAB_COUNT(e);
        n += TSEAL_DTAB_COUNT(e);
        done[k] = n >= 8;
        if (n >= 8) n -= 8;
        k++;
    }
    return k;
}

/* Lookups a lane needs for its chunk number `ch` (0-based) in the uniform form, from its walk:
 * advances *pos past the lookup that completes the chunk (or to the end). */
static int64_t chunk_lookups(const uint8_t *done, int64_t nl, int64_t *pos) {
    int64_t i = *pos;
    while (i < nl && !done[i]) i++;
    if (i < nl) i++; /* the lookup that completes the chunk */
    const int64_t k = i - *pos;
    *pos = i;
    return k;
}

/* Counts of the warp of segments j0 .. j0 + 31 (fewer at the end). */
static int count_warp(const tseal_ct_view *v, const uint32_t *dtab, uint64_t j0, uint8_t *done,
                      uint32_t stride, tseal_simt_counts *c) {
    int64_t nl[LANES] = {0}, maxl = 0;
    uint32_t chunks[LANES] = {0}, maxc = 0;
    const unsigned lanes = v->n_segs - j0 < LANES ? (unsigned)(v->n_segs - j0) : LANES;
    for (unsigned l = 0; l < lanes; l++) {
        nl[l] = lane_walk(v, dtab, j0 + l, done + (size_t)l * stride);
        if (nl[l] < 0) return TSEAL_E_CORRUPT;
        if (nl[l] > maxl) maxl = nl[l];
        for (int64_t i = 0; i < nl[l]; i++) chunks[l] += done[(size_t)l * stride + i];
        if (chunks[l] > maxc) maxc = chunks[l];
        c->lane_chunks += chunks[l];
    }
    /* inline: one iteration per lookup of the longest lane; a body where any lane completes */
    c->inline_lookups += (uint64_t)maxl;
    for (int64_t i = 0; i < maxl; i++) {
        for (unsigned l = 0; l < lanes; l++)
            if (i < nl[l] && done[(size_t)l * stride + i]) {
                c->inline_bodies++;
                break;
            }
    }
    /* uniform: per chunk index, the inner loop runs as long as the slowest lane's chunk */
    int64_t pos[LANES] = {0};
    for (uint32_t ch = 0; ch <= maxc; ch++) {
        int64_t most = 0;
        for (unsigned l = 0; l < lanes; l++) {
            const int64_t k = chunk_lookups(done + (size_t)l * stride, nl[l], &pos[l]);
            if (k > most) most = k;
        }
        c->uniform_lookups += (uint64_t)most;
    }
    c->uniform_bodies += maxc;
    c->warps++;
    return 0;
}

/* Pair tasks (two rows per lane): lane l decodes segments j0 + l and j0 + 32 + l in step, one
 * loop iteration issuing both streams' lookups, as long as the slower of the two. */
static int count_pair(const tseal_ct_view *v, const uint32_t *dtab, uint64_t j0, uint8_t *done,
                      uint32_t stride, tseal_simt_counts *c) {
    int64_t nl[2 * LANES] = {0}, pos[2 * LANES] = {0};
    uint32_t maxc = 0;
    const uint64_t left = v->n_segs - j0;
    const unsigned streams = left < 2 * LANES ? (unsigned)left : 2 * LANES;
    for (unsigned l = 0; l < streams; l++) {
        nl[l] = lane_walk(v, dtab, j0 + l, done + (size_t)l * stride);
        if (nl[l] < 0) return TSEAL_E_CORRUPT;
        uint32_t chunks = 0;
        for (int64_t i = 0; i < nl[l]; i++) chunks += done[(size_t)l * stride + i];
        if (chunks > maxc) maxc = chunks;
        c->pair_lane_chunks += chunks;
    }
    for (uint32_t ch = 0; ch <= maxc; ch++) {
        int64_t most = 0;
        for (unsigned l = 0; l < streams; l++) {
            const int64_t k = chunk_lookups(done + (size_t)l * stride, nl[l], &pos[l]);
            if (k > most) most = k;
        }
        c->pair_lookups += 2 * (uint64_t)most; /* both streams' lookups, every iteration */
    }
    return 0;
}

int tseal_simt_count(const tseal_ct_view *v, uint64_t max_warps, tseal_simt_counts *c) {
    if (v->mode != TSEAL_CT_MODE_HUFF || v->n_segs == 0) return 0;
    uint32_t *dtab = malloc(TSEAL_DTAB_SIZE * sizeof *dtab);
    uint16_t *stab = malloc(TSEAL_DTAB_SIZE * sizeof *stab);
    const uint32_t stride = (uint32_t)1 << v->seg_log2; /* lookups per lane <= symbols */
    uint8_t *done = malloc((size_t)2 * LANES * stride);
    int r = 0;
    if (!dtab || !stab || !done) {
        r = tseal_err(TSEAL_E_NOMEM, "out of memory");
        goto out;
    }
    tseal_huff_build_dtab(v->code_len, dtab, stab);
    const uint64_t warps = (v->n_segs + LANES - 1) / LANES;
    const uint64_t step = max_warps && warps > max_warps ? warps / max_warps : 1;
    for (uint64_t w = 0; w < warps && !r; w += step) {
        r = count_warp(v, dtab, w * LANES, done, stride, c);
        if (!r && (w & 1) == 0) r = count_pair(v, dtab, w * LANES, done, stride, c);
    }
    if (r) r = tseal_err(r, "coded tensor does not decode (warp model)");
out:
    free(dtab);
    free(stab);
    free(done);
    return r;
}
