/*
 * gpu_bits.h - bit helpers shared by the kernel families (decode.cuh, gemv.cuh): the device
 * intrinsic under nvcc's device pass, the same result in plain C for the CPU tests.
 */
#ifndef TSEAL_GPU_BITS_H
#define TSEAL_GPU_BITS_H

#include <stdint.h>

#if defined(__CUDACC__)
#define TSEAL_BITS_HD static __forceinline__ __host__ __device__
#else
#define TSEAL_BITS_HD static inline
#endif

TSEAL_BITS_HD uint32_t tseal_gpu_bswap32(uint32_t x) {
#ifdef __CUDA_ARCH__
    return __byte_perm(x, 0, 0x0123);
#else
    return __builtin_bswap32(x);
#endif
}

/* Bits [s, s + 32) of the 64-bit value hi:lo, s in 0..31. */
TSEAL_BITS_HD uint32_t tseal_gpu_shr64(uint32_t lo, uint32_t hi, uint32_t s) {
#ifdef __CUDA_ARCH__
    return __funnelshift_r(lo, hi, s);
#else
    return (uint32_t)((((uint64_t)hi << 32) | lo) >> (s & 31));
#endif
}

#endif
