/* p2p.h - PMPI point-to-point for the algorithms: any byte count (messages
 * are cut below INT_MAX), and a segmented, pipelined exchange that reduces
 * each received segment while the next ones are in flight. */
#ifndef TALLY_P2P_H
#define TALLY_P2P_H

#include <stddef.h>
#include "../algo/algo.h"
#include "tally.h"

struct tally_comm;

/* Cancels and frees the requests of `reqs` that are still active, after
 * an error. */
void tally_p2p_cancel(MPI_Request *reqs, size_t n);

/* Blocking exchange of byte buffers with any sizes (either may be 0). */
tally_status_t tally_p2p_sendrecv(struct tally_comm *comm, const void *sbuf,
                                  size_t sbytes, int dst, void *rbuf,
                                  size_t rbytes, int src);

/* The same for the steps that deliver finished data (allgather phases):
 * between nodes the transfer is cut into args->segment_size messages with
 * TALLY_PIPELINE_DEPTH in flight each way, since one large message over TCP
 * was measured at half the rate of a pipelined one; within a node a
 * single message is cheapest (one copy). */
tally_status_t tally_p2p_deliver(const tally_algo_args_t *args, const void *sbuf,
                                 size_t sbytes, int dst, void *rbuf, size_t rbytes, int src);

/* One pipelined step: sends scount elements of sbuf to dst while receiving
 * rcount elements from src, and for each received segment computes
 *     acc[i] = incoming[i] op local[i]   if incoming_first
 *     acc[i] = local[i] op incoming[i]   otherwise
 * (acc may be local).  Both sides cut their data into the same
 * args->segment_size segments, pipeline_depth of them in flight. */
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

tally_status_t tally_p2p_exchange_reduce(const tally_algo_args_t *args,
                                         const tally_p2p_reduce_step_t *step);

#endif
