/* mem.h - where a buffer lives, answered by the device plugin when one is
 * loaded (device.h) and "host" otherwise. */
#ifndef TALLY_MEM_H
#define TALLY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "device.h"

/* One communicator's view of device support. */
typedef struct tally_device {
    void *plugin;                                /* dlopen handle; NULL when none or
                                                    borrowed (a group's, from its parent) */
    const tally_device_backend_t *backend;       /* NULL: every buffer is host memory */
    int devices;                                 /* what the backend sees */
    char why[256];                               /* no backend: why not */
} tally_device_t;

/* Loads the device plugin found beside libtally.so (else on the loader's
 * search path) if it sees a device; otherwise dev->backend is NULL and
 * dev->why says why.  Never fails: host memory always works. */
void tally_device_open(tally_device_t *dev);

/* The same from the plugin at path (tests). */
void tally_device_open_path(tally_device_t *dev, const char *path);

void tally_device_close(tally_device_t *dev);

/* One line: the device backend and its devices, or why there is none. */
void tally_device_write(const tally_device_t *dev, FILE *stream);

/* The memory type of ptr; host without a backend, so host-only runs never
 * call into a device library. */
tally_memtype_t tally_mem_classify(const tally_device_t *dev, const void *ptr);

const char *tally_memtype_name(tally_memtype_t type);

#endif
