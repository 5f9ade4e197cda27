/* call.h - the call object: everything one allreduce needs, built once by
 * the internal entry and handed to the algorithm and its transports.
 *
 * Every call goes through here: the public functions validate their
 * arguments, then tally_call_init + tally_call_execute; an algorithm's
 * step on a group of ranks (hier across nodes) builds its own call on the
 * group's communicator the same way, never through the public API.  The
 * object owns what must not be shared between two calls in flight on one
 * communicator: its MPI tag and its scratch space.  Slots for what later
 * layers add (codec and its state, request) are here so that they plug in
 * without touching the algorithms' signatures. */
#ifndef TALLY_CALL_H
#define TALLY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../mem/mem.h"
#include "../reduce/reduce.h"
#include "../topo/shape.h"
#include "tally.h"

struct tally_comm;
struct tally_algo;
struct tally_scratch;
struct tally_trace;

typedef struct tally_call {
    /* What: TALLY_IN_PLACE resolved, so in place means sendbuf == recvbuf. */
    const void *sendbuf;
    void *recvbuf;
    size_t count;
    size_t elem_size;
    tally_dtype_t dtype;
    tally_op_t op;               /* as asked; AVG reduces as SUM, then tally_call_finish */
    tally_memtype_t memtype;
    const tally_kernels_t *kernels; /* for memtype */
    tally_reduce_fn reduce;      /* kernels->reduce[dtype][op], resolved once */

    /* How: the selection's answer. */
    const struct tally_algo *algo;
    size_t segment_size;         /* bytes per pipelined message */
    const char *reason;          /* why algo runs (a static string, for logs and stats) */

    /* Where: the communicator, and what the transports read from it. */
    struct tally_comm *comm;
    MPI_Comm mpi;                /* the communicator's private duplicate */
    int rank, size;
    const tally_shape_t *shape;
    unsigned pipeline_depth;

    /* This call's own resources. */
    uint64_t seq;                /* per communicator, equal on every rank */
    int tag;                     /* MPI tag of every message of this call */
    struct tally_scratch *scratch; /* taken from the communicator's pool on first use */

    /* Slots for later layers: a codec and its error-feedback state
     * (compress/), the request of a non-blocking call (core/). */
    const void *codec;
    void *codec_state;
    void *request;

    /* Trace context: NULL when TALLY_TRACE is unset (one branch per span). */
    struct tally_trace *trace;
    double t_start;              /* seconds, when traced or counted */
} tally_call_t;

/* Builds the call: buffers, memory type, kernels, the algorithm (selection)
 * and a fresh tag.  The arguments must already be valid (the public entry
 * checked them; an internal caller passes a sub-range of a checked call).
 * sendbuf may be TALLY_IN_PLACE.  Fails with TALLY_ERR_UNSUPPORTED when
 * the buffers are of different memory types or nothing can serve them. */
tally_status_t tally_call_init(tally_call_t *call, struct tally_comm *comm,
                               const void *sendbuf, void *recvbuf, size_t count,
                               tally_dtype_t dtype, tally_op_t op);

/* Runs the call's algorithm, with its trace span and statistics, and
 * gives its scratch back to the communicator. */
tally_status_t tally_call_execute(tally_call_t *call);

/* init + execute: the internal entry for every allreduce. */
tally_status_t tally_call_allreduce(struct tally_comm *comm, const void *sendbuf,
                                    void *recvbuf, size_t count, tally_dtype_t dtype,
                                    tally_op_t op);

/* Runs `algo` instead of the call's algorithm (which cannot run, for
 * `reason`), counting it among the calls that ran elsewhere. */
tally_status_t tally_call_redirect(tally_call_t *call, const struct tally_algo *algo,
                                   const char *reason);

/* At least `bytes` of scratch owned by this call until it ends (valid
 * until the next tally_call_scratch of the same call), or NULL. */
void *tally_call_scratch(tally_call_t *call, size_t bytes);

/* Data movement through the call's kernel table. */
static inline void tally_call_reduce(const tally_call_t *call, void *dst, const void *a,
                                     const void *b, size_t count)
{
    if (count > 0)
        call->reduce(dst, a, b, count);
}

static inline void tally_call_copy(const tally_call_t *call, void *dst, const void *src,
                                   size_t count)
{
    call->kernels->copy(dst, src, count * call->elem_size);
}

/* Copies sendbuf to recvbuf unless in place (the p == 1 case and the start
 * of algorithms that work in recvbuf). */
static inline void tally_call_copy_input(const tally_call_t *call)
{
    tally_call_copy(call, call->recvbuf, call->sendbuf, call->count);
}

/* Completes `count` fully reduced elements at buf: divides by the
 * communicator size for AVG, nothing otherwise. */
static inline void tally_call_finish(const tally_call_t *call, void *buf, size_t count)
{
    if (call->op == TALLY_AVG && count > 0)
        call->kernels->divide[call->dtype](buf, count, call->size);
}

#endif
