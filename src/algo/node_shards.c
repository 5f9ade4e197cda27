/* node_shards.c - the engine behind shm, hier and hier_leader (see
 * node_shards.h).
 *
 * One chunk, on a node of L ranks, S shards, local rank l:
 *   publish  copy the shards others own from sendbuf into l's window set
 *   barrier
 *   reduce   for each shard l owns: recvbuf = l's own contribution (from
 *            sendbuf) op those of the other local ranks in rank order
 *            (from their window sets); allreduce it in place on
 *            the shard's group across nodes; copy it into l's window set
 *   barrier
 *   collect  copy the shards others own from their window sets to recvbuf
 * Every shard is reduced in one place per node, in one order, then by a
 * flat algorithm that gives identical bits on its group, and only copied
 * after that, so every rank ends with the same bits.  The next chunk, in
 * this call or the next one, uses the other window set: a rank publishes
 * into a set only after the publish barrier of the chunk in between, which
 * no rank enters before it has finished collecting from that set, so a set
 * is never overwritten while being read. */
#include "node_shards.h"

#include <limits.h>
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

static int shard_count(const tally_comm_t *comm, tally_shard_kind_t kind)
{
    return kind == TALLY_SHARDS_LEADER ? 1 : comm->shape.max_per_node;
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
        for (int s = 0; s < S; s++)
            tally_comm_destroy(ns->cross[s]);
        free(ns->cross);
        free(ns);
        return st;
    }
    *out = ns;
    return TALLY_SUCCESS;
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
    if (rc != MPI_SUCCESS) {
        tally_log_mpi_error(comm, rc, "PMPI_Allreduce", __FILE__, __LINE__);
        free_groups(ns);
        if (shm != comm->shm)
            tally_shm_destroy(shm);
        return TALLY_ERR_MPI;
    }
    if (!all_ok) {
        free_groups(ns);
        if (shm != comm->shm)
            tally_shm_destroy(shm);
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

static tally_status_t run_chunk(const tally_algo_args_t *args, const tally_node_shards_t *ns,
                                tally_shm_t *shm, unsigned set, const char *send, char *recv,
                                size_t m)
{
    const int L = shm->local_size, l = shm->local_rank, S = ns->shards;
    const size_t es = args->elem_size;
    const tally_op_t across_op = args->op == TALLY_AVG ? TALLY_SUM : args->op;
    char *mine = tally_shm_data(shm, l, set);

    if (L > 1) {
        for (int s = 0; s < S; s++)
            if (s % L != l) {
                size_t off = tally_block_offset(m, (size_t)S, (size_t)s) * es;
                memcpy(mine + off, send + off, tally_block_count(m, (size_t)S, (size_t)s) * es);
            }
        tally_shm_barrier(shm);
    }
    for (int s = l; s < S; s += L) {
        size_t k = tally_block_count(m, (size_t)S, (size_t)s);
        size_t off = tally_block_offset(m, (size_t)S, (size_t)s) * es;
        if (k == 0) /* the same on every node: the layout is global */
            continue;
        if (ns->cross[s]) {
            reduce_shard(args, shm, set, send + off, recv + off, off, k);
            TALLY_CHECK(tally_allreduce(TALLY_IN_PLACE, recv + off, k, args->dtype, across_op,
                                        ns->cross[s]));
            tally_algo_finish(args, recv + off, k);
            if (L > 1)
                memcpy(mine + off, recv + off, k * es);
            continue;
        }
        /* One node: reduce and publish block by block, the copy from L1. */
        size_t step = FUSE_BYTES / es ? FUSE_BYTES / es : 1;
        for (size_t i = 0; i < k; i += step) {
            size_t c = k - i < step ? k - i : step;
            size_t o = off + i * es;
            reduce_shard(args, shm, set, send + o, recv + o, o, c);
            tally_algo_finish(args, recv + o, c);
            if (L > 1)
                memcpy(mine + o, recv + o, c * es);
        }
    }
    if (L > 1) {
        tally_shm_barrier(shm);
        for (int s = 0; s < S; s++)
            if (s % L != l) {
                size_t off = tally_block_offset(m, (size_t)S, (size_t)s) * es;
                memcpy(recv + off, tally_shm_data(shm, s % L, set) + off,
                       tally_block_count(m, (size_t)S, (size_t)s) * es);
            }
    }
    return TALLY_SUCCESS;
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
    const size_t es = args->elem_size;
    const size_t per_chunk = shm->chunk / es ? shm->chunk / es : 1;
    const char *send = args->sendbuf;
    char *recv = args->recvbuf;
    for (size_t start = 0; start < args->count; start += per_chunk) {
        size_t m = args->count - start < per_chunk ? args->count - start : per_chunk;
        TALLY_CHECK(run_chunk(args, ns, shm, (unsigned)(shm->chunks++ & 1), send + start * es,
                              recv + start * es, m));
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
        const double chunk = n < (double)m->shm_chunk ? n : (double)m->shm_chunk;
        t += rounds * ceil(n / chunk) * across_nodes(cost, chunk / S, share);
    }
    return t;
}
