/* device.h - the device interface: one table of functions a backend
 * exports, and everything tally does to device memory goes through it.
 *
 * libtally.so links no CUDA library, so one build loads on GPU nodes and on
 * nodes without the CUDA runtime alike.  The CUDA backend lives in a plugin,
 * libtally-cuda.so (src/cuda/, linked against the CUDA runtime), which
 * exports tally_device_backend_cuda; mem.c loads it at tally_comm_create.
 * A plugin rather than dlopen of the runtime itself: the kernels (built by
 * nvcc) and NCCL link normally inside it, and the seam stays one table.
 *
 * The host-emulated backend (emulated.c, inside libtally.so) implements the
 * same table with host memory, so the staged pipeline runs in `make check`
 * on machines without a GPU; TALLY_DEVICE=emulated selects it (tests only).
 *
 * Model: a backend is opened once per communicator (its context).  Streams
 * are FIFO queues of asynchronous copies; an event marks a point in one, and
 * the host can wait for it.  Functions that can fail return NULL on success
 * and a static sentence otherwise. */
#ifndef TALLY_DEVICE_H
#define TALLY_DEVICE_H

#include <stddef.h>

#include "../reduce/reduce.h"
#include "tally.h"

/* Bumped whenever the table changes: a plugin from another build is refused. */
#define TALLY_DEVICE_ABI 5
#define TALLY_DEVICE_PLUGIN "libtally-cuda.so"
#define TALLY_DEVICE_SYMBOL "tally_device_backend_cuda"

/* What another process on the node needs to map an allocation (CUDA:
 * cudaIpcMemHandle_t, which differs for a new allocation at a reused
 * address). */
#define TALLY_IPC_HANDLE_BYTES 64
typedef struct tally_ipc_handle {
    unsigned char bytes[TALLY_IPC_HANDLE_BYTES];
} tally_ipc_handle_t;

/* ncclUniqueId: what rank 0 sends the others to make a NCCL communicator. */
#define TALLY_NCCL_ID_BYTES 128

typedef struct tally_device_backend {
    int abi;          /* TALLY_DEVICE_ABI */
    const char *name; /* "cuda", "emulated" */
    /* Opens the backend: *ctx for the calls below and how many devices it
     * sees (NULL return); or why it cannot serve (no driver, no device). */
    const char *(*open)(void **ctx, int *devices);
    void (*close)(void *ctx);
    /* Device i: its name and PCI bus id ("0000:19:00.0", "" if none). */
    const char *(*describe)(void *ctx, int device, char *name, size_t name_len, char *pci,
                            size_t pci_len);
    /* The device this process's calls run on (the runtime's current one
     * when the backend was opened). */
    int (*current)(void *ctx);
    /* Makes the calling thread work on that device for a while (a started
     * call runs on tally's progress thread or a waiting thread, whose
     * runtime state may name another device); returns what to give
     * restore_thread afterwards. */
    int (*bind_thread)(void *ctx);
    void (*restore_thread)(void *ctx, int previous);

    /* Where ptr lives (never called with NULL). */
    tally_memtype_t (*classify)(void *ctx, const void *ptr);
    /* type is TALLY_MEM_DEVICE or TALLY_MEM_PINNED. */
    const char *(*alloc)(void *ctx, tally_memtype_t type, size_t bytes, void **ptr);
    const char *(*free)(void *ctx, void *ptr);
    /* Any direction, complete on return. */
    const char *(*copy)(void *ctx, void *dst, const void *src, size_t bytes);

    const char *(*stream_create)(void *ctx, void **stream);
    void (*stream_destroy)(void *ctx, void *stream);
    /* Queued on stream after what is queued there; any direction. */
    const char *(*copy_async)(void *ctx, void *dst, const void *src, size_t bytes,
                              void *stream);
    const char *(*event_create)(void *ctx, void **event);
    void (*event_destroy)(void *ctx, void *event);
    /* The event completes when everything queued on stream so far has. */
    const char *(*event_record)(void *ctx, void *event, void *stream);
    /* The host waits for the event (a never-recorded event is complete). */
    const char *(*event_wait)(void *ctx, void *event);
    /* Work queued on stream from now on waits for the event; the host
     * does not. */
    const char *(*stream_wait)(void *ctx, void *stream, void *event);

    /* Device memory shared between processes of one node: the handle of the
     * allocation holding ptr and ptr's offset in it; a peer's allocation
     * mapped here (its base), and unmapped. */
    const char *(*ipc_export)(void *ctx, const void *ptr, tally_ipc_handle_t *handle,
                              size_t *offset);
    const char *(*ipc_open)(void *ctx, const tally_ipc_handle_t *handle, void **base);
    void (*ipc_close)(void *ctx, void *base);

    /* NCCL (the CUDA plugin loads libnccl.so.2 if it is there): why it
     * cannot serve, or NULL.  A communicator of `size` ranks: rank 0 makes
     * the id, every rank joins with it (collective, blocking); allreduce
     * of device memory with SUM, PROD, MIN or MAX (AVG: SUM, the caller
     * divides), complete on return. */
    const char *(*nccl_missing)(void *ctx);
    const char *(*nccl_id)(void *ctx, unsigned char id[TALLY_NCCL_ID_BYTES]);
    const char *(*nccl_join)(void *ctx, const unsigned char id[TALLY_NCCL_ID_BYTES], int size,
                             int rank, void **nccl);
    void (*nccl_leave)(void *ctx, void *nccl);
    const char *(*nccl_allreduce)(void *ctx, void *nccl, const void *send, void *recv,
                                  size_t count, tally_dtype_t dtype, tally_op_t op);

    /* Reduce, divide and copy on device memory, complete on return.  The
     * kernel signatures have no status: a failure is kept until check(),
     * which every algorithm that runs device kernels calls at its end. */
    const tally_kernels_t *(*kernels)(void *ctx);
    const char *(*check)(void *ctx);
} tally_device_backend_t;

/* The emulated backend (emulated.c). */
extern const tally_device_backend_t tally_device_backend_emulated;

#endif
