/* node_shards.c - the engine behind shm, hier and hier_leader (see
 * node_shards.h).
 *
 * The vector is cut into S contiguous shards; local rank l of a node of L
 * ranks owns the shards s with s mod L = l.  Rounds move one piece of every
 * shard (TALLY_SHM_CHUNK / S bytes) through one window set:
 *   reduce-scatter, round r:
 *     publish  copy the pieces of the shards others own into l's set
 *     barrier
 *     reduce   each owned piece: recvbuf = l's own contribution op those of
 *              the other local ranks in rank order (from their sets)
 *   across nodes (hier, hier_leader): the rounds go in units; on two
 *     nodes each owned shard's part of a unit is exchanged with its owner
 *     on the other node, streamed under the next units' rounds; on more, it
 *     is allreduced in place on its group by a flat algorithm, one unit
 *     (at most 16) after another
 *   allgather, round r:
 *     publish  copy the owned pieces into l's set
 *     barrier
 *     collect  copy the pieces of the shards others own from their sets
 * On one node (shm) a round does both halves, the reduced blocks copied into
 * the set from the L1 cache.  Every element is reduced in one place per
 * node, in one order, then by a flat algorithm that gives identical bits on
 * its group, and only copied after that, so every rank ends with the same
 * bits.  Consecutive rounds, in this call or the next, alternate between
 * the two sets: a rank writes a set only after the barrier of the round in
 * between, which no rank enters before it has finished reading that set,
 * so a set is never overwritten while being read.
 *
 * Measured on the emulated 2 x 2 cluster (1 Gbit, medians of 9 calls),
 * before the stream: an allreduce across nodes per round (256 KiB) stalled
 * often with four ranks sharing two cores (64 MiB: 953 ms, best 622); one
 * per whole shard was steadier (728 ms) but slow for short vectors (4 MiB:
 * 53 ms); 16 units gave 35 ms at 4 MiB (the wire's 33.5), 171 at 16 MiB,
 * 769 at 64 MiB, the wire idle while the node worked.  Streamed: 146 ms at
 * 16 MiB, 572 at 64 MiB (the wire's 134 and 537). */
#include "node_shards.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/comm.h"
#include "../core/log.h"
#include "../reduce/reduce.h"
#include "../transport/p2p.h"
#include "../transport/shm.h"

extern const tally_algo_t tally_algo_ring;

/* Reduced blocks are copied into the window while still in the L1 cache. */
#define FUSE_BYTES ((size_t)16 << 10)
/* At most this many allreduces across nodes per owned shard and call. */
#define ACROSS_UNITS 16

static int shard_count(const tally_comm_t *comm, tally_shard_kind_t kind)
{
    return kind == TALLY_SHARDS_LEADER ? 1 : comm->shape.max_per_node;
}

static void free_groups(tally_node_shards_t *ns)
{
    if (!ns)
        return;
    for (int s = 0; s < ns->shards; s++)
        tally_comm_destroy(ns->cross[s]);
    free(ns->cross);
    free(ns);
}

/* The groups of `kind`: for each shard, the owning rank of every node. */
static tally_status_t make_groups(tally_comm_t *comm, tally_shard_kind_t kind,
                                  tally_node_shards_t **out)
{
    const int S = shard_count(comm, kind);
    const int L = comm->shape.local_size, l = comm->shape.local_rank;
    tally_node_shards_t *ns = calloc(1, sizeof *ns);
    if (!ns)
        return TALLY_ERR_NO_MEMORY;
    ns->shards = S;
    ns->cross = calloc((size_t)S, sizeof *ns->cross);
    if (!ns->cross) {
        free(ns);
        return TALLY_ERR_NO_MEMORY;
    }
    tally_status_t st = TALLY_SUCCESS;
    if (comm->shape.nodes > 1) {
        /* Every rank walks the shards in the same order, so a rank in
         * several groups (on a node with fewer ranks) never waits for a
         * group whose members wait for it. */
        for (int s = 0; s < S && st == TALLY_SUCCESS; s++) {
            const bool member = s % L == l;
            MPI_Comm group = MPI_COMM_NULL;
            int rc = PMPI_Comm_split(comm->mpi, member ? 0 : MPI_UNDEFINED, comm->shape.node,
                                     &group);
            if (rc != MPI_SUCCESS) {
                tally_log_mpi_error(comm, rc, "PMPI_Comm_split", __FILE__, __LINE__);
                st = TALLY_ERR_MPI;
                break;
            }
            if (member) {
                st = tally_comm_create_nested(group, comm, &ns->cross[s]);
                PMPI_Comm_free(&group);
            }
        }
    }
    if (st != TALLY_SUCCESS) {
        free_groups(ns);
        return st;
    }
    *out = ns;
    return TALLY_SUCCESS;
}

