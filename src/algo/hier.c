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
 * made with the communicator (core/groups.h).  The rounds go in units
 * (at most 32), and each owned shard's part of a unit crosses the nodes
 * as a job of non-blocking steps, streamed: unit u's steps run while the
 * node reduce-scatters units u + 1 .. u + STREAM_LAG (they advance between
 * window rounds, while a rank waits in the node's barrier for a local one,
 * and whenever a message of an awaited unit completes), and unit u is
 * finished and allgathered after that.
 *   two nodes (exchange): the part goes to its owner on the other node and
 *     is reduced in node order, so both ends get the same bits;
 *   three nodes or more (ring): the part is cut into N blocks passed round
 *     the group, N-1 reduce-scatter and N-1 allgather steps; each block is
 *     reduced by one rank and copied by the others;
 *   where the model predicts the ring slower (latency-bound: many nodes,
 *     small shards; "blocking"), each unit (at most ACROSS_UNITS) is
 *     allreduced on the group by the algorithm its rule table picks
 *     (recursive doubling, ...) through the internal entry, one unit after
 *     another.  The choice depends on shape, model and size only, which
 *     every rank holds alike.
 * Ring across 3 nodes for one part, blocks a b c, "a0" node 0's part of a,
 * "A" finished (the reduce-scatter step s sends block r - s on):
 *
 *            node 0        node 1        node 2
 *   RS s=0   a0 b0 c20     a01 b1 c1     a2 b12 c2
 *   RS s=1   a0 B  c20     a01 b1 C      A  b12 c2
 *   AG s=0   A  B  c20     a01 B  C      A  b12 C
 *   AG s=1   A  B  C       A   B  C      A  B   C
 * Uneven nodes work (a rank of a smaller node serves several groups) and
 * so does any placement: groups follow node membership, not rank numbers.
 *
 * Cost, n bytes, N nodes, L ranks per node: intra-node 2 (L-1)/L n c +
 * (L-1)/L n gamma + 2 sync per chunk.  Across nodes, on two nodes, alpha
 * + (n/L) L beta (the L groups share each node's link), overlapped with
 * the intra-node work; on more, streamed, the ring on n/L bytes,
 * 2 (N-1) alpha + 2 (N-1)/N (n/L) L beta, i.e. 2 (N-1)/N n beta through
 * each node's link against the flat ring's 2 (P-1)/P n beta per rank with
 * L ranks per link, overlapped the same way; blocking, the group's
 * algorithm added to the intra-node work.
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
#include "../select/select.h"
#include "../transport/p2p.h"
#include "../transport/window.h"
#include "algo.h"
#include "compressed.h"
#include "node.h"

/* At most this many blocking allreduces across nodes per owned shard and
 * call (the blocking mode): short vectors keep a pipeline of small units,
 * long ones synchronise with the other nodes a bounded number of times. */
#define ACROSS_UNITS 16

/* The streamed step across nodes (see the top).  Messages are cut at
 * TALLY_NETWORK_SEGMENT (below MPI's TCP eager limit).  A ring
 * of 2 (N-1) dependent steps per unit needs many units in flight; each
 * unit in flight has its own tag lane. */
#define STREAM_UNITS 32
#define STREAM_LAG 7
#define STREAM_SLOTS (STREAM_LAG + 1)
#define STREAM_SEGMENT TALLY_NETWORK_SEGMENT
_Static_assert(STREAM_SLOTS <= TALLY_TAG_LANES, "a lane per unit in flight");

typedef enum across_mode {
    ACROSS_EXCHANGE, /* two nodes: exchange the part, reduce in node order */
    ACROSS_RING,     /* N nodes: ring reduce-scatter + allgather of the part */
    ACROSS_BLOCKING  /* unit by unit, the group's own algorithm */
} across_mode_t;

/* One owned shard's part of one unit on its way across the nodes: a
 * schedule of steps, each a set of non-blocking messages to and from the
 * group's ranks, posted when the step before it completed. */
typedef struct job {
    char *part;            /* the unit's part of the shard, in recvbuf */
    size_t count;          /* its elements */
    const tally_comm_t *g; /* the shard's group, one rank per node */
    char *incoming;        /* room for what a step reduces */
    char *encoded;         /* a compressed exchange: this rank's encoding of the part */
    MPI_Request *req;
    size_t nreq;
    int step, steps;       /* the step in flight; steps: done */
    int lane;              /* the unit's slot: its messages' lane */
} job_t;

typedef struct stream {
    tally_call_t *call;
    tally_shm_t *shm;
    const tally_shard_groups_t *groups;
    const tally_window_layout_t *y;
    across_mode_t mode;
    size_t rounds, per_unit, units;
    size_t owned;              /* shards this rank owns */
    size_t room;               /* bytes of a job's incoming room (and as many encoded) */
    bool coded;                /* the exchange carries the call's codec (compressed.h) */
    size_t max_req;            /* requests of a job's step, at most */
    job_t *jobs;               /* [STREAM_SLOTS][owned] */
    size_t open, started;      /* units [open, started) are in flight */
    tally_status_t status;     /* the first error of advance() */
} stream_t;

static tally_op_t across_op(const tally_call_t *call)
{
    return call->op == TALLY_AVG ? TALLY_SUM : call->op;
}

/* Ring arithmetic over the part's N blocks. */
static size_t block_of(int b, int N)
{
    return (size_t)((b % N + N) % N);
}

static char *block_ptr(const job_t *j, size_t es, size_t b)
{
    return j->part + tally_block_offset(j->count, (size_t)j->g->size, b) * es;
}

static size_t block_len(const job_t *j, size_t b)
{
    return tally_block_count(j->count, (size_t)j->g->size, b);
}

/* Posts the receive of rbytes from `from` and the send of sbytes to `to`,
 * each in segments (receives first). */
static tally_status_t post_pair(stream_t *x, job_t *j, const char *sbuf, size_t sbytes, int to,
                                char *rbuf, size_t rbytes, int from)
{
    /* Segment by segment, a receive and then a send, so that a rendezvous
     * send finds its receive posted as early as the peer can. */
    for (size_t off = 0; off < rbytes || off < sbytes; off += STREAM_SEGMENT) {
        if (off < rbytes) {
            size_t n = rbytes - off < STREAM_SEGMENT ? rbytes - off : STREAM_SEGMENT;
            TALLY_CHECK(tally_p2p_irecv(x->call, j->g->mpi, j->lane, rbuf + off, n, from,
                                        &j->req[j->nreq++]));
        }
        if (off < sbytes) {
            size_t n = sbytes - off < STREAM_SEGMENT ? sbytes - off : STREAM_SEGMENT;
            TALLY_CHECK(tally_p2p_isend(x->call, j->g->mpi, j->lane, sbuf + off, n, to,
                                        &j->req[j->nreq++]));
        }
    }
    return TALLY_SUCCESS;
}

static tally_status_t post_step(stream_t *x, job_t *j)
{
    const size_t es = x->y->es;
    const int N = j->g->size, r = j->g->rank, k = j->step;
    j->nreq = 0;
    if (x->mode == ACROSS_EXCHANGE && x->coded) {
        const size_t bytes = tally_compressed_part_bytes(x->call, j->count);
        return post_pair(x, j, j->encoded, bytes, 1 - r, j->incoming, bytes, 1 - r);
    }
    if (x->mode == ACROSS_EXCHANGE)
        return post_pair(x, j, j->part, j->count * es, 1 - r, j->incoming, j->count * es,
                         1 - r);
    const int next = (r + 1) % N, prev = (r + N - 1) % N;
    if (k < N - 1) { /* reduce-scatter: pass block r - k on, take r - k - 1 */
        size_t out = block_of(r - k, N), in = block_of(r - k - 1, N);
        return post_pair(x, j, block_ptr(j, es, out), block_len(j, out) * es, next,
                         j->incoming, block_len(j, in) * es, prev);
    }
    /* allgather: pass finished block r + 1 - k' on, take r - k' */
    const int a = k - (N - 1);
    size_t out = block_of(r + 1 - a, N), in = block_of(r - a, N);
    return post_pair(x, j, block_ptr(j, es, out), block_len(j, out) * es, next,
                     block_ptr(j, es, in), block_len(j, in) * es, prev);
}

/* The work of a step whose messages all completed. */
static tally_status_t complete_step(stream_t *x, job_t *j)
{
    const tally_call_t *call = x->call;
    const size_t es = x->y->es;
    if (x->mode == ACROSS_EXCHANGE && x->coded) {
        /* Both encodings decoded in node order: the same bits on both ends. */
        const size_t bytes = tally_compressed_part_bytes(call, j->count);
        const bool first = j->g->rank == 0;
        TALLY_CHECK(tally_compressed_decode_pair(call, first ? j->encoded : j->incoming,
                                                 first ? j->incoming : j->encoded, bytes,
                                                 j->count, (float *)(void *)j->part));
        tally_call_finish(call, j->part, j->count);
        return TALLY_SUCCESS;
    }
    if (x->mode == ACROSS_EXCHANGE) {
        /* Node 0's part first, so both ends get the same bits. */
        if (j->g->rank == 0)
            tally_call_reduce(call, j->part, j->part, j->incoming, j->count);
        else
            tally_call_reduce(call, j->part, j->incoming, j->part, j->count);
        tally_call_finish(call, j->part, j->count);
        return TALLY_SUCCESS;
    }
    const int N = j->g->size, r = j->g->rank, k = j->step;
    if (k < N - 1) {
        /* Each block is reduced along the ring and finished by one rank
         * only; the allgather copies it, so every rank gets its bits. */
        size_t in = block_of(r - k - 1, N);
        char *acc = block_ptr(j, es, in);
        tally_call_reduce(call, acc, j->incoming, acc, block_len(j, in));
        if (k == N - 2)
            tally_call_finish(call, acc, block_len(j, in));
    }
    return TALLY_SUCCESS;
}

/* Moves job j on as far as its messages allow, without waiting. */
static tally_status_t advance_job(stream_t *x, job_t *j)
{
    while (j->step < j->steps) {
        bool done;
        TALLY_CHECK(tally_p2p_testall(x->call, j->req, j->nreq, &done));
        if (!done)
            return TALLY_SUCCESS;
        TALLY_CHECK(complete_step(x, j));
        if (++j->step < j->steps)
            TALLY_CHECK(post_step(x, j));
    }
    return TALLY_SUCCESS;
}

static job_t *unit_jobs(stream_t *x, size_t u)
{
    return x->jobs + (u % STREAM_SLOTS) * x->owned;
}

/* Between window rounds: every unit in flight moves on, without waiting. */
static void advance_all(void *ctx)
{
    stream_t *x = ctx;
    for (size_t u = x->open; u < x->started && x->status == TALLY_SUCCESS; u++)
        for (size_t i = 0; i < x->owned && x->status == TALLY_SUCCESS; i++)
            x->status = advance_job(x, &unit_jobs(x, u)[i]);
}

/* Until unit v's jobs are done: each time one of their messages completes,
 * every unit in flight moves on, so the later units' steps keep the wire
 * busy while this one finishes. */
static tally_status_t wait_unit(stream_t *x, size_t v)
{
    for (size_t i = 0; i < x->owned; i++) {
        job_t *j = &unit_jobs(x, v)[i];
        for (;;) {
            advance_all(x);
            TALLY_CHECK(x->status);
            if (j->step >= j->steps)
                break;
            TALLY_CHECK(tally_p2p_waitany(x->call, j->req, j->nreq));
        }
    }
    return TALLY_SUCCESS;
}

/* Starts unit u's jobs: its parts of the owned shards, step 0 posted. */
static tally_status_t start_unit(stream_t *x, size_t u)
{
    const size_t L = (size_t)x->shm->local_size, l = (size_t)x->shm->local_rank;
    size_t r0, r1, i = 0;
    tally_window_unit_rounds(x->rounds, x->per_unit, u, &r0, &r1);
    job_t *jobs = unit_jobs(x, u);
    for (size_t s = l; s < x->y->shards; s += L, i++) {
        size_t first, count = tally_window_span(x->y, s, r0, r1, &first);
        job_t *j = &jobs[i];
        const tally_comm_t *g = x->groups->cross[s];
        *j = (job_t){
            .part = (char *)x->call->recvbuf + first * x->y->es,
            .count = count,
            .g = g,
            .incoming = j->incoming,
            .encoded = j->encoded,
            .req = j->req,
            .steps = count == 0 ? 0 : x->mode == ACROSS_EXCHANGE ? 1 : 2 * (g->size - 1),
            .lane = (int)(u % STREAM_SLOTS),
        };
        if (j->steps > 0 && x->coded)
            TALLY_CHECK(tally_compressed_encode_part(x->call, (const float *)(void *)j->part,
                                                     count, x->call->codec_offset + first,
                                                     j->encoded));
        if (j->steps > 0)
            TALLY_CHECK(post_step(x, j));
    }
    x->started = u + 1;
    return TALLY_SUCCESS;
}

static void cancel_all(stream_t *x)
{
    for (size_t u = x->open; u < x->started; u++)
        for (size_t i = 0; i < x->owned; i++)
            tally_p2p_cancel(unit_jobs(x, u)[i].req, unit_jobs(x, u)[i].nreq);
}

/* Room for the jobs of STREAM_SLOTS units: a job's incoming room and
 * requests, from the call's scratch and the heap. */
static tally_status_t stream_alloc(stream_t *x, MPI_Request **reqs)
{
    const size_t unit_elems = x->per_unit * x->y->piece, es = x->y->es;
    const size_t nodes = (size_t)x->call->shape->nodes;
    size_t msg = x->mode == ACROSS_EXCHANGE ? unit_elems * es
                                            : tally_block_count(unit_elems, nodes, 0) * es;
    if (x->coded) /* an encoding, each way */
        msg = tally_compressed_part_bytes(x->call, unit_elems);
    x->room = (msg + 63) / 64 * 64;
    x->max_req = 2 * ((msg + STREAM_SEGMENT - 1) / STREAM_SEGMENT);
    const size_t njobs = STREAM_SLOTS * x->owned;
    if (njobs == 0)
        return TALLY_SUCCESS; /* a rank that owns no shard (hier_leader) only works in the window */
    char *room = tally_call_scratch(x->call, njobs * x->room * (x->coded ? 2 : 1));
    x->jobs = calloc(njobs, sizeof *x->jobs);
    *reqs = malloc(njobs * (x->max_req ? x->max_req : 1) * sizeof **reqs);
    if (!room || !x->jobs || !*reqs) {
        free(x->jobs);
        free(*reqs);
        return TALLY_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < njobs; i++) {
        x->jobs[i].incoming = room + i * x->room;
        x->jobs[i].encoded = x->coded ? room + (njobs + i) * x->room : NULL;
        x->jobs[i].req = *reqs + i * x->max_req;
    }
    return TALLY_SUCCESS;
}

/* Every local rank runs the same sequence of window rounds, so the sets
 * stay in step, and polls MPI while it waits in the window, since its
 * sends may only move when it does.  No rank waits for a unit before
 * every rank could have posted its steps: a step needs only the step
 * before it on the previous rank of its group, and every rank reaches
 * each unit's wait in the same order. */
static tally_status_t stream_units(tally_call_t *call, tally_shm_t *shm,
                                   const tally_shard_groups_t *groups,
                                   const tally_window_layout_t *y, across_mode_t mode)
{
    const size_t L = (size_t)shm->local_size, l = (size_t)shm->local_rank;
    stream_t x = {.call = call, .shm = shm, .groups = groups, .y = y, .mode = mode,
                  .coded = call->codec != NULL};
    x.rounds = tally_window_rounds(y);
    x.per_unit = tally_window_per_unit(x.rounds, STREAM_UNITS);
    x.units = tally_window_units(x.rounds, x.per_unit);
    x.owned = l < y->shards ? (y->shards - l + L - 1) / L : 0;
    MPI_Request *reqs = NULL;
    TALLY_CHECK(stream_alloc(&x, &reqs));
    const tally_shm_progress_t progress = {call->mpi, x.owned ? advance_all : NULL, &x};
    tally_status_t st = TALLY_SUCCESS;
    for (size_t u = 0; u < x.units + STREAM_LAG && st == TALLY_SUCCESS; u++) {
        size_t r0, r1;
        if (u < x.units) {
            tally_window_unit_rounds(x.rounds, x.per_unit, u, &r0, &r1);
            double t0 = tally_phase_begin(call);
            tally_window_reduce_scatter(call, shm, y, r0, r1, false, &progress);
            tally_phase_end(call, "intra-node reduce-scatter", t0);
            st = x.status != TALLY_SUCCESS ? x.status : start_unit(&x, u);
        }
        if (st == TALLY_SUCCESS && u >= STREAM_LAG) {
            const size_t v = u - STREAM_LAG;
            double t0 = tally_phase_begin(call);
            st = wait_unit(&x, v);
            tally_phase_end(call, "across nodes: wait", t0);
            if (st == TALLY_SUCCESS) {
                x.open = v + 1;
                tally_window_unit_rounds(x.rounds, x.per_unit, v, &r0, &r1);
                t0 = tally_phase_begin(call);
                tally_window_allgather(call, shm, y, r0, r1, &progress);
                tally_phase_end(call, "intra-node allgather", t0);
                st = x.status;
            }
        }
    }
    if (st != TALLY_SUCCESS && x.jobs)
        cancel_all(&x);
    free(x.jobs);
    free(reqs);
    return st;
}

/* Unit by unit (at most max_units), each owned part allreduced on its
 * group through the internal entry (the group's rule table chooses the
 * algorithm: recursive doubling where latency rules), or, for a compressed
 * call, compressed (algo/compressed.c) at its place in the tensor. */
static tally_status_t units_blocking(tally_call_t *call, tally_shm_t *shm,
                                     const tally_shard_groups_t *groups,
                                     const tally_window_layout_t *y, size_t max_units)
{
    const size_t L = (size_t)shm->local_size, l = (size_t)shm->local_rank;
    const size_t rounds = tally_window_rounds(y);
    const size_t per_unit = tally_window_per_unit(rounds, max_units);
    for (size_t r0 = 0; r0 < rounds; r0 += per_unit) {
        const size_t r1 = r0 + per_unit < rounds ? r0 + per_unit : rounds;
        double t0 = tally_phase_begin(call);
        tally_window_reduce_scatter(call, shm, y, r0, r1, false, NULL);
        tally_phase_end(call, "intra-node reduce-scatter", t0);
        t0 = tally_phase_begin(call);
        for (size_t s = l; s < y->shards; s += L) {
            size_t first, count = tally_window_span(y, s, r0, r1, &first);
            if (count == 0) /* the same on every node: the layout is global */
                continue;
            char *part = (char *)call->recvbuf + first * y->es;
            if (call->codec)
                TALLY_CHECK(tally_call_allreduce_coded(groups->cross[s], TALLY_IN_PLACE, part,
                                                       count, call->dtype, across_op(call),
                                                       call->codec, call->codec_offset + first));
            else
                TALLY_CHECK(tally_call_allreduce(groups->cross[s], TALLY_IN_PLACE, part, count,
                                                 call->dtype, across_op(call)));
            tally_call_finish(call, part, count);
        }
        tally_phase_end(call, "across nodes", t0);
        t0 = tally_phase_begin(call);
        tally_window_allgather(call, shm, y, r0, r1, NULL);
        tally_phase_end(call, "intra-node allgather", t0);
    }
    return TALLY_SUCCESS;
}

static across_mode_t choose_mode(const tally_cost_t *cost, tally_shard_kind_t kind);

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
    /* From the shape, the model and the size: the same on every rank. */
    const tally_cost_t cost =
        tally_select_cost(&call->comm->model, call->shape, call->count * call->elem_size);
    const across_mode_t mode = choose_mode(&cost, kind);
    if (call->codec && mode == ACROSS_EXCHANGE && tally_compressed_streams(call))
        st = stream_units(call, shm, groups, &y, ACROSS_EXCHANGE);
    else if (call->codec) /* each owned shard compressed whole, in one piece */
        st = units_blocking(call, shm, groups, &y, 1);
    else if (mode == ACROSS_BLOCKING)
        st = units_blocking(call, shm, groups, &y, ACROSS_UNITS);
    else
        st = stream_units(call, shm, groups, &y, mode);
    tally_node_window_give(call);
    return st;
}

