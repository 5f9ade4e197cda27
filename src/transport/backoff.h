/* backoff.h - how the transports' polled waits sleep once they have spun
 * long enough: each sleep twice the last, up to a cap, so that a long wait
 * costs no core.
 *
 * Two policies.  A watched wait (TALLY_TIMEOUT) only has to stop burning a
 * core while a peer is stuck: it sleeps up to a millisecond.  A background
 * call (call.h: the progress thread runs it while the program computes)
 * sleeps early and at most a quarter of a millisecond: the cores belong to
 * the computation, and while the thread sleeps the MPI's socket buffers
 * keep the wire busy.  Shorter sleeps cost a context switch each; longer
 * ones leave the wire idle when the buffers drain. */
#ifndef TALLY_BACKOFF_H
#define TALLY_BACKOFF_H

#include <stdbool.h>
#include <time.h>

typedef struct tally_backoff {
    long sleep_ns, max_ns;
} tally_backoff_t;

static inline tally_backoff_t tally_backoff_start(bool background)
{
    return background ? (tally_backoff_t){20000, 250000} : (tally_backoff_t){1000, 1000000};
}

static inline void tally_backoff_sleep(tally_backoff_t *b)
{
    const struct timespec ts = {0, b->sleep_ns};
    nanosleep(&ts, NULL);
    b->sleep_ns = b->sleep_ns * 2 > b->max_ns ? b->max_ns : b->sleep_ns * 2;
}

#endif
