/* shm.c - single-node allreduce through the node's shared window: every
 * rank publishes the parts of its data that other ranks reduce, reduces
 * its own part straight from its peers' window segments, and copies the
 * finished parts of the others out of theirs (node_shards.h).
 *
 * The vector is cut into p parts, moved in rounds of TALLY_SHM_CHUNK bytes
 * (a piece of every part), two rounds in flight (the window holds two sets
 * per rank).  No message passes through the MPI: a round costs two
 * barriers on counters in shared memory, and the reduced part is copied
 * into the window while it is still in the L1 cache.
 *
 * Cost, n bytes on p ranks of one node, c copy and gamma reduce per byte:
 * 2 ceil(n/chunk) sync + 2 (p-1)/p n c + (p-1)/p n gamma + n/p c; no
 * network term.  Each rank's work runs on its own core in parallel.
 * Restrictions: host memory; every rank on one node (hier is the
 * multi-node form); a window that cannot be made runs the ring instead.
 *
 * Example, p = 3, one round with parts a b c; rank r owns part r:
 *
 *   phase      rank 0             rank 1             rank 2
 *   publish    window: - b0 c0    window: a1 - c1    window: a2 b2 -
 *   barrier
 *   reduce     A = a0+a1+a2       B = b0+b1+b2       C = c0+c1+c2
 *              window: A          window: B          window: C
 *   barrier
 *   collect    takes B, C         takes A, C         takes A, B
 */
#include "algo.h"
#include "node_shards.h"

static tally_status_t shm_run(const tally_algo_args_t *args)
{
    return tally_node_shards_run(args, TALLY_SHARDS_PER_RANK);
}

static double shm_predict(const tally_cost_t *cost)
{
    return tally_node_shards_predict(cost, TALLY_SHARDS_PER_RANK);
}

const tally_algo_t tally_algo_shm = {
    .name = "shm",
    .summary = "one node: reduce-scatter + allgather through a shared MPI window",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_HOST_ONLY | TALLY_ALGO_ONE_NODE,
                     "host memory only; every rank on one node"},
    .run = shm_run,
    .predict = shm_predict,
};
