/*
 * selftest.cu - the CUDA emulator catches what it claims to (tests/emu/README.md): each case is a
 * small kernel, correct or with one deliberate bug; tests/emu/run.sh runs every case and checks
 * its exit status and message. `selftest CASE`:
 *   ok               block reduction with a barrier and warp shuffles: exact result, exit 0
 *   missing_barrier  a warp reads shared memory another warp writes, without __syncthreads:
 *                    the emulator's warp-at-a-time order makes it read stale data (exit 0 when
 *                    the stale read is seen)
 *   divergent_shfl   a full-mask shuffle that half the warp skips: emulator error
 *   deadlock         half a warp at __syncthreads, the other half at a shuffle: emulator error
 *   misaligned_ldg   a 16-byte __ldg of an 8-byte aligned address: emulator error
 *   misaligned_store a 16-byte store to an 8-byte aligned address: UBSan error
 *   out_of_bounds    a store one element past a cudaMalloc buffer: ASan error
 *   bad_copy         cudaMemcpy host-to-device into host memory: emulator error
 *   leak             device memory never freed: emulator error at exit
 *   read_early       the host reads a pinned buffer an asynchronous copy fills, without waiting
 *                    for the stream: stale data seen (exit 0 when seen)
 *   reuse_early      the host rewrites a pinned buffer an asynchronous copy reads, without
 *                    waiting: the device gets the new bytes (exit 0 when seen)
 * (run.sh sets TSEAL_EMU_DELAY_US high for the last two, so that the race is always lost)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#define THREADS 128

__global__ void reduce_kernel(const unsigned *in, unsigned *out, int skip_barrier) {
    __shared__ unsigned s[THREADS];
    const unsigned t = threadIdx.x;
    s[t] = in[blockIdx.x * THREADS + t];
    if (!skip_barrier) __syncthreads();
    /* each thread reads a value written by a thread of another warp */
    unsigned v = s[(t + 32) % THREADS];
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xFFFFFFFFu, v, d);
    if ((t & 31) == 0) atomicAdd(&out[blockIdx.x], v);
}

__global__ void divergent_kernel(unsigned *out) {
    unsigned v = threadIdx.x;
    if (threadIdx.x & 1) v = __shfl_sync(0xFFFFFFFFu, v, 0);
    out[threadIdx.x] = v;
}

__global__ void deadlock_kernel(unsigned *out) {
    unsigned v = threadIdx.x;
    if (threadIdx.x < 16)
        __syncthreads();
    else
        v = __shfl_sync(0xFFFFFFFFu, v, 0);
    out[threadIdx.x] = v;
}

__global__ void ldg_kernel(const uint4 *p, unsigned *out) {
    out[threadIdx.x] = __ldg(p).x;
}

__global__ void vec_store_kernel(uint4 *p) {
    p[threadIdx.x] = make_uint4(1, 2, 3, 4);
}

__global__ void store_kernel(unsigned *out, unsigned n) {
    out[threadIdx.x] = threadIdx.x; /* launched with n + 1 threads */
    (void)n;
}

static void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
        fprintf(stderr, "selftest: %s: %s\n", what, cudaGetErrorString(e));
        exit(1);
    }
}

static int reduce_case(int skip_barrier) {
    const unsigned blocks = 3, n = blocks * THREADS;
    unsigned h[n], got[blocks], *din = NULL, *dout = NULL;
    for (unsigned i = 0; i < n; i++) h[i] = i * 7 + 1;
    check(cudaMalloc((void **)&din, sizeof h), "cudaMalloc");
    check(cudaMalloc((void **)&dout, sizeof got), "cudaMalloc");
    check(cudaMemcpy(din, h, sizeof h, cudaMemcpyHostToDevice), "cudaMemcpy");
    check(cudaMemset(dout, 0, sizeof got), "cudaMemset");
    reduce_kernel<<<blocks, THREADS>>>(din, dout, skip_barrier);
    check(cudaGetLastError(), "launch");
    check(cudaMemcpy(got, dout, sizeof got, cudaMemcpyDeviceToHost), "cudaMemcpy");
    cudaFree(din);
    cudaFree(dout);
    int exact = 1;
    for (unsigned b = 0; b < blocks; b++) {
        unsigned want = 0;
        for (unsigned t = 0; t < THREADS; t++) want += h[b * THREADS + t];
        if (got[b] != want) exact = 0;
    }
    if (!skip_barrier) {
        printf("selftest ok: %s\n", exact ? "exact" : "WRONG");
        return exact ? 0 : 1;
    }
    printf("selftest missing_barrier: %s\n", exact ? "NOT SEEN" : "stale shared memory seen");
    return exact ? 1 : 0;
}

