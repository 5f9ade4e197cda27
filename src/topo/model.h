/* model.h - the alpha-beta cost model: what a message costs between two
 * ranks at each level of the machine, what a byte of reduction costs, and
 * the helpers each algorithm's predict function uses to price its steps.
 *
 * A step in which every rank sends `b` bytes to a partner costs, for the
 * slowest rank, alpha(level) + b beta(level) (+ the rendezvous hand-shake
 * above the eager limit), where level is the farthest pair: same package,
 * same node, or across nodes.  Across nodes, the flows of a step that leave
 * (or enter) one node share its link, each way: beta is multiplied by their
 * number, and divided by `duplex` where two ranks send each other at once.
 * Within a node, copies and reductions run on the CPUs: when ranks outnumber
 * PUs they are slowed by ranks / PUs, and while a call's working set fits
 * the private cache they are `cache_speedup` times faster. */
#ifndef TALLY_MODEL_H
#define TALLY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "tally.h"

/* Bytes per message between nodes (tally's point-to-point segments, and
 * the calibration's): below Open MPI's TCP eager limit (64 KiB with its
 * header), since a larger message waits for a rendezvous reply that queues
 * behind the data its peer sends the other way. */
#define TALLY_NETWORK_SEGMENT ((size_t)63 << 10)

struct tally_topo;
struct tally_shape;

typedef enum tally_level {
    TALLY_LEVEL_PACKAGE, /* both ranks on one package (or bindings unknown) */
    TALLY_LEVEL_NODE,    /* same node, different packages */
    TALLY_LEVEL_NETWORK, /* different nodes */
    TALLY_LEVEL_COUNT
} tally_level_t;

typedef struct tally_link_cost {
    double alpha; /* seconds per message */
    double beta;  /* seconds per byte, out of cache */
} tally_link_cost_t;

typedef struct tally_model {
    tally_link_cost_t link[TALLY_LEVEL_COUNT];
    double duplex;         /* across nodes, the share of the one-way rate that a
                              pairwise exchange (both ways at once between two
                              ranks) reaches each way (1: all of it) */
    double gamma;          /* seconds per byte reduced, out of cache */
    double copy;           /* seconds per byte copied locally, out of cache */
    double cache_speedup;  /* intra-node beta, gamma and copy divide by it in cache */
    size_t cache_bytes;    /* private cache of one rank (hwloc: L2, else L1) */
    size_t eager_bytes;    /* longer messages pay `rendezvous` */
    double rendezvous;     /* seconds */
    double eager_beta;     /* seconds per byte of a message within a node up to
                              eager_bytes: copied in and out of the MPI's
                              shared-memory queue, fragment by fragment */
    double call;           /* tally's own cost per call of its point-to-point
                              algorithms (lookup, nonblocking segment pipeline);
                              the mpi algorithm is a single PMPI call */
    double switch_wait;    /* seconds a message waits for its peer to be scheduled
                              when ranks outnumber PUs */
    size_t mpi_latency_bytes; /* below this the MPI's own allreduce is recursive doubling */
    double mpi_factor;     /* above it, the MPI's allreduce costs tally's ring times this */
    size_t mpi_bytes[2];   /* TALLY_CALIBRATE: a PMPI_Allreduce of these many bytes
                              (the smaller first) */
    double mpi_seconds[2]; /* ... took this long (0: not measured); the mpi
                              algorithm then fits its factor to each and
                              interpolates between them (the MPI's own
                              selection may change algorithm in between) */
    size_t shm_chunk;      /* TALLY_SHM_CHUNK: bytes per shared-memory pipeline chunk */
    double shm_sync;       /* one barrier on shared-memory counters, ranks on their own cores */
    bool calibrated;       /* TALLY_CALIBRATE=1 ran: gamma and copy were measured */
    bool what_if;          /* a what-if spec (tally_model_explain) set figures */
    bool measured[TALLY_LEVEL_COUNT]; /* ... and the links of levels the shape has */
    bool measured_duplex;             /* ... and duplex */
} tally_model_t;

const char *tally_level_name(tally_level_t level);

/* The built-in constants, with the smallest private cache of the shape's
 * ranks (so that every rank computes the same model) when known. */
void tally_model_defaults(tally_model_t *model, const struct tally_shape *shape);

/* Collective over comm: measures alpha and beta of every level present in
 * the shape with ping-pongs between one pair of ranks, and gamma and copy
 * on every rank; every rank ends with the same numbers (the slowest rank's).
 * On error the model is unchanged. */
tally_status_t tally_model_calibrate(tally_model_t *model, MPI_Comm comm,
                                     const struct tally_shape *shape);

/* The parameters, one line each, for tally-info. */
void tally_model_write(const tally_model_t *model, FILE *stream);

/* A rate in bytes per second as "1.25 GB/s", "12.50 MB/s" or "980.00 kB/s"
 * (decimal units, two decimals) into buf[len]; returns buf. */
const char *tally_model_format_rate(char *buf, size_t len, double bytes_per_second);

/* What an algorithm's predict function prices: one call of `bytes` on the
 * communicator of `shape` (not in place). */
typedef struct tally_cost {
    const tally_model_t *model;
    const struct tally_shape *shape;
    double bytes;
    bool in_cache; /* the working set fits each rank's share of the private cache */
    double link_share; /* senders per node on the network beyond those in this
                          communicator (hier's groups run side by side); 1 */
    /* Predicted seconds of the cheapest algorithm for another cost (a
     * group's step inside an algorithm): the selection's answer, set by
     * select/ (tally_select_cost), NULL otherwise. */
    double (*cheapest)(const struct tally_cost *cost);
} tally_cost_t;

tally_cost_t tally_cost_make(const tally_model_t *model, const struct tally_shape *shape,
                             size_t bytes);

/* The rank that `rank` of `shape` sends to in a step (arg: the step's
 * parameter), or -1 when it sends nothing. */
typedef int (*tally_partner_fn)(const struct tally_shape *shape, int rank, int arg);

/* One step in which every rank with a partner exchanges `bytes` with it,
 * received into tally's pooled scratch (to be reduced). */
double tally_cost_step(const tally_cost_t *cost, tally_partner_fn partner, int arg,
                       double bytes);
/* The same, received straight into the caller's buffer (allgather and
 * unfold steps): measured here to gain nothing from the cache. */
double tally_cost_deliver(const tally_cost_t *cost, tally_partner_fn partner, int arg,
                          double bytes);
double tally_cost_reduce(const tally_cost_t *cost, double bytes);
double tally_cost_copy(const tally_cost_t *cost, double bytes);
double tally_cost_call(const tally_cost_t *cost);
/* One barrier among a node's ranks through shared memory. */
double tally_cost_sync(const tally_cost_t *cost);

#endif