void tally_node_shards_release(tally_comm_t *comm)
{
    for (int k = 0; k < TALLY_SHARDS_KINDS; k++) {
        free_groups(comm->shards[k]);
        comm->shards[k] = NULL;
    }
    tally_shm_destroy(comm->shm);
    comm->shm = NULL;
}

/* The window and the groups of `kind`, made at first use.  Collective:
 * every rank reaches it in the same call because every rank chose the same
 * algorithm.  TALLY_ERR_UNSUPPORTED: they cannot be made, on some rank. */
static tally_status_t get_resources(tally_comm_t *comm, tally_shard_kind_t kind,
                                    tally_node_shards_t **out)
{
    if (comm->shm_unavailable)
        return TALLY_ERR_UNSUPPORTED;
    if (comm->shm && comm->shards[kind]) {
        *out = comm->shards[kind];
        return TALLY_SUCCESS;
    }
    tally_shm_t *shm = comm->shm;
    tally_node_shards_t *ns = NULL;
    tally_status_t st = TALLY_SUCCESS;
    if (!shm)
        st = tally_shm_create(comm->mpi, comm->config.shm_chunk,
                              comm->shape.oversubscription > 1.0, &shm);
    if (st == TALLY_SUCCESS)
        st = make_groups(comm, kind, &ns);
    int ok = st == TALLY_SUCCESS, all_ok = 0;
    int rc = PMPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, comm->mpi);
    if (rc != MPI_SUCCESS || !all_ok) {
        free_groups(ns);
        if (shm != comm->shm)
            tally_shm_destroy(shm);
    }
    if (rc != MPI_SUCCESS) {
        tally_log_mpi_error(comm, rc, "PMPI_Allreduce", __FILE__, __LINE__);
        return TALLY_ERR_MPI;
    }
    if (!all_ok) {
        tally_node_shards_release(comm);
        comm->shm_unavailable = true;
        TALLY_LOG(comm, TALLY_LOG_WARN,
                  "no shared window or node groups could be made (%s here); "
                  "shm, hier and hier_leader run the point-to-point ring on this "
                  "communicator",
                  ok ? "another rank failed" : tally_strerror(st));
        return TALLY_ERR_UNSUPPORTED;
    }
    comm->shm = shm;
    comm->shards[kind] = ns;
    *out = ns;
    return TALLY_SUCCESS;
}

/* acc = own contribution op those of the other local ranks in rank order,
 * for `count` elements at byte offset `off` of the chunk.  The own part
 * comes first because acc may be `send` (in place).  All ops are
 * commutative; the order only has to be fixed, since each element is
 * reduced here alone. */
static void reduce_shard(const tally_algo_args_t *args, const tally_shm_t *shm, unsigned set,
                         const char *send, char *acc, size_t off, size_t count)
{
    const int L = shm->local_size, l = shm->local_rank;
    const char *in = send;
    for (int q = 0; q < L; q++) {
        if (q == l)
            continue;
        tally_reduce(acc, in, tally_shm_data(shm, q, set) + off, count, args->dtype, args->op);
        in = acc;
    }
    if (in == send && acc != send) /* alone on the node */
        memcpy(acc, send, count * args->elem_size);
}

/* The layout of one call: the vector cut into S contiguous shards; round r
 * moves the r-th piece of every shard through one window set, piece s at
 * byte s * piece * es of the set. */
typedef struct layout {
    size_t n, shards, piece, es;
} layout_t;

static size_t shard_off(const layout_t *y, size_t s)
{
    return tally_block_offset(y->n, y->shards, s);
}

