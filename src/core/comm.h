/* comm.h - the communicator object behind the opaque tally_comm_t. */
#ifndef TALLY_COMM_H
#define TALLY_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include "../algo/algo.h"
#include "../select/select.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "config.h"
#include "tally.h"

struct tally_comm {
    MPI_Comm mpi;   /* a private duplicate: tally's messages never match the user's */
    int rank;
    int size;
    tally_config_t config;
    const tally_algo_t *forced; /* TALLY_ALGO or tally_comm_set_algorithm; NULL: auto */
    tally_shape_t shape;        /* nodes, ranks per node, placement */
    tally_model_t model;        /* the cost model for this machine */
    tally_plan_t plan;          /* the rule table for this shape, and its cache */
    bool cuda_available;
    unsigned fallback_warned;   /* a bit per registry index, to warn once */
    void *scratch;              /* pooled temporary space, grown on demand */
    size_t scratch_bytes;
    /* shm, hier, hier_leader: the node's shared window and, per kind of
     * sharding, the groups across nodes; made at their first call. */
    struct tally_shm *shm;
    struct tally_node_shards *shards[2];
    bool shm_unavailable;       /* they could not be made: the ring runs instead */
};

/* A communicator over `mpi` (which it duplicates) for one of parent's
 * groups across nodes: parent's configuration without a forced algorithm,
 * its cost model's measured figures, and no second report of tuning-file
 * problems.  Collective over `mpi`. */
tally_status_t tally_comm_create_nested(MPI_Comm mpi, const struct tally_comm *parent,
                                        struct tally_comm **out);

/* The checks on comm, count, dtype and op that every entry point taking
 * them makes; `fn` names the entry point in the message. */
tally_status_t tally_check_arguments(const char *fn, const struct tally_comm *comm,
                                     size_t count, tally_dtype_t dtype, tally_op_t op);

/* Returns at least `bytes` of scratch space owned by comm (valid until the
 * next call), or NULL when the allocation fails. */
void *tally_comm_scratch(struct tally_comm *comm, size_t bytes);

#endif
