/* plugin.c - libtally-cuda.so: the CUDA backend of the device seam
 * (mem/device.h), the only object linked against the CUDA runtime. */
#include <cuda_runtime_api.h>
#include <stdio.h>

#include "../mem/device.h"

static int device_count(char *why, size_t len)
{
    int devices = 0;
    cudaError_t err = cudaGetDeviceCount(&devices);
    if (err != cudaSuccess) {
        /* No driver or no device: clear the sticky error, say which. */
        snprintf(why, len, "CUDA runtime: %s", cudaGetErrorString(err));
        (void)cudaGetLastError();
        return 0;
    }
    if (devices == 0)
        snprintf(why, len, "CUDA runtime: no device visible");
    return devices;
}

static tally_memtype_t classify(const void *ptr)
{
    struct cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return TALLY_MEM_HOST;
    }
    /* Managed memory is reachable from the host, so host algorithms may use it. */
    return attr.type == cudaMemoryTypeDevice ? TALLY_MEM_CUDA : TALLY_MEM_HOST;
}

/* The table mem.c looks up by name. */
__attribute__((visibility("default"))) const tally_device_backend_t tally_device_backend_cuda = {
    .abi = TALLY_DEVICE_ABI,
    .name = "cuda",
    .device_count = device_count,
    .classify = classify,
};
