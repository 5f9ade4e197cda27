/* model.c - the cost model's constants, its calibration and the helpers
 * that price an algorithm's steps (see model.h).
 *
 * The built-in constants describe a typical x86 server node and a 10 Gbit/s
 * network; they were checked against this project's measurements (tally-info
 * --explain beside tally-bench):
 *   same package   alpha 0.4 us, beta 1/6 GB/s   (shared-memory single copy)
 *   across package alpha 0.7 us, beta 1/4.5 GB/s
 *   across nodes   alpha 10 us,  beta 1/1.25 GB/s (10 Gbit/s TCP)
 *   reduction      gamma 1/7.5 GB/s, copy 1/10 GB/s, five times faster in cache
 *   oversubscribed a message also waits ~1.5 us for its peer to be scheduled
 *   messages up to the 4 KiB eager limit move at 2.1 GB/s within a node
 *   (copied through the MPI's queue); longer ones pay a 3 us rendezvous
 *   allgather steps land in the caller's buffer: no cache speed-up (measured)
 *   a barrier on shared-memory counters 0.25 us: shm's two barriers cost
 *   about as much as the one exchange of the MPI's own allreduce up to
 *   256 B on 2 ranks (0.3 us each when cores answer fast, 1.1 against 0.7
 *   us when they do not); from 512 B shm wins in both states
 * TALLY_CALIBRATE=1 replaces the link, gamma and copy figures by measured
 * ones. */
#include "model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../reduce/reduce.h"
#include "shape.h"

#define GB 1e9

const char *tally_level_name(tally_level_t level)
{
    switch (level) {
    case TALLY_LEVEL_PACKAGE: return "same package";
    case TALLY_LEVEL_NODE: return "same node";
    case TALLY_LEVEL_NETWORK: return "across nodes";
    case TALLY_LEVEL_COUNT: break;
    }
    return "?";
}

void tally_model_defaults(tally_model_t *model, const tally_shape_t *shape)
{
    *model = (tally_model_t){
        .link = {
            [TALLY_LEVEL_PACKAGE] = {0.4e-6, 1.0 / (6.0 * GB)},
            [TALLY_LEVEL_NODE] = {0.7e-6, 1.0 / (4.5 * GB)},
            [TALLY_LEVEL_NETWORK] = {10e-6, 1.0 / (1.25 * GB)},
        },
        .gamma = 1.0 / (7.5 * GB),
        .copy = 1.0 / (10.0 * GB),
        .duplex = 1.0,
        .cache_speedup = 5.0,
        .cache_bytes = (size_t)1 << 20,
        .eager_bytes = 4096,  /* Open MPI's shared-memory eager limit */
        .rendezvous = 3.0e-6,
        .eager_beta = 1.0 / (2.1 * GB),
        .call = 0.15e-6,
        .switch_wait = 1.5e-6,
        .mpi_latency_bytes = 4096,
        .mpi_factor = 1.3,
        .shm_chunk = (size_t)256 << 10,
        .shm_sync = 0.25e-6,
    };
    if (shape && shape->min_cache_bytes > 0)
        model->cache_bytes = shape->min_cache_bytes;
}

const char *tally_model_format_rate(char *buf, size_t len, double bytes_per_second)
{
    if (bytes_per_second >= GB)
        snprintf(buf, len, "%.2f GB/s", bytes_per_second / GB);
    else if (bytes_per_second >= 1e6)
        snprintf(buf, len, "%.2f MB/s", bytes_per_second / 1e6);
    else
        snprintf(buf, len, "%.2f kB/s", bytes_per_second / 1e3);
    return buf;
}

