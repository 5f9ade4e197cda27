/* topo.c - hwloc discovery of this node: packages, NUMA nodes, cores, PUs,
 * caches, GPUs and NICs with their package and NUMA locality, and this
 * process's binding.  Discovery never aborts: a failure leaves valid false
 * and says why in `error`.
 *
 * Counts are what hwloc shows this process: by default hwloc leaves out
 * PUs and NUMA nodes outside its cgroup/cpuset.  A device is one PCI
 * function, however many OS devices hwloc hangs under it (a GPU may show
 * as nvml0, cuda0 and opencl0d0; an HCA as mlx5_0 and ib0); it is named
 * after its most specific OS device (see gpu_rank, nic_rank). */
#include "topo.h"

#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Lower is preferred when one PCI function has several GPU OS devices. */
static int gpu_rank(hwloc_obj_t osdev)
{
    static const char *const subtypes[] = {"CUDA", "NVML", "RSMI", "LevelZero", "OpenCL"};
    const char *sub = osdev->subtype;
    for (size_t i = 0; sub && i < sizeof subtypes / sizeof subtypes[0]; i++)
        if (strcmp(sub, subtypes[i]) == 0)
            return (int)i;
    /* Other coprocessors, then plain GPU devices (DRM card/renderD, GL displays). */
    return osdev->attr->osdev.type == HWLOC_OBJ_OSDEV_COPROC ? 5 : 6;
}

static int nic_rank(hwloc_obj_t osdev)
{
    return osdev->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS ? 0 : 1;
}

/* -1: not a GPU or NIC OS device. */
static int device_kind(hwloc_obj_t osdev)
{
    switch (osdev->attr->osdev.type) {
    case HWLOC_OBJ_OSDEV_GPU:
    case HWLOC_OBJ_OSDEV_COPROC:
        return TALLY_TOPO_GPU;
    case HWLOC_OBJ_OSDEV_NETWORK:
    case HWLOC_OBJ_OSDEV_OPENFABRICS:
        return TALLY_TOPO_NIC;
    default:
        return -1;
    }
}

static int kind_rank(hwloc_obj_t osdev, int kind)
{
    return kind == TALLY_TOPO_GPU ? gpu_rank(osdev) : nic_rank(osdev);
}

/* Whether osdev stands for its device: the best-ranked OS device of its kind
 * under the same PCI function (the first of equals).  OS devices hung under
 * another OS device (subdevices) are parts of it, not devices.  Under a
 * non-PCI parent each OS device counts on its own. */
static bool represents_device(hwloc_obj_t osdev, int kind)
{
    hwloc_obj_t parent = osdev->parent;
    if (parent && parent->type == HWLOC_OBJ_OS_DEVICE)
        return false;
    if (!parent || parent->type != HWLOC_OBJ_PCI_DEVICE)
        return true;
    int mine = kind_rank(osdev, kind);
    for (hwloc_obj_t sib = parent->io_first_child; sib; sib = sib->next_sibling) {
        if (sib == osdev || sib->type != HWLOC_OBJ_OS_DEVICE || device_kind(sib) != kind)
            continue;
        int theirs = kind_rank(sib, kind);
        if (theirs < mine || (theirs == mine && sib->logical_index < osdev->logical_index))
            return false;
    }
    return true;
}

/* The one package whose cpuset contains `set`; -1 if several, none, or empty. */
static int package_of(hwloc_topology_t topo, hwloc_const_cpuset_t set)
{
    if (!set || hwloc_bitmap_iszero(set))
        return -1;
    hwloc_obj_t pkg = NULL;
    while ((pkg = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pkg)))
        if (pkg->cpuset && hwloc_bitmap_isincluded(set, pkg->cpuset))
            return (int)pkg->logical_index;
    return -1;
}

/* The one NUMA node near `obj` (its nodeset has a single node), else -1. */
static int numa_of(hwloc_topology_t topo, hwloc_obj_t obj)
{
    if (!obj->nodeset || hwloc_bitmap_weight(obj->nodeset) != 1)
        return -1;
    hwloc_obj_t node =
        hwloc_get_numanode_obj_by_os_index(topo, (unsigned)hwloc_bitmap_first(obj->nodeset));
    return node ? (int)node->logical_index : -1;
}

static int count_type(hwloc_topology_t topo, hwloc_obj_type_t type)
{
    int n = hwloc_get_nbobjs_by_type(topo, type);
    return n > 0 ? n : 0;
}

/* Devices past TALLY_TOPO_MAX_DEVICES are counted in ngpus/nnics but not
 * listed, so ngpus + nnics may exceed ndevices. */
