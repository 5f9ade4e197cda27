/* topo.h - what hwloc sees on this node, discovered once per process.
 *
 * The discovery honours HWLOC_XMLFILE and HWLOC_SYNTHETIC (hwloc reads
 * them itself), so tests can show it a fake machine. */
#ifndef TALLY_TOPO_H
#define TALLY_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TALLY_TOPO_MAX_DEVICES 32
#define TALLY_TOPO_NAME_MAX 32

typedef enum tally_topo_device_kind {
    TALLY_TOPO_GPU, /* CUDA or NVML OS device (cuda0, nvml0), or any GPU/coproc */
    TALLY_TOPO_NIC  /* network or OpenFabrics OS device (eth0, mlx5_0) */
} tally_topo_device_kind_t;

typedef struct tally_topo_device {
    tally_topo_device_kind_t kind;
    char name[TALLY_TOPO_NAME_MAX]; /* the OS device name */
    int package;                    /* logical index of the nearest package; -1 unknown */
    int numa;                       /* logical index of the nearest NUMA node; -1 unknown */
} tally_topo_device_t;

typedef struct tally_topo {
    bool valid;          /* false: discovery failed, see `error`; counts are 0 */
    char error[128];
    bool this_system;    /* false under an XML file or a synthetic description */
    int packages, numa_nodes, cores, pus;
    /* Data/unified caches by level (index 0 = L1): instances and the size of one. */
    int cache_count[3];
    size_t cache_bytes[3];
    int ndevices, ngpus, nnics;
    tally_topo_device_t devices[TALLY_TOPO_MAX_DEVICES];
    /* This process's binding (only when this_system): */
    bool binding_known;
    int bound_pus;       /* PUs in the binding */
    int bound_package;   /* the one package the binding lies in; -1: several or unknown */
    char binding[64];    /* the binding as a list, e.g. "0-3" (hwloc_bitmap_list_snprintf) */
} tally_topo_t;

/* Discovers now (no caching): for tests and for tally_topo_get. Never
 * fails as a whole: on trouble, out->valid is false and out->error says why. */
void tally_topo_discover(tally_topo_t *out);

/* The discovery of this process, done on first use (thread-safe, once). */
const tally_topo_t *tally_topo_get(void);

/* A compact summary, a few lines, for tally-info. */
void tally_topo_write(const tally_topo_t *topo, FILE *stream);

#endif