/* The two host-side races of asynchronous copies; returns 0 when the emulator exposed them. */
static int async_case(int reuse) {
    const unsigned n = 64;
    unsigned *pinned = NULL, *d = NULL, back[64];
    cudaStream_t s = NULL;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(cudaHostAlloc((void **)&pinned, n * sizeof *pinned, cudaHostAllocDefault),
          "cudaHostAlloc");
    check(cudaMalloc((void **)&d, n * sizeof *d), "cudaMalloc");
    for (unsigned i = 0; i < n; i++) pinned[i] = 1;
    int seen;
    if (reuse) {
        check(cudaMemcpyAsync(d, pinned, n * sizeof *d, cudaMemcpyHostToDevice, s), "copy");
        for (unsigned i = 0; i < n; i++) pinned[i] = 2; /* BUG: the copy may not have read it */
        check(cudaStreamSynchronize(s), "sync");
        check(cudaMemcpy(back, d, sizeof back, cudaMemcpyDeviceToHost), "cudaMemcpy");
        seen = back[0] == 2;
    } else {
        check(cudaMemsetAsync(d, 0, n * sizeof *d, s), "memset");
        check(cudaMemcpyAsync(pinned, d, n * sizeof *d, cudaMemcpyDeviceToHost, s), "copy");
        seen = pinned[0] == 1; /* BUG: read before cudaStreamSynchronize */
        check(cudaStreamSynchronize(s), "sync");
        if (pinned[0] != 0) seen = 0; /* after the wait the copy must have landed */
    }
    cudaFree(d);
    cudaFreeHost(pinned);
    cudaStreamDestroy(s);
    printf("selftest %s: %s\n", reuse ? "reuse_early" : "read_early",
           seen ? "race seen" : "NOT SEEN");
    return seen ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    unsigned *d = NULL;
    if (!strcmp(c, "ok")) return reduce_case(0);
    if (!strcmp(c, "missing_barrier")) return reduce_case(1);
    if (!strcmp(c, "read_early")) return async_case(0);
    if (!strcmp(c, "reuse_early")) return async_case(1);
    if (!strcmp(c, "leak")) {
        check(cudaMalloc((void **)&d, 64), "cudaMalloc");
        return 0;
    }
    check(cudaMalloc((void **)&d, 64 * sizeof *d), "cudaMalloc");
    if (!strcmp(c, "divergent_shfl")) {
        divergent_kernel<<<1, 32>>>(d);
    } else if (!strcmp(c, "deadlock")) {
        deadlock_kernel<<<1, 32>>>(d);
    } else if (!strcmp(c, "misaligned_ldg")) {
        ldg_kernel<<<1, 1>>>((const uint4 *)(d + 2), d);
    } else if (!strcmp(c, "misaligned_store")) {
        vec_store_kernel<<<1, 1>>>((uint4 *)(d + 2));
    } else if (!strcmp(c, "out_of_bounds")) {
        store_kernel<<<1, 65>>>(d, 64);
    } else if (!strcmp(c, "bad_copy")) {
        unsigned host[64] = {0};
        check(cudaMemcpy(host, d, sizeof host, cudaMemcpyHostToDevice), "cudaMemcpy");
    } else {
        fprintf(stderr, "selftest: unknown case '%s'\n", c);
        return 2;
    }
    check(cudaGetLastError(), c);
    cudaFree(d);
    printf("selftest %s: no error reported\n", c);
    return 0;
}
