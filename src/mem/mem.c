/* mem.c - loads the device plugin (device.h) and classifies buffers. */
#define _GNU_SOURCE /* dladdr */
#include "mem.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void tally_device_open_path(tally_device_t *dev, const char *path)
{
    *dev = (tally_device_t){0};
    void *plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!plugin) {
        snprintf(dev->why, sizeof dev->why, "%s", dlerror());
        return;
    }
    const tally_device_backend_t *backend = dlsym(plugin, TALLY_DEVICE_SYMBOL);
    if (!backend || backend->abi != TALLY_DEVICE_ABI) {
        snprintf(dev->why, sizeof dev->why, "%s: %s", path,
                 backend ? "from another tally build (device ABI differs)"
                         : "no " TALLY_DEVICE_SYMBOL);
        dlclose(plugin);
        return;
    }
    const int devices = backend->device_count(dev->why, sizeof dev->why);
    if (devices <= 0) {
        dlclose(plugin);
        return;
    }
    dev->plugin = plugin;
    dev->backend = backend;
    dev->devices = devices;
}

void tally_device_open(tally_device_t *dev)
{
#if !TALLY_HAVE_CUDA
    *dev = (tally_device_t){0};
    snprintf(dev->why, sizeof dev->why, "built without CUDA (configure found no toolkit)");
#else
    /* Beside libtally.so, found from one of its own symbols. */
    Dl_info self;
    if (dladdr((void *)tally_device_open, &self) && self.dli_fname) {
        char path[4096];
        const char *slash = strrchr(self.dli_fname, '/');
        const int dir = slash ? (int)(slash - self.dli_fname) : 1;
        snprintf(path, sizeof path, "%.*s/%s", dir, slash ? self.dli_fname : ".",
                 TALLY_DEVICE_PLUGIN);
        tally_device_open_path(dev, path);
        if (dev->backend || strstr(dev->why, "cannot open shared object file") == NULL)
            return; /* loaded, or there and refusing: that is the answer */
    }
    tally_device_open_path(dev, TALLY_DEVICE_PLUGIN);
#endif
}

void tally_device_close(tally_device_t *dev)
{
    if (dev->plugin)
        dlclose(dev->plugin);
    dev->plugin = NULL;
    dev->backend = NULL;
}

void tally_device_write(const tally_device_t *dev, FILE *stream)
{
    if (dev->backend)
        fprintf(stream, "device buffers: %s, %d device%s (%s)\n", dev->backend->name,
                dev->devices, dev->devices == 1 ? "" : "s", TALLY_DEVICE_PLUGIN);
    else
        fprintf(stream, "device buffers: none: %s\n", dev->why);
}

tally_memtype_t tally_mem_classify(const tally_device_t *dev, const void *ptr)
{
    if (!dev->backend || ptr == NULL)
        return TALLY_MEM_HOST;
    return dev->backend->classify(ptr);
}

const char *tally_memtype_name(tally_memtype_t type)
{
    return type == TALLY_MEM_CUDA ? "cuda" : "host";
}
