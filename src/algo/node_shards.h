/* node_shards.h - the engine behind shm, hier and hier_leader: each node
 * reduces its ranks' data through the node's shared window into shards,
 * each shard is allreduced across nodes by the ranks that own it, and the
 * node's ranks copy every finished shard out of the window.
 *
 * A message is cut into S shards, moved through the window in pieces of
 * TALLY_SHM_CHUNK / S bytes (two sets in the window at once).  On a node
 * of L ranks, local rank l owns the shards s with s mod L = l.  S is the
 * same on every node, so a shard's owners on the different nodes form a
 * group; each group holds a tally sub-communicator (one rank per node) on
 * which the flat algorithms and the selection run; on two nodes the owners
 * instead exchange their parts directly, streamed under the intra-node
 * rounds.  hier: S = the most ranks on any node, so every rank of a full
 * node is on the wire at once; hier_leader: S = 1, the node leaders; shm:
 * one node, S = L, no groups. */
#ifndef TALLY_NODE_SHARDS_H
#define TALLY_NODE_SHARDS_H

#include "algo.h"

typedef enum tally_shard_kind {
    TALLY_SHARDS_PER_RANK, /* S = max ranks per node (hier, shm) */
    TALLY_SHARDS_LEADER,   /* S = 1 (hier_leader) */
    TALLY_SHARDS_KINDS
} tally_shard_kind_t;

/* A communicator's resources for one kind, made at its first use. */
typedef struct tally_node_shards {
    int shards;                 /* S */
    struct tally_comm **cross;  /* [S]: shard s's group; NULL where this rank is not in it */
} tally_node_shards_t;

/* Runs the allreduce of args with this kind of sharding.  Where the node
 * window or the groups cannot be made (agreed by all ranks), runs the
 * point-to-point ring instead, with one warning. */
tally_status_t tally_node_shards_run(const tally_algo_args_t *args, tally_shard_kind_t kind);

/* Frees what tally_node_shards_run made for comm (tally_comm_destroy). */
void tally_node_shards_release(struct tally_comm *comm);

/* Predicted seconds for the model: the intra-node phases on the fullest
 * node and the cheapest flat algorithm across nodes for one shard, with
 * the node's link shared by the ranks sending at once; added, or on two
 * nodes overlapped. */
double tally_node_shards_predict(const tally_cost_t *cost, tally_shard_kind_t kind);

#endif