void tally_model_write(const tally_model_t *model, FILE *stream)
{
    char r1[32], r2[32];
    fprintf(stream, "cost model (%s):\n",
            model->calibrated ? "measured by TALLY_CALIBRATE=1"
            : model->what_if  ? "the what-if spec's figures, built-in constants for the rest"
                              : "built-in constants");
    for (int l = 0; l < TALLY_LEVEL_COUNT; l++)
        fprintf(stream, "  %-13s alpha %8.2f us   beta %11s%s\n",
                tally_level_name((tally_level_t)l), model->link[l].alpha * 1e6,
                tally_model_format_rate(r1, sizeof r1, 1.0 / model->link[l].beta),
                model->calibrated && !model->measured[l] ? "   (built-in: no such pair)" : "");
    fprintf(stream, "  across nodes both ways at once (a pairwise exchange): %.0f%% of the "
                    "one-way rate%s\n",
            model->duplex * 100.0,
            model->calibrated && !model->measured_duplex ? "   (built-in: one node)" : "");
    fprintf(stream, "  reduce %s, copy %s, both %.1fx faster within %zu KiB of cache\n",
            tally_model_format_rate(r1, sizeof r1, 1.0 / model->gamma),
            tally_model_format_rate(r2, sizeof r2, 1.0 / model->copy), model->cache_speedup,
            model->cache_bytes >> 10);
    fprintf(stream, "  messages up to %zu B: %.2f GB/s within a node (eager); above: +%.2f us "
                    "(rendezvous)\n",
            model->eager_bytes, 1.0 / model->eager_beta / GB, model->rendezvous * 1e6);
    fprintf(stream, "  tally's own cost %.2f us a call\n", model->call * 1e6);
    fprintf(stream, "  shared memory: %.2f us a barrier, chunks of %zu KiB\n",
            model->shm_sync * 1e6, model->shm_chunk >> 10);
    fprintf(stream, "  oversubscribed: latency and CPU work times ranks per PU, +%.2f us a message\n",
            model->switch_wait * 1e6);
    if (model->mpi_seconds[0] > 0.0)
        fprintf(stream, "  mpi: recursive doubling below %zu B, else tally's ring times the "
                        "ratios measured at %zu KiB (%.2f ms) and %zu KiB (%.2f ms), "
                        "interpolated between\n",
                model->mpi_latency_bytes, model->mpi_bytes[0] >> 10,
                model->mpi_seconds[0] * 1e3, model->mpi_bytes[1] >> 10,
                model->mpi_seconds[1] * 1e3);
    else
        fprintf(stream, "  mpi: recursive doubling below %zu B, else %.2fx tally's ring\n",
                model->mpi_latency_bytes, model->mpi_factor);
}

tally_cost_t tally_cost_make(const tally_model_t *model, const tally_shape_t *shape,
                             size_t bytes)
{
    /* Send, receive and scratch buffers and the peer's buffer a copy reads.
     * Ranks time-sharing a core each keep a share of its cache, and each
     * switch evicts part of the other's: measured on 4 ranks over 2 cores,
     * a call leaves the cache at half the size that the share predicts. */
    double f = shape->oversubscription;
    double working_set = 4.0 * (double)bytes * f * f;
    return (tally_cost_t){
        .model = model,
        .shape = shape,
        .bytes = (double)bytes,
        .in_cache = working_set < (double)model->cache_bytes,
        .link_share = 1.0,
    };
}

static tally_level_t level_of(const tally_shape_t *shape, int a, int b)
{
    if (!tally_shape_same_node(shape, a, b))
        return TALLY_LEVEL_NETWORK;
    /* Unknown bindings count as one package: the optimistic intra-node case. */
    if (shape->package_of[a] < 0 || shape->package_of[b] < 0 ||
        shape->package_of[a] == shape->package_of[b])
        return TALLY_LEVEL_PACKAGE;
    return TALLY_LEVEL_NODE;
}

/* CPU-bound work within a node: slowed by oversubscription, faster in cache. */
static double cpu_factor(const tally_cost_t *cost)
{
    double f = cost->shape->oversubscription;
    return cost->in_cache ? f / cost->model->cache_speedup : f;
}

