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
 *   across nodes (hier, hier_leader): an allreduce in place of the owned
 *     shards' part on its group; the rounds go in at most 16 units, each
 *     reduce-scattered, allreduced across nodes and allgathered in turn
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
 * Measured on the emulated 2 x 2 cluster (1 Gbit, medians of 9 calls): an
 * allreduce across nodes per round (256 KiB) stalled often with four ranks
 * sharing two cores (64 MiB: 953 ms, best 622); one per whole shard was
 * steadier (728 ms) but slow for short vectors (4 MiB: 53 ms); 16 units
 * give 35 ms at 4 MiB (the wire's 33.5), 171 at 16 MiB, 769 at 64 MiB. */
#include "node_shards.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/comm.h"
#include "../core/log.h"
#include "../reduce/reduce.h"
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
                         const layout_t *y, size_t r, bool finish)
{
    const int L = shm->local_size, l = shm->local_rank;
    const char *send = args->sendbuf;
    char *recv = args->recvbuf;
    if (L > 1) {
        publish(shm, set, y, r, send, false);
        tally_shm_barrier(shm);
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
        tally_shm_barrier(shm);
        collect(shm, set, y, r, recv);
    }
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
    layout_t y = {args->count, (size_t)ns->shards, shm->chunk / ((size_t)ns->shards * args->elem_size),
                  args->elem_size};
    if (y.piece == 0)
        y.piece = 1;
    /* Shard 0 is the largest. */
    const size_t rounds = (tally_block_count(y.n, y.shards, 0) + y.piece - 1) / y.piece;
    if (comm->shape.nodes == 1) {
        for (size_t r = 0; r < rounds; r++)
            reduce_round(args, shm, tally_shm_next_set(shm), &y, r, true);
        return TALLY_SUCCESS;
    }
    /* Across nodes, the rounds go in at most ACROSS_UNITS units, each
     * reduce-scattered, allreduced across nodes (one call per owned shard)
     * and allgathered before the next: short vectors keep a pipeline of
     * small units, long ones synchronise with the other nodes a bounded
     * number of times. */
    const tally_op_t across_op = args->op == TALLY_AVG ? TALLY_SUM : args->op;
    char *recv = args->recvbuf;
    const size_t per_unit = (rounds + ACROSS_UNITS - 1) / ACROSS_UNITS;
    for (size_t r0 = 0; r0 < rounds; r0 += per_unit) {
        const size_t r1 = r0 + per_unit < rounds ? r0 + per_unit : rounds;
        for (size_t r = r0; r < r1; r++)
            reduce_round(args, shm, tally_shm_next_set(shm), &y, r, false);
        for (size_t s = (size_t)l; s < y.shards; s += (size_t)L) {
            const size_t shard = tally_block_count(y.n, y.shards, s), lo = r0 * y.piece;
            if (lo >= shard) /* the same on every node: the layout is global */
                continue;
            const size_t count = (r1 * y.piece < shard ? r1 * y.piece : shard) - lo;
            const size_t first = shard_off(&y, s) + lo;
            TALLY_CHECK(tally_allreduce(TALLY_IN_PLACE, recv + first * y.es, count, args->dtype,
                                        across_op, ns->cross[s]));
            tally_algo_finish(args, recv + first * y.es, count);
        }
        for (size_t r = r0; L > 1 && r < r1; r++) {
            unsigned set = tally_shm_next_set(shm);
            publish(shm, set, &y, r, recv, true);
            tally_shm_barrier(shm);
            collect(shm, set, &y, r, recv);
        }
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
    double t = tally_cost_call(cost);
    if (L > 1) {
        double chunks = ceil(n / (double)m->shm_chunk);
        double moved = n * (1.0 - (double)least_owned / S);
        double owned = n * most_owned / S;
        t += 2.0 * tally_cost_copy(cost, moved) +
             (L - 1) * tally_cost_reduce(cost, owned) + tally_cost_copy(cost, owned) +
             2.0 * chunks * tally_cost_sync(cost);
    } else {
        t += tally_cost_copy(cost, n);
    }
    if (shape->nodes > 1) {
        /* A node with fewer ranks runs its shards' groups one after another. */
        const int rounds = (S + shape->min_per_node - 1) / shape->min_per_node;
        const int share = S < shape->min_per_node ? S : shape->min_per_node;
        t += rounds * across_nodes(cost, n / S, share);
    }
    return t;
}
