/* hier.c - hierarchical allreduce: an intra-node reduce-scatter through the
 * node's shared window, an allreduce of each shard across nodes by the
 * ranks that own it (every rank of a node on the wire at once), and an
 * intra-node allgather through the window (transport/window.h).  This file
 * is also hier_leader's driver, with one shard.
 *
 * With S the most ranks on any node, the vector is cut into S shards
 * (moved through the window TALLY_SHM_CHUNK bytes at a time); local rank l
 * of a node with L ranks owns the shards s with s mod L = l.  The owners
 * of a shard, one per node, form a group with its own tally communicator,
 * made with the communicator (core/groups.h).  The rounds go in units:
 *   two nodes: each owned shard's part of a unit is exchanged with its
 *     owner on the other node through non-blocking messages, streamed
 *     under the reduce-scatter of the next STREAM_LAG units, then reduced
 *     in node order (both ends get the same bits), finished and
 *     allgathered;
 *   three nodes or more: a unit's owned parts are each allreduced on their
 *     group by the flat algorithm its rule table picks (ring,
 *     Rabenseifner, ...), through the internal entry, one unit (at most
 *     ACROSS_UNITS) after another.
 * Uneven nodes work (a rank of a smaller node serves several groups) and
 * so does any placement: groups follow node membership, not rank numbers.
 *
 * Cost, n bytes, N nodes, L ranks per node: intra-node 2 (L-1)/L n c +
 * (L-1)/L n gamma + 2 sync per chunk.  Across nodes, on two nodes, alpha
 * + (n/L) L beta (the L groups share each node's link), overlapped with
 * the intra-node work; on more, the group's algorithm on n/L bytes, e.g.
 * ring: 2 (N-1) alpha + 2 (N-1)/N (n/L) L beta per unit, i.e. 2 (N-1)/N n
 * beta per node against the flat ring's 2 (P-1)/P n beta per rank with L
 * ranks per link.
 * Restrictions: host memory; at least two nodes and a node with two ranks
 * or more; a window or groups that could not be made at creation run the
 * ring instead.
 *
 * Example, 2 nodes x 2 ranks (X, Y on node 0; Z, W on node 1), shards a b:
 *
 *   phase              X          Y          Z          W
 *   publish, reduce    a=aX+aY    b=bX+bY    a=aZ+aW    b=bZ+bW
 *   across nodes       A = a(node 0) + a(node 1)  (X with Z);  B (Y with W)
 *   collect            takes B    takes A    takes B    takes A
 */
#include <math.h>
#include <stdlib.h>

#include "../core/comm.h"
#include "../core/entry.h"
#include "../core/log.h"
#include "../core/scratch.h"
#include "../core/trace.h"
#include "../transport/p2p.h"
#include "../transport/window.h"
#include "algo.h"
#include "node.h"

/* At most this many blocking allreduces across nodes per owned shard and
 * call (three nodes or more): short vectors keep a pipeline of small
 * units, long ones synchronise with the other nodes a bounded number of
 * times. */
#define ACROSS_UNITS 16

/* Two nodes: the exchange of unit u is in flight while the node
 * reduce-scatters units u + 1 .. u + STREAM_LAG.  Messages stay below Open
 * MPI's TCP eager limit (64 KiB with its header): a larger one waits for a
 * rendezvous reply that queues behind the other direction's data. */
#define STREAM_UNITS 32
#define STREAM_LAG 4
#define STREAM_SEGMENT ((size_t)63 << 10)

static tally_op_t across_op(const tally_call_t *call)
{
    return call->op == TALLY_AVG ? TALLY_SUM : call->op;
}

typedef struct stream {
    tally_call_t *call;
    tally_shm_t *shm;
    const tally_shard_groups_t *groups;
    const tally_window_layout_t *y;
    size_t rounds, per_unit;
    size_t unit_bytes;        /* the owned shards' part of a unit, at most */
    char *incoming;           /* [STREAM_LAG + 1][unit_bytes] */
    MPI_Request *req;         /* [STREAM_LAG + 1][max_req] */
    size_t max_req;
    size_t nreq[STREAM_LAG + 1]; /* requests posted in each slot */
} stream_t;

/* Posts unit u's exchanges into slot u mod (STREAM_LAG + 1). */
static tally_status_t stream_post(stream_t *x, size_t u)
{
    const size_t k = u % (STREAM_LAG + 1), es = x->y->es;
    const size_t L = (size_t)x->shm->local_size;
    char *incoming = x->incoming + k * x->unit_bytes, *recv = x->call->recvbuf;
    MPI_Request *req = x->req + k * x->max_req;
    size_t r0, r1;
    tally_window_unit_rounds(x->rounds, x->per_unit, u, &r0, &r1);
    x->nreq[k] = 0;
    for (size_t s = (size_t)x->shm->local_rank; s < x->y->shards; s += L) {
        size_t first, bytes = tally_window_span(x->y, s, r0, r1, &first) * es;
        const tally_comm_t *g = x->groups->cross[s];
        const int peer = 1 - g->rank;
        for (size_t off = 0; off < bytes; off += STREAM_SEGMENT) {
            size_t n = bytes - off < STREAM_SEGMENT ? bytes - off : STREAM_SEGMENT;
            TALLY_CHECK(tally_p2p_irecv(x->call, g->mpi, incoming + off, n, peer,
                                        &req[x->nreq[k]++]));
            TALLY_CHECK(tally_p2p_isend(x->call, g->mpi, recv + first * es + off, n, peer,
                                        &req[x->nreq[k]++]));
        }
        incoming += bytes;
    }
    return TALLY_SUCCESS;
}