static void find_devices(hwloc_topology_t topo, tally_topo_t *out)
{
    hwloc_obj_t osdev = NULL;
    while ((osdev = hwloc_get_next_osdev(topo, osdev))) {
        int kind = device_kind(osdev);
        if (kind < 0 || !represents_device(osdev, kind))
            continue;
        if (kind == TALLY_TOPO_GPU)
            out->ngpus++;
        else
            out->nnics++;
        if (out->ndevices == TALLY_TOPO_MAX_DEVICES)
            continue;
        tally_topo_device_t *dev = &out->devices[out->ndevices++];
        dev->kind = (tally_topo_device_kind_t)kind;
        snprintf(dev->name, sizeof dev->name, "%s", osdev->name ? osdev->name : "?");
        /* The CPU-side object the device hangs from: a package, a NUMA-bearing
         * group, or the whole machine when hwloc knows no better locality. */
        hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(topo, osdev);
        dev->package = anchor ? package_of(topo, anchor->cpuset) : -1;
        dev->numa = anchor ? numa_of(topo, anchor) : -1;
    }
}

static void find_binding(hwloc_topology_t topo, tally_topo_t *out)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return;
    if (hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0) {
        int weight = hwloc_bitmap_weight(set);
        if (weight > 0) { /* -1 would be an infinite set, 0 nonsense */
            out->binding_known = true;
            out->bound_pus = weight;
            out->bound_package = package_of(topo, set);
            int need = hwloc_bitmap_list_snprintf(out->binding, sizeof out->binding, set);
            if (need >= (int)sizeof out->binding) /* cut short: say so */
                memcpy(out->binding + sizeof out->binding - 4, "...", 4);
        }
    }
    hwloc_bitmap_free(set);
}

void tally_topo_discover(tally_topo_t *out)
{
    memset(out, 0, sizeof *out);
    out->bound_package = -1;

    /* Built against one hwloc ABI, running with another: refuse. */
    if ((hwloc_get_api_version() >> 16) != (HWLOC_API_VERSION >> 16)) {
        snprintf(out->error, sizeof out->error,
                 "hwloc library %#x does not match the headers tally was built with (%#x)",
                 hwloc_get_api_version(), (unsigned)HWLOC_API_VERSION);
        return;
    }
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        snprintf(out->error, sizeof out->error, "hwloc_topology_init failed: %s",
                 strerror(errno));
        return;
    }
    /* GPUs and NICs are I/O objects, which hwloc drops unless asked. */
    if (hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0) {
        snprintf(out->error, sizeof out->error, "hwloc_topology_set_io_types_filter failed: %s",
                 strerror(errno));
        goto destroy;
    }
    if (hwloc_topology_load(topo) != 0) {
        snprintf(out->error, sizeof out->error, "hwloc_topology_load failed: %s",
                 strerror(errno));
        goto destroy;
    }

    out->valid = true;
    out->this_system = hwloc_topology_is_thissystem(topo);
    out->packages = count_type(topo, HWLOC_OBJ_PACKAGE);
    out->numa_nodes = count_type(topo, HWLOC_OBJ_NUMANODE);
    out->cores = count_type(topo, HWLOC_OBJ_CORE);
    out->pus = count_type(topo, HWLOC_OBJ_PU);
    /* hwloc's L1..L3 types are data or unified caches (L1i etc. are other
     * types).  The size is the first instance's: on hybrid CPUs they differ. */
    static const hwloc_obj_type_t cache_types[3] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE,
                                                    HWLOC_OBJ_L3CACHE};
    for (int i = 0; i < 3; i++) {
        out->cache_count[i] = count_type(topo, cache_types[i]);
        hwloc_obj_t first = hwloc_get_obj_by_type(topo, cache_types[i], 0);
        out->cache_bytes[i] = first && first->attr ? (size_t)first->attr->cache.size : 0;
    }
    find_devices(topo, out);
    /* A fake machine's binding would mean nothing (hwloc returns success
     * with no answer); failing to read it is no failure of discovery. */
    if (out->this_system)
        find_binding(topo, out);

destroy:
    hwloc_topology_destroy(topo);
}

/* The only process-wide state in topo/: the node does not change under a
 * running process, so it is discovered once, on first use. */
static tally_topo_t process_topo;
static pthread_once_t process_topo_once = PTHREAD_ONCE_INIT;

static void discover_process_topo(void)
{
    tally_topo_discover(&process_topo);
}

const tally_topo_t *tally_topo_get(void)
{
    pthread_once(&process_topo_once, discover_process_topo);
    return &process_topo;
}

