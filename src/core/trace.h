/* trace.h - TALLY_TRACE: a Chrome trace (JSON that Perfetto and
 * chrome://tracing load) of every call, one span per call with nested
 * spans for its phases.  When TALLY_TRACE is unset a call's trace pointer
 * is NULL and each span costs one branch. */
#ifndef TALLY_TRACE_H
#define TALLY_TRACE_H

#include "call.h"
#include "tally.h"

typedef struct tally_trace tally_trace_t;

/* Opens this process's trace for TALLY_TRACE=path (see tally(7) for the
 * file naming), or takes another reference to the one already open.
 * *out is NULL when path is empty. */
tally_status_t tally_trace_open(const char *path, tally_trace_t **out);
/* Drops a reference; the last one closes the file (valid JSON). */
void tally_trace_close(tally_trace_t *trace);

/* Seconds on a monotonic clock. */
double tally_trace_now(void);

/* The span of a whole call: algorithm, bytes, dtype, op, communicator and
 * sequence number; t0 = call->t_start. */
void tally_trace_call(const tally_call_t *call, double t1, tally_status_t status);
/* One phase of a call (intra-node reduce-scatter, across nodes, ...). */
void tally_trace_phase(const tally_call_t *call, const char *phase, double t0, double t1);

/* The time a started call waited in its communicator's queue before it
 * ran (request.h): a span "queued" (category "queue") with the seq the
 * call then gets. */
void tally_trace_queued(tally_trace_t *trace, uint64_t seq, double t0, double t1);

/* Phase spans: begin returns the start time (0 when not tracing). */
static inline double tally_phase_begin(const tally_call_t *call)
{
    return call->trace ? tally_trace_now() : 0.0;
}

static inline void tally_phase_end(const tally_call_t *call, const char *phase, double t0)
{
    if (call->trace)
        tally_trace_phase(call, phase, t0, tally_trace_now());
}

#endif