/* Waits for unit u's exchanges and reduces them: node 0's part first. */
static tally_status_t stream_complete(stream_t *x, size_t u)
{
    const tally_call_t *call = x->call;
    const size_t k = u % (STREAM_LAG + 1), es = x->y->es;
    const char *incoming = x->incoming + k * x->unit_bytes;
    char *recv = call->recvbuf;
    size_t r0, r1;
    tally_window_unit_rounds(x->rounds, x->per_unit, u, &r0, &r1);
    double t0 = tally_phase_begin(call);
    TALLY_CHECK(tally_p2p_waitall(call, x->req + k * x->max_req, x->nreq[k]));
    tally_phase_end(call, "across nodes: wait", t0);
    for (size_t s = (size_t)x->shm->local_rank; s < x->y->shards;
         s += (size_t)x->shm->local_size) {
        size_t first, count = tally_window_span(x->y, s, r0, r1, &first);
        char *part = recv + first * es;
        if (x->groups->cross[s]->rank == 0)
            tally_call_reduce(call, part, part, incoming, count);
        else
            tally_call_reduce(call, part, incoming, part, count);
        tally_call_finish(call, part, count);
        incoming += count * es;
    }
    return TALLY_SUCCESS;
}

static void unit_reduce_scatter(const tally_call_t *call, tally_shm_t *shm,
                                const tally_window_layout_t *y, size_t r0, size_t r1,
                                MPI_Comm progress)
{
    double t0 = tally_phase_begin(call);
    tally_window_reduce_scatter(call, shm, y, r0, r1, false, progress);
    tally_phase_end(call, "intra-node reduce-scatter", t0);
}

static void unit_allgather(const tally_call_t *call, tally_shm_t *shm,
                           const tally_window_layout_t *y, size_t r0, size_t r1,
                           MPI_Comm progress)
{
    double t0 = tally_phase_begin(call);
    tally_window_allgather(call, shm, y, r0, r1, progress);
    tally_phase_end(call, "intra-node allgather", t0);
}

/* Every local rank runs the same sequence of window rounds, so the sets
 * stay in step, and polls MPI while it waits in the window, since its sends
 * may only move when it does. */
static tally_status_t stream_two_nodes(tally_call_t *call, tally_shm_t *shm,
                                       const tally_shard_groups_t *groups,
                                       const tally_window_layout_t *y)
{
    const size_t L = (size_t)shm->local_size, l = (size_t)shm->local_rank;
    const size_t owned = (y->shards - l + L - 1) / L;
    const size_t rounds = tally_window_rounds(y);
    stream_t x = {.call = call, .shm = shm, .groups = groups, .y = y, .rounds = rounds};
    x.per_unit = tally_window_per_unit(rounds, STREAM_UNITS);
    const size_t units = tally_window_units(rounds, x.per_unit);
    const size_t part_bytes = x.per_unit * y->piece * y->es;
    x.unit_bytes = part_bytes * owned;
    x.max_req = 2 * owned * ((part_bytes + STREAM_SEGMENT - 1) / STREAM_SEGMENT);
    /* A rank that owns no shard (hier_leader) only takes part in the rounds. */
    if (owned) {
        x.incoming = tally_call_scratch(call, (STREAM_LAG + 1) * x.unit_bytes);
        x.req = malloc((STREAM_LAG + 1) * x.max_req * sizeof *x.req);
        if (!x.incoming || !x.req) {
            free(x.req);
            return TALLY_ERR_NO_MEMORY;
        }
    }
    tally_status_t st = TALLY_SUCCESS;
    for (size_t u = 0; u < units + STREAM_LAG && st == TALLY_SUCCESS; u++) {
        size_t r0, r1;
        if (u < units) {
            tally_window_unit_rounds(rounds, x.per_unit, u, &r0, &r1);
            unit_reduce_scatter(call, shm, y, r0, r1, call->mpi);
            st = stream_post(&x, u);
        }
        if (st == TALLY_SUCCESS && u >= STREAM_LAG) {
            st = stream_complete(&x, u - STREAM_LAG);
            tally_window_unit_rounds(rounds, x.per_unit, u - STREAM_LAG, &r0, &r1);
            if (st == TALLY_SUCCESS)
                unit_allgather(call, shm, y, r0, r1, call->mpi);
        }
    }
    if (st != TALLY_SUCCESS && x.req)
        for (size_t k = 0; k <= STREAM_LAG; k++)
            tally_p2p_cancel(x.req + k * x.max_req, x.nreq[k]);
    free(x.req);
    return st;
}

