/*
 * cuda_runtime.h - the CUDA emulator's stand-in for the CUDA runtime header (tests/emu/README.md).
 *
 * `make emu-test` compiles the kernels/ .cu files with g++ instead of nvcc: this header (forced in
 * with -include, as nvcc does with the real one) turns the CUDA keywords into C++, provides the
 * device intrinsics the kernels use with their PTX semantics, and declares the runtime API
 * calls tseal makes; tests/emu/emu.cpp implements them and runs kernels on CPU fibers, one per
 * CUDA thread. `kernel<<<cfg>>>(args)` is rewritten by tests/emu/launch.pl into
 * `tseal_emu_launch(kernel, tseal_emu_config(cfg), "kernel")(args)`.
 *
 * It is a test device: device memory is host memory (checked by ASan) and the timings mean
 * nothing.
 */
#ifndef TSEAL_EMU_CUDA_RUNTIME_H
#define TSEAL_EMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "the CUDA emulator header is C++ (kernels/*.cu built by make emu-test)"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- keywords -------------------------------------------------------------------------------- */

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __align__(n)    __attribute__((aligned(n)))
/* Block-shared memory: function-local statics (blocks run one after the other, one launch at a
 * time, so the statics are exactly one block's shared memory). */
#define __shared__   static
#define __constant__ static
#define __grid_constant__
#define __launch_bounds__(...)

/* ---- vector types ------------------------------------------------------------------------------
 */

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __attribute__((aligned(8))) uint2 {
    unsigned x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned x, y, z, w;
};
static inline uint2 make_uint2(unsigned x, unsigned y) {
    return uint2{x, y};
}
static inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
    return uint4{x, y, z, w};
}

/* ---- the executing thread's coordinates
 * ---------------------------------------------------------- */

const uint3 &tseal_emu_thread_idx();
const uint3 &tseal_emu_block_idx();
const dim3 &tseal_emu_block_dim();
const dim3 &tseal_emu_grid_dim();
#define threadIdx (tseal_emu_thread_idx())
#define blockIdx  (tseal_emu_block_idx())
#define blockDim  (tseal_emu_block_dim())
#define gridDim   (tseal_emu_grid_dim())
#define warpSize  32

/* ---- synchronisation and warp shuffles
 * ------------------------------------------------------------ */

void tseal_emu_syncthreads();
#define __syncthreads() tseal_emu_syncthreads()

enum tseal_emu_shfl_kind {
    TSEAL_EMU_SHFL_IDX,
    TSEAL_EMU_SHFL_UP,
    TSEAL_EMU_SHFL_DOWN,
    TSEAL_EMU_SHFL_XOR
};
/* Exchange `bits` among the lanes of the warp (every live lane named in `mask` must take part). */
uint64_t tseal_emu_shfl(tseal_emu_shfl_kind kind, unsigned mask, uint64_t bits, int arg, int width);

template <class T>
static inline T tseal_emu_shfl_t(tseal_emu_shfl_kind k, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "shuffle of a type > 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = tseal_emu_shfl(k, mask, b, arg, width);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return tseal_emu_shfl_t(TSEAL_EMU_SHFL_IDX, mask, v, src, width);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned d, int width = 32) {
    return tseal_emu_shfl_t(TSEAL_EMU_SHFL_UP, mask, v, (int)d, width);
}
template <class T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned d, int width = 32) {
    return tseal_emu_shfl_t(TSEAL_EMU_SHFL_DOWN, mask, v, (int)d, width);
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int m, int width = 32) {
    return tseal_emu_shfl_t(TSEAL_EMU_SHFL_XOR, mask, v, m, width);
}

/* __syncwarp: every live lane named in `mask` must arrive (a shuffle of nothing); the emulator
 * runs a lane until it waits, so this orders the lanes' shared-memory accesses as on the GPU. */
static inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
    (void)tseal_emu_shfl(TSEAL_EMU_SHFL_XOR, mask, 0, 0, 32);
}
/* Bit l set iff lane l's predicate holds (1-D blocks: lane = threadIdx.x % 32). */
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    unsigned v = pred ? 1u << (threadIdx.x & 31) : 0u;
    for (int m = 1; m < 32; m <<= 1) v |= __shfl_xor_sync(mask, v, m);
    return v & mask;
}

/* ---- intrinsics
 * ---------------------------------------------------------------------------------- */

