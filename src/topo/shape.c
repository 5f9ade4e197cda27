/* shape.c - nodes, ranks per node, placement and packages of a
 * communicator, from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) and one
 * allgather of what each rank knows about itself. */
#include "shape.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/log.h"
#include "topo.h"

const char *tally_placement_name(tally_placement_t placement)
{
    switch (placement) {
    case TALLY_PLACEMENT_ONE_NODE: return "one node";
    case TALLY_PLACEMENT_CONSECUTIVE: return "consecutive (by node)";
    case TALLY_PLACEMENT_ROUND_ROBIN: return "round-robin";
    case TALLY_PLACEMENT_SCATTERED: return "scattered";
    }
    return "?";
}

static tally_placement_t classify_placement(const int *node_of, int size, int nodes)
{
    if (nodes == 1)
        return TALLY_PLACEMENT_ONE_NODE;
    bool round_robin = true, consecutive = true;
    for (int r = 0; r < size; r++) {
        if (node_of[r] != r % nodes)
            round_robin = false;
        /* Nodes are numbered by first rank, so blocks mean a step of 0 or 1. */
        if (r > 0 && node_of[r] != node_of[r - 1] && node_of[r] != node_of[r - 1] + 1)
            consecutive = false;
    }
    if (consecutive)
        return TALLY_PLACEMENT_CONSECUTIVE;
    return round_robin ? TALLY_PLACEMENT_ROUND_ROBIN : TALLY_PLACEMENT_SCATTERED;
}

