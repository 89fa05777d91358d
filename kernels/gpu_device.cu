/*
 * gpu_device.cu - CUDA device discovery (host code).
 */
#include <cuda_runtime.h>

#include "internal.h"

extern "C" int tseal_gpu_built(void) {
    return 1;
}

extern "C" int tseal_gpu_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        tseal_err(TSEAL_E_NO_GPU, "no CUDA device: %s",
                  e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
        cudaGetLastError(); /* clear the sticky error so later calls start clean */
        return 0;
    }
    return n;
}
