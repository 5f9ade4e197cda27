/* hier_leader.c - leader-based hierarchical allreduce for small messages:
 * reduce to the node leader through the node's shared window, allreduce
 * among the leaders, broadcast within the node through the window: hier's
 * driver (hier.c) with a single shard, owned by local rank 0.
 *
 * One message across the network per node instead of one per rank, and
 * one latency-bound allreduce among N leaders: cheaper than hier when
 * the message is too small to be worth cutting.  The leaders' step is
 * hier's with one shard: a streamed exchange on two nodes, on more a flat
 * algorithm chosen by the rule table for their communicator.
 *
 * Cost, n bytes, N nodes, L ranks per node: 2 n c + (L-1) n gamma + n c +
 * 2 sync per chunk within the node, plus the leaders' algorithm on n bytes,
 * e.g. recursive doubling: log2(N) (alpha + n beta) + log2(N) n gamma.
 * Restrictions: host memory; at least two nodes and a node with two ranks
 * or more; a window or groups that could not be made at creation run the
 * ring instead.
 *
 * Example, 2 nodes x 2 ranks (X leads Y, Z leads W):
 *
 *   phase          X                 Y            Z                 W
 *   publish        -                 window: y    -                 window: w
 *   reduce         x+y               -            z+w               -
 *   leaders        S = (x+y)+(z+w)   -            S                 -
 *   collect        -                 takes S      -                 takes S
 */
#include "algo.h"
#include "node.h"

static tally_status_t hier_leader_run(tally_call_t *call)
{
    return tally_hier_run_kind(call, TALLY_SHARDS_LEADER);
}

static double hier_leader_predict(const tally_cost_t *cost)
{
    return tally_hier_predict_kind(cost, TALLY_SHARDS_LEADER);
}

const tally_algo_t tally_algo_hier_leader = {
    .name = "hier_leader",
    .summary = "reduce to node leaders through shared memory, leaders allreduce, broadcast",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS,
                     TALLY_ALGO_HOST_ONLY | TALLY_ALGO_NODE_PEERS,
                     "host memory only; several nodes, one with two ranks or more"},
    .run = hier_leader_run,
    .predict = hier_leader_predict,
};