static double exchange(const tally_cost_t *cost, tally_partner_fn partner, int arg,
                       double bytes, bool into_scratch)
{
    const tally_shape_t *shape = cost->shape;
    const tally_model_t *m = cost->model;
    const int p = shape->size, nodes = shape->nodes;
    /* A node's link carries, each way, the step's flows that leave it
     * (out) and those that enter it (in); a flow goes at the rate of the
     * busier of its two ends.  Each partner is asked once (a what-if
     * cluster may have many ranks). */
    int *out = calloc(2 * (size_t)nodes + (size_t)p, sizeof *out);
    int *in = out ? out + nodes : NULL;
    int *partner_of = out ? in + nodes : NULL;
    for (int r = 0; out && r < p; r++) {
        int q = partner_of[r] = partner(shape, r, arg);
        if (q >= 0 && !tally_shape_same_node(shape, r, q)) {
            out[shape->node_of[r]]++;
            in[shape->node_of[q]]++;
        }
    }
    double worst = 0.0;
    for (int r = 0; r < p; r++) {
        int q = partner_of ? partner_of[r] : partner(shape, r, arg);
        if (q < 0)
            continue;
        tally_level_t level = level_of(shape, r, q);
        double alpha = m->link[level].alpha, beta = m->link[level].beta;
        if (bytes > (double)m->eager_bytes)
            alpha += m->rendezvous;
        if (level == TALLY_LEVEL_NETWORK) {
            int a = out ? out[shape->node_of[r]] : shape->max_per_node;
            int b = in ? in[shape->node_of[q]] : shape->max_per_node;
            double flows = (a > b ? a : b) * cost->link_share;
            if (flows > 1.0)
                beta *= flows;
            int back = partner_of ? partner_of[q] : partner(shape, q, arg);
            if (back == r)
                beta /= m->duplex;
        } else {
            alpha *= shape->oversubscription;
            if (shape->oversubscription > 1.0)
                alpha += m->switch_wait;
            if (bytes <= (double)m->eager_bytes)
                beta = m->eager_beta * shape->oversubscription;
            else if (into_scratch)
                beta *= cpu_factor(cost);
            else
                beta *= shape->oversubscription;
        }
        double t = alpha + bytes * beta;
        if (t > worst)
            worst = t;
    }
    free(out);
    return worst;
}

double tally_cost_step(const tally_cost_t *cost, tally_partner_fn partner, int arg,
                       double bytes)
{
    return exchange(cost, partner, arg, bytes, true);
}

double tally_cost_deliver(const tally_cost_t *cost, tally_partner_fn partner, int arg,
                          double bytes)
{
    return exchange(cost, partner, arg, bytes, false);
}

double tally_cost_reduce(const tally_cost_t *cost, double bytes)
{
    return bytes * cost->model->gamma * cpu_factor(cost);
}

double tally_cost_copy(const tally_cost_t *cost, double bytes)
{
    return bytes * cost->model->copy * cpu_factor(cost);
}

double tally_cost_call(const tally_cost_t *cost)
{
    return cost->model->call * cost->shape->oversubscription;
}

double tally_cost_sync(const tally_cost_t *cost)
{
    const tally_model_t *m = cost->model;
    double f = cost->shape->oversubscription;
    return m->shm_sync * f + (f > 1.0 ? m->switch_wait : 0.0);
}

/* --- calibration ----------------------------------------------------------- */

#define CALIBRATE_TAG 7001

/* The first pair (a < b) whose level is `level`, or false. */
static bool find_pair(const tally_shape_t *shape, tally_level_t level, int *a, int *b)
{
    for (int i = 0; i < shape->size; i++)
        for (int j = i + 1; j < shape->size; j++)
            if (level_of(shape, i, j) == level) {
                *a = i;
                *b = j;
                return true;
            }
    return false;
}

/* Half the mean round trip of `bytes` between a and b (on a and b only). */
static tally_status_t ping_pong(MPI_Comm comm, int me, int a, int b, void *buf, int bytes,
                                int rounds, double *seconds)
{
    int peer = me == a ? b : a;
    double start = 0.0;
    for (int i = -2; i < rounds; i++) { /* two rounds of warm-up */
        if (i == 0)
            start = PMPI_Wtime();
        if (me == a) {
            TALLY_MPI_CHECK(NULL, PMPI_Send(buf, bytes, MPI_BYTE, peer, CALIBRATE_TAG, comm));
            TALLY_MPI_CHECK(NULL, PMPI_Recv(buf, bytes, MPI_BYTE, peer, CALIBRATE_TAG, comm,
                                            MPI_STATUS_IGNORE));
        } else {
            TALLY_MPI_CHECK(NULL, PMPI_Recv(buf, bytes, MPI_BYTE, peer, CALIBRATE_TAG, comm,
                                            MPI_STATUS_IGNORE));
            TALLY_MPI_CHECK(NULL, PMPI_Send(buf, bytes, MPI_BYTE, peer, CALIBRATE_TAG, comm));
        }
    }
    *seconds = (PMPI_Wtime() - start) / (2.0 * rounds);
    return TALLY_SUCCESS;
}

static double median3(const double v[3])
{
    if ((v[1] - v[0]) * (v[1] - v[2]) <= 0.0)
        return v[1];
    if ((v[2] - v[0]) * (v[2] - v[1]) <= 0.0)
        return v[2];
    return v[0];
}

/* The rank that `me` exchanges with when the ranks of the nodes of a and
 * b all cross the link at once: the rank of the same index on the other
 * node, or -1; *flows: how many pairs share the link. */
