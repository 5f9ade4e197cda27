/* p2p.c - PMPI point-to-point for the algorithms.
 *
 * MPI counts are int: every transfer here is cut into messages of at most
 * TALLY_P2P_MAX_MESSAGE bytes, so any size_t byte count works.  All traffic
 * of a call uses its own tag on the communicator's private duplicate, so
 * two calls in flight never match each other's messages; within a call,
 * MPI's non-overtaking rule keeps segments in order. */
#include "p2p.h"

#include <limits.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>

#include "../core/log.h"
#include "../core/scratch.h"
#include "../core/trace.h"
#include "backoff.h"

/* A tag no message carries (calls' tags are TALLY_TAG_BASE and up, far
 * below): a poll only runs MPI's progress engine. */
#define TALLY_P2P_POLL_TAG 0x7a1f
#define TALLY_P2P_MAX_MESSAGE ((size_t)1 << 30)
#define TALLY_P2P_MAX_DEPTH 64

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Polls before a watched wait starts to sleep; how long a background
 * call's wait polls before it does (backoff.h). */
#define WATCH_SPINS 1000
#define BACKGROUND_SPIN_S 50e-6

/* Whether the call's waits poll (a deadline to watch, or a core to leave
 * to the computation) rather than block inside the MPI. */
static bool waits_poll(const tally_call_t *call)
{
    return call->watch || tally_call_in_background(call);
}