/* --- summary ----------------------------------------------------------- */

static void write_count(FILE *stream, int n, const char *one, const char *many)
{
    fprintf(stream, "%d %s", n, n == 1 ? one : many);
}

static void write_bytes(FILE *stream, size_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
    int u = 0;
    double value = (double)bytes;
    bool exact = true;
    while (u < 3 && value >= 1024) {
        exact = exact && bytes % ((size_t)1 << (10 * (u + 1))) == 0;
        value /= 1024;
        u++;
    }
    if (exact)
        fprintf(stream, "%.0f %s", value, units[u]);
    else
        fprintf(stream, "%.1f %s", value, units[u]);
}

static void write_devices(const tally_topo_t *topo, FILE *stream,
                          tally_topo_device_kind_t kind, const char *label, int total)
{
    fprintf(stream, "%s:", label);
    int listed = 0;
    for (int i = 0; i < topo->ndevices; i++) {
        const tally_topo_device_t *dev = &topo->devices[i];
        if (dev->kind != kind)
            continue;
        fprintf(stream, "%s %s", listed ? "," : "", dev->name);
        if (dev->package >= 0)
            fprintf(stream, " (package %d)", dev->package);
        else
            fprintf(stream, " (no single package)");
        listed++;
    }
    if (total == 0)
        fprintf(stream, " none");
    else if (total > listed)
        fprintf(stream, "%s %d more not listed", listed ? "," : "", total - listed);
    fputc('\n', stream);
}

/* Where hwloc's picture came from.  hwloc reads these variables itself;
 * they are looked at here only to label the summary. */
static void write_source(const tally_topo_t *topo, FILE *stream)
{
    const char *xml = getenv("HWLOC_XMLFILE");
    const char *synthetic = getenv("HWLOC_SYNTHETIC");
    if (topo->this_system) {
        /* hwloc falls back to this machine when it cannot use them. */
        if (synthetic && *synthetic)
            fprintf(stream, " (this system, though HWLOC_SYNTHETIC=%s is set)", synthetic);
        else if (xml && *xml)
            fprintf(stream, " (this system, though HWLOC_XMLFILE=%s is set)", xml);
        else
            fprintf(stream, " (this system)");
    } else if (synthetic && *synthetic) { /* hwloc prefers it over an XML file */
        fprintf(stream, " (synthetic: %s)", synthetic);
    } else if (xml && *xml) {
        fprintf(stream, " (from HWLOC_XMLFILE=%s)", xml);
    } else {
        fprintf(stream, " (not this system)");
    }
}

void tally_topo_write(const tally_topo_t *topo, FILE *stream)
{
    if (!topo->valid) {
        fprintf(stream, "topology: unknown (%s)\n", topo->error);
        return;
    }
    fprintf(stream, "topology: ");
    write_count(stream, topo->packages, "package", "packages");
    fprintf(stream, ", ");
    write_count(stream, topo->numa_nodes, "NUMA node", "NUMA nodes");
    fprintf(stream, ", ");
    write_count(stream, topo->cores, "core", "cores");
    fprintf(stream, ", ");
    write_count(stream, topo->pus, "PU", "PUs");
    write_source(topo, stream);
    fputc('\n', stream);

    /* "L1d" as lstopo says: hwloc's L1 type also covers a unified L1, which
     * the struct does not tell apart and no current server CPU has. */
    static const char *const cache_names[3] = {"L1d", "L2", "L3"};
    fprintf(stream, "caches:");
    int shown = 0;
    for (int i = 0; i < 3; i++) {
        if (topo->cache_count[i] == 0)
            continue;
        fprintf(stream, "%s %s ", shown ? "," : "", cache_names[i]);
        write_bytes(stream, topo->cache_bytes[i]);
        fprintf(stream, " x%d", topo->cache_count[i]);
        shown++;
    }
    fprintf(stream, "%s\n", shown ? "" : " none");

    write_devices(topo, stream, TALLY_TOPO_GPU, "gpus", topo->ngpus);
    write_devices(topo, stream, TALLY_TOPO_NIC, "nics", topo->nnics);

    if (!topo->binding_known) {
        fprintf(stream, "binding: unknown (%s)\n",
                topo->this_system ? "hwloc could not read it" : "not this system");
        return;
    }
    fprintf(stream, "binding: PUs %s (", topo->binding);
    write_count(stream, topo->bound_pus, "PU", "PUs");
    if (topo->bound_package >= 0)
        fprintf(stream, ", package %d)\n", topo->bound_package);
    else
        fprintf(stream, ", no single package)\n");
}
