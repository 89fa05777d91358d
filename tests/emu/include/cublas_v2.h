/*
 * cublas_v2.h - the CUDA emulator's stand-in for cuBLAS (tests/emu/README.md): the one call
 * tseal makes (cublasGemmEx, BF16 in and out, FP32 accumulation, as the benchmark baseline) as a
 * plain loop over emulated device memory. Its results are not cuBLAS's; the benchmark compares
 * cuBLAS with decode + cuBLAS, which both go through this loop.
 */
#ifndef TSEAL_EMU_CUBLAS_V2_H
#define TSEAL_EMU_CUBLAS_V2_H

#include "cuda_runtime.h"

typedef struct tseal_emu_cublas *cublasHandle_t;
enum cublasStatus_t {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16BF = 14 };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F = 68 };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT = -1 };

cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
/* Only what tseal uses: column-major C (m x n) = op(A) B with BF16 A, B, C and FP32 alpha,
 * beta, compute; op(A) = A^T or A. */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType ta_type,
                            int lda, const void *B, cudaDataType tb_type, int ldb, const void *beta,
                            void *C, cudaDataType tc_type, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo);

#endif