static int duplex_partner(const tally_shape_t *shape, int me, int a, int b, int *flows)
{
    const int na = shape->node_of[a], nb = shape->node_of[b];
    int count_a = 0, count_b = 0, mine = -1;
    for (int r = 0; r < shape->size; r++) {
        if (r == me)
            mine = shape->node_of[r] == na ? count_a : count_b;
        count_a += shape->node_of[r] == na;
        count_b += shape->node_of[r] == nb;
    }
    *flows = count_a < count_b ? count_a : count_b;
    int other = shape->node_of[me] == na ? nb : shape->node_of[me] == nb ? na : -1;
    if (other < 0 || mine >= *flows)
        return -1;
    for (int r = 0, i = 0; r < shape->size; r++)
        if (shape->node_of[r] == other && i++ == mine)
            return r;
    return -1;
}

/* `bytes` each way with `peer` in the segments tally sends between nodes,
 * all posted at once. */
static tally_status_t segmented_exchange(MPI_Comm comm, int peer, char *sbuf, char *rbuf,
                                         size_t bytes)
{
    const size_t n = (bytes + TALLY_NETWORK_SEGMENT - 1) / TALLY_NETWORK_SEGMENT;
    MPI_Request *req = malloc(2 * n * sizeof *req);
    if (!req)
        return TALLY_ERR_NO_MEMORY;
    int rc = MPI_SUCCESS;
    size_t posted = 0;
    for (size_t i = 0; i < 2 * n && rc == MPI_SUCCESS; i++, posted++) {
        size_t at = (i % n) * TALLY_NETWORK_SEGMENT;
        int len = (int)(bytes - at < TALLY_NETWORK_SEGMENT ? bytes - at : TALLY_NETWORK_SEGMENT);
        rc = i < n ? PMPI_Irecv(rbuf + at, len, MPI_BYTE, peer, CALIBRATE_TAG, comm, &req[i])
                   : PMPI_Isend(sbuf + at, len, MPI_BYTE, peer, CALIBRATE_TAG, comm, &req[i]);
    }
    if (rc == MPI_SUCCESS)
        rc = PMPI_Waitall((int)posted, req, MPI_STATUSES_IGNORE);
    free(req);
    return rc == MPI_SUCCESS ? TALLY_SUCCESS : TALLY_ERR_MPI;
}

