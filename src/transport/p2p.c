/* p2p.c - PMPI point-to-point for the algorithms.
 *
 * MPI counts are int: every transfer here is cut into messages of at most
 * TALLY_P2P_MAX_MESSAGE bytes, so any size_t byte count works.  All traffic
 * uses one tag on the communicator's private duplicate; MPI's
 * non-overtaking rule keeps segments in order. */
#include "p2p.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/comm.h"
#include "../core/log.h"
#include "../reduce/reduce.h"

#define TALLY_P2P_TAG 0x7a11
#define TALLY_P2P_MAX_MESSAGE ((size_t)1 << 30)
#define TALLY_P2P_MAX_DEPTH 64

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

void tally_p2p_cancel(MPI_Request *reqs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (reqs[i] != MPI_REQUEST_NULL) {
            PMPI_Cancel(&reqs[i]);
            PMPI_Request_free(&reqs[i]);
        }
    }
}

tally_status_t tally_p2p_sendrecv(struct tally_comm *comm, const void *sbuf,
                                  size_t sbytes, int dst, void *rbuf, size_t rbytes,
                                  int src)
{
    const char *s = sbuf;
    char *r = rbuf;
    while (sbytes > 0 || rbytes > 0) {
        int sn = (int)min_size(sbytes, TALLY_P2P_MAX_MESSAGE);
        int rn = (int)min_size(rbytes, TALLY_P2P_MAX_MESSAGE);
        TALLY_MPI_CHECK(comm, PMPI_Sendrecv(s, sn, MPI_BYTE, sn ? dst : MPI_PROC_NULL,
                                            TALLY_P2P_TAG, r, rn, MPI_BYTE,
                                            rn ? src : MPI_PROC_NULL, TALLY_P2P_TAG,
                                            comm->mpi, MPI_STATUS_IGNORE));
        s += sn;
        r += rn;
        sbytes -= (size_t)sn;
        rbytes -= (size_t)rn;
    }
    return TALLY_SUCCESS;
}

