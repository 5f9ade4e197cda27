/* mem.c - opens a communicator's device backend (device.h) and classifies
 * buffers. */
#define _GNU_SOURCE /* dladdr */
#include "mem.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Opens backend into dev; on failure dev says why and has no backend. */
static void open_backend(tally_device_t *dev, const tally_device_backend_t *backend)
{
    void *ctx = NULL;
    int devices = 0;
    const char *err = backend->open(&ctx, &devices);
    if (err) {
        snprintf(dev->why, sizeof dev->why, "%s backend: %s", backend->name, err);
        return;
    }
    dev->backend = backend;
    dev->ctx = ctx;
    dev->devices = devices;
}

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
    open_backend(dev, backend);
    if (dev->backend)
        dev->plugin = plugin;
    else
        dlclose(plugin);
}

/* The CUDA plugin beside libtally.so, found from one of its own symbols,
 * else on the loader's search path. */
static void open_cuda(tally_device_t *dev)
{
#if !TALLY_HAVE_CUDA
    snprintf(dev->why, sizeof dev->why, "built without CUDA (configure found no toolkit)");
#else
    Dl_info self;
    if (dladdr((void *)tally_device_open, &self) && self.dli_fname) {
        char path[4096];
        const char *slash = strrchr(self.dli_fname, '/');
        const int dir = slash ? (int)(slash - self.dli_fname) : 1;
        snprintf(path, sizeof path, "%.*s/%s", dir, slash ? self.dli_fname : ".",
                 TALLY_DEVICE_PLUGIN);
        if (access(path, F_OK) == 0) { /* there: loaded, or its refusal is the answer */
            tally_device_open_path(dev, path);
            return;
        }
    }
    tally_device_open_path(dev, TALLY_DEVICE_PLUGIN);
#endif
}

void tally_device_open(tally_device_t *dev, tally_device_choice_t which)
{
    *dev = (tally_device_t){0};
    switch (which) {
    case TALLY_DEVICE_AUTO:
        open_cuda(dev);
        return;
    case TALLY_DEVICE_NONE:
        snprintf(dev->why, sizeof dev->why, "TALLY_DEVICE=none");
        return;
    case TALLY_DEVICE_EMULATED:
        open_backend(dev, &tally_device_backend_emulated);
        return;
    }
}

void tally_device_borrow(tally_device_t *dev, const tally_device_t *parent)
{
    *dev = *parent;
    dev->borrowed = true;
    dev->plugin = NULL;
    dev->stage = NULL;
}

void tally_device_close(tally_device_t *dev)
{
    tally_stage_free(dev);
    if (dev->backend && !dev->borrowed)
        dev->backend->close(dev->ctx);
    if (dev->plugin)
        dlclose(dev->plugin);
    dev->plugin = NULL;
    dev->backend = NULL;
    dev->ctx = NULL;
}

/* The NUMA node of a PCI device from sysfs, or -1. */
static int pci_numa_node(const char *pci)
{
    char path[128], id[32];
    size_t n = 0;
    for (; pci[n] && n < sizeof id - 1; n++)
        id[n] = (char)tolower((unsigned char)pci[n]);
    id[n] = '\0';
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/numa_node", id);
    FILE *f = fopen(path, "r");
    int node = -1;
    if (f) {
        if (fscanf(f, "%d", &node) != 1)
            node = -1;
        fclose(f);
    }
    return node;
}

void tally_device_write(const tally_device_t *dev, const char *prefix, FILE *stream)
{
    const tally_device_backend_t *b = dev->backend;
    if (!b) {
        fprintf(stream, "%sdevice buffers: none: %s\n", prefix, dev->why);
        return;
    }
    fprintf(stream, "%sdevice buffers: %s backend, %d device%s, this rank on device %d\n", prefix,
            b->name, dev->devices, dev->devices == 1 ? "" : "s", b->current(dev->ctx));
    for (int i = 0; i < dev->devices; i++) {
        char name[128] = "", pci[32] = "";
        const char *err = b->describe(dev->ctx, i, name, sizeof name, pci, sizeof pci);
        if (err) {
            fprintf(stream, "%s  device %d: %s\n", prefix, i, err);
            continue;
        }
        char numa[16] = "unknown";
        const int node = pci[0] ? pci_numa_node(pci) : -1;
        if (node >= 0)
            snprintf(numa, sizeof numa, "%d", node);
        fprintf(stream, "%s  device %d: %s, PCI %s, NUMA node %s\n", prefix, i, name,
                pci[0] ? pci : "none", numa);
    }
}

tally_memtype_t tally_mem_classify(const tally_device_t *dev, const void *ptr)
{
    if (!dev->backend || ptr == NULL)
        return TALLY_MEM_HOST;
    return dev->backend->classify(dev->ctx, ptr);
}

const char *tally_memtype_name(tally_memtype_t type)
{
    switch (type) {
    case TALLY_MEM_HOST: return "host";
    case TALLY_MEM_PINNED: return "pinned host";
    case TALLY_MEM_MANAGED: return "managed";
    case TALLY_MEM_DEVICE: return "device";
    }
    return "?";
}
