/* hier.c - hierarchical allreduce: an intra-node reduce-scatter through the
 * node's shared window, an allreduce of each shard across nodes by the
 * ranks that own it (every rank of a node on the wire at once), and an
 * intra-node allgather through the window (node_shards.h).
 *
 * With S the most ranks on any node, the vector is cut into S shards
 * (moved through the window TALLY_SHM_CHUNK bytes at a time); local rank l
 * of a node with L ranks owns the shards s with s mod L = l.  The owners
 * of a shard, one per node, form a group with its own tally communicator:
 * on three nodes or more the step across nodes is a flat algorithm chosen
 * by the rule table for that group (ring, Rabenseifner, ...); on two, the
 * owners exchange their parts directly, streamed under the intra-node
 * rounds of the next units.  Uneven nodes work (a rank of a smaller node
 * serves several groups) and so does any placement: groups follow node
 * membership, not rank numbers.
 *
 * Cost, n bytes, N nodes, L ranks per node: intra-node 2 (L-1)/L n c +
 * (L-1)/L n gamma + 2 sync per chunk.  Across nodes, on two nodes, alpha
 * + (n/L) L beta (the L groups share each node's link), overlapped with
 * the intra-node work; on more, the group's algorithm on n/L bytes, e.g.
 * ring: 2 (N-1) alpha + 2 (N-1)/N (n/L) L beta per unit, i.e. 2 (N-1)/N n
 * beta per node against the flat ring's 2 (P-1)/P n beta per rank with L
 * ranks per link.
 * Restrictions: host memory; at least two nodes and a node with two ranks
 * or more; a window that cannot be made runs the ring instead.
 *
 * Example, 2 nodes x 2 ranks (X, Y on node 0; Z, W on node 1), shards a b:
 *
 *   phase              X          Y          Z          W
 *   publish, reduce    a=aX+aY    b=bX+bY    a=aZ+aW    b=bZ+bW
 *   across nodes       A = a(node 0) + a(node 1)  (X with Z);  B (Y with W)
 *   collect            takes B    takes A    takes B    takes A
 */
#include "algo.h"
#include "node_shards.h"

static tally_status_t hier_run(const tally_algo_args_t *args)
{
    return tally_node_shards_run(args, TALLY_SHARDS_PER_RANK);
}

static double hier_predict(const tally_cost_t *cost)
{
    return tally_node_shards_predict(cost, TALLY_SHARDS_PER_RANK);
}

const tally_algo_t tally_algo_hier = {
    .name = "hier",
    .summary = "shared-memory reduce-scatter, per-shard allreduce across nodes, allgather",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS,
                     TALLY_ALGO_HOST_ONLY | TALLY_ALGO_NODE_PEERS,
                     "host memory only; several nodes, one with two ranks or more"},
    .run = hier_run,
    .predict = hier_predict,
};
