/* ipc.c - device buffers of ranks on one node, reduced straight from each
 * other's device memory: the device analogue of shm.  Every rank maps its
 * peers' sendbuf and recvbuf allocations (transport/ipc.h: CUDA IPC
 * handles, exchanged every call, each allocation opened once and cached),
 * then reduces its own part of the vector from every rank's input into its
 * own recvbuf on the device, and copies the other parts from their owners'
 * recvbufs.  Nothing passes through host memory or the MPI but the handles
 * and three synchronisations.
 *
 * Cost, n bytes on p ranks, g the device's time per byte moved (reduce
 * kernels read two operands and write one; a copy reads one and writes
 * one), s one synchronisation of the p ranks through the MPI:
 *   3 s + (p-1) * 3 (n/p) g + (p-1) * 2 (n/p) g
 * Every rank's kernels run concurrently on the device(s); on one shared
 * GPU they share its bandwidth.
 * Restrictions: device memory; every rank on one node; memory that the
 * backend can share (cudaMalloc: not pools or virtual-memory mappings)
 * and map on every rank (on separate GPUs, peer access): otherwise every
 * rank runs staged instead, agreed before any data moves.
 *
 * Example, p = 3, parts a b c; rank r owns part r (x0 is rank 0's x):
 *   phase      rank 0             rank 1             rank 2
 *   exchange   handles of every rank's two buffers; each maps the others'
 *   reduce     A = a0+a1+a2       B = b1+b0+b2       C = c2+c0+c1
 *              into its recvbuf   into its recvbuf   into its recvbuf
 *   barrier
 *   collect    takes B, C         takes A, C         takes A, B
 *   barrier    (so no rank's recvbuf changes while a peer reads it)
 */
#include "algo.h"

#include "../core/comm.h"
#include "../core/entry.h"
#include "../core/log.h"
#include "../transport/ipc.h"

extern const tally_algo_t tally_algo_staged;

/* This rank's part, from its own input first (in place, it is the
 * destination) and then the others' in rank order. */
static void reduce_part(const tally_call_t *call, const tally_ipc_peers_t *peers, size_t first,
                        size_t count)
{
    const size_t at = first * call->elem_size;
    char *dst = (char *)call->recvbuf + at;
    const char *own = (const char *)call->sendbuf + at;
    if (call->size == 1) {
        tally_call_copy(call, dst, own, count);
        return;
    }
    bool started = false;
    for (int q = 0; q < call->size; q++) {
        if (q == call->rank)
            continue;
        tally_call_reduce(call, dst, started ? dst : own, (const char *)peers->send[q] + at,
                          count);
        started = true;
    }
    tally_call_finish(call, dst, count);
}

static tally_status_t ipc_run(tally_call_t *call)
{
    tally_comm_t *comm = call->comm;
    const tally_device_t *dev = &comm->device;
    tally_ipc_peers_t peers;
    const char *why = NULL;
    tally_status_t st = tally_ipc_exchange(&comm->ipc, dev, call->mpi, call->rank, call->size,
                                           call->sendbuf, call->recvbuf, &peers, &why);
    if (st == TALLY_ERR_UNSUPPORTED) /* every rank, before any data moved */
        return tally_call_redirect(call, &tally_algo_staged, why);
    TALLY_CHECK(st);
    const size_t p = (size_t)call->size, r = (size_t)call->rank;
    reduce_part(call, &peers, tally_block_offset(call->count, p, r),
                tally_block_count(call->count, p, r));
    /* A kernel that failed here must not leave the others waiting: the
     * status is kept and returned after the protocol's end. */
    const char *err = dev->backend->check(dev->ctx);
    TALLY_MPI_CHECK(comm, PMPI_Barrier(call->mpi));
    for (size_t q = 0; q < p; q++) {
        if (q == r)
            continue;
        const size_t at = tally_block_offset(call->count, p, q) * call->elem_size;
        tally_call_copy(call, (char *)call->recvbuf + at, (const char *)peers.recv[q] + at,
                        tally_block_count(call->count, p, q));
    }
    if (!err)
        err = dev->backend->check(dev->ctx);
    TALLY_MPI_CHECK(comm, PMPI_Barrier(call->mpi));
    if (err) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "ipc: %s backend: %s", dev->backend->name, err);
        return TALLY_ERR_DEVICE;
    }
    return TALLY_SUCCESS;
}

static double ipc_predict(const tally_cost_t *c)
{
    /* The device moves bytes at roughly the host copy rate times the
     * bandwidth ratio of HBM to DRAM; without a device figure in the
     * model, price it like shm with a device-fast copy. */
    const double p = c->shape->size, part = c->bytes / p;
    const double device_g = 1.0 / 1e12; /* seconds per byte moved, order of HBM */
    return 3 * c->model->link[TALLY_LEVEL_PACKAGE].alpha + (p - 1) * 5 * part * device_g;
}

const tally_algo_t tally_algo_ipc = {
    .name = "ipc",
    .summary = "device buffers on one node, reduced straight from the peers' device memory",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_DEVICE_ONLY | TALLY_ALGO_ONE_NODE,
                     "device memory on one node"},
    .run = ipc_run,
    .predict = ipc_predict,
};