tally_status_t tally_p2p_wait_watched(const tally_call_t *call, int n, MPI_Request *reqs,
                                      bool all, int *outcount, int *indices, const char *what,
                                      int peer)
{
    tally_watch_t *w = call->watch;
    int rc;
    if (!waits_poll(call)) { /* the MPI's own blocking wait */
        rc = all ? PMPI_Waitall(n, reqs, MPI_STATUSES_IGNORE)
                 : PMPI_Waitsome(n, reqs, outcount, indices, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            tally_log_mpi_error(call->comm, rc, all ? "PMPI_Waitall" : "PMPI_Waitsome",
                                __FILE__, __LINE__);
            return TALLY_ERR_MPI;
        }
        return TALLY_SUCCESS;
    }
    tally_backoff_t backoff = tally_backoff_start(tally_call_in_background(call));
    const double t0 = tally_trace_now();
    for (unsigned polls = 0;; polls++) {
        int flag = 0;
        if (all) {
            rc = PMPI_Testall(n, reqs, &flag, MPI_STATUSES_IGNORE);
        } else {
            rc = PMPI_Testsome(n, reqs, outcount, indices, MPI_STATUSES_IGNORE);
            flag = *outcount != 0; /* some done, or MPI_UNDEFINED: none active */
        }
        if (rc != MPI_SUCCESS) {
            tally_log_mpi_error(call->comm, rc, all ? "PMPI_Testall" : "PMPI_Testsome",
                                __FILE__, __LINE__);
            return TALLY_ERR_MPI;
        }
        if (flag)
            return TALLY_SUCCESS;
        if (w && (w->expired || tally_trace_now() > w->deadline)) {
            if (!w->expired) {
                w->expired = true;
                w->waiting = what;
                w->peer = peer;
            }
            return TALLY_ERR_TIMEOUT;
        }
        /* A caller may start waiting for the thread's calls: from then on
         * the wait spins, as the caller's own would. */
        if (tally_call_in_background(call) ? tally_trace_now() - t0 > BACKGROUND_SPIN_S
                                           : w && polls >= WATCH_SPINS)
            tally_backoff_sleep(&backoff);
    }
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

tally_status_t tally_p2p_isend(const tally_call_t *call, MPI_Comm mpi, int lane,
                               const void *buf, size_t bytes, int peer, MPI_Request *req)
{
    TALLY_MPI_CHECK(call->comm,
                    PMPI_Isend(buf, (int)bytes, MPI_BYTE, peer, call->tag + lane, mpi, req));
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_irecv(const tally_call_t *call, MPI_Comm mpi, int lane, void *buf,
                               size_t bytes, int peer, MPI_Request *req)
{
    TALLY_MPI_CHECK(call->comm,
                    PMPI_Irecv(buf, (int)bytes, MPI_BYTE, peer, call->tag + lane, mpi, req));
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_waitall(const tally_call_t *call, MPI_Request *reqs, size_t n)
{
    return tally_p2p_wait_watched(call, (int)n, reqs, true, NULL, NULL, "messages", -1);
}

tally_status_t tally_p2p_waitall_bytes(const tally_call_t *call, MPI_Request *reqs, size_t n,
                                       size_t *bytes)
{
    MPI_Status *status = n ? malloc(n * sizeof *status) : NULL;
    if (n && !status) {
        tally_p2p_cancel(reqs, n);
        return TALLY_ERR_NO_MEMORY;
    }
    if (waits_poll(call) && n) { /* polled first; then the statuses, all complete */
        tally_status_t st = tally_p2p_wait_watched(call, (int)n, reqs, true, NULL, NULL,
                                                   "messages", -1);
        if (st != TALLY_SUCCESS) {
            free(status);
            return st;
        }
    }
    int rc = n ? PMPI_Waitall((int)n, reqs, status) : MPI_SUCCESS;
    for (size_t i = 0; rc == MPI_SUCCESS && i < n; i++) {
        int got = 0;
        PMPI_Get_count(&status[i], MPI_BYTE, &got);
        bytes[i] = got > 0 ? (size_t)got : 0;
    }
    free(status);
    if (rc != MPI_SUCCESS) {
        tally_log_mpi_error(call->comm, rc, "PMPI_Waitall", __FILE__, __LINE__);
        return TALLY_ERR_MPI;
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_waitany(const tally_call_t *call, MPI_Request *reqs, size_t n)
{
    int index;
    if (n == 0)
        return TALLY_SUCCESS;
    if (waits_poll(call)) {
        int done = 0, idx[64];
        int m = n < 64 ? (int)n : 64; /* some of the first 64 is as good as any */
        return tally_p2p_wait_watched(call, m, reqs, false, &done, idx, "messages", -1);
    }
    TALLY_MPI_CHECK(call->comm, PMPI_Waitany((int)n, reqs, &index, MPI_STATUS_IGNORE));
    return TALLY_SUCCESS;
}

tally_status_t tally_p2p_testall(const tally_call_t *call, MPI_Request *reqs, size_t n,
                                 bool *done)
{
    int flag = 1;
    if (n > 0)
        TALLY_MPI_CHECK(call->comm, PMPI_Testall((int)n, reqs, &flag, MPI_STATUSES_IGNORE));
    *done = flag != 0;
    return TALLY_SUCCESS;
}

void tally_p2p_poll(MPI_Comm mpi)
{
    if (mpi != MPI_COMM_NULL) {
        int flag;
        PMPI_Iprobe(MPI_ANY_SOURCE, TALLY_P2P_POLL_TAG, mpi, &flag, MPI_STATUS_IGNORE);
    }
}

tally_status_t tally_p2p_sendrecv(const tally_call_t *call, const void *sbuf,
                                  size_t sbytes, int dst, void *rbuf, size_t rbytes,
                                  int src)
{
    const char *s = sbuf;
    char *r = rbuf;
    while (sbytes > 0 || rbytes > 0) {
        int sn = (int)min_size(sbytes, TALLY_P2P_MAX_MESSAGE);
        int rn = (int)min_size(rbytes, TALLY_P2P_MAX_MESSAGE);
        TALLY_MPI_CHECK(call->comm, PMPI_Sendrecv(s, sn, MPI_BYTE, sn ? dst : MPI_PROC_NULL,
                                                  call->tag, r, rn, MPI_BYTE,
                                                  rn ? src : MPI_PROC_NULL, call->tag,
                                                  call->mpi, MPI_STATUS_IGNORE));
        s += sn;
        r += rn;
        sbytes -= (size_t)sn;
        rbytes -= (size_t)rn;
    }
    return TALLY_SUCCESS;
}

/* Bytes per message from this rank to `peer` or back (the same figure on
 * both ends: it depends only on the pair).  Between nodes a message stays
 * below MPI's eager limit for TCP: a larger one waits for a rendezvous
 * reply that queues behind the data the peer sends the other way.  Within
 * a node, `within` (a delivery needs no segments; a reduction step
 * pipelines its segments with the reduction). */
static size_t segment_bytes(const tally_call_t *call, int peer, size_t within)
{
    size_t seg = call->segment_size ? call->segment_size : 1;
    if (!tally_shape_same_node(call->shape, call->rank, peer))
        seg = min_size(seg, TALLY_NETWORK_SEGMENT);
    else
        seg = within;
    return min_size(seg, TALLY_P2P_MAX_MESSAGE);
}

/* Whether a step exchanges with one partner (dst == src) on another node,
 * at least HANDSHAKE_BYTES each way on average: then it waits until the
 * partner has posted its receives (handshake below).  Recursive doubling
 * and Rabenseifner change partner every step, and a rank ahead of the
 * others would stream into a link whose rank still receives the step
 * before from someone else: two flows share that link and its queue grows,
 * measured up to twice as slow over TCP.  A smaller step costs less than
 * the handshake, whose zero-byte messages queue behind the step before's
 * data.  Both ends decide alike: the pair, its node test and the bytes
 * each way (one end's send is the other's receive) are the same on both. */
#define HANDSHAKE_BYTES (16 * TALLY_NETWORK_SEGMENT)
static bool needs_handshake(const tally_call_t *call, int dst, size_t sbytes, int src,
                            size_t rbytes)
{
    /* Both ways: a one-way step (a fold) names the other peer as 0. */
    return dst == src && sbytes > 0 && rbytes > 0 && sbytes + rbytes >= 2 * HANDSHAKE_BYTES &&
           !tally_shape_same_node(call->shape, call->rank, dst);
}

/* A zero-byte message each way on the call's last lane, sent once this
 * rank's first receives are posted: the partner's first sends find them. */
static tally_status_t handshake(const tally_call_t *call, int partner)
{
    MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    char none = 0;
    TALLY_CHECK(tally_p2p_irecv(call, call->mpi, TALLY_TAG_LANES - 1, &none, 0, partner,
                                &req[0]));
    tally_status_t st = tally_p2p_isend(call, call->mpi, TALLY_TAG_LANES - 1, &none, 0,
                                        partner, &req[1]);
    if (st == TALLY_SUCCESS)
        st = tally_p2p_wait_watched(call, 2, req, true, NULL, NULL,
                                    "the partner to post its receives", partner);
    if (st != TALLY_SUCCESS)
        tally_p2p_cancel(req, 2);
    return st;
}

/* Posts segment k of a delivery. */
static tally_status_t post_segment(const tally_call_t *call, bool is_send, char *buf,
                                   size_t bytes, size_t seg, size_t k, int peer,
                                   MPI_Request *req)
{
    size_t n = min_size(seg, bytes - k * seg);
    if (is_send)
        return tally_p2p_isend(call, call->mpi, 0, buf + k * seg, n, peer, req);
    return tally_p2p_irecv(call, call->mpi, 0, buf + k * seg, n, peer, req);
}

tally_status_t tally_p2p_deliver(const tally_call_t *call, const void *sbuf,
                                 size_t sbytes, int dst, void *rbuf, size_t rbytes, int src)
{
    const size_t sseg = sbytes ? segment_bytes(call, dst, TALLY_P2P_MAX_MESSAGE) : 1;
    const size_t rseg = rbytes ? segment_bytes(call, src, TALLY_P2P_MAX_MESSAGE) : 1;
    if (sbytes <= sseg && rbytes <= rseg)
        return tally_p2p_sendrecv(call, sbuf, sbytes, dst, rbuf, rbytes, src);
    const unsigned depth = min_size(call->pipeline_depth, TALLY_P2P_MAX_DEPTH);
    const size_t nsend = (sbytes + sseg - 1) / sseg, nrecv = (rbytes + rseg - 1) / rseg;
    /* [0, depth): receives, [depth, 2 depth): sends; segment k in slot k mod depth. */
    MPI_Request req[2 * TALLY_P2P_MAX_DEPTH];
    for (unsigned i = 0; i < 2 * depth; i++)
        req[i] = MPI_REQUEST_NULL;
    size_t posted_recv = 0, posted_send = 0;
    tally_status_t st = TALLY_SUCCESS;
    if (needs_handshake(call, dst, sbytes, src, rbytes)) {
        for (; st == TALLY_SUCCESS && posted_recv < min_size(depth, nrecv); posted_recv++)
            st = post_segment(call, false, rbuf, rbytes, rseg, posted_recv, src,
                              &req[posted_recv % depth]);
        if (st == TALLY_SUCCESS)
            st = handshake(call, dst);
    }
    for (; st == TALLY_SUCCESS;) {
        /* Receives first, so that the peer's sends always find them. */
        while (st == TALLY_SUCCESS && posted_recv < nrecv &&
               req[posted_recv % depth] == MPI_REQUEST_NULL) {
            st = post_segment(call, false, rbuf, rbytes, rseg, posted_recv, src,
                              &req[posted_recv % depth]);
            posted_recv++;
        }
        while (st == TALLY_SUCCESS && posted_send < nsend &&
               req[depth + posted_send % depth] == MPI_REQUEST_NULL) {
            st = post_segment(call, true, (char *)sbuf, sbytes, sseg, posted_send, dst,
                              &req[depth + posted_send % depth]);
            posted_send++;
        }
        if (st != TALLY_SUCCESS)
            break;
        int done = 0, idx[2 * TALLY_P2P_MAX_DEPTH];
        st = tally_p2p_wait_watched(call, (int)(2 * depth), req, false, &done, idx,
                                    "a segment exchange", src);
        if (st != TALLY_SUCCESS)
            break;
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
    tally_call_t *call;
    const tally_p2p_reduce_step_t *step;
    size_t elem_size;
    size_t send_seg, recv_seg; /* elements per segment each way */
    unsigned depth;
    size_t nsend, nrecv; /* segments each way */
    size_t sent;         /* sends posted so far */
    size_t sends_done;   /* sends 0 .. sends_done - 1 are known complete */
    char *slots;         /* depth receive slots of recv_seg elements */
    MPI_Request sreq[TALLY_P2P_MAX_DEPTH];
    MPI_Request rreq[TALLY_P2P_MAX_DEPTH];
} pipeline_t;

static size_t segment_elems(size_t seg, size_t total, size_t k)
{
    return min_size(seg, total - k * seg);
}

static tally_status_t post_send(pipeline_t *pl)
{
    size_t k = pl->sent;
    const char *src = (const char *)pl->step->sbuf + k * pl->send_seg * pl->elem_size;
    int bytes = (int)(segment_elems(pl->send_seg, pl->step->scount, k) * pl->elem_size);
    TALLY_MPI_CHECK(pl->call->comm, PMPI_Isend(src, bytes, MPI_BYTE, pl->step->dst,
                                               pl->call->tag, pl->call->mpi,
                                               &pl->sreq[k % pl->depth]));
    pl->sent++;
    return TALLY_SUCCESS;
}

static tally_status_t post_recv(pipeline_t *pl, size_t k)
{
    char *slot = pl->slots + (k % pl->depth) * pl->recv_seg * pl->elem_size;
    int bytes = (int)(segment_elems(pl->recv_seg, pl->step->rcount, k) * pl->elem_size);
    TALLY_MPI_CHECK(pl->call->comm, PMPI_Irecv(slot, bytes, MPI_BYTE, pl->step->src,
                                               pl->call->tag, pl->call->mpi,
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
                TALLY_CHECK(tally_p2p_wait_watched(pl->call, 1, req, true, NULL, NULL,
                                                   "a send to complete", pl->step->dst));
            } else {
                int done = 0;
                TALLY_MPI_CHECK(pl->call->comm, PMPI_Test(req, &done, MPI_STATUS_IGNORE));
                if (!done)
                    return TALLY_SUCCESS;
            }
        }
        TALLY_CHECK(post_send(pl));
    }
    return TALLY_SUCCESS;
}

/* Waits until the send segments that cover received segment k have left,
 * for steps that write their result over the data they send (the two
 * directions may be cut differently: see tally_p2p_segment). */
static tally_status_t wait_sent(pipeline_t *pl, size_t k)
{
    size_t end = min_size(pl->nsend, ((k + 1) * pl->recv_seg + pl->send_seg - 1) / pl->send_seg);
    for (size_t j = pl->sends_done; j < end; j++) {
        TALLY_CHECK(advance_sends(pl, j + 1, true));
        /* The slot holds send j until send j + depth is posted, which
         * happens only after send j completed. */
        if (pl->sent <= j + pl->depth)
            TALLY_CHECK(tally_p2p_wait_watched(pl->call, 1, &pl->sreq[j % pl->depth], true,
                                               NULL, NULL, "a send to complete",
                                               pl->step->dst));
    }
    if (end > pl->sends_done)
        pl->sends_done = end;
    return TALLY_SUCCESS;
}

static tally_status_t run_pipeline(pipeline_t *pl)
{
    const tally_p2p_reduce_step_t *step = pl->step;
    const bool overwrites_send = step->scount > 0 && step->acc == step->sbuf;
    for (size_t k = 0; k < min_size(pl->depth, pl->nrecv); k++)
        TALLY_CHECK(post_recv(pl, k));
    if (needs_handshake(pl->call, step->dst, step->scount * pl->elem_size, step->src,
                        step->rcount * pl->elem_size))
        TALLY_CHECK(handshake(pl->call, step->dst));
    TALLY_CHECK(advance_sends(pl, pl->nsend, false));

    size_t seg_bytes = pl->recv_seg * pl->elem_size;
    for (size_t k = 0; k < pl->nrecv; k++) {
        MPI_Request *rreq = &pl->rreq[k % pl->depth];
        TALLY_CHECK(tally_p2p_wait_watched(pl->call, 1, rreq, true, NULL, NULL,
                                           "a segment to arrive", step->src));
        if (overwrites_send && k < pl->nsend)
            TALLY_CHECK(wait_sent(pl, k));
        size_t n = segment_elems(pl->recv_seg, step->rcount, k);
        const char *incoming = pl->slots + (k % pl->depth) * seg_bytes;
        const char *local = (const char *)step->local + k * seg_bytes;
        char *acc = (char *)step->acc + k * seg_bytes;
        if (step->incoming_first)
            tally_call_reduce(pl->call, acc, incoming, local, n);
        else
            tally_call_reduce(pl->call, acc, local, incoming, n);
        if (k + pl->depth < pl->nrecv)
            TALLY_CHECK(post_recv(pl, k + pl->depth));
        TALLY_CHECK(advance_sends(pl, pl->nsend, false));
    }
    TALLY_CHECK(advance_sends(pl, pl->nsend, true));
    return tally_p2p_wait_watched(pl->call, (int)pl->depth, pl->sreq, true, NULL, NULL,
                                  "the last sends to complete", step->dst);
}

tally_status_t tally_p2p_exchange_reduce(tally_call_t *call,
                                         const tally_p2p_reduce_step_t *step)
{
    pipeline_t pl = {
        .call = call,
        .step = step,
        .elem_size = call->elem_size,
        .send_seg = step->scount ? segment_bytes(call, step->dst, call->segment_size) / call->elem_size : 1,
        .recv_seg = step->rcount ? segment_bytes(call, step->src, call->segment_size) / call->elem_size : 1,
        .depth = call->pipeline_depth,
    };
    if (pl.send_seg == 0)
        pl.send_seg = 1;
    if (pl.recv_seg == 0)
        pl.recv_seg = 1;
    if (pl.depth > TALLY_P2P_MAX_DEPTH)
        pl.depth = TALLY_P2P_MAX_DEPTH;
    pl.nsend = (step->scount + pl.send_seg - 1) / pl.send_seg;
    pl.nrecv = (step->rcount + pl.recv_seg - 1) / pl.recv_seg;
    for (unsigned i = 0; i < TALLY_P2P_MAX_DEPTH; i++)
        pl.sreq[i] = pl.rreq[i] = MPI_REQUEST_NULL;

    if (pl.nrecv > 0) {
        /* A single short segment needs no more than its own size. */
        size_t slot_elems = min_size(pl.recv_seg, step->rcount);
        pl.slots = tally_call_scratch(call, pl.depth * slot_elems * pl.elem_size);
        if (!pl.slots)
            return TALLY_ERR_NO_MEMORY;
    }
    tally_status_t st = run_pipeline(&pl);
    if (st != TALLY_SUCCESS) {
        tally_p2p_cancel(pl.rreq, pl.depth);
        tally_p2p_cancel(pl.sreq, pl.depth);
    }
    return st;
}
