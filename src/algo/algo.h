/* algo.h - the algorithm descriptor, its restrictions as data, the registry
 * and the block arithmetic the algorithms share. */
#ifndef TALLY_ALGO_H
#define TALLY_ALGO_H

#include <stdbool.h>
#include <stddef.h>
#include "../core/dtype.h"
#include "../mem/mem.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "tally.h"

struct tally_comm;

/* One call, with TALLY_IN_PLACE already resolved: in place means
 * sendbuf == recvbuf, which every algorithm must handle. */
typedef struct tally_algo_args {
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    size_t elem_size;
    tally_dtype_t dtype;
    tally_op_t op; /* AVG: reduce as SUM, then tally_algo_finish() divides */
    size_t segment_size; /* bytes per pipelined message: the rule's, or TALLY_SEGMENT_SIZE */
    struct tally_comm *comm;
} tally_algo_args_t;

/* Restriction flags beyond the dtype and op masks. */
enum {
    TALLY_ALGO_HOST_ONLY = 1u << 0,      /* both buffers must be host memory */
    TALLY_ALGO_NO_FLOAT_MINMAX = 1u << 1, /* MIN/MAX only on integer dtypes */
    TALLY_ALGO_ONE_NODE = 1u << 2,        /* every rank on one node */
    TALLY_ALGO_NODE_PEERS = 1u << 3       /* several nodes, one with two ranks or more */
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
    tally_status_t (*run)(const tally_algo_args_t *args);
    /* Predicted seconds for one call (model.h); the header comment's cost. */
    double (*predict)(const tally_cost_t *cost);
} tally_algo_t;

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

/* Block arithmetic: count elements split into nblocks contiguous blocks whose
 * sizes differ by at most one, the larger ones first. */
size_t tally_block_count(size_t count, size_t nblocks, size_t block);
size_t tally_block_offset(size_t count, size_t nblocks, size_t block);

/* Copies sendbuf to recvbuf unless in place (the p == 1 case and the start
 * of algorithms that work in recvbuf). */
void tally_algo_copy_input(const tally_algo_args_t *args);

/* Completes `count` fully reduced elements at buf: divides by the
 * communicator size for AVG, nothing otherwise. */
void tally_algo_finish(const tally_algo_args_t *args, void *buf, size_t count);

#endif