/* Posts segment k of a delivery into its slot, if the slot is free. */
static tally_status_t post_segment(struct tally_comm *comm, bool is_send, char *buf,
                                   size_t bytes, size_t seg, size_t k, int peer,
                                   MPI_Request *req)
{
    int n = (int)min_size(seg, bytes - k * seg);
    if (is_send)
        TALLY_MPI_CHECK(comm, PMPI_Isend(buf + k * seg, n, MPI_BYTE, peer, TALLY_P2P_TAG,
                                         comm->mpi, req));
    else
        TALLY_MPI_CHECK(comm, PMPI_Irecv(buf + k * seg, n, MPI_BYTE, peer, TALLY_P2P_TAG,
                                         comm->mpi, req));
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_deliver(const tally_algo_args_t *args, const void *sbuf,
                                 size_t sbytes, int dst, void *rbuf, size_t rbytes, int src)
{
    struct tally_comm *comm = args->comm;
    const tally_shape_t *shape = &comm->shape;
    const bool across = (sbytes > 0 && !tally_shape_same_node(shape, comm->rank, dst)) ||
                        (rbytes > 0 && !tally_shape_same_node(shape, comm->rank, src));
    size_t seg = min_size(args->segment_size ? args->segment_size : 1, TALLY_P2P_MAX_MESSAGE);
    if (!across || (sbytes <= seg && rbytes <= seg))
        return tally_p2p_sendrecv(comm, sbuf, sbytes, dst, rbuf, rbytes, src);
    const unsigned depth = min_size(comm->config.pipeline_depth, TALLY_P2P_MAX_DEPTH);
    const size_t nsend = (sbytes + seg - 1) / seg, nrecv = (rbytes + seg - 1) / seg;
    /* [0, depth): receives, [depth, 2 depth): sends; segment k in slot k mod depth. */
    MPI_Request req[2 * TALLY_P2P_MAX_DEPTH];
    for (unsigned i = 0; i < 2 * depth; i++)
        req[i] = MPI_REQUEST_NULL;
    size_t posted_recv = 0, posted_send = 0;
    tally_status_t st = TALLY_SUCCESS;
    for (;;) {
        /* Receives first, so that the peer's sends always find them. */
        while (st == TALLY_SUCCESS && posted_recv < nrecv &&
               req[posted_recv % depth] == MPI_REQUEST_NULL) {
            st = post_segment(comm, false, rbuf, rbytes, seg, posted_recv, src,
                              &req[posted_recv % depth]);
            posted_recv++;
        }
        while (st == TALLY_SUCCESS && posted_send < nsend &&
               req[depth + posted_send % depth] == MPI_REQUEST_NULL) {
            st = post_segment(comm, true, (char *)sbuf, sbytes, seg, posted_send, dst,
                              &req[depth + posted_send % depth]);
            posted_send++;
        }
        if (st != TALLY_SUCCESS)
            break;
        int done = 0, idx[2 * TALLY_P2P_MAX_DEPTH];
        int rc = PMPI_Waitsome((int)(2 * depth), req, &done, idx, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            tally_log_mpi_error(comm, rc, "PMPI_Waitsome", __FILE__, __LINE__);
            st = TALLY_ERR_MPI;
            break;
        }
        if (done == MPI_UNDEFINED) /* nothing left in flight */
            break;
    }
    if (st != TALLY_SUCCESS)
        tally_p2p_cancel(req, 2 * depth);
    return st;
}

/* The state of one pipelined exchange: a window of `depth` requests each
 * way, indexed by segment number modulo depth. */
typedef struct pipeline {
    struct tally_comm *comm;
    const tally_p2p_reduce_step_t *step;
    size_t elem_size;
    size_t seg_elems;
    unsigned depth;
    size_t nsend, nrecv; /* segments each way */
    size_t sent;         /* sends posted so far */
    char *slots;         /* depth receive slots of seg_elems elements */
    MPI_Request sreq[TALLY_P2P_MAX_DEPTH];
    MPI_Request rreq[TALLY_P2P_MAX_DEPTH];
} pipeline_t;

static size_t segment_elems(const pipeline_t *pl, size_t total, size_t k)
{
    return min_size(pl->seg_elems, total - k * pl->seg_elems);
}

static tally_status_t post_send(pipeline_t *pl)
{
    size_t k = pl->sent;
    const char *src = (const char *)pl->step->sbuf + k * pl->seg_elems * pl->elem_size;
    int bytes = (int)(segment_elems(pl, pl->step->scount, k) * pl->elem_size);
    TALLY_MPI_CHECK(pl->comm, PMPI_Isend(src, bytes, MPI_BYTE, pl->step->dst,
                                         TALLY_P2P_TAG, pl->comm->mpi,
                                         &pl->sreq[k % pl->depth]));
    pl->sent++;
    return TALLY_SUCCESS;
}

static tally_status_t post_recv(pipeline_t *pl, size_t k)
{
    char *slot = pl->slots + (k % pl->depth) * pl->seg_elems * pl->elem_size;
    int bytes = (int)(segment_elems(pl, pl->step->rcount, k) * pl->elem_size);
    TALLY_MPI_CHECK(pl->comm, PMPI_Irecv(slot, bytes, MPI_BYTE, pl->step->src,
                                         TALLY_P2P_TAG, pl->comm->mpi,
                                         &pl->rreq[k % pl->depth]));
    return TALLY_SUCCESS;
}

/* Posts sends up to segment `limit` (exclusive) while the window has room;
 * `block` waits for room instead of only testing for it. */
static tally_status_t advance_sends(pipeline_t *pl, size_t limit, bool block)
{
    while (pl->sent < limit) {
        MPI_Request *req = &pl->sreq[pl->sent % pl->depth];
        if (pl->sent >= pl->depth) {
            if (block) {
                TALLY_MPI_CHECK(pl->comm, PMPI_Wait(req, MPI_STATUS_IGNORE));
            } else {
                int done = 0;
                TALLY_MPI_CHECK(pl->comm, PMPI_Test(req, &done, MPI_STATUS_IGNORE));
                if (!done)
                    return TALLY_SUCCESS;
            }
        }
        TALLY_CHECK(post_send(pl));
    }
    return TALLY_SUCCESS;
}

/* Waits until segment k of the send buffer has left, for steps that write
 * their result over the data they send. */
static tally_status_t wait_sent(pipeline_t *pl, size_t k)
{
    TALLY_CHECK(advance_sends(pl, k + 1, true));
    /* The slot holds send k until send k + depth is posted, which happens
     * only after send k completed. */
    if (pl->sent <= k + pl->depth)
        TALLY_MPI_CHECK(pl->comm,
                        PMPI_Wait(&pl->sreq[k % pl->depth], MPI_STATUS_IGNORE));
    return TALLY_SUCCESS;
}

static tally_status_t run_pipeline(pipeline_t *pl, const tally_algo_args_t *args)
{
    const tally_p2p_reduce_step_t *step = pl->step;
    const bool overwrites_send = step->scount > 0 && step->acc == step->sbuf;
    for (size_t k = 0; k < min_size(pl->depth, pl->nrecv); k++)
        TALLY_CHECK(post_recv(pl, k));
    TALLY_CHECK(advance_sends(pl, pl->nsend, false));

    size_t seg_bytes = pl->seg_elems * pl->elem_size;
    for (size_t k = 0; k < pl->nrecv; k++) {
        MPI_Request *rreq = &pl->rreq[k % pl->depth];
        TALLY_MPI_CHECK(pl->comm, PMPI_Wait(rreq, MPI_STATUS_IGNORE));
        if (overwrites_send && k < pl->nsend)
            TALLY_CHECK(wait_sent(pl, k));
        size_t n = segment_elems(pl, step->rcount, k);
        const char *incoming = pl->slots + (k % pl->depth) * seg_bytes;
        const char *local = (const char *)step->local + k * seg_bytes;
        char *acc = (char *)step->acc + k * seg_bytes;
        if (step->incoming_first)
            tally_reduce(acc, incoming, local, n, args->dtype, args->op);
        else
            tally_reduce(acc, local, incoming, n, args->dtype, args->op);
        if (k + pl->depth < pl->nrecv)
            TALLY_CHECK(post_recv(pl, k + pl->depth));
        TALLY_CHECK(advance_sends(pl, pl->nsend, false));
    }
    TALLY_CHECK(advance_sends(pl, pl->nsend, true));
    TALLY_MPI_CHECK(pl->comm, PMPI_Waitall((int)pl->depth, pl->sreq, MPI_STATUSES_IGNORE));
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_exchange_reduce(const tally_algo_args_t *args,
                                         const tally_p2p_reduce_step_t *step)
{
    struct tally_comm *comm = args->comm;
    pipeline_t pl = {
        .comm = comm,
        .step = step,
        .elem_size = args->elem_size,
        .seg_elems = args->segment_size / args->elem_size,
        .depth = comm->config.pipeline_depth,
    };
    if (pl.seg_elems == 0)
        pl.seg_elems = 1;
    if (pl.depth > TALLY_P2P_MAX_DEPTH)
        pl.depth = TALLY_P2P_MAX_DEPTH;
    pl.nsend = (step->scount + pl.seg_elems - 1) / pl.seg_elems;
    pl.nrecv = (step->rcount + pl.seg_elems - 1) / pl.seg_elems;
    for (unsigned i = 0; i < TALLY_P2P_MAX_DEPTH; i++)
        pl.sreq[i] = pl.rreq[i] = MPI_REQUEST_NULL;

    if (pl.nrecv > 0) {
        /* A single short segment needs no more than its own size. */
        size_t slot_elems = min_size(pl.seg_elems, step->rcount);
        pl.slots = tally_comm_scratch(comm, pl.depth * slot_elems * pl.elem_size);
        if (!pl.slots)
            return TALLY_ERR_NO_MEMORY;
    }
    tally_status_t st = run_pipeline(&pl, args);
    if (st != TALLY_SUCCESS) {
        tally_p2p_cancel(pl.rreq, pl.depth);
        tally_p2p_cancel(pl.sreq, pl.depth);
    }
    return st;
}
