/* bench_decode_nocuda.c - `tseal bench gpu` decode part without CUDA: no GPU. */
#include <string.h>

#include "bench.h"

int tseal_bench_gpu_decode_shape(uint64_t n, uint64_t k, unsigned seg_log2, unsigned repeat,
                                 int device, tseal_gpu_decode_row *row) {
    (void)seg_log2;
    (void)repeat;
    (void)device;
    memset(row, 0, sizeof *row);
    row->n = n;
    row->k = k;
    tseal_gpu_device_count(); /* sets the message */
    return TSEAL_E_NO_GPU;
}
