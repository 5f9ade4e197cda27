/* registry.c - every algorithm, the generic restriction check, and the
 * helpers the algorithms share. */
#include "algo.h"

#include <string.h>


extern const tally_algo_t tally_algo_ring;
extern const tally_algo_t tally_algo_recursive_doubling;
extern const tally_algo_t tally_algo_rabenseifner;
extern const tally_algo_t tally_algo_mpi;
extern const tally_algo_t tally_algo_shm;
extern const tally_algo_t tally_algo_hier;
extern const tally_algo_t tally_algo_hier_leader;
extern const tally_algo_t tally_algo_nccl;
extern const tally_algo_t tally_algo_ipc;
extern const tally_algo_t tally_algo_staged;

const tally_algo_t *const tally_algo_registry[] = {
    &tally_algo_ring,
    &tally_algo_recursive_doubling,
    &tally_algo_rabenseifner,
    &tally_algo_mpi,
    &tally_algo_shm,
    &tally_algo_hier,
    &tally_algo_hier_leader,
    &tally_algo_nccl,
    &tally_algo_ipc,
    &tally_algo_staged,
    NULL,
};

const tally_algo_t *tally_algo_find(const char *name)
{
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++)
        if (strcmp((*a)->name, name) == 0)
            return *a;
    return NULL;
}

bool tally_algo_fits(const tally_algo_t *algo, tally_dtype_t dtype, tally_op_t op,
                     tally_memtype_t memtype, const char **why)
{
    const tally_algo_restrictions_t *r = &algo->restrictions;
    const char *failed = NULL;
    if (!(r->dtypes & TALLY_DTYPE_BIT(dtype)))
        failed = "it does not support this dtype";
    else if (!(r->ops & TALLY_OP_BIT(op)))
        failed = "it does not support this op";
    else if ((r->flags & TALLY_ALGO_NO_FLOAT_MINMAX) && tally_dtype_is_float(dtype) &&
             (op == TALLY_MIN || op == TALLY_MAX))
        failed = "it does not support MIN or MAX on floating types";
    else if ((r->flags & TALLY_ALGO_HOST_ONLY) && memtype != TALLY_MEM_HOST)
        failed = "it needs host memory";
    else if ((r->flags & TALLY_ALGO_DEVICE_ONLY) && memtype != TALLY_MEM_DEVICE)
        failed = "it needs device memory";
    if (failed && why)
        *why = failed;
    return failed == NULL;
}

bool tally_algo_fits_shape(const tally_algo_t *algo, const tally_shape_t *shape,
                           const char **why)
{
    const unsigned flags = algo->restrictions.flags;
    const char *failed = NULL;
    if ((flags & TALLY_ALGO_ONE_NODE) && shape->nodes != 1)
        failed = "it needs every rank on one node";
    else if ((flags & TALLY_ALGO_NODE_PEERS) && (shape->nodes < 2 || shape->max_per_node < 2))
        failed = "it needs several nodes, one of them with two ranks or more";
    else if ((flags & TALLY_ALGO_NCCL) && !shape->nccl)
        failed = "it needs NCCL and a GPU of its own for every rank";
    if (failed && why)
        *why = failed;
    return failed == NULL;
}