static tally_status_t hier_run(tally_call_t *call)
{
    return tally_hier_run_kind(call, TALLY_SHARDS_PER_RANK);
}

/* --- the cost model ---------------------------------------------------------- */

extern const tally_algo_t tally_algo_ring;

/* Predicted seconds of a step across nodes among one rank per node, each
 * node's link shared by `share` senders: `algo` on `bytes`, or (NULL) the
 * cheapest flat algorithm, the selection's answer through cost->cheapest. */
static double across_nodes(const tally_cost_t *cost, const tally_algo_t *algo, double bytes,
                           int share)
{
    const int nodes = cost->shape->nodes;
    if (!algo && !cost->cheapest)
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
    double t = algo ? algo->predict(&c) : cost->cheapest(&c);
    tally_shape_free(&group);
    return t;
}

/* Predicted seconds of hier (or hier_leader) with the step across nodes
 * blocking, unit by unit on the group's cheapest algorithm, and streamed
 * under the intra-node rounds (on two nodes the exchange, on more the
 * ring).  A rank of a node with fewer ranks serves several shards' groups.
 * The groups of a node send at once through its network interface: they
 * share its bandwidth, and their latencies are counted one after another,
 * which leaves small vectors to hier_leader. */
static void hier_times(const tally_cost_t *cost, tally_shard_kind_t kind, double *blocking,
                       double *streamed)
{
    const tally_shape_t *shape = cost->shape;
    const int L = shape->max_per_node, S = kind == TALLY_SHARDS_LEADER ? 1 : L;
    const double intra = tally_shm_phases_predict(cost, S);
    const double t = tally_cost_call(cost);
    const int rounds = (S + shape->min_per_node - 1) / shape->min_per_node;
    const int share = S < shape->min_per_node ? S : shape->min_per_node;
    const double n = cost->bytes;
    const double best = rounds * across_nodes(cost, NULL, n / S, share) +
                        (share - 1) * across_nodes(cost, NULL, 0.0, 1);
    const double ring = shape->nodes == 2
                            ? best
                            : rounds * across_nodes(cost, &tally_algo_ring, n / S, share) +
                                  (share - 1) * across_nodes(cost, &tally_algo_ring, 0.0, 1);
    /* Streamed, the slower of the two halves counts, plus one unit of the
     * other to fill and drain the pipeline. */
    const double chunks = ceil(n / (double)cost->model->shm_chunk);
    const double units = chunks < STREAM_UNITS ? chunks : STREAM_UNITS;
    *blocking = t + intra + best;
    *streamed = t + fmax(intra, ring) + fmin(intra, ring) / units;
}

/* Two nodes always stream (the exchange); more stream the ring where the
 * model predicts it no slower than the group's own algorithm unit by unit
 * (recursive doubling and the like win where latency rules). */
static across_mode_t choose_mode(const tally_cost_t *cost, tally_shard_kind_t kind)
{
    if (cost->shape->nodes == 2)
        return ACROSS_EXCHANGE;
    double blocking, streamed;
    hier_times(cost, kind, &blocking, &streamed);
    return streamed <= blocking ? ACROSS_RING : ACROSS_BLOCKING;
}

double tally_hier_predict_kind(const tally_cost_t *cost, tally_shard_kind_t kind)
{
    double blocking, streamed;
    hier_times(cost, kind, &blocking, &streamed);
    return cost->shape->nodes == 2 ? streamed : fmin(blocking, streamed);
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