/* Three nodes or more: unit by unit, each owned part allreduced on its
 * group through the internal entry. */
static tally_status_t units_blocking(tally_call_t *call, tally_shm_t *shm,
                                     const tally_shard_groups_t *groups,
                                     const tally_window_layout_t *y)
{
    const size_t L = (size_t)shm->local_size, l = (size_t)shm->local_rank;
    const size_t rounds = tally_window_rounds(y);
    const size_t per_unit = tally_window_per_unit(rounds, ACROSS_UNITS);
    for (size_t r0 = 0; r0 < rounds; r0 += per_unit) {
        const size_t r1 = r0 + per_unit < rounds ? r0 + per_unit : rounds;
        unit_reduce_scatter(call, shm, y, r0, r1, MPI_COMM_NULL);
        double t0 = tally_phase_begin(call);
        for (size_t s = l; s < y->shards; s += L) {
            size_t first, count = tally_window_span(y, s, r0, r1, &first);
            if (count == 0) /* the same on every node: the layout is global */
                continue;
            char *part = (char *)call->recvbuf + first * y->es;
            TALLY_CHECK(tally_call_allreduce(groups->cross[s], TALLY_IN_PLACE, part, count,
                                             call->dtype, across_op(call)));
            tally_call_finish(call, part, count);
        }
        tally_phase_end(call, "across nodes", t0);
        unit_allgather(call, shm, y, r0, r1, MPI_COMM_NULL);
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_hier_run_kind(tally_call_t *call, tally_shard_kind_t kind)
{
    const tally_shard_groups_t *groups = &call->comm->groups.kind[kind];
    tally_shm_t *shm;
    bool ran;
    tally_status_t st = tally_node_window_take(call, &shm, &ran);
    if (ran || st != TALLY_SUCCESS)
        return st;
    const tally_window_layout_t y =
        tally_window_layout(call->count, call->elem_size, (size_t)groups->shards, shm->chunk);
    if (call->shape->nodes == 2)
        st = stream_two_nodes(call, shm, groups, &y);
    else
        st = units_blocking(call, shm, groups, &y);
    tally_node_window_give(call);
    return st;
}

static tally_status_t hier_run(tally_call_t *call)
{
    return tally_hier_run_kind(call, TALLY_SHARDS_PER_RANK);
}

/* --- the cost model ---------------------------------------------------------- */

/* The cheapest flat algorithm for `bytes` among one rank per node (the
 * selection's answer, through cost->cheapest), with each node's link
 * shared by `share` senders. */
static double across_nodes(const tally_cost_t *cost, double bytes, int share)
{
    const int nodes = cost->shape->nodes;
    if (!cost->cheapest)
        return INFINITY;
    tally_shape_entry_t *entries = calloc((size_t)nodes, sizeof *entries);
    tally_shape_t group;
    if (!entries)
        return INFINITY;
    for (int r = 0; r < nodes; r++)
        entries[r] = (tally_shape_entry_t){r, -1, 0, (int)(cost->shape->min_cache_bytes >> 10)};
    tally_status_t st = tally_shape_derive(nodes, 0, entries, &group);
    free(entries);
    if (st != TALLY_SUCCESS)
        return INFINITY;
    tally_cost_t c = tally_cost_make(cost->model, &group, (size_t)bytes);
    c.link_share = share;
    c.cheapest = cost->cheapest;
    double best = cost->cheapest(&c);
    tally_shape_free(&group);
    return best;
}

double tally_hier_predict_kind(const tally_cost_t *cost, tally_shard_kind_t kind)
{
    const tally_shape_t *shape = cost->shape;
    const int L = shape->max_per_node, S = kind == TALLY_SHARDS_LEADER ? 1 : L;
    const double intra = tally_shm_phases_predict(cost, S);
    const double t = tally_cost_call(cost);
    /* A rank of a node with fewer ranks serves several shards' groups.
     * The groups of a node send at once through its network interface:
     * they share its bandwidth, and their latencies are counted one after
     * another, which leaves small vectors to hier_leader. */
    const int rounds = (S + shape->min_per_node - 1) / shape->min_per_node;
    const int share = S < shape->min_per_node ? S : shape->min_per_node;
    const double n = cost->bytes;
    const double across = rounds * across_nodes(cost, n / S, share) +
                          (share - 1) * across_nodes(cost, 0.0, 1);
    if (shape->nodes > 2)
        return t + intra + across;
    /* Two nodes: the exchange streams under the intra-node rounds, so the
     * slower of the two counts, plus one unit of the other to fill and
     * drain the pipeline. */
    const double chunks = ceil(n / (double)cost->model->shm_chunk);
    const double units = chunks < STREAM_UNITS ? chunks : STREAM_UNITS;
    return t + fmax(intra, across) + fmin(intra, across) / units;
}

static double hier_predict(const tally_cost_t *cost)
{
    return tally_hier_predict_kind(cost, TALLY_SHARDS_PER_RANK);
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
