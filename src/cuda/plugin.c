/* plugin.c - libtally-cuda.so: the CUDA backend of the device interface
 * (mem/device.h), the only object linked against the CUDA runtime.  It
 * works on the calling thread's current device, as the CUDA runtime does:
 * the program picks its GPU (cudaSetDevice) before tally_comm_create.
 *
 * Classification is asked on every call, and cudaPointerGetAttributes
 * costs far more than a host call can afford, so pages found to be plain
 * host memory are remembered (a small direct-mapped cache per context).
 * That is safe under unified addressing: device and managed allocations
 * come from a range the runtime reserves, which host mappings never reuse,
 * so a host page never turns into device memory.  (A page registered later
 * with cudaHostRegister stays "host", which the host algorithms serve
 * alike.) */
#include <cuda.h> /* cuMemGetAddressRange: an allocation's base, for IPC */
#include <cuda_runtime_api.h>
#include <stdatomic.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../mem/device.h"
#include "kernels.h"
#include "nccl_api.h"

/* NULL on success, else the runtime's sentence (static), with the sticky
 * last error cleared so that it is not reported twice. */
static const char *cuda_why(cudaError_t err)
{
    if (err == cudaSuccess)
        return NULL;
    (void)cudaGetLastError();
    return cudaGetErrorString(err);
}

#define HOST_PAGE_SHIFT 12
#define HOST_PAGE_SLOTS 256

typedef struct cuda_ctx {
    /* page number + 1 of a host page, by page number mod the slots; 0 empty */
    _Atomic uintptr_t host_page[HOST_PAGE_SLOTS];
    tally_nccl_lib_t *nccl; /* nccl.c */
    int device;             /* current when opened: the communicator's */
} cuda_ctx_t;

static const char *cuda_open(void **ctx, int *devices)
{
    int n = 0;
    const char *err = cuda_why(cudaGetDeviceCount(&n));
    if (err)
        return err; /* no driver, or no device */
    if (n == 0)
        return "no device visible";
    cuda_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return "out of memory";
    if (cudaGetDevice(&c->device) != cudaSuccess) {
        free(c);
        return cuda_why(cudaGetLastError());
    }
    c->nccl = tally_nccl_load();
    *ctx = c;
    *devices = n;
    return NULL;
}

static void cuda_close(void *ctx)
{
    cuda_ctx_t *c = ctx;
    tally_nccl_unload(c->nccl);
    free(c);
}

static const char *cuda_describe(void *ctx, int device, char *name, size_t name_len, char *pci,
                                 size_t pci_len)
{
    (void)ctx;
    struct cudaDeviceProp prop;
    const char *err = cuda_why(cudaGetDeviceProperties(&prop, device));
    if (err)
        return err;
    snprintf(name, name_len, "%s, %.0f GiB, compute capability %d.%d", prop.name,
             (double)prop.totalGlobalMem / (1 << 30), prop.major, prop.minor);
    if (cudaDeviceGetPCIBusId(pci, (int)pci_len, device) != cudaSuccess) {
        (void)cudaGetLastError();
        pci[0] = '\0';
    }
    return NULL;
}

static int cuda_current(void *ctx)
{
    return ((cuda_ctx_t *)ctx)->device;
}

static int cuda_bind_thread(void *ctx)
{
    const int want = ((cuda_ctx_t *)ctx)->device;
    int previous = want;
    if (cudaGetDevice(&previous) != cudaSuccess)
        (void)cudaGetLastError();
    if (previous != want)
        (void)cuda_why(cudaSetDevice(want));
    return previous;
}

static void cuda_restore_thread(void *ctx, int previous)
{
    if (previous != ((cuda_ctx_t *)ctx)->device)
        (void)cuda_why(cudaSetDevice(previous));
}

/* The runtime's answer, uncached. */
static tally_memtype_t query(const void *ptr)
{
    struct cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
        (void)cudaGetLastError();
        return TALLY_MEM_HOST;
    }
    switch (attr.type) {
    case cudaMemoryTypeDevice: return TALLY_MEM_DEVICE;
    case cudaMemoryTypeManaged: return TALLY_MEM_MANAGED;
    case cudaMemoryTypeHost: return TALLY_MEM_PINNED;
    default: return TALLY_MEM_HOST;
    }
}

static tally_memtype_t cuda_classify(void *ctx, const void *ptr)
{
    cuda_ctx_t *c = ctx;
    const uintptr_t page = (uintptr_t)ptr >> HOST_PAGE_SHIFT;
    _Atomic uintptr_t *slot = &c->host_page[page % HOST_PAGE_SLOTS];
    if (atomic_load_explicit(slot, memory_order_relaxed) == page + 1)
        return TALLY_MEM_HOST;
    const tally_memtype_t type = query(ptr);
    if (type == TALLY_MEM_HOST)
        atomic_store_explicit(slot, page + 1, memory_order_relaxed);
    return type;
}

static const char *cuda_alloc(void *ctx, tally_memtype_t type, size_t bytes, void **ptr)
{
    (void)ctx;
    if (type == TALLY_MEM_DEVICE)
        return cuda_why(cudaMalloc(ptr, bytes));
    if (type == TALLY_MEM_PINNED)
        return cuda_why(cudaMallocHost(ptr, bytes));
    return "only device and pinned memory are allocated by the backend";
}

static const char *cuda_free(void *ctx, void *ptr)
{
    (void)ctx;
    if (query(ptr) == TALLY_MEM_PINNED) /* not the cache: pinned memory may reuse a host page */
        return cuda_why(cudaFreeHost(ptr));
    return cuda_why(cudaFree(ptr));
}

