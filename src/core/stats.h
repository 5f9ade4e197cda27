/* stats.h - TALLY_STATS and the choice logs: per communicator, the calls,
 * bytes and seconds of each algorithm, the calls that ran elsewhere than
 * asked (by reason), a debug line for each choice (once per algorithm and
 * size class) and, at TALLY_LOG_TRACE, a line for every call.
 *
 * A communicator holds a tally_stats_t only when TALLY_STATS=1 or the log
 * level is debug or more (comm->stats is NULL otherwise, and callers call
 * nothing).  The object belongs to one communicator; its own lock makes
 * calls from several threads safe. */
#ifndef TALLY_STATS_H
#define TALLY_STATS_H

#include <stddef.h>
#include <stdio.h>

#include "call.h"
#include "tally.h"

typedef struct tally_stats tally_stats_t;
struct tally_comm;

/* A fresh, empty object for a communicator of `size` ranks named `label`
 * (comm.h's label) in *out (TALLY_ERR_NO_MEMORY, *out untouched). */
tally_status_t tally_stats_create(const char *label, int size, tally_stats_t **out);
/* Frees stats; NULL is allowed. */
void tally_stats_destroy(tally_stats_t *stats);

/* After each call: counts it under call->algo (calls, bytes, seconds; a
 * failed call counts as failed), logs the choice at TALLY_LOG_DEBUG the
 * first time this algorithm serves this size class (floor(log2(bytes)))
 * on the call's communicator, with call->reason, and logs the call at
 * TALLY_LOG_TRACE. */
void tally_stats_record(tally_stats_t *stats, const tally_call_t *call, double seconds,
                        tally_status_t status);

/* A call that runs elsewhere than `asked` (an algorithm name): counted per
 * reason (a static string), logged (through comm's log level) at
 * TALLY_LOG_DEBUG the first time for each reason. */
void tally_stats_elsewhere(tally_stats_t *stats, const struct tally_comm *comm,
                           const char *asked, const char *reason);

/* The TALLY_STATS table of the counts: a row per algorithm (ranks, calls, bytes, seconds), then the
 * calls that ran elsewhere than asked, by reason, and the failed calls.
 * Written in one piece, each line prefixed "tally: ".  The caller decides
 * who prints (rank 0 of a non-nested communicator, at destroy).  Nothing
 * is written when the communicator has made no call, or when libtally-preload.so is
 * loaded and prints its own table of the whole process at MPI_Finalize
 * (tally-preload(7)). */
void tally_stats_print(tally_stats_t *stats, FILE *out);

#endif
