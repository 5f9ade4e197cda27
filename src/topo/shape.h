/* shape.h - how a communicator's ranks lie on nodes and packages.
 *
 * Built once at tally_comm_create from one allgather, so it is the same on
 * every rank and selection may depend on it. */
#ifndef TALLY_SHAPE_H
#define TALLY_SHAPE_H

#include <stdbool.h>
#include <stdio.h>
#include "tally.h"

struct tally_topo;

typedef enum tally_placement {
    TALLY_PLACEMENT_ONE_NODE,    /* every rank on one node */
    TALLY_PLACEMENT_CONSECUTIVE, /* each node holds one block of consecutive ranks */
    TALLY_PLACEMENT_ROUND_ROBIN, /* rank r on node r mod nodes */
    TALLY_PLACEMENT_SCATTERED    /* anything else */
} tally_placement_t;

/* What each rank contributes to the allgather. */
typedef struct tally_shape_entry {
    int leader;    /* communicator rank of the first rank on its node */
    int package;   /* the package its binding lies in; -1 unknown or several */
    int node_pus;  /* PUs hwloc sees on its node; 0 unknown */
    int cache_kib; /* its private cache (L2, else L1) in KiB; 0 unknown */
} tally_shape_entry_t;

typedef struct tally_shape {
    int size;                  /* ranks */
    int nodes;
    int min_per_node, max_per_node;
    tally_placement_t placement;
    int max_per_package;       /* most ranks bound to one package; 0: bindings unknown */
    int min_node_pus;          /* fewest PUs of any node; 0 unknown */
    size_t min_cache_bytes;    /* smallest private cache of any rank; 0 unknown */
    double oversubscription;   /* max over nodes of ranks / PUs, at least 1 */
    int *node_of;              /* [size]: node index, numbered by first rank */
    int *package_of;           /* [size]: package on its node, -1 unknown */
    int *ring_order;           /* [size]: the ring's order: node by node (nodes by
                                  first rank), rank order within a node */
    int *ring_position;        /* [size]: a rank's index in ring_order */
    /* Recursive doubling and Rabenseifner (see tally_shape_derive): */
    int *fold_peer;            /* [size]: the other rank of its folded pair, or -1 */
    int *newrank_of;           /* [size]: its place among the participants; -1
                                  for the rank of a pair that sits out */
    int *participants;         /* [2^floor(log2 size)]: the rank at each place */
    int node;                  /* this rank's node, its index and count there */
    int local_rank, local_size;
    bool nccl;                 /* every rank has a GPU of its own and NCCL (set by the
                                  communicator once its device backend is open) */
} tally_shape_t;

/* Derives the shape from every rank's entry (pure: unit-testable).
 * The orders: the ring runs node by node, so that it crosses each node's
 * link once each way whatever the placement.  A communicator of p ranks
 * that is not a power of two folds p - 2^floor(log2 p) pairs before
 * recursive doubling or Rabenseifner: pairs of ranks that share a node
 * first, as many as the nodes allow and in rank order, then pairs of the
 * next unpaired ranks; the lower rank of a pair sends and sits out.  The
 * other ranks, taken node by node, get bit-reversed places, so that ranks
 * next to each other in that order (most often on one node) are partners
 * in the first, largest, steps of Rabenseifner's halving.  Returns
 * TALLY_ERR_NO_MEMORY or TALLY_ERR_INVALID_ARGUMENT (inconsistent entries);
 * *out is set only on success.  Free with tally_shape_free. */
tally_status_t tally_shape_derive(int size, int rank, const tally_shape_entry_t *entries,
                                  tally_shape_t *out);

/* Collective over comm: splits by shared memory, allgathers the entries,
 * derives.  Every rank gets the same shape (or the same error is not
 * guaranteed: the caller agrees on the status). */
tally_status_t tally_shape_create(MPI_Comm comm, const struct tally_topo *topo,
                                  tally_shape_t *out);

void tally_shape_free(tally_shape_t *shape);

const char *tally_placement_name(tally_placement_t placement);

/* Whether ranks a and b share a node / a package. */
bool tally_shape_same_node(const tally_shape_t *shape, int a, int b);
bool tally_shape_same_package(const tally_shape_t *shape, int a, int b);

/* One line per fact, for tally-info. */
void tally_shape_write(const tally_shape_t *shape, FILE *stream);

#endif
