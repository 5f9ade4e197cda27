/* kernels.h - the CUDA kernel table (kernels.cu), for the plugin. */
#ifndef TALLY_CUDA_KERNELS_H
#define TALLY_CUDA_KERNELS_H

#include "../reduce/reduce.h"

#ifdef __cplusplus
extern "C" {
#endif
const tally_kernels_t *tally_cuda_kernels(void);
#ifdef __cplusplus
}
#endif

#endif
