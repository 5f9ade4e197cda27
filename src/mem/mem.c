/* mem.c - host or CUDA buffer?  Without CUDA every pointer is host memory. */
#include "mem.h"

#include <stddef.h>

#if TALLY_HAVE_CUDA
#include <cuda_runtime_api.h>

bool tally_mem_cuda_available(void)
{
    int devices = 0;
    /* No driver or no device both mean "no CUDA"; clear the sticky error. */
    if (cudaGetDeviceCount(&devices) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return devices > 0;
}

tally_memtype_t tally_mem_classify(const void *ptr, bool cuda_available)
{
    if (!cuda_available || ptr == NULL)
        return TALLY_MEM_HOST;
    struct cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return TALLY_MEM_HOST;
    }
    /* Managed memory is reachable from the host, so host algorithms may use it. */
    return attr.type == cudaMemoryTypeDevice ? TALLY_MEM_CUDA : TALLY_MEM_HOST;
}

#else

bool tally_mem_cuda_available(void)
{
    return false;
}

tally_memtype_t tally_mem_classify(const void *ptr, bool cuda_available)
{
    (void)ptr;
    (void)cuda_available;
    return TALLY_MEM_HOST;
}

#endif

const char *tally_memtype_name(tally_memtype_t type)
{
    return type == TALLY_MEM_CUDA ? "cuda" : "host";
}
