/* mem.h - where a buffer lives.  A build without CUDA answers "host". */
#ifndef TALLY_MEM_H
#define TALLY_MEM_H

#include <stdbool.h>

typedef enum tally_memtype {
    TALLY_MEM_HOST,
    TALLY_MEM_CUDA
} tally_memtype_t;

/* Whether this process can see a CUDA device (false in a no-CUDA build). */
bool tally_mem_cuda_available(void);

/* The memory type of ptr; cuda_available is tally_mem_cuda_available()'s
 * answer, cached by the caller so host-only runs never call into CUDA. */
tally_memtype_t tally_mem_classify(const void *ptr, bool cuda_available);

const char *tally_memtype_name(tally_memtype_t type);

#endif
