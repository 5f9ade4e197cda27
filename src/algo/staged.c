/* staged.c - device buffers through host memory, for an MPI that cannot
 * read device memory.  The buffer is cut into chunks of TALLY_STAGE_CHUNK
 * bytes; each is copied down into one of two pinned bounce buffers, reduced
 * in place among the hosts by tally's own host allreduce (an inner call on
 * the same communicator, chosen by the selection for the chunk's size), and
 * copied back up.  While chunk k is reduced, chunk k+1 comes down and chunk
 * k-1 goes up, on two streams, so the copies hide behind the network.  The
 * reduction runs on the host.  Unlike Open MPI's coll/cuda (malloc, copy
 * down, host allreduce, copy up, free on every call) nothing is allocated
 * per call: the pinned buffers and streams stay with the communicator
 * (mem/stage.c).
 *
 * Cost, n = bytes / C chunks, host(C) one host allreduce of a chunk, copies
 * at beta_d per byte each way:
 *   n max(host(C), 2 C beta_d) + 2 C beta_d      (pipeline fill and drain)
 * ~ host(bytes) + 2 C beta_d when the network is the slower.  The model
 * prices host(bytes) as the ring and beta_d as a PCIe 4 x16 link.
 *
 * Restrictions: device memory (the host algorithms serve the rest); every
 * rank's buffers are device memory too (mixed calls are not supported).
 * Every dtype and op: the inner calls do the arithmetic, AVG included.
 *
 * Steps, 4 chunks, bounce buffers b0 b1 (* after the copy up that last
 * used the buffer; the host waits only for the copy down of its chunk):
 *   step   down stream      host                up stream
 *    0     chunk 0 -> b0
 *    1     chunk 1 -> b1    allreduce b0
 *    2     chunk 2 -> b0*   allreduce b1        b0 -> chunk 0
 *    3     chunk 3 -> b1*   allreduce b0        b1 -> chunk 1
 *    4                      allreduce b1        b0 -> chunk 2
 *    5                                          b1 -> chunk 3
 */
#include "algo.h"

#include "../core/comm.h"
#include "../core/entry.h"
#include "../core/log.h"

/* A PCIe 4 x16 link's practical copy rate: seconds per byte. */
#define STAGED_COPY_BETA (1.0 / 20e9)

/* Waits for every copy queued on the stage's streams. */
static const char *drain(const tally_device_t *dev, const tally_stage_t *s)
{
    const char *first = NULL;
    for (int i = 0; i < 2; i++) {
        const char *a = dev->backend->event_wait(dev->ctx, s->down_done[i]);
        const char *b = dev->backend->event_wait(dev->ctx, s->up_done[i]);
        if (!first)
            first = a ? a : b;
    }
    return first;
}

/* Queues the copy of chunk k into bounce buffer k % 2 on the down stream,
 * after that buffer's last copy up. */
static const char *queue_down(const tally_call_t *call, tally_device_t *dev, tally_stage_t *s,
                              size_t k, size_t chunk)
{
    const tally_device_backend_t *b = dev->backend;
    const int buf = (int)(k % 2);
    const size_t first = k * chunk;
    const size_t count = first + chunk <= call->count ? chunk : call->count - first;
    const char *err = NULL;
    if (k >= 2)
        err = b->stream_wait(dev->ctx, s->down, s->up_done[buf]);
    if (!err)
        err = b->copy_async(dev->ctx, s->host[buf],
                            (const char *)call->sendbuf + first * call->elem_size,
                            count * call->elem_size, s->down);
    if (!err)
        err = b->event_record(dev->ctx, s->down_done[buf], s->down);
    return err;
}

static tally_status_t staged_run(tally_call_t *call)
{
    tally_device_t *dev = &call->comm->device;
    const tally_device_backend_t *b = dev->backend;
    const size_t es = call->elem_size;
    size_t chunk = call->comm->config.stage_chunk / es;
    if (chunk == 0)
        chunk = 1;
    if (chunk > call->count)
        chunk = call->count;
    const size_t n = (call->count + chunk - 1) / chunk;
    const char *why = NULL;
    tally_stage_t *s = tally_stage_get(dev, call->mpi, chunk * es, &why);
    if (!s) {
        TALLY_LOG(call->comm, TALLY_LOG_ERROR, "staged: no pinned bounce buffers of %zu bytes: %s",
                  chunk * es, why);
        return TALLY_ERR_NO_MEMORY;
    }
    tally_status_t st = TALLY_SUCCESS;
    const char *err = queue_down(call, dev, s, 0, chunk);
    for (size_t k = 0; k < n && !err && st == TALLY_SUCCESS; k++) {
        const int buf = (int)(k % 2);
        const size_t first = k * chunk;
        const size_t count = first + chunk <= call->count ? chunk : call->count - first;
        if (k + 1 < n)
            err = queue_down(call, dev, s, k + 1, chunk);
        if (!err)
            err = b->event_wait(dev->ctx, s->down_done[buf]);
        if (err)
            break;
        st = tally_call_allreduce(call->comm, TALLY_IN_PLACE, s->host[buf], count, call->dtype,
                                  call->op);
        if (st != TALLY_SUCCESS)
            break;
        err = b->copy_async(dev->ctx, (char *)call->recvbuf + first * es, s->host[buf],
                            count * es, s->up);
        if (!err)
            err = b->event_record(dev->ctx, s->up_done[buf], s->up);
    }
    /* The copies in flight use the bounce buffers and the user's memory:
     * they finish before the call returns, whatever failed. */
    const char *late = drain(dev, s);
    if (!err)
        err = late;
    if (err && st == TALLY_SUCCESS) {
        TALLY_LOG(call->comm, TALLY_LOG_ERROR, "staged: %s backend: %s", b->name, err);
        st = TALLY_ERR_DEVICE;
    }
    return st;
}

static double staged_predict(const tally_cost_t *c)
{
    extern const tally_algo_t tally_algo_ring;
    const double chunk = c->bytes < 4.0 * 1024 * 1024 ? c->bytes : 4.0 * 1024 * 1024;
    return tally_algo_ring.predict(c) + 2 * chunk * STAGED_COPY_BETA;
}

const tally_algo_t tally_algo_staged = {
    .name = "staged",
    .summary = "device buffers through pinned host chunks: copies overlap a host allreduce",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_DEVICE_ONLY,
                     "device memory only"},
    .run = staged_run,
    .predict = staged_predict,
};