/* Elements of shard s in round r (0 past its end), and where they start. */
static size_t piece_len(const layout_t *y, size_t s, size_t r, size_t *first)
{
    size_t count = tally_block_count(y->n, y->shards, s), lo = r * y->piece;
    *first = shard_off(y, s) + lo;
    return lo >= count ? 0 : (count - lo < y->piece ? count - lo : y->piece);
}

static char *slot(const tally_shm_t *shm, int local, unsigned set, const layout_t *y, size_t s)
{
    return tally_shm_data(shm, local, set) + s * y->piece * y->es;
}

/* Copies round r's pieces between buf and window set `set`: into this
 * rank's slots (publish) the shards it owns (`owned`) or the others; out
 * of the owners' slots (collect) the shards others own. */
static void publish(const tally_shm_t *shm, unsigned set, const layout_t *y, size_t r,
                    const char *buf, bool owned)
{
    const int L = shm->local_size, l = shm->local_rank;
    for (size_t s = 0; s < y->shards; s++) {
        size_t first, k = piece_len(y, s, r, &first);
        if (k > 0 && ((int)(s % (size_t)L) == l) == owned)
            memcpy(slot(shm, l, set, y, s), buf + first * y->es, k * y->es);
    }
}

static void collect(const tally_shm_t *shm, unsigned set, const layout_t *y, size_t r,
                    char *buf)
{
    const int L = shm->local_size, l = shm->local_rank;
    for (size_t s = 0; s < y->shards; s++) {
        size_t first, k = piece_len(y, s, r, &first);
        int owner = (int)(s % (size_t)L);
        if (k > 0 && owner != l)
            memcpy(buf + first * y->es, slot(shm, owner, set, y, s), k * y->es);
    }
}

/* Round r of the reduce-scatter: publish, barrier, reduce the owned pieces
 * into recvbuf.  On one node (`finish`), each reduced block is completed
 * and copied into the window from the L1 cache, then collected. */
static void reduce_round(const tally_algo_args_t *args, tally_shm_t *shm, unsigned set,
                         const layout_t *y, size_t r, bool finish, MPI_Comm progress)
{
    const int L = shm->local_size, l = shm->local_rank;
    const char *send = args->sendbuf;
    char *recv = args->recvbuf;
    if (L > 1) {
        publish(shm, set, y, r, send, false);
        tally_shm_barrier(shm, progress);
    }
    const size_t step = FUSE_BYTES / y->es ? FUSE_BYTES / y->es : 1;
    for (size_t s = (size_t)l; s < y->shards; s += (size_t)L) {
        size_t first, k = piece_len(y, s, r, &first);
        for (size_t i = 0; i < k; i += step) {
            size_t c = k - i < step ? k - i : step, o = (first + i) * y->es;
            reduce_shard(args, shm, set, send + o, recv + o, (s * y->piece + i) * y->es, c);
            if (finish) {
                tally_algo_finish(args, recv + o, c);
                if (L > 1)
                    memcpy(slot(shm, l, set, y, s) + i * y->es, recv + o, c * y->es);
            }
        }
    }
    if (finish && L > 1) {
        tally_shm_barrier(shm, progress);
        collect(shm, set, y, r, recv);
    }
}

static tally_op_t across_op(const tally_algo_args_t *args)
{
    return args->op == TALLY_AVG ? TALLY_SUM : args->op;
}

/* The reduce-scatter and allgather rounds [r0, r1) of one unit; MPI is
 * polled on `progress` between rounds and while waiting. */
static void reduce_unit(const tally_algo_args_t *args, tally_shm_t *shm, const layout_t *y,
                        size_t r0, size_t r1, MPI_Comm progress)
{
    for (size_t r = r0; r < r1; r++) {
        reduce_round(args, shm, tally_shm_next_set(shm), y, r, false, progress);
        tally_shm_progress(progress);
    }
}

static void gather_unit(tally_shm_t *shm, const layout_t *y, size_t r0, size_t r1, char *recv,
                        MPI_Comm progress)
{
    for (size_t r = r0; shm->local_size > 1 && r < r1; r++) {
        unsigned set = tally_shm_next_set(shm);
        publish(shm, set, y, r, recv, true);
        tally_shm_barrier(shm, progress);
        collect(shm, set, y, r, recv);
        tally_shm_progress(progress);
    }
}

