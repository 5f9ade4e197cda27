/* node.h - what shm, hier and hier_leader share: the node window a call
 * takes from its communicator, the priced intra-node phases (shm.c), and
 * hier's driver for either kind of sharding (hier.c; hier_leader is hier
 * with one shard). */
#ifndef TALLY_ALGO_NODE_H
#define TALLY_ALGO_NODE_H

#include "../core/groups.h"
#include "../transport/shm.h"
#include "algo.h"

/* The window for this call, marked busy.  Where the communicator could not
 * make it (agreed at creation) runs the ring instead and says so in *ran;
 * a window busy with another call is TALLY_ERR_UNSUPPORTED. */
tally_status_t tally_node_window_take(tally_call_t *call, tally_shm_t **shm, bool *ran);
void tally_node_window_give(tally_call_t *call);

/* Predicted seconds of the intra-node phases with S shards on the fullest
 * node (one node: the whole of shm). */
double tally_shm_phases_predict(const tally_cost_t *cost, int shards);

tally_status_t tally_hier_run_kind(tally_call_t *call, tally_shard_kind_t kind);
double tally_hier_predict_kind(const tally_cost_t *cost, tally_shard_kind_t kind);

#endif
