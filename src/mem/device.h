/* device.h - the seam between libtally.so and its device plugin.
 *
 * libtally.so links no CUDA library, so one build loads on GPU nodes and on
 * nodes without the CUDA runtime alike.  Device support lives in a plugin,
 * libtally-cuda.so (src/cuda/, linked against the CUDA runtime), which
 * exports one table of functions, tally_device_backend_cuda; mem.c loads it
 * at tally_comm_create.  A plugin rather than dlopen of the runtime itself:
 * the device code to come (kernels built by nvcc, NCCL) links normally
 * inside the plugin, and the seam stays one table. */
#ifndef TALLY_DEVICE_H
#define TALLY_DEVICE_H

#include <stddef.h>

typedef enum tally_memtype {
    TALLY_MEM_HOST,
    TALLY_MEM_CUDA
} tally_memtype_t;

/* Bumped whenever the table changes: a plugin from another build is refused. */
#define TALLY_DEVICE_ABI 1
#define TALLY_DEVICE_PLUGIN "libtally-cuda.so"
#define TALLY_DEVICE_SYMBOL "tally_device_backend_cuda"

typedef struct tally_device_backend {
    int abi;          /* TALLY_DEVICE_ABI */
    const char *name; /* "cuda" */
    /* The devices this process can use; 0 with the reason in why when none. */
    int (*device_count)(char *why, size_t len);
    /* Where ptr lives (never called with NULL). */
    tally_memtype_t (*classify)(const void *ptr);
} tally_device_backend_t;

#endif