static int compare_pairs(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The largest power of two <= size, and its log2. */
static int pof2_below(int size, int *bits)
{
    int pof2 = 1;
    *bits = 0;
    while (pof2 <= size / 2) {
        pof2 *= 2;
        ++*bits;
    }
    return pof2;
}

/* Pairs r with the rank *waiting (1), or leaves r waiting (0). */
static int pair_or_wait(int *peer, int *waiting, int r)
{
    if (*waiting < 0) {
        *waiting = r;
        return 0;
    }
    peer[*waiting] = r;
    peer[r] = *waiting;
    *waiting = -1;
    return 1;
}

/* ring_order, ring_position, fold_peer, newrank_of and participants in one
 * allocation (see shape.h).  A ring node by node crosses each node's link
 * once each way.  Pairs on one node where the nodes have them keep the
 * fold and the unfold, which move the whole vector, off the network.  The
 * participants, node by node, take the bit-reversed places: ranks next to
 * each other in that order, most often on one node, become partners in
 * the first steps, which for Rabenseifner are the largest. */
static int *orders_of(const int *node_of, int size, int nodes)
{
    int bits;
    const int pof2 = pof2_below(size, &bits), pairs = size - pof2;
    int *ring = malloc(5 * (size_t)size * sizeof *ring);
    /* per node: where its ring starts, then a rank waiting for a pair */
    int *node = malloc((size_t)nodes * sizeof *node);
    if (!ring || !node) {
        free(ring);
        free(node);
        return NULL;
    }
    int *ring_position = ring + size, *peer = ring + 2 * size, *newrank = ring + 3 * size;
    int *participants = ring + 4 * size;
    /* The ring: a counting sort by node (numbered by first rank). */
    for (int n = 0; n < nodes; n++)
        node[n] = 0;
    for (int r = 0; r < size; r++)
        node[node_of[r]]++;
    for (int n = 0, start = 0; n < nodes; n++) {
        int count = node[n];
        node[n] = start;
        start += count;
    }
    for (int r = 0; r < size; r++) {
        ring_position[r] = node[node_of[r]]++;
        ring[ring_position[r]] = r;
    }
    /* The folded pairs: on one node first, in rank order; the lower rank
     * sends and sits out (newrank -1). */
    for (int r = 0; r < size; r++)
        peer[r] = -1;
    for (int n = 0; n < nodes; n++)
        node[n] = -1;
    int folded = 0;
    for (int r = 0; r < size && folded < pairs; r++)
        folded += pair_or_wait(peer, &node[node_of[r]], r);
    /* Where too few pairs share a node, the next unpaired ranks pair. */
    for (int r = 0, waiting = -1; r < size && folded < pairs; r++)
        if (peer[r] < 0)
            folded += pair_or_wait(peer, &waiting, r);
    for (int i = 0, k = 0; i < size; i++) {
        int r = ring[i];
        if (peer[r] > r) { /* the lower rank of a pair */
            newrank[r] = -1;
            continue;
        }
        int place = 0; /* k bit-reversed over `bits` bits */
        for (int b = 0; b < bits; b++)
            place |= ((k >> b) & 1) << (bits - 1 - b);
        newrank[r] = place;
        participants[place] = r;
        k++;
    }
    free(node);
    return ring;
}

tally_status_t tally_shape_derive(int size, int rank, const tally_shape_entry_t *entries,
                                  tally_shape_t *out)
{
    if (size < 1 || rank < 0 || rank >= size || !entries)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_status_t st = TALLY_ERR_NO_MEMORY;
    int *node_of = malloc((size_t)size * sizeof *node_of);
    int *package_of = malloc((size_t)size * sizeof *package_of);
    int *leader_node = malloc((size_t)size * sizeof *leader_node);  /* by leader rank */
    int *per_node = calloc((size_t)size, sizeof *per_node);
    int *node_pus = calloc((size_t)size, sizeof *node_pus);
    if (!node_of || !package_of || !leader_node || !per_node || !node_pus)
        goto done;
    st = TALLY_ERR_INVALID_ARGUMENT;
    for (int r = 0; r < size; r++)
        leader_node[r] = -1;
    int nodes = 0;
    size_t min_cache = 0;
    for (int r = 0; r < size; r++) {
        int leader = entries[r].leader;
        /* A leader is the first rank of its node and leads itself. */
        if (leader < 0 || leader > r || entries[leader].leader != leader)
            goto done;
        if (leader_node[leader] < 0)
            leader_node[leader] = nodes++;
        node_of[r] = leader_node[leader];
        package_of[r] = entries[r].package;
        size_t cache = (size_t)(entries[r].cache_kib > 0 ? entries[r].cache_kib : 0) << 10;
        if (cache > 0 && (min_cache == 0 || cache < min_cache))
            min_cache = cache;
        per_node[node_of[r]]++;
        int pus = entries[r].node_pus;
        if (pus > 0 && (node_pus[node_of[r]] == 0 || pus < node_pus[node_of[r]]))
            node_pus[node_of[r]] = pus;
    }

    tally_shape_t shape = {
        .size = size,
        .nodes = nodes,
        .min_per_node = INT_MAX,
        .placement = classify_placement(node_of, size, nodes),
        .oversubscription = 1.0,
        .min_cache_bytes = min_cache,
        .node = node_of[rank],
        .local_size = per_node[node_of[rank]],
    };
    for (int n = 0; n < nodes; n++) {
        if (per_node[n] < shape.min_per_node)
            shape.min_per_node = per_node[n];
        if (per_node[n] > shape.max_per_node)
            shape.max_per_node = per_node[n];
        if (node_pus[n] > 0 && (shape.min_node_pus == 0 || node_pus[n] < shape.min_node_pus))
            shape.min_node_pus = node_pus[n];
        if (node_pus[n] > 0 && (double)per_node[n] / node_pus[n] > shape.oversubscription)
            shape.oversubscription = (double)per_node[n] / node_pus[n];
    }
    for (int r = 0; r < rank; r++)
        if (node_of[r] == node_of[rank])
            shape.local_rank++;
    /* Ranks per package: counted per (node, package) when every rank knows
     * its package; one unbound rank makes the count unknown. */
    bool bindings_known = true;
    for (int r = 0; r < size; r++)
        if (package_of[r] < 0)
            bindings_known = false;
    if (bindings_known) {
        /* Sorted (node, package) pairs: the longest run of equal pairs.
         * Linear-logarithmic, for tally_model_explain's large clusters. */
        st = TALLY_ERR_NO_MEMORY;
        uint64_t *pairs = malloc((size_t)size * sizeof *pairs);
        if (!pairs)
            goto done;
        for (int r = 0; r < size; r++)
            pairs[r] = (uint64_t)node_of[r] << 32 | (uint32_t)package_of[r];
        qsort(pairs, (size_t)size, sizeof *pairs, compare_pairs);
        for (int r = 0, run = 0; r < size; r++) {
            run = r > 0 && pairs[r] == pairs[r - 1] ? run + 1 : 1;
            if (run > shape.max_per_package)
                shape.max_per_package = run;
        }
        free(pairs);
    }
    st = TALLY_ERR_NO_MEMORY;
    int *orders = orders_of(node_of, size, nodes);
    if (!orders)
        goto done;
    shape.node_of = node_of;
    shape.package_of = package_of;
    shape.ring_order = orders;
    shape.ring_position = orders + size;
    shape.fold_peer = orders + 2 * size;
    shape.newrank_of = orders + 3 * size;
    shape.participants = orders + 4 * size;
    node_of = package_of = NULL;
    *out = shape;
    st = TALLY_SUCCESS;
done:
    free(node_pus);
    free(per_node);
    free(leader_node);
    free(package_of);
    free(node_of);
    return st;
}

tally_status_t tally_shape_create(MPI_Comm comm, const tally_topo_t *topo, tally_shape_t *out)
{
    int rank, size;
    TALLY_MPI_CHECK(NULL, PMPI_Comm_rank(comm, &rank));
    TALLY_MPI_CHECK(NULL, PMPI_Comm_size(comm, &size));
    MPI_Comm node = MPI_COMM_NULL;
    TALLY_MPI_CHECK(NULL, PMPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank,
                                               MPI_INFO_NULL, &node));
    tally_status_t st = TALLY_SUCCESS;
    tally_shape_entry_t mine = {
        .leader = rank,
        .package = topo->valid && topo->binding_known ? topo->bound_package : -1,
        .node_pus = topo->valid && topo->this_system ? topo->pus : 0,
        .cache_kib = !topo->valid ? 0
                     : topo->cache_bytes[1] ? (int)(topo->cache_bytes[1] >> 10)
                                            : (int)(topo->cache_bytes[0] >> 10),
    };
    /* The node's first rank (split by key = rank keeps the order). */
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Bcast(&mine.leader, 1, MPI_INT, 0, node), st, free_node);
    tally_shape_entry_t *entries = malloc((size_t)size * sizeof *entries);
    if (!entries) {
        st = TALLY_ERR_NO_MEMORY;
        goto free_node;
    }
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Allgather(&mine, 4, MPI_INT, entries, 4, MPI_INT, comm), st,
                         free_entries);
    st = tally_shape_derive(size, rank, entries, out);
