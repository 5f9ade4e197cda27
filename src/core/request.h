/* request.h - non-blocking calls: a per-communicator queue of requests run
 * in the order they were started, by a progress thread where the MPI
 * grants MPI_THREAD_MULTIPLE, else inside tally_test and tally_wait.
 *
 * Why a thread per communicator: calls on one communicator must run in
 * order (every rank runs the same calls in the same order, so no rank waits
 * for a collective another rank has not reached), and calls on different
 * communicators must not wait for each other.  One thread per communicator
 * that has ever started a non-blocking call gives both with no scheduler
 * of our own; it sleeps on a condition variable when its queue is empty,
 * and the calls it runs are background calls (call.h), whose waits sleep
 * rather than spin, since the program computes on the same cores, except
 * while a caller waits for them (then they spin, as its own would).
 *
 * A blocking call on a communicator with calls in flight joins the queue
 * and waits, so that it keeps its place in the order; so do the calls that
 * change the communicator's state (tally_comm_set_algorithm, destroy). */
#ifndef TALLY_REQUEST_H
#define TALLY_REQUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "../mem/mem.h"
#include "tally.h"

struct tally_comm;
struct tally_compressor;

typedef enum tally_request_kind {
    TALLY_REQUEST_ONE,   /* one allreduce, compressed or not */
    TALLY_REQUEST_MULTI  /* tally_allreduce_multi's tensors */
} tally_request_kind_t;

struct tally_request {
    struct tally_comm *comm;
    tally_request_kind_t kind;
    const void *sendbuf;        /* ONE: as given (TALLY_IN_PLACE allowed) */
    void *recvbuf;
    size_t count;
    tally_buffer_t *bufs;       /* MULTI: a copy of the caller's array */
    size_t nbufs;
    tally_dtype_t dtype;
    tally_op_t op;
    struct tally_compressor *codec; /* ONE: NULL, or the compressor */
    tally_status_t status;      /* valid once done */
    bool done;
    bool waited;                /* a caller sleeps until it is done */
    double t_queued;            /* when started, for the trace's queue span */
    struct tally_request *next; /* in the communicator's queue */
};

/* The queue of one communicator (comm.h holds a pointer, NULL until the
 * first non-blocking call). */
typedef struct tally_progress {
    const tally_device_t *device; /* the communicator's: started calls run on its GPU */
    pthread_mutex_t lock;
    pthread_cond_t wake;        /* the thread: work arrived, or stop */
    pthread_cond_t finished;    /* waiters: a request completed */
    struct tally_request *head, *tail; /* not yet run, in order */
    struct tally_request *running;
    size_t outstanding;         /* started and not yet waited for */
    int draining;               /* callers waiting for the queue to empty */
    int waiters;                /* callers in tally_wait or a drain */
    bool in_background;         /* no waiters: the thread's calls leave the
                                   cores to the program (call.h) */
    bool threaded;              /* a progress thread runs the queue */
    bool thread_idle;           /* it sleeps on `wake` */
    bool stop;
    pthread_t thread;
} tally_progress_t;

/* Queues req on its communicator (making the queue and, where the MPI
 * allows, its thread on first use). */
tally_status_t tally_request_start(struct tally_request *req);

/* Runs every call queued before this point and waits until they are done:
 * before a blocking call or a change of the communicator's state. */
void tally_progress_drain(struct tally_comm *comm);

/* Stops the thread and frees the queue; requests never waited for are
 * reported (log) and left to the caller's leak. */
void tally_progress_destroy(struct tally_comm *comm);

/* Runs one request now, in the calling thread (the thread's work, and
 * tally_wait's where there is no thread). */
tally_status_t tally_request_run(struct tally_request *req);

#endif