/* Elements of shard s in rounds [r0, r1), and where they start; 0 past
 * the shard's end. */
static size_t unit_part(const layout_t *y, size_t s, size_t r0, size_t r1, size_t *first)
{
    const size_t shard = tally_block_count(y->n, y->shards, s), lo = r0 * y->piece;
    *first = shard_off(y, s) + lo;
    if (lo >= shard)
        return 0;
    return (r1 * y->piece < shard ? r1 * y->piece : shard) - lo;
}

/* Two nodes: each owned shard's part of a unit is exchanged with its owner
 * on the other node and reduced in node order, so both ends get the same
 * bits.  The exchanges stream: unit u's is in flight while the node
 * reduce-scatters units u + 1 .. u + STREAM_LAG, and unit u is allgathered
 * after that.  Every local rank runs the same sequence of window rounds,
 * so the sets stay in step, and polls MPI while it waits in the window,
 * since its sends may only move when it does.  Messages stay below Open
 * MPI's TCP eager limit (64 KiB with its header): a larger one waits for a
 * rendezvous reply that queues behind the other direction's data (2 x 2
 * nodes, 1 Gbit: 64 MiB in 623 ms with 256 KiB messages, 572 with 63 KiB;
 * the wire's minimum is 537). */
#define STREAM_UNITS 32
#define STREAM_LAG 4
#define STREAM_SEGMENT ((size_t)63 << 10)
#define STREAM_TAG 0x7a12

typedef struct stream {
    const tally_algo_args_t *args;
    tally_node_shards_t *ns;
    const layout_t *y;
    size_t rounds, per_unit;
    size_t unit_bytes;        /* the owned shards' part of a unit, at most */
    char *incoming;           /* [STREAM_LAG + 1][unit_bytes] */
    MPI_Request *req;         /* [STREAM_LAG + 1][max_req] */
    size_t max_req;
    int nreq[STREAM_LAG + 1]; /* requests posted in each slot */
} stream_t;

/* The rounds of unit u. */
static void unit_rounds(const stream_t *x, size_t u, size_t *r0, size_t *r1)
{
    *r0 = u * x->per_unit;
    *r1 = *r0 + x->per_unit < x->rounds ? *r0 + x->per_unit : x->rounds;
}

/* Posts unit u's exchanges into slot u mod (STREAM_LAG + 1). */
static tally_status_t stream_post(stream_t *x, size_t u)
{
    const tally_shm_t *shm = x->args->comm->shm;
    const size_t k = u % (STREAM_LAG + 1), es = x->y->es;
    char *incoming = x->incoming + k * x->unit_bytes, *recv = x->args->recvbuf;
    MPI_Request *req = x->req + k * x->max_req;
    size_t r0, r1;
    unit_rounds(x, u, &r0, &r1);
    x->nreq[k] = 0;
    for (size_t s = (size_t)shm->local_rank; s < x->y->shards; s += (size_t)shm->local_size) {
        size_t first, bytes = unit_part(x->y, s, r0, r1, &first) * es;
        tally_comm_t *g = x->ns->cross[s];
        const int peer = 1 - g->rank;
        for (size_t off = 0; off < bytes; off += STREAM_SEGMENT) {
            int n = (int)(bytes - off < STREAM_SEGMENT ? bytes - off : STREAM_SEGMENT);
            TALLY_MPI_CHECK(g, PMPI_Irecv(incoming + off, n, MPI_BYTE, peer, STREAM_TAG,
                                          g->mpi, &req[x->nreq[k]++]));
            TALLY_MPI_CHECK(g, PMPI_Isend(recv + first * es + off, n, MPI_BYTE, peer,
                                          STREAM_TAG, g->mpi, &req[x->nreq[k]++]));
        }
        incoming += bytes;
    }
    return TALLY_SUCCESS;
}

