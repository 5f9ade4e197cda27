/* nccl.c - device buffers through NCCL's own allreduce (ncclAllReduce),
 * where every rank has a GPU of its own: NCCL picks its ring or tree and
 * its transport (NVLink, PCIe, InfiniBand) itself.  The NCCL communicator
 * is made at the communicator's first call that runs this algorithm
 * (transport/nccl.h: rank 0's id over the MPI) and kept until
 * tally_comm_destroy.  AVG runs as SUM and tally's divide kernel, so it
 * rounds as every other algorithm does.
 *
 * Cost: NCCL's, about a ring's 2 (p-1)/p n over the slowest link between
 * GPUs; the model prices it as the ring over its network levels.
 * Restrictions: device memory; every rank a GPU of its own and NCCL
 * (decided at tally_comm_create); no 16-bit integers, no bitwise or
 * logical ops (NCCL has none); no MIN/MAX on floating types (NCCL does
 * not promise tally's NaN propagation).  Where the NCCL communicator
 * cannot be made, every rank learns it together and runs ipc (one node)
 * or staged instead, then and on every later call.
 *
 * Steps: NCCL's own.
 */
#include "algo.h"

#include "../core/comm.h"
#include "../core/entry.h"
#include "../core/log.h"
#include "../transport/nccl.h"

extern const tally_algo_t tally_algo_ipc;
extern const tally_algo_t tally_algo_staged;
extern const tally_algo_t tally_algo_ring;

static tally_status_t nccl_run(tally_call_t *call)
{
    tally_comm_t *comm = call->comm;
    const tally_device_t *dev = &comm->device;
    void *handle = NULL;
    const char *why = NULL;
    tally_status_t st = tally_nccl_get(&comm->nccl, dev, call->mpi, call->rank, call->size,
                                       &handle, &why);
    if (st == TALLY_ERR_UNSUPPORTED) /* every rank alike */
        return tally_call_redirect(
            call, call->shape->nodes == 1 ? &tally_algo_ipc : &tally_algo_staged, why);
    TALLY_CHECK(st);
    const char *err = dev->backend->nccl_allreduce(dev->ctx, handle, call->sendbuf,
                                                   call->recvbuf, call->count, call->dtype,
                                                   call->op);
    if (!err) {
        tally_call_finish(call, call->recvbuf, call->count);
        err = dev->backend->check(dev->ctx);
    }
    if (err) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "nccl: %s", err);
        return TALLY_ERR_DEVICE;
    }
    return TALLY_SUCCESS;
}

static double nccl_predict(const tally_cost_t *c)
{
    return tally_algo_ring.predict(c);
}

#define NCCL_DTYPES                                                                       \
    (TALLY_ALL_DTYPES & ~(TALLY_DTYPE_BIT(TALLY_INT16) | TALLY_DTYPE_BIT(TALLY_UINT16)))
#define NCCL_OPS                                                                          \
    (TALLY_OP_BIT(TALLY_SUM) | TALLY_OP_BIT(TALLY_PROD) | TALLY_OP_BIT(TALLY_MIN) |        \
     TALLY_OP_BIT(TALLY_MAX) | TALLY_OP_BIT(TALLY_AVG))

const tally_algo_t tally_algo_nccl = {
    .name = "nccl",
    .summary = "device buffers through ncclAllReduce, every rank on a GPU of its own",
    .restrictions = {NCCL_DTYPES, NCCL_OPS,
                     TALLY_ALGO_DEVICE_ONLY | TALLY_ALGO_NCCL | TALLY_ALGO_NO_FLOAT_MINMAX,
                     "device memory; no 16-bit integers, bitwise or logical ops (NCCL has "
                     "none), no float MIN/MAX (NaN)"},
    .run = nccl_run,
    .predict = nccl_predict,
};