static const char *cuda_copy(void *ctx, void *dst, const void *src, size_t bytes)
{
    (void)ctx;
    return cuda_why(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

static const char *cuda_stream_create(void *ctx, void **stream)
{
    (void)ctx;
    cudaStream_t s;
    const char *err = cuda_why(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (!err)
        *stream = s;
    return err;
}

static void cuda_stream_destroy(void *ctx, void *stream)
{
    (void)ctx;
    (void)cuda_why(cudaStreamDestroy((cudaStream_t)stream));
}

static const char *cuda_copy_async(void *ctx, void *dst, const void *src, size_t bytes,
                                   void *stream)
{
    (void)ctx;
    return cuda_why(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)stream));
}

static const char *cuda_event_create(void *ctx, void **event)
{
    (void)ctx;
    cudaEvent_t e;
    const char *err = cuda_why(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    if (!err)
        *event = e;
    return err;
}

static void cuda_event_destroy(void *ctx, void *event)
{
    (void)ctx;
    (void)cuda_why(cudaEventDestroy((cudaEvent_t)event));
}

static const char *cuda_event_record(void *ctx, void *event, void *stream)
{
    (void)ctx;
    return cuda_why(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream));
}

static const char *cuda_event_wait(void *ctx, void *event)
{
    (void)ctx;
    return cuda_why(cudaEventSynchronize((cudaEvent_t)event));
}

static const char *cuda_stream_wait(void *ctx, void *stream, void *event)
{
    (void)ctx;
    return cuda_why(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)event, 0));
}

_Static_assert(sizeof(cudaIpcMemHandle_t) <= TALLY_IPC_HANDLE_BYTES, "handle fits");

static const char *cuda_ipc_export(void *ctx, const void *ptr, tally_ipc_handle_t *handle,
                                   size_t *offset)
{
    (void)ctx;
    CUdeviceptr base = 0;
    size_t size = 0;
    if (cuMemGetAddressRange(&base, &size, (CUdeviceptr)(uintptr_t)ptr) != CUDA_SUCCESS)
        return "not device memory of this process (cuMemGetAddressRange)";
    cudaIpcMemHandle_t h;
    const char *err = cuda_why(cudaIpcGetMemHandle(&h, (void *)(uintptr_t)base));
    if (err)
        return err;
    memset(handle, 0, sizeof *handle);
    memcpy(handle->bytes, &h, sizeof h);
    *offset = (uintptr_t)ptr - (uintptr_t)base;
    return NULL;
}

static const char *cuda_ipc_open(void *ctx, const tally_ipc_handle_t *handle, void **base)
{
    (void)ctx;
    cudaIpcMemHandle_t h;
    memcpy(&h, handle->bytes, sizeof h);
    return cuda_why(cudaIpcOpenMemHandle(base, h, cudaIpcMemLazyEnablePeerAccess));
}

static void cuda_ipc_close(void *ctx, void *base)
{
    (void)ctx;
    (void)cuda_why(cudaIpcCloseMemHandle(base));
}

static const char *cuda_nccl_missing(void *ctx)
{
    return tally_nccl_missing(((cuda_ctx_t *)ctx)->nccl);
}

static const char *cuda_nccl_id(void *ctx, unsigned char id[TALLY_NCCL_ID_BYTES])
{
    return tally_nccl_id(((cuda_ctx_t *)ctx)->nccl, id);
}

static const char *cuda_nccl_join(void *ctx, const unsigned char id[TALLY_NCCL_ID_BYTES],
                                  int size, int rank, void **nccl)
{
    return tally_nccl_join(((cuda_ctx_t *)ctx)->nccl, id, size, rank, nccl);
}

static void cuda_nccl_leave(void *ctx, void *nccl)
{
    tally_nccl_leave(((cuda_ctx_t *)ctx)->nccl, nccl);
}

static const char *cuda_nccl_allreduce(void *ctx, void *nccl, const void *send, void *recv,
                                       size_t count, tally_dtype_t dtype, tally_op_t op)
{
    return tally_nccl_allreduce(((cuda_ctx_t *)ctx)->nccl, nccl, send, recv, count, dtype, op);
}

static const tally_kernels_t *cuda_kernels(void *ctx)
{
    (void)ctx;
    return tally_cuda_kernels();
}

static const char *cuda_check(void *ctx)
{
    (void)ctx;
    return cuda_why(cudaGetLastError());
}

/* The table mem.c looks up by name. */
__attribute__((visibility("default"))) const tally_device_backend_t tally_device_backend_cuda = {
    .abi = TALLY_DEVICE_ABI,
    .name = "cuda",
    .open = cuda_open,
    .close = cuda_close,
    .describe = cuda_describe,
    .current = cuda_current,
    .bind_thread = cuda_bind_thread,
    .restore_thread = cuda_restore_thread,
    .classify = cuda_classify,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy = cuda_copy,
    .stream_create = cuda_stream_create,
    .stream_destroy = cuda_stream_destroy,
    .copy_async = cuda_copy_async,
    .event_create = cuda_event_create,
    .event_destroy = cuda_event_destroy,
    .event_record = cuda_event_record,
    .event_wait = cuda_event_wait,
    .stream_wait = cuda_stream_wait,
    .ipc_export = cuda_ipc_export,
    .ipc_open = cuda_ipc_open,
    .ipc_close = cuda_ipc_close,
    .nccl_missing = cuda_nccl_missing,
    .nccl_id = cuda_nccl_id,
    .nccl_join = cuda_nccl_join,
    .nccl_leave = cuda_nccl_leave,
    .nccl_allreduce = cuda_nccl_allreduce,
    .kernels = cuda_kernels,
    .check = cuda_check,
};
