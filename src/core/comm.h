/* comm.h - the communicator object behind the opaque tally_comm_t, and
 * what it hands out to calls: sequence numbers and tags, scratch space,
 * and the collective resources made at creation (groups.h). */
#ifndef TALLY_COMM_H
#define TALLY_COMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../algo/algo.h"
#include "../select/select.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "../transport/nccl.h"
#include "config.h"
#include "groups.h"
#include "scratch.h"
#include "tally.h"

struct tally_stats;
struct tally_trace;
struct tally_progress;
struct tally_compressor;
struct tally_ipc_cache;

/* Tags of calls: call seq gets TALLY_TAG_LANES tags from TALLY_TAG_BASE +
 * (seq mod TALLY_TAG_SPAN) * TALLY_TAG_LANES, so calls in flight together
 * (fewer than TALLY_TAG_SPAN) never match each other's messages, and a call
 * may keep several streams of messages apart (call.h, lanes).  The highest
 * tag stays below 32767, the least MPI_TAG_UB the MPI standard allows. */
#define TALLY_TAG_BASE 0x1000
#define TALLY_TAG_SPAN 1024

/* The last call's plan when it was a single PMPI_Allreduce (the mpi
 * algorithm on host memory, no AVG, nothing observing): a call repeating its
 * count, dtype and op goes straight to the MPI after the buffer checks
 * (tally_allreduce's fast path), so small passed-on calls cost what the MPI
 * costs. */
typedef struct tally_direct {
    bool valid;
    size_t count;
    size_t bytes;
    tally_dtype_t dtype;
    tally_op_t op;
    MPI_Datatype type;
    MPI_Op mpi_op;
} tally_direct_t;

/* A fusion buffer: at most config.fusion_bytes. */
typedef struct tally_fusion_buffer {
    void *buf;
    size_t bytes;
} tally_fusion_buffer_t;

struct tally_comm {
    MPI_Comm mpi;   /* a private duplicate: tally's messages never match the user's */
    int rank;
    int size;
    tally_config_t config;
    tally_shape_t shape;        /* nodes, ranks per node, placement */
    tally_model_t model;        /* the cost model for this machine */
    tally_selector_t sel;       /* the rule table for this shape, its cache, the forced
                                   algorithm (select.h) */
    tally_device_t device; /* the device plugin, if it sees a device */
    bool nested;                /* a group of a parent communicator (hier across nodes) */
    char label[48];             /* "4 ranks", "group of 2 (across nodes)": for logs,
                                   statistics and the trace */
    uint64_t next_seq;          /* calls started so far: the next call's sequence number */
    /* A call failed partway (tally_call_execute): messages of it may still
     * be in flight and the MPI may still read its buffers, so every later
     * call fails, and what the MPI may touch is never freed. */
    bool broken;
    uint64_t broken_seq;        /* ... which call */
    tally_status_t broken_status; /* ... and how */
    tally_direct_t direct;      /* the fast path's memo; cleared when the plan changes */
    tally_scratch_pool_t scratch; /* handed to calls */
    tally_groups_t groups;      /* node window and groups across nodes (groups.h) */
    struct tally_stats *stats;  /* NULL unless TALLY_STATS or debug logging asks */
    struct tally_trace *trace;  /* NULL unless TALLY_TRACE is set */
    struct tally_progress *progress; /* non-blocking calls' queue (request.h); NULL until the first */
    /* Set with the queue (request.c), so that this file and the ones it
     * serves need not include request.h: runs every call started before
     * this point; stops the queue's thread and frees it. */
    void (*drain)(struct tally_comm *comm);
    void (*progress_free)(struct tally_comm *comm);
    struct tally_ipc_cache *ipc; /* the peers' device buffers mapped here (ipc.h) */
    tally_nccl_t nccl;          /* the NCCL communicator, made at the first call (nccl.h) */
    tally_fusion_buffer_t fusion[2]; /* tally_allreduce_multi's buffers (fusion.c):
                                        host memory, device memory */
};

/* A communicator over `mpi` (which it duplicates) for one of parent's
 * groups across nodes: parent's configuration without a forced algorithm,
 * its cost model's measured figures, and no second report of tuning-file
 * problems.  Collective over `mpi`; `local` is this rank's status so far,
 * so that a failure on one member fails the creation on all of them. */
tally_status_t tally_comm_create_nested(MPI_Comm mpi, const struct tally_comm *parent,
                                        tally_status_t local, struct tally_comm **out);

/* One allreduce over comm: every rank learns whether any rank failed
 * locally and whether all hashes of `what` agree, so that all ranks
 * succeed or fail together.  `mismatch` explains a disagreement. */
tally_status_t tally_comm_agree(MPI_Comm comm, tally_status_t local, uint64_t hash,
                                const char *what, const char *mismatch);

/* Marks comm broken by call `seq`, which failed partway with `status`
 * (the first such failure is kept and logged). */
void tally_comm_break(struct tally_comm *comm, uint64_t seq, tally_status_t status);

/* Before a blocking call or a change of comm's state: the non-blocking calls
 * started before it run first (nothing when there are none). */
static inline void tally_comm_drain(struct tally_comm *comm)
{
    if (comm->drain)
        comm->drain(comm);
}

/* Every check of tally_allreduce's arguments, buffers included; `fn` names
 * the entry point in the message.  Touches nothing. */
tally_status_t tally_check_call(const char *fn, const void *sendbuf, const void *recvbuf,
                                size_t count, tally_dtype_t dtype, tally_op_t op,
                                const struct tally_comm *comm);

/* Whether the `bytes` at a and the `bytes` at b share no byte. */
static inline bool tally_bytes_apart(const void *a, const void *b, size_t bytes)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return !(x < y + bytes && y < x + bytes);
}

/* tally_check_buffers' verdict on the buffers of `bytes` (> 0), silent and
 * inline: the fast paths test this and call the full check, which says
 * what is wrong, only when it fails. */
static inline bool tally_buffers_ok(const void *sendbuf, const void *recvbuf, size_t bytes)
{
    if (!recvbuf || recvbuf == TALLY_IN_PLACE || !sendbuf)
        return false;
    return sendbuf == TALLY_IN_PLACE || tally_bytes_apart(sendbuf, recvbuf, bytes);
}

/* tally_check_call's part for one tensor's count and buffers, once comm,
 * dtype and op have passed tally_check_arguments (a fused call checks those
 * once for all its tensors). */
tally_status_t tally_check_buffers(const char *fn, const void *sendbuf, const void *recvbuf,
                                   size_t count, tally_dtype_t dtype,
                                   const struct tally_comm *comm);

/* The same for a compressed call: also the compressor's count, dtype, op. */
tally_status_t tally_check_compressed(const char *fn, const void *sendbuf, const void *recvbuf,
                                      size_t count, tally_dtype_t dtype, tally_op_t op,
                                      const struct tally_compressor *c);

/* The checks on comm, count, dtype and op that every entry point taking
 * them makes; `fn` names the entry point in the message. */
tally_status_t tally_check_arguments(const char *fn, const struct tally_comm *comm,
                                     size_t count, tally_dtype_t dtype, tally_op_t op);

#endif
