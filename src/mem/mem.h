/* mem.h - a communicator's device support: the backend (device.h) it
 * loaded, if any, buffer classification, and the pinned staging buffers
 * and streams the staged algorithm keeps between calls. */
#ifndef TALLY_MEM_H
#define TALLY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "device.h"

/* TALLY_DEVICE: which backend tally_device_open loads. */
typedef enum tally_device_choice {
    TALLY_DEVICE_AUTO,     /* the CUDA plugin, when it loads and sees a device */
    TALLY_DEVICE_NONE,     /* none: every buffer is host memory */
    TALLY_DEVICE_EMULATED  /* host memory posing as a device (tests) */
} tally_device_choice_t;

/* Two pinned bounce buffers, each with the streams' events that say when
 * it is free again (stage.c). */
typedef struct tally_stage {
    void *host[2];
    size_t bytes;        /* of each */
    void *whole;         /* a whole tensor's worth (compressed calls), or NULL */
    size_t whole_bytes;
    void *down, *up;     /* streams: device to host, host to device */
    void *down_done[2];  /* host[i] holds its chunk */
    void *up_done[2];    /* host[i]'s chunk is back on the device: reusable */
} tally_stage_t;

/* One communicator's view of device support. */
typedef struct tally_device {
    const tally_device_backend_t *backend; /* NULL: every buffer is host memory */
    void *ctx;                             /* the backend's */
    void *plugin;                          /* dlopen handle of the CUDA plugin */
    bool borrowed;                         /* a group's view of its parent's: not closed */
    int devices;                           /* what the backend sees */
    tally_stage_t *stage;                  /* this communicator's own; NULL until used */
    char why[256];                         /* no backend: why not */
} tally_device_t;

/* Loads the backend `which` names: for AUTO the plugin beside libtally.so
 * (else on the loader's search path) if it sees a device.  Never fails:
 * host memory always works; without a backend, dev->why says why. */
void tally_device_open(tally_device_t *dev, tally_device_choice_t which);

/* The CUDA backend from the plugin at path (tests). */
void tally_device_open_path(tally_device_t *dev, const char *path);

/* A group's view of parent's backend (closing it leaves parent's alone). */
void tally_device_borrow(tally_device_t *dev, const tally_device_t *parent);

void tally_device_close(tally_device_t *dev);

/* The backend and its devices (name, PCI bus id, NUMA node), or why there
 * is none; every line starts with `prefix`. */
void tally_device_write(const tally_device_t *dev, const char *prefix, FILE *stream);

/* The memory type of ptr; host without a backend, so host-only runs never
 * call into a device library. */
tally_memtype_t tally_mem_classify(const tally_device_t *dev, const void *ptr);

/* What a call can do with ptr's memory: TALLY_MEM_DEVICE, or TALLY_MEM_HOST
 * for every kind the host reaches (pinned and managed too). */
static inline tally_memtype_t tally_mem_reach(tally_memtype_t type)
{
    return type == TALLY_MEM_DEVICE ? TALLY_MEM_DEVICE : TALLY_MEM_HOST;
}

const char *tally_memtype_name(tally_memtype_t type);

/* dev's staging buffers with at least `bytes` each, made or grown on first
 * use; NULL with the reason in *why when the backend refuses.  Collective
 * over `mpi` when it makes or grows them: every rank gets them or none. */
tally_stage_t *tally_stage_get(tally_device_t *dev, MPI_Comm mpi, size_t bytes,
                               const char **why);
/* A pinned buffer of at least `bytes` for a whole tensor, kept with the
 * staging buffers; NULL with the reason in *why.  Collective as above. */
void *tally_stage_whole(tally_device_t *dev, MPI_Comm mpi, size_t bytes, const char **why);

/* Frees them (tally_device_close). */
void tally_stage_free(tally_device_t *dev);

#endif