free_entries:
    free(entries);
free_node:
    PMPI_Comm_free(&node);
    return st;
}

void tally_shape_free(tally_shape_t *shape)
{
    free(shape->node_of);
    free(shape->package_of);
    free(shape->ring_order); /* and the other orders, in the same block */
    shape->node_of = shape->package_of = NULL;
    shape->ring_order = shape->ring_position = NULL;
    shape->fold_peer = shape->newrank_of = shape->participants = NULL;
}

bool tally_shape_same_node(const tally_shape_t *shape, int a, int b)
{
    return shape->node_of[a] == shape->node_of[b];
}

bool tally_shape_same_package(const tally_shape_t *shape, int a, int b)
{
    return tally_shape_same_node(shape, a, b) && shape->package_of[a] >= 0 &&
           shape->package_of[a] == shape->package_of[b];
}

/* "ranks per node: 2, 1, 2" in node order (by first rank), a run of equal
 * nodes as "8 (x127)". */
static void write_per_node(const tally_shape_t *shape, FILE *stream)
{
    int *per_node = calloc((size_t)shape->nodes, sizeof *per_node);
    if (!per_node)
        return;
    for (int r = 0; r < shape->size; r++)
        per_node[shape->node_of[r]]++;
    fprintf(stream, "ranks per node:");
    for (int n = 0; n < shape->nodes;) {
        int run = 1;
        while (n + run < shape->nodes && per_node[n + run] == per_node[n])
            run++;
        fprintf(stream, "%s %d", n == 0 ? "" : ",", per_node[n]);
        if (run > 2)
            fprintf(stream, " (x%d)", run);
        else if (run == 2)
            fprintf(stream, ", %d", per_node[n]);
        n += run;
    }
    fputc('\n', stream);
    free(per_node);
}

/* "... fold 2 pairs first, 2 within a node: 0+3 1+4", the first few. */
static void write_fold_pairs(const tally_shape_t *shape, FILE *stream)
{
    int pairs = 0, within = 0;
    for (int r = 0; r < shape->size; r++)
        if (shape->newrank_of[r] < 0) {
            pairs++;
            within += tally_shape_same_node(shape, r, shape->fold_peer[r]);
        }
    if (pairs == 0)
        return;
    fprintf(stream, "recursive doubling and Rabenseifner fold %d pair%s first, %d within a node:",
            pairs, pairs == 1 ? "" : "s", within);
    for (int r = 0, shown = 0; r < shape->size && shown < 4; r++)
        if (shape->newrank_of[r] < 0) {
            fprintf(stream, " %d+%d", r, shape->fold_peer[r]);
            shown++;
        }
    fprintf(stream, "%s\n", pairs > 4 ? " ..." : "");
}

void tally_shape_write(const tally_shape_t *shape, FILE *stream)
{
    fprintf(stream, "communicator: %d rank%s on %d node%s, %d", shape->size,
            shape->size == 1 ? "" : "s", shape->nodes, shape->nodes == 1 ? "" : "s",
            shape->min_per_node);
    if (shape->max_per_node != shape->min_per_node)
        fprintf(stream, "-%d ranks per node (uneven)", shape->max_per_node);
    else
        fprintf(stream, " rank%s per node", shape->min_per_node == 1 ? "" : "s");
    fprintf(stream, ", placement %s\n", tally_placement_name(shape->placement));
    if (shape->max_per_node != shape->min_per_node)
        write_per_node(shape, stream);
    if (shape->max_per_package > 0)
        fprintf(stream, "packages: at most %d rank%s bound to one package\n",
                shape->max_per_package, shape->max_per_package == 1 ? "" : "s");
    else
        fprintf(stream, "packages: unknown (some ranks are not bound to one package)\n");
    if (shape->min_node_pus > 0)
        fprintf(stream, "cpus: %d PUs on the smallest node; %.2f ranks per PU at most%s\n",
                shape->min_node_pus, shape->oversubscription,
                shape->oversubscription > 1.0 ? " (oversubscribed)" : "");
    write_fold_pairs(shape, stream);
}
