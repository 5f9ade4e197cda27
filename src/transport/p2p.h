/* p2p.h - PMPI point-to-point for the algorithms: any byte count (messages
 * are cut below INT_MAX), and a segmented, pipelined exchange that reduces
 * each received segment while the next ones are in flight. */
#ifndef TALLY_P2P_H
#define TALLY_P2P_H

#include <stdbool.h>
#include <stddef.h>
#include "../core/call.h"
#include "../topo/model.h"
#include "tally.h"

/* Cancels and frees the requests of `reqs` that are still active, after
 * an error. */
void tally_p2p_cancel(MPI_Request *reqs, size_t n);

/* The non-blocking primitive: one message of at most INT_MAX bytes on the
 * call's lane `lane` (call.h), on `mpi` (the call's communicator or, for
 * an algorithm's step on a group, the group's); complete with
 * tally_p2p_waitall or tally_p2p_testall, or tally_p2p_cancel after an
 * error. */
tally_status_t tally_p2p_isend(const tally_call_t *call, MPI_Comm mpi, int lane,
                               const void *buf, size_t bytes, int peer, MPI_Request *req);
tally_status_t tally_p2p_irecv(const tally_call_t *call, MPI_Comm mpi, int lane, void *buf,
                               size_t bytes, int peer, MPI_Request *req);
tally_status_t tally_p2p_waitall(const tally_call_t *call, MPI_Request *reqs, size_t n);
/* Like tally_p2p_waitall on receive requests: writes the bytes request i
 * received into bytes[i] (0 for a null request). */
tally_status_t tally_p2p_waitall_bytes(const tally_call_t *call, MPI_Request *reqs, size_t n,
                                       size_t *bytes);
/* Waits until one of the n requests completes (none active: at once). */
tally_status_t tally_p2p_waitany(const tally_call_t *call, MPI_Request *reqs, size_t n);
/* Whether all n requests are complete (*done), without waiting. */
tally_status_t tally_p2p_testall(const tally_call_t *call, MPI_Request *reqs, size_t n,
                                 bool *done);

/* Lets MPI move this rank's non-blocking messages: one poll on `mpi`
 * (MPI_COMM_NULL: nothing).  A rank waiting on shared memory calls it, since
 * a peer on another node may wait for a send that only moves when this rank
 * calls MPI. */
void tally_p2p_poll(MPI_Comm mpi);

/* Blocking exchange of byte buffers with any sizes (either may be 0), on
 * the call's communicator with the call's tag. */
tally_status_t tally_p2p_sendrecv(const tally_call_t *call, const void *sbuf,
                                  size_t sbytes, int dst, void *rbuf,
                                  size_t rbytes, int src);

/* The same for the steps that deliver finished data (allgather phases):
 * between nodes the transfer is cut into messages of call->segment_size,
 * at most TALLY_NETWORK_SEGMENT, with TALLY_PIPELINE_DEPTH in flight
 * each way, since one large message over TCP was measured at half the rate
 * of a pipelined one; within a node a single message is cheapest (one
 * copy).  Each direction is cut by its own pair of ranks, so both ends of
 * every message agree.  A large exchange with one partner on another node
 * (dst == src) first waits until the partner has posted its receives (a
 * zero-byte message each way on the call's last lane), here and in
 * tally_p2p_exchange_reduce: see needs_handshake in p2p.c. */
tally_status_t tally_p2p_deliver(const tally_call_t *call, const void *sbuf,
                                 size_t sbytes, int dst, void *rbuf, size_t rbytes, int src);

/* One pipelined step: sends scount elements of sbuf to dst while receiving
 * rcount elements from src, and for each received segment computes
 *     acc[i] = incoming[i] op local[i]   if incoming_first
 *     acc[i] = local[i] op incoming[i]   otherwise
 * (acc may be local).  Each direction is cut into call->segment_size
 * segments (between nodes at most TALLY_NETWORK_SEGMENT), the same on
 * both ends, pipeline_depth of them in flight. */
typedef struct tally_p2p_reduce_step {
    const void *sbuf;
    size_t scount;
    int dst;
    const void *local;
    void *acc;
    size_t rcount;
    int src;
    int incoming_first;
} tally_p2p_reduce_step_t;

tally_status_t tally_p2p_exchange_reduce(tally_call_t *call,
                                         const tally_p2p_reduce_step_t *step);

/* Waits for all of reqs (all) or some (else, as PMPI_Waitsome, with
 * *outcount and indices): blocking inside the MPI when the call has no
 * watch and runs in the foreground; else polling with growing sleeps
 * (backoff.h), and with a watch until its deadline, then TALLY_ERR_TIMEOUT
 * with `what` and `peer` (-1: unknown) in the watch. */
tally_status_t tally_p2p_wait_watched(const tally_call_t *call, int n, MPI_Request *reqs,
                                      bool all, int *outcount, int *indices, const char *what,
                                      int peer);

#endif
