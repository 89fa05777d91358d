/*
 * simt_model.h - a count, on the CPU, of how a GPU warp steps through the fast path of the
 * Huffman decode loop (kernels/decode.cuh, kernels/gemv.cuh) on a real coded tensor.
 *
 * The kernels give one segment to each lane, 32 consecutive segments to a warp. In lockstep, a
 * warp issues an instruction once for all its lanes that need it, so data-dependent control
 * flow costs the slowest lane's path. For the two forms of the loop this counts warp issues of
 * the multi-symbol lookup and of the chunk body (the join + store of the decoder, the join +
 * FMAs of the GEMV: the expensive part), per chunk of 8 symbols:
 *   - inline  (TSEAL_*_INLINE_CHUNKS=1): one loop of lookups; the body sits inside it and runs in
 *     every iteration in which at least one lane completes a chunk;
 *   - uniform (the default): lookups repeat until the lane's chunk is full, then the body; the
 *     warp waits for its slowest lane at every chunk, and runs the body once per chunk.
 *   - pair (two rows per lane, the GEMV at batch 3..8): a lane decodes two segments in step, one
 *     loop iteration issuing both streams' lookups until the slower stream's chunk is full; here
 *     segments j and j + 32 (the next warp's) stand for the same columns of two rows.
 * Only the fast region is modelled (lookups of up to 3 symbols while >= 3 symbols and >= 12
 * bits remain; the single-code tail is a few symbols per segment). It is a count of issues, not
 * a timing: what an issue costs depends on the batch and the GPU (docs/GEMV.md).
 */
#ifndef TSEAL_SIMT_MODEL_H
#define TSEAL_SIMT_MODEL_H

#include <stdint.h>

#include "tseal_layout.h"

typedef struct tseal_simt_counts {
    uint64_t warps;           /* warps modelled */
    uint64_t lane_chunks;     /* chunks the lanes completed in the fast region */
    uint64_t inline_lookups;  /* warp issues of the lookup, inline form */
    uint64_t inline_bodies;   /* warp issues of the chunk body, inline form */
    uint64_t uniform_lookups; /* the same, uniform form */
    uint64_t uniform_bodies;
    uint64_t pair_lookups;     /* warp issues of lookups (2 per iteration), pair form */
    uint64_t pair_lane_chunks; /* chunks of both streams of the pair-form warps */
} tseal_simt_counts;

/* Add the counts of up to max_warps warps (spread evenly over the tensor; 0 = all) of a HUFF
 * view to *c. Returns 0, or TSEAL_E_CORRUPT / TSEAL_E_NOMEM. Other modes add nothing. */
int tseal_simt_count(const tseal_ct_view *v, uint64_t max_warps, tseal_simt_counts *c);

#endif
