/* nccl_api.h - NCCL as the CUDA plugin uses it (nccl.c), loaded at run
 * time; plugin.c puts these behind the device table's nccl_* entries. */
#ifndef TALLY_CUDA_NCCL_API_H
#define TALLY_CUDA_NCCL_API_H

#include <cuda_runtime_api.h>

#include "../mem/device.h"

typedef struct tally_nccl_lib tally_nccl_lib_t;

/* Opens libnccl.so.2; never NULL but out of memory: see tally_nccl_missing. */
tally_nccl_lib_t *tally_nccl_load(void);
void tally_nccl_unload(tally_nccl_lib_t *n);
/* Why NCCL cannot serve, or NULL. */
const char *tally_nccl_missing(const tally_nccl_lib_t *n);
const char *tally_nccl_id(const tally_nccl_lib_t *n, unsigned char id[TALLY_NCCL_ID_BYTES]);
const char *tally_nccl_join(const tally_nccl_lib_t *n, const unsigned char id[TALLY_NCCL_ID_BYTES],
                            int size, int rank, void **out);
void tally_nccl_leave(const tally_nccl_lib_t *n, void *handle);
const char *tally_nccl_allreduce(const tally_nccl_lib_t *n, void *handle, const void *send,
                                 void *recv, size_t count, tally_dtype_t dtype, tally_op_t op);

#endif
