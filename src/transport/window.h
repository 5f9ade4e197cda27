/* window.h - the rounds through a node's shared window (shm.h) that shm,
 * hier and hier_leader are made of.
 *
 * Local rank l of a node of L ranks owns the shards s with s mod L = l
 * (window_layout.h).  Rounds:
 *   reduce-scatter, round r:
 *     publish  copy the pieces of the shards others own into l's set
 *     barrier
 *     reduce   each owned piece: recvbuf = l's own contribution op those of
 *              the other local ranks in rank order (from their sets)
 *   allgather, round r:
 *     publish  copy the owned pieces into l's set
 *     barrier
 *     collect  copy the pieces of the shards others own from their sets
 * On one node a round does both halves (`finish`), the reduced blocks
 * copied into the set while still in the L1 cache.  Every element is
 * reduced in one place per node, in one order, so every rank ends with the
 * same bits.  Consecutive rounds, in this call or the next, alternate
 * between the two sets: a rank writes a set only after the barrier of the
 * round in between, which no rank enters before it has finished reading
 * that set, so a set is never overwritten while being read.
 *
 * Data moves through the call's kernel table.  `progress` (NULL: none,
 * shm.h): what a rank does for its messages to other nodes while it works
 * here, after every round and while it waits in a barrier. */
#ifndef TALLY_WINDOW_H
#define TALLY_WINDOW_H

#include <stdbool.h>
#include "../core/call.h"
#include "shm.h"
#include "window_layout.h"

/* The reduce-scatter rounds [r0, r1); with `finish`, each also completes
 * (AVG) and allgathers its pieces: the whole of a one-node allreduce. */
void tally_window_reduce_scatter(const tally_call_t *call, tally_shm_t *shm,
                                 const tally_window_layout_t *y, size_t r0, size_t r1,
                                 bool finish, const tally_shm_progress_t *progress);

/* The allgather rounds [r0, r1) of recvbuf's finished owned pieces. */
void tally_window_allgather(const tally_call_t *call, tally_shm_t *shm,
                            const tally_window_layout_t *y, size_t r0, size_t r1,
                            const tally_shm_progress_t *progress);

#endif
