/* shm.c - single-node allreduce through the node's shared window: every
 * rank publishes the parts of its data that other ranks reduce, reduces
 * its own part straight from its peers' window segments, and copies the
 * finished parts of the others out of theirs (transport/window.h).
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
 * multi-node form); a window that could not be made at creation runs the
 * ring instead.
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
#include <math.h>

#include "../core/comm.h"
#include "../core/entry.h"
#include "../core/log.h"
#include "../core/trace.h"
#include "../transport/window.h"
#include "algo.h"
#include "node.h"

extern const tally_algo_t tally_algo_ring;

tally_status_t tally_node_window_take(tally_call_t *call, tally_shm_t **shm, bool *ran)
{
    tally_groups_t *g = &call->comm->groups;
    *ran = false;
    if (!g->shm) {
        *ran = true;
        return tally_call_redirect(call, &tally_algo_ring,
                                   g->unavailable ? g->unavailable : "no node window");
    }
    if (g->busy) {
        TALLY_LOG(call->comm, TALLY_LOG_ERROR,
                  "%s: the node window is in use by another call on this communicator",
                  call->algo->name);
        return TALLY_ERR_UNSUPPORTED;
    }
    g->busy = true;
    *shm = g->shm;
    return TALLY_SUCCESS;
}

void tally_node_window_give(tally_call_t *call)
{
    call->comm->groups.busy = false;
}

static tally_status_t shm_run(tally_call_t *call)
{
    tally_shm_t *shm;
    bool ran;
    tally_status_t st = tally_node_window_take(call, &shm, &ran);
    if (ran || st != TALLY_SUCCESS)
        return st;
    const tally_window_layout_t y =
        tally_window_layout(call->count, call->elem_size, (size_t)shm->local_size, shm->chunk);
    double t0 = tally_phase_begin(call);
    tally_window_reduce_scatter(call, shm, &y, 0, tally_window_rounds(&y), true, NULL);
    tally_phase_end(call, "intra-node reduce-scatter + allgather", t0);
    tally_node_window_give(call);
    return TALLY_SUCCESS;
}

double tally_shm_phases_predict(const tally_cost_t *cost, int S)
{
    const tally_model_t *m = cost->model;
    const int L = cost->shape->max_per_node;
    const double n = cost->bytes;
    if (L == 1)
        return tally_cost_copy(cost, n);
    /* The fullest node's phases, each as slow as its busiest rank. */
    const int most_owned = (S + L - 1) / L, least_owned = S / L;
    const double chunks = ceil(n / (double)m->shm_chunk);
    const double moved = n * (1.0 - (double)least_owned / S), owned = n * most_owned / S;
    return 2.0 * tally_cost_copy(cost, moved) + (L - 1) * tally_cost_reduce(cost, owned) +
           tally_cost_copy(cost, owned) + 2.0 * chunks * tally_cost_sync(cost);
}

static double shm_predict(const tally_cost_t *cost)
{
    return tally_cost_call(cost) + tally_shm_phases_predict(cost, cost->shape->max_per_node);
}

const tally_algo_t tally_algo_shm = {
    .name = "shm",
    .summary = "one node: reduce-scatter + allgather through a shared MPI window",
    .restrictions = {TALLY_ALL_DTYPES, TALLY_ALL_OPS, TALLY_ALGO_HOST_ONLY | TALLY_ALGO_ONE_NODE,
                     "host memory only; every rank on one node"},
    .run = shm_run,
    .predict = shm_predict,
    .spans = true,
};