/* PRMT: byte i of the result is byte (s >> 4i) & 7 of y:x; bit 3 of the nibble replicates
 * that byte's sign bit. */
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t v = ((uint64_t)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; i++) {
        const unsigned sel = (s >> (4 * i)) & 0xFu;
        unsigned byte = (unsigned)(v >> (8 * (sel & 7u))) & 0xFFu;
        if (sel & 8u) byte = (byte & 0x80u) ? 0xFFu : 0u;
        r |= byte << (8 * i);
    }
    return r;
}
static inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)((((uint64_t)hi << 32) | lo) >> (s & 31u));
}
static inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    return (unsigned)(((((uint64_t)hi << 32) | lo) << (s & 31u)) >> 32);
}
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float __fadd_rn(float a, float b) {
    volatile float r = a + b; /* one rounding, never fused with a neighbour */
    return r;
}
static inline float __fmul_rn(float a, float b) {
    volatile float r = a * b;
    return r;
}
static inline float __fmaf_rn(float a, float b, float c) {
    return fmaf(a, b, c);
}
static inline int __popc(unsigned x) {
    return __builtin_popcount(x);
}
static inline int __clz(int x) {
    return x ? __builtin_clz((unsigned)x) : 32;
}

/* Read-only loads: the device requires natural alignment (16 bytes for uint4). */
void tseal_emu_misaligned(const void *p, size_t align, const char *what);
template <class T> static inline T __ldg(const T *p) {
    if ((uintptr_t)p % alignof(T)) tseal_emu_misaligned(p, alignof(T), "__ldg");
    return *p;
}

/* Atomics: one emulated thread runs at a time, but keep them atomic for the host's sake. */
static inline unsigned atomicAdd(unsigned *p, unsigned v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
static inline unsigned atomicOr(unsigned *p, unsigned v) {
    return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);
}
template <class T> static inline T tseal_emu_atomic_max(T *p, T v) {
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (old < v &&
           !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    return old;
}
static inline unsigned atomicMax(unsigned *p, unsigned v) {
    return tseal_emu_atomic_max(p, v);
}
static inline unsigned long long atomicMax(unsigned long long *p, unsigned long long v) {
    return tseal_emu_atomic_max(p, v);
}

/* ---- runtime API (tests/emu/emu.cpp)
 * -------------------------------------------------------------- */

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorNotReady = 600,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
enum cudaMemoryType {
    cudaMemoryTypeUnregistered = 0,
    cudaMemoryTypeHost = 1,
    cudaMemoryTypeDevice = 2,
    cudaMemoryTypeManaged = 3,
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrL2CacheSize = 38,
};
struct cudaPointerAttributes {
    cudaMemoryType type;
    int device;
    void *devicePointer;
    void *hostPointer;
};
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int multiProcessorCount;
    int l2CacheSize;
    int maxThreadsPerBlock;
    int major, minor;
};

typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;

#define cudaStreamDefault      0x00u
#define cudaStreamNonBlocking  0x01u
#define cudaEventDefault       0x00u
#define cudaEventDisableTiming 0x02u
#define cudaHostAllocDefault   0x00u
#define cudaHostAllocPortable  0x01u

const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr attr, int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int device);
cudaError_t cudaDeviceSynchronize();

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p);

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s = 0);
cudaError_t cudaMemset(void *p, int v, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s = 0);

cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

/* Resident blocks per SM: the emulator assumes 2048 threads per SM, at most 32 blocks. */
int tseal_emu_blocks_per_sm(int threads);
template <class F>
static inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *n, F, int threads,
                                                                        size_t) {
    if (!n || threads <= 0 || threads > 1024) return cudaErrorInvalidValue;
    *n = tseal_emu_blocks_per_sm(threads);
    return cudaSuccess;
}

/* ---- kernel launches
 * ------------------------------------------------------------------------------ */

struct tseal_emu_cfg {
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
};
static inline tseal_emu_cfg tseal_emu_config(dim3 grid, dim3 block, size_t smem = 0,
                                             cudaStream_t stream = 0) {
    return tseal_emu_cfg{grid, block, smem, stream};
}
/* Run `body` once per thread of every block of the grid (validates the configuration first and
 * sets the last error as the runtime would). */
void tseal_emu_run(const tseal_emu_cfg &cfg, const char *kernel, const std::function<void()> &body);

template <class... P> struct tseal_emu_launcher {
    void (*fn)(P...);
    tseal_emu_cfg cfg;
    const char *name;
    template <class... A> void operator()(A &&...a) const {
        /* Arguments are converted to the parameter types once, as the launch copies them. */
        std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
        void (*f)(P...) = fn;
        tseal_emu_run(cfg, name, [args, f]() { std::apply(f, args); });
    }
};
template <class... P>
static inline tseal_emu_launcher<P...> tseal_emu_launch(void (*fn)(P...), tseal_emu_cfg cfg,
                                                        const char *name) {
    return tseal_emu_launcher<P...>{fn, cfg, name};
}

#endif /* TSEAL_EMU_CUDA_RUNTIME_H */
