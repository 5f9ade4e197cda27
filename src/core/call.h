/* call.h - the call object: everything one allreduce needs, built once by
 * the internal entry (entry.h) and handed to the algorithm and its
 * transports.  Only types and the inline data movement live here, so
 * algorithms and transports depend on nothing else of core/.
 *
 * Every call goes through the entry: the public functions validate their
 * arguments, then tally_call_init + tally_call_execute; an algorithm's
 * step on a group of ranks (hier across nodes) builds its own call on the
 * group's communicator the same way, never through the public API.  The
 * object owns what must not be shared between two calls in flight on one
 * communicator: its MPI tag and its scratch space.  Slots for what later
 * layers add (codec and its state, the progress thread's wait policy) are
 * here so that they plug in without touching the algorithms' signatures. */
#ifndef TALLY_CALL_H
#define TALLY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../mem/mem.h"
#include "../reduce/reduce.h"
#include "../topo/shape.h"
#include "tally.h"

/* Lanes: a call's messages go on tag + lane, lane < TALLY_TAG_LANES, so an
 * algorithm with several streams in flight between the same two ranks
 * (hier's units) keeps their messages apart. */
#define TALLY_TAG_LANES 8

struct tally_comm;
struct tally_algo;
struct tally_scratch;
struct tally_scratch_pool;
struct tally_trace;

/* TALLY_TIMEOUT's watch over one call: the waits give up at `deadline`
 * and say what they waited for (the entry reports it). */
typedef struct tally_watch {
    double deadline;     /* seconds, tally_trace_now's clock */
    bool expired;
    const char *waiting; /* what the wait that gave up waited for */
    int peer;            /* ... and for whom (-1: unknown): a rank of the call's
                            communicator, or with local_peer a rank of the node */
    bool local_peer;
} tally_watch_t;

/* One tensor of a fused call (core/fusion.c): its elements are the call's
 * elements start .. start + count - 1.  TALLY_IN_PLACE resolved. */
typedef struct tally_span {
    const void *sendbuf;
    void *recvbuf;
    size_t start, count;
} tally_span_t;

typedef struct tally_call {
    /* What: TALLY_IN_PLACE resolved, so in place means sendbuf == recvbuf. */
    const void *sendbuf;
    void *recvbuf;
    /* A fused call run on its tensors where they are, without packing
     * (algorithms whose `spans` is set; then sendbuf and recvbuf are NULL):
     * the call's vector is these, laid end to end, none of count 0. */
    const tally_span_t *spans;
    size_t nspans;
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
    int tag;                     /* MPI tag of lane 0; lane l is tag + l */
    struct tally_scratch_pool *pool; /* the communicator's (scratch.h) */
    struct tally_scratch *scratch;   /* taken from the pool on first use */

    /* A compressed call: the compressor (core/compressor.h: codec and
     * error-feedback state) and where this call's elements start in its
     * tensor (a step of hier on a group covers part of it).  NULL: exact. */
    struct tally_compressor *codec;
    size_t codec_offset;
    /* NULL, or the call runs on a progress thread (core/request.c) and
     * this is its flag, true while no caller waits for the thread's calls:
     * the program computes, so the waits poll and sleep rather than spin
     * (transport/backoff.h).  tally_call_in_background reads it. */
    const bool *background;
    /* TALLY_TIMEOUT: the waits' deadline; NULL when off (waits block). */
    tally_watch_t *watch;

    /* Trace context: NULL when TALLY_TRACE is unset (one branch per span). */
    struct tally_trace *trace;
    const char *comm_label;      /* the communicator's label (comm.h) */
    double t_start;              /* seconds, when traced or counted */
} tally_call_t;

/* Whether the call's waits should leave the cores to the program now. */
static inline bool tally_call_in_background(const tally_call_t *call)
{
    return call->background && __atomic_load_n(call->background, __ATOMIC_RELAXED);
}

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

/* Where element `at` of the call's vector is sent from and received into,
 * and how many elements from it on lie contiguously there: to the end of
 * its tensor, or of the vector.  *span is a cursor (start it at 0): the
 * tensor found, tried first next time, so walking the vector in order costs
 * no search. */
static inline size_t tally_call_at(const tally_call_t *call, size_t at, size_t *span,
                                   const char **send, char **recv)
{
    if (!call->spans) {
        *send = (const char *)call->sendbuf + at * call->elem_size;
        *recv = (char *)call->recvbuf + at * call->elem_size;
        return call->count - at;
    }
    const tally_span_t *sp = call->spans;
    size_t i = *span < call->nspans ? *span : 0;
    if (sp[i].start > at || at - sp[i].start >= sp[i].count) {
        if (i + 1 < call->nspans && sp[i + 1].start <= at &&
            at - sp[i + 1].start < sp[i + 1].count) {
            i++;
        } else { /* the last tensor starting at or before `at` */
            size_t lo = 0, hi = call->nspans;
            while (hi - lo > 1) {
                const size_t mid = lo + (hi - lo) / 2;
                if (sp[mid].start <= at)
                    lo = mid;
                else
                    hi = mid;
            }
            i = lo;
        }
    }
    *span = i;
    const size_t in = at - sp[i].start;
    *send = (const char *)sp[i].sendbuf + in * call->elem_size;
    *recv = (char *)sp[i].recvbuf + in * call->elem_size;
    return sp[i].count - in;
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