tally_status_t tally_model_calibrate(tally_model_t *model, MPI_Comm comm,
                                     const tally_shape_t *shape)
{
    int me;
    TALLY_MPI_CHECK(NULL, PMPI_Comm_rank(comm, &me));
    /* Large enough to leave the cache, small enough to stay quick. */
    size_t big = model->cache_bytes * 4;
    if (big < ((size_t)4 << 20))
        big = (size_t)4 << 20;
    if (big > ((size_t)16 << 20))
        big = (size_t)16 << 20;
    char *buf = malloc(2 * big);
    /* measured[0..2]: alpha per level, [3..5]: beta, [6]: gamma, [7]: copy,
     * [8]: 1 where this rank failed, [9]: the MPI's allreduce of big bytes,
     * [10..12]: three runs of the pairwise exchange, [13]: the MPI's
     * allreduce of big / 4; MAX over ranks. */
    enum { DUPLEX_RUNS = 3, MPI_SMALL = 10 + DUPLEX_RUNS, SLOTS = MPI_SMALL + 1 };
    const size_t mpi_sizes[2] = {big / 4, big};
    double measured[SLOTS] = {0};
    tally_status_t st = TALLY_SUCCESS;
    /* Every rank learns whether every buffer exists before a pair starts,
     * so no rank waits for a partner that gave up. */
    int have = buf != NULL, all_have = 0;
    if (PMPI_Allreduce(&have, &all_have, 1, MPI_INT, MPI_LAND, comm) != MPI_SUCCESS) {
        free(buf);
        return TALLY_ERR_MPI;
    }
    if (!all_have) {
        free(buf);
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "TALLY_CALIBRATE: a rank could not allocate %zu bytes",
                  2 * big);
        return TALLY_ERR_NO_MEMORY;
    }
    memset(buf, 0, 2 * big);
    for (int l = 0; l < TALLY_LEVEL_COUNT; l++) {
        int a, b;
        if (!find_pair(shape, (tally_level_t)l, &a, &b) || (me != a && me != b))
            continue;
        double small_t = 0.0, big_t = 0.0;
        st = ping_pong(comm, me, a, b, buf, 8, 50, &small_t);
        if (st == TALLY_SUCCESS)
            st = ping_pong(comm, me, a, b, buf, (int)big, 3, &big_t);
        if (st != TALLY_SUCCESS) {
            measured[8] = 1.0;
            break;
        }
        measured[l] = small_t;
        measured[3 + l] = (big_t - small_t) / (double)big;
    }
    /* Best of three: the rate of an undisturbed pass. */
    double best_reduce = 1e30, best_copy = 1e30;
    for (int i = 0; i < 3; i++) {
        double t0 = PMPI_Wtime();
        tally_reduce(buf, buf, buf + big, big / sizeof(float), TALLY_FLOAT32, TALLY_SUM);
        double t1 = PMPI_Wtime();
        memcpy(buf + big, buf, big);
        double t2 = PMPI_Wtime();
        if (t1 - t0 < best_reduce)
            best_reduce = t1 - t0;
        if (t2 - t1 < best_copy)
            best_copy = t2 - t1;
    }
    measured[6] = best_reduce / (double)big;
    measured[7] = best_copy / (double)big;
    /* The MPI's own allreduce, whose algorithm tally cannot see: the
     * median of three after a warm-up, on every rank (over a network its
     * time varies from call to call, and the benchmarks report medians). */
    for (int s = 0; s < 2; s++) {
        double mpi_runs[3];
        for (int i = -1; i < 3; i++) {
            double t0 = PMPI_Wtime();
            if (PMPI_Allreduce(buf, buf + big, (int)(mpi_sizes[s] / sizeof(float)), MPI_FLOAT,
                               MPI_SUM, comm) != MPI_SUCCESS)
                measured[8] = 1.0;
            if (i >= 0)
                mpi_runs[i] = PMPI_Wtime() - t0;
        }
        measured[s ? 9 : MPI_SMALL] = median3(mpi_runs);
    }
    /* Both ways at once: every rank of two nodes exchanges with its
     * counterpart, as the pairwise steps of recursive doubling and
     * Rabenseifner do.  After a warm-up, three runs. */
    int a, b, flows = 0, peer = -1;
    if (find_pair(shape, TALLY_LEVEL_NETWORK, &a, &b))
        peer = duplex_partner(shape, me, a, b, &flows);
    for (int i = -1; flows >= 1 && i < DUPLEX_RUNS; i++) {
        if (PMPI_Barrier(comm) != MPI_SUCCESS) {
            measured[8] = 1.0;
            break;
        }
        double t0 = PMPI_Wtime();
        if (peer >= 0 && segmented_exchange(comm, peer, buf, buf + big, big) != TALLY_SUCCESS)
            measured[8] = 1.0;
        if (i >= 0 && peer >= 0)
            measured[10 + i] = PMPI_Wtime() - t0;
    }
    free(buf);
    double all[SLOTS];
    TALLY_MPI_CHECK(NULL, PMPI_Allreduce(measured, all, SLOTS, MPI_DOUBLE, MPI_MAX, comm));
    if (all[8] != 0.0) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "TALLY_CALIBRATE: a rank could not measure");
        return st != TALLY_SUCCESS ? st : TALLY_ERR_MPI;
    }
    tally_model_t m = *model;
    for (int l = 0; l < TALLY_LEVEL_COUNT; l++) {
        if (all[l] > 0.0 && all[3 + l] > 0.0) {
            m.link[l] = (tally_link_cost_t){all[l], all[3 + l]};
            m.measured[l] = true;
        }
    }
    if (flows >= 1 && m.measured[TALLY_LEVEL_NETWORK]) {
        /* The median run against `flows` one-way flows' time. */
        double t = median3(all + 10);
        const tally_link_cost_t *net = &m.link[TALLY_LEVEL_NETWORK];
        double share = flows * (double)big * net->beta / (t - net->alpha);
        if (t > net->alpha && share > 0.0) {
            m.duplex = share < 1.0 ? share : 1.0;
            m.measured_duplex = true;
        }
    }
    if (all[6] > 0.0)
        m.gamma = all[6];
    if (all[7] > 0.0)
        m.copy = all[7];
    if (shape->size > 1) {
        for (int s = 0; s < 2; s++) {
            m.mpi_bytes[s] = mpi_sizes[s];
            m.mpi_seconds[s] = all[s ? 9 : MPI_SMALL];
        }
    }
    m.calibrated = true;
    *model = m;
    return TALLY_SUCCESS;
}
