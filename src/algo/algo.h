/* algo.h - the algorithm descriptor, its restrictions as data, the registry
 * and the block arithmetic the algorithms share. */
#ifndef TALLY_ALGO_H
#define TALLY_ALGO_H

#include <stdbool.h>
#include <stddef.h>
#include "../core/call.h"
#include "../core/dtype.h"
#include "../mem/mem.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "../transport/blocks.h"
#include "tally.h"

/* Algorithms take the call object (core/call.h): buffers, dtype, op,
 * kernels, tag and scratch of one call. */
/* Restriction flags beyond the dtype and op masks. */
enum {
    TALLY_ALGO_HOST_ONLY = 1u << 0,      /* both buffers must be host memory */
    TALLY_ALGO_NO_FLOAT_MINMAX = 1u << 1, /* MIN/MAX only on integer dtypes */
    TALLY_ALGO_ONE_NODE = 1u << 2,        /* every rank on one node */
    TALLY_ALGO_NODE_PEERS = 1u << 3,      /* several nodes, one with two ranks or more */
    TALLY_ALGO_DEVICE_ONLY = 1u << 4,     /* both buffers must be device memory */
    TALLY_ALGO_NCCL = 1u << 5             /* every rank has a GPU of its own and NCCL */
};

#define TALLY_DTYPE_BIT(d) (1u << (unsigned)(d))
#define TALLY_OP_BIT(o) (1u << (unsigned)(o))
#define TALLY_ALL_DTYPES ((1u << TALLY_DTYPE_COUNT) - 1u)
#define TALLY_ALL_OPS ((1u << TALLY_OP_COUNT) - 1u)

typedef struct tally_algo_restrictions {
    unsigned dtypes; /* TALLY_DTYPE_BIT of each supported dtype */
    unsigned ops;    /* TALLY_OP_BIT of each supported op */
    unsigned flags;  /* TALLY_ALGO_* */
    const char *why; /* one line: why the masks exclude what they exclude */
} tally_algo_restrictions_t;

typedef struct tally_algo {
    const char *name;
    const char *summary; /* one line for tally-info and messages */
    tally_algo_restrictions_t restrictions;
    tally_status_t (*run)(tally_call_t *call);
    /* Predicted seconds for one call (model.h); the header comment's cost. */
    double (*predict)(const tally_cost_t *cost);
    /* Runs a fused call on its tensors where they lie (call->spans), so
     * tally_allreduce_multi need not pack them. */
    bool spans;
} tally_algo_t;

/* The mpi algorithm's call as one PMPI_Allreduce: its datatype and op,
 * when the call is exactly that (count <= INT_MAX, no AVG to finish). */
bool tally_algo_mpi_direct(const tally_call_t *call, MPI_Datatype *type, MPI_Op *op);

/* A compressed call (call->codec set): the algorithm that runs it (the
 * compressed step across nodes where every node has one rank, hier
 * elsewhere), or NULL where nothing is compressed and the call's own
 * choice runs exactly; *reason says which (compressed.c). */
const tally_algo_t *tally_compressed_plan(const tally_call_t *call, const char **reason);

/* The registry: every algorithm, in a fixed order, NULL-terminated. */
extern const tally_algo_t *const tally_algo_registry[];
const tally_algo_t *tally_algo_find(const char *name);

/* Whether algo can serve this call; if not and why != NULL, *why names the
 * restriction that failed. */
bool tally_algo_fits(const tally_algo_t *algo, tally_dtype_t dtype,
                     tally_op_t op, tally_memtype_t memtype, const char **why);

/* Whether algo can run on a communicator of this shape at all (the
 * ONE_NODE and NODE_PEERS flags); fixed per communicator, so rules whose
 * algorithm does not fit are dropped when the plan is built. */
bool tally_algo_fits_shape(const tally_algo_t *algo, const tally_shape_t *shape,
                           const char **why);

#endif
