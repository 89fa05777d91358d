/*
 * gemv_ref.h - C reference of the GEMV kernels (kernels/gemv.cuh): plain and straightforward,
 * the oracle of tests/test_gemv.c and tests/gpu/test_gpu_gemv.c. Both functions follow the
 * reduction order documented in kernels/gemv.cuh and docs/GEMV.md, so that for the same
 * weights and inputs they give the same bits as the CUDA kernels.
 *
 * Shapes: W is n x k (row-major, as nn.Linear.weight), x is batch x k, y is batch x n, all
 * BF16 bit patterns in host memory; batch 1..TSEAL_GEMV_MAX_BATCH.
 */
#ifndef TSEAL_GEMV_REF_H
#define TSEAL_GEMV_REF_H

#include <stdint.h>

#include "tseal.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * y = W x on plain BF16 weights, in the reduction order of segments of 2^seg_log2 columns
 * (TSEAL_SEG_LOG2_MIN..TSEAL_SEG_LOG2_MAX). TSEAL_E_INVAL for a bad argument, TSEAL_E_NOMEM.
 */
int tseal_gemv_ref_bf16(const uint16_t *w, uint64_t n, uint64_t k, unsigned seg_log2,
                        const uint16_t *x, uint16_t *y, unsigned batch);

/*
 * The same product with W a coded tensor (rows x cols of its geometry): every segment is
 * decoded on its own (bit by bit, canonical Huffman) and multiplied as it is decoded. The
 * order's segment size is tseal_gemv_ref_seg_log2(v). TSEAL_E_CORRUPT if a segment does not
 * decode to exactly its weights in exactly its bits (y is then unspecified),
 * TSEAL_E_UNSUPPORTED for RAW tensors whose elements are not 2 bytes (RAW 2-byte elements
 * are taken as BF16), TSEAL_E_INVAL, TSEAL_E_NOMEM.
 */
int tseal_gemv_ref_ct(const tseal_ct_view *v, const uint16_t *x, uint16_t *y, unsigned batch);

/* The segment size (log2) of the reduction order for a coded tensor: its own for HUFF,
 * TSEAL_GEMV_FLAT_SEG_LOG2 for RAW and CONST. */
unsigned tseal_gemv_ref_seg_log2(const tseal_ct_view *v);

/* Order step 3: the pairwise tree over v[0..n) padded with -0.0f to a power of two (+0.0f
 * for n == 0). Recursive, independent of the kernels' stack and shuffle implementations. */
float tseal_gemv_ref_pairwise(const float *v, uint64_t n);

/* Order step 4: BF16 round-to-nearest-even, every NaN to 0x7FC0. */
uint16_t tseal_gemv_ref_round(float f);

#ifdef __cplusplus
}
#endif
#endif