/* Waits for unit u's exchanges and reduces them: node 0's part first. */
static tally_status_t stream_complete(stream_t *x, size_t u)
{
    const tally_algo_args_t *args = x->args;
    const tally_shm_t *shm = args->comm->shm;
    const size_t k = u % (STREAM_LAG + 1), es = x->y->es;
    const char *incoming = x->incoming + k * x->unit_bytes;
    char *recv = args->recvbuf;
    size_t r0, r1;
    unit_rounds(x, u, &r0, &r1);
    TALLY_MPI_CHECK(args->comm, PMPI_Waitall(x->nreq[k], x->req + k * x->max_req,
                                             MPI_STATUSES_IGNORE));
    for (size_t s = (size_t)shm->local_rank; s < x->y->shards; s += (size_t)shm->local_size) {
        size_t first, count = unit_part(x->y, s, r0, r1, &first);
        char *part = recv + first * es;
        if (x->ns->cross[s]->rank == 0)
            tally_reduce(part, part, incoming, count, args->dtype, across_op(args));
        else
            tally_reduce(part, incoming, part, count, args->dtype, across_op(args));
        tally_algo_finish(args, part, count);
        incoming += count * es;
    }
    return TALLY_SUCCESS;
}

static tally_status_t stream_two_nodes(const tally_algo_args_t *args, tally_node_shards_t *ns,
                                       const layout_t *y, size_t rounds)
{
    tally_comm_t *comm = args->comm;
    tally_shm_t *shm = comm->shm;
    const size_t L = (size_t)shm->local_size, l = (size_t)shm->local_rank;
    const size_t owned = (y->shards - l + L - 1) / L;
    stream_t x = {.args = args, .ns = ns, .y = y, .rounds = rounds};
    x.per_unit = (rounds + STREAM_UNITS - 1) / STREAM_UNITS;
    const size_t units = (rounds + x.per_unit - 1) / x.per_unit;
    const size_t part_bytes = x.per_unit * y->piece * y->es;
    x.unit_bytes = part_bytes * owned;
    x.max_req = 2 * owned * ((part_bytes + STREAM_SEGMENT - 1) / STREAM_SEGMENT);
    /* A rank that owns no shard (hier_leader) only takes part in the rounds. */
    if (owned) {
        x.incoming = tally_comm_scratch(comm, (STREAM_LAG + 1) * x.unit_bytes);
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
            unit_rounds(&x, u, &r0, &r1);
            reduce_unit(args, shm, y, r0, r1, comm->mpi);
            st = stream_post(&x, u);
        }
        if (st == TALLY_SUCCESS && u >= STREAM_LAG) {
            st = stream_complete(&x, u - STREAM_LAG);
            unit_rounds(&x, u - STREAM_LAG, &r0, &r1);
            if (st == TALLY_SUCCESS)
                gather_unit(shm, y, r0, r1, args->recvbuf, comm->mpi);
        }
    }
    if (st != TALLY_SUCCESS && x.req)
        for (size_t k = 0; k <= STREAM_LAG; k++)
            tally_p2p_cancel(x.req + k * x.max_req, (size_t)x.nreq[k]);
    free(x.req);
    return st;
}

tally_status_t tally_node_shards_run(const tally_algo_args_t *args, tally_shard_kind_t kind)
{
    tally_comm_t *comm = args->comm;
    tally_node_shards_t *ns;
    tally_status_t st = get_resources(comm, kind, &ns);
    if (st == TALLY_ERR_UNSUPPORTED)
        return tally_algo_ring.run(args);
    TALLY_CHECK(st);
    tally_shm_t *shm = comm->shm;
    const int L = shm->local_size, l = shm->local_rank;
    layout_t y = {args->count, (size_t)ns->shards,
                  shm->chunk / ((size_t)ns->shards * args->elem_size), args->elem_size};
    if (y.piece == 0)
        y.piece = 1;
    /* Shard 0 is the largest. */
    const size_t rounds = (tally_block_count(y.n, y.shards, 0) + y.piece - 1) / y.piece;
    if (comm->shape.nodes == 1) {
        for (size_t r = 0; r < rounds; r++)
            reduce_round(args, shm, tally_shm_next_set(shm), &y, r, true, MPI_COMM_NULL);
        return TALLY_SUCCESS;
    }
    if (comm->shape.nodes == 2)
        return stream_two_nodes(args, ns, &y, rounds);
    /* On three nodes or more, the rounds go in at most ACROSS_UNITS units,
     * each reduce-scattered, allreduced across nodes (one call per owned
     * shard) and allgathered before the next: short vectors keep a pipeline
     * of small units, long ones synchronise with the other nodes a bounded
     * number of times. */
    const size_t per_unit = (rounds + ACROSS_UNITS - 1) / ACROSS_UNITS;
    for (size_t r0 = 0; r0 < rounds; r0 += per_unit) {
        const size_t r1 = r0 + per_unit < rounds ? r0 + per_unit : rounds;
        reduce_unit(args, shm, &y, r0, r1, MPI_COMM_NULL);
        for (size_t s = (size_t)l; s < y.shards; s += (size_t)L) {
            size_t first, count = unit_part(&y, s, r0, r1, &first);
            if (count == 0) /* the same on every node: the layout is global */
                continue;
            char *part = (char *)args->recvbuf + first * y.es;
            TALLY_CHECK(tally_allreduce(TALLY_IN_PLACE, part, count, args->dtype,
                                        across_op(args), ns->cross[s]));
            tally_algo_finish(args, part, count);
        }
        gather_unit(shm, &y, r0, r1, args->recvbuf, MPI_COMM_NULL);
    }
    return TALLY_SUCCESS;
}

/* --- the cost model ---------------------------------------------------------- */

/* The cheapest flat algorithm for `bytes` among one rank per node, with
 * each node's link shared by `share` senders. */
static double across_nodes(const tally_cost_t *cost, double bytes, int share)
{
    const int nodes = cost->shape->nodes;
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
    double best = INFINITY;
    for (const tally_algo_t *const *a = tally_algo_registry; *a; a++) {
        if (!(*a)->predict || !tally_algo_fits_shape(*a, &group, NULL))
            continue;
        double t = (*a)->predict(&c);
        if (t < best)
            best = t;
    }
    tally_shape_free(&group);
    return best;
}

double tally_node_shards_predict(const tally_cost_t *cost, tally_shard_kind_t kind)
{
    const tally_shape_t *shape = cost->shape;
    const tally_model_t *m = cost->model;
    const int L = shape->max_per_node, S = kind == TALLY_SHARDS_LEADER ? 1 : L;
    const double n = cost->bytes;
    const int most_owned = (S + L - 1) / L, least_owned = S / L;
    /* The fullest node's intra-node phases, each as slow as its busiest rank. */
    double intra;
    const double chunks = ceil(n / (double)m->shm_chunk);
    if (L > 1) {
        double moved = n * (1.0 - (double)least_owned / S);
        double owned = n * most_owned / S;
        intra = 2.0 * tally_cost_copy(cost, moved) + (L - 1) * tally_cost_reduce(cost, owned) +
                tally_cost_copy(cost, owned) + 2.0 * chunks * tally_cost_sync(cost);
    } else {
        intra = tally_cost_copy(cost, n);
    }
    double t = tally_cost_call(cost);
    if (shape->nodes == 1)
        return t + intra;
    /* A rank of a node with fewer ranks serves several shards' groups.
     * The groups of a node send at once through its network interface:
     * they share its bandwidth, and their latencies are counted one after
     * another (2 x 2 emulated nodes, 512 B: 143 us through hier, 110
     * through hier_leader), which leaves small vectors to hier_leader. */
    const int rounds = (S + shape->min_per_node - 1) / shape->min_per_node;
    const int share = S < shape->min_per_node ? S : shape->min_per_node;
    const double across = rounds * across_nodes(cost, n / S, share) +
                          (share - 1) * across_nodes(cost, 0.0, 1);
    if (shape->nodes > 2)
        return t + intra + across;
    /* Two nodes: the exchange streams under the intra-node rounds, so the
     * slower of the two counts, plus one unit of the other to fill and
     * drain the pipeline. */
    const double units = chunks < STREAM_UNITS ? chunks : STREAM_UNITS;
    return t + fmax(intra, across) + fmin(intra, across) / units;
}
