/* request.c - tally_iallreduce, tally_iallreduce_compressed,
 * tally_iallreduce_multi, tally_test, tally_wait, tally_waitall: the queue
 * and its progress thread (request.h). */
#include "request.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "compressor.h"
#include "entry.h"
#include "fusion.h"
#include "log.h"
#include "trace.h"

tally_status_t tally_request_run(struct tally_request *req)
{
    if (req->comm->trace) /* the queue's wait, before the call's own span */
        tally_trace_queued(req->comm->trace, req->comm->next_seq, req->t_queued,
                           tally_trace_now());
    if (req->kind == TALLY_REQUEST_MULTI)
        return tally_fusion_run(req->comm, req->bufs, req->nbufs, req->dtype, req->op, NULL);
    if (req->count == 0)
        return TALLY_SUCCESS;
    if (req->codec) {
        req->codec->calls++;
        return tally_call_allreduce_coded(req->comm, req->sendbuf, req->recvbuf, req->count,
                                          req->dtype, req->op, req->codec, 0);
    }
    return tally_call_allreduce(req->comm, req->sendbuf, req->recvbuf, req->count, req->dtype,
                                req->op);
}

/* The queue's next request, taken off it as running; NULL if it is empty
 * or one runs already (one at a time: the order is the ranks' contract).
 * Called with the lock held. */
static struct tally_request *take(tally_progress_t *p)
{
    struct tally_request *req = p->running ? NULL : p->head;
    if (req) {
        p->head = req->next;
        if (!p->head)
            p->tail = NULL;
        req->next = NULL;
        p->running = req;
    }
    return req;
}

/* Wakes the thread when it sleeps and there is a call for it: a needless
 * wake-up takes a core from a rank that is busy in a call.  Called with the
 * lock held. */
static void wake_thread(tally_progress_t *p)
{
    if (p->thread_idle && p->head && !p->running)
        pthread_cond_signal(&p->wake);
}

/* Runs req (taken) with the lock released; marks it done.  Called and
 * returns with the lock held.  Wakes nobody to run the next call: the
 * thread takes it itself, and a waiter wakes the thread when it stops
 * taking calls (waking it after each call a waiter runs would only make it
 * find the next one taken, at the price of a context switch per call). */
static void run_taken(tally_progress_t *p, struct tally_request *req)
{
    pthread_mutex_unlock(&p->lock);
    /* On this thread (the progress thread, or a waiter), on the
     * communicator's device. */
    const tally_device_t *dev = p->device;
    const int previous = dev->backend ? dev->backend->bind_thread(dev->ctx) : 0;
    tally_status_t st = tally_request_run(req);
    if (dev->backend)
        dev->backend->restore_thread(dev->ctx, previous);
    pthread_mutex_lock(&p->lock);
    req->status = st;
    req->done = true;
    p->running = NULL;
    /* Wake the waiters only when one of them can stop waiting: with calls
     * streaming through the thread a wake-up per call costs more than the
     * calls. */
    if (req->waited || (p->draining && !p->head))
        pthread_cond_broadcast(&p->finished);
}

/* With the queue empty the thread gives its core away once before it
 * sleeps: the caller starting calls usually shares that core (MPI binds a
 * rank, and its threads, to a core), and was preempted when its last start
 * woke the thread.  Sleeping at once would make every start of a stream of
 * small calls a wake-up and two context switches; yielding lets the caller
 * queue the next calls, which the thread then runs back to back. */
static void *progress_main(void *arg)
{
    tally_progress_t *p = arg;
    tally_call_mark_background_thread(&p->in_background);
    pthread_mutex_lock(&p->lock);
    bool yielded = false;
    while (!p->stop) {
        struct tally_request *req = take(p);
        if (req) {
            run_taken(p, req);
            yielded = false;
        } else if (!yielded) {
            pthread_mutex_unlock(&p->lock);
            sched_yield();
            pthread_mutex_lock(&p->lock);
            yielded = true;
        } else {
            p->thread_idle = true;
            pthread_cond_wait(&p->wake, &p->lock); /* idle: no core spent */
            p->thread_idle = false;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Runs queued requests in the caller's thread, in order, until `until` is
 * done (NULL: until the queue is empty and idle) or, with `one`, after a
 * single request; sleeps while the progress thread runs one.  A caller
 * that would sleep anyway runs the next call itself: waking the thread
 * and being woken by it costs more than a small call. */
static void run_here(tally_progress_t *p, struct tally_request *until, bool one)
{
    pthread_mutex_lock(&p->lock);
    if (p->waiters++ == 0) /* the thread's call in flight may stop sleeping */
        __atomic_store_n(&p->in_background, false, __ATOMIC_RELAXED);
    if (until)
        until->waited = true;
    else
        p->draining++;
    while (until ? !until->done : p->head || p->running) {
        struct tally_request *req = take(p);
        if (!req) {
            pthread_cond_wait(&p->finished, &p->lock);
            continue;
        }
        run_taken(p, req);
        if (one)
            break;
    }
    if (!until)
        p->draining--;
    if (--p->waiters == 0)
        __atomic_store_n(&p->in_background, true, __ATOMIC_RELAXED);
    wake_thread(p); /* for the calls after `until` */
    pthread_mutex_unlock(&p->lock);
}

static tally_status_t progress_make(tally_comm_t *comm)
{
    tally_progress_t *p = calloc(1, sizeof *p);
    if (!p)
        return TALLY_ERR_NO_MEMORY;
    p->in_background = true;
    p->device = &comm->device;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->finished, NULL);
    int provided = MPI_THREAD_SINGLE;
    PMPI_Query_thread(&provided);
    if (provided == MPI_THREAD_MULTIPLE && comm->config.progress_thread) {
        p->threaded = pthread_create(&p->thread, NULL, progress_main, p) == 0;
        if (!p->threaded)
            TALLY_LOG(comm, TALLY_LOG_WARN, "cannot start a progress thread; non-blocking "
                                            "calls run inside tally_test and tally_wait");
    }
    comm->progress = p;
    comm->drain = tally_progress_drain;
    comm->progress_free = tally_progress_destroy;
    return TALLY_SUCCESS;
}

tally_status_t tally_request_start(struct tally_request *req)
{
    tally_comm_t *comm = req->comm;
    if (!comm->progress)
        TALLY_CHECK(progress_make(comm));
    tally_progress_t *p = comm->progress;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = req;
    else
        p->head = req;
    p->tail = req;
    p->outstanding++;
    wake_thread(p); /* if a call runs, whoever runs it wakes the thread after */
    pthread_mutex_unlock(&p->lock);
    return TALLY_SUCCESS;
}

void tally_progress_drain(tally_comm_t *comm)
{
    tally_progress_t *p = comm->progress;
    if (p)
        run_here(p, NULL, false);
}

void tally_progress_destroy(tally_comm_t *comm)
{
    tally_progress_t *p = comm->progress;
    if (!p)
        return;
    tally_progress_drain(comm);
    if (p->threaded) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    if (p->outstanding)
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_comm_destroy: %zu non-blocking request%s never waited for (their "
                  "calls ran; the requests leak: call tally_wait before destroying)",
                  p->outstanding, p->outstanding == 1 ? " was" : "s were");
    pthread_cond_destroy(&p->finished);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
    comm->progress = NULL;
    comm->drain = NULL;
    comm->progress_free = NULL;
}

/* --- the public functions ---------------------------------------------------- */

static tally_status_t start(struct tally_request *proto, tally_request_t **out)
{
    struct tally_request *req = malloc(sizeof *req);
    if (!req)
        return TALLY_ERR_NO_MEMORY;
    *req = *proto;
    req->next = NULL;
    req->done = false;
    req->waited = false;
    req->t_queued = req->comm->trace ? tally_trace_now() : 0.0;
    tally_status_t st = tally_request_start(req);
    if (st != TALLY_SUCCESS) {
        free(req);
        return st;
    }
    *out = req;
    return TALLY_SUCCESS;
}

tally_status_t tally_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                tally_dtype_t dtype, tally_op_t op, tally_comm_t *comm,
                                tally_request_t **req)
{
    if (!req) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_iallreduce: req is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    TALLY_CHECK(tally_check_call("tally_iallreduce", sendbuf, recvbuf, count, dtype, op, comm));
    struct tally_request proto = {.comm = comm, .kind = TALLY_REQUEST_ONE, .sendbuf = sendbuf,
                                  .recvbuf = recvbuf, .count = count, .dtype = dtype, .op = op};
    return start(&proto, req);
}

tally_status_t tally_iallreduce_compressed(const void *sendbuf, void *recvbuf, size_t count,
                                           tally_dtype_t dtype, tally_op_t op,
                                           tally_compressor_t *c, tally_request_t **req)
{
    if (!req) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_iallreduce_compressed: req is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    TALLY_CHECK(tally_check_compressed("tally_iallreduce_compressed", sendbuf, recvbuf, count,
                                       dtype, op, c));
    struct tally_request proto = {.comm = c->comm, .kind = TALLY_REQUEST_ONE,
                                  .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
                                  .dtype = dtype, .op = op, .codec = c};
    return start(&proto, req);
}

tally_status_t tally_iallreduce_multi(const tally_buffer_t *bufs, size_t n, tally_dtype_t dtype,
                                      tally_op_t op, tally_comm_t *comm, tally_request_t **req)
{
    if (!req) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_iallreduce_multi: req is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    TALLY_CHECK(tally_fusion_check("tally_iallreduce_multi", bufs, n, dtype, op, comm));
    tally_buffer_t *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return TALLY_ERR_NO_MEMORY;
    if (n)
        memcpy(copy, bufs, n * sizeof *copy);
    struct tally_request proto = {.comm = comm, .kind = TALLY_REQUEST_MULTI, .bufs = copy,
                                  .nbufs = n, .dtype = dtype, .op = op};
    tally_status_t st = start(&proto, req);
    if (st != TALLY_SUCCESS)
        free(copy);
    return st;
}

/* Frees a completed request; its status. */
static tally_status_t finish(tally_request_t **reqp)
{
    struct tally_request *req = *reqp;
    tally_progress_t *p = req->comm->progress;
    tally_status_t st = req->status;
    pthread_mutex_lock(&p->lock);
    p->outstanding--;
    pthread_mutex_unlock(&p->lock);
    free(req->bufs);
    free(req);
    *reqp = NULL;
    return st;
}

tally_status_t tally_wait(tally_request_t **reqp)
{
    if (!reqp || !*reqp) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR,
                  "tally_wait: the request is NULL (already completed, or never started)");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    struct tally_request *req = *reqp;
    run_here(req->comm->progress, req, false);
    return finish(reqp);
}

tally_status_t tally_test(tally_request_t **reqp, int *done)
{
    if (!reqp || !*reqp || !done) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_test: %s is NULL%s",
                  !done ? "done" : "the request",
                  done ? " (already completed, or never started)" : "");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    struct tally_request *req = *reqp;
    tally_progress_t *p = req->comm->progress;
    if (!p->threaded) /* progress happens here: one queued call */
        run_here(p, req, true);
    pthread_mutex_lock(&p->lock);
    const bool finished = req->done;
    pthread_mutex_unlock(&p->lock);
    *done = finished;
    return finished ? finish(reqp) : TALLY_SUCCESS;
}

tally_status_t tally_waitall(size_t n, tally_request_t **reqs)
{
    if (n && !reqs) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_waitall: reqs is NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    /* Every request is waited for, from the last: a communicator's calls
     * complete in the order started, so when the array is in that order the
     * first wait covers them all and the rest cost no sleep.  The failure
     * of the lowest index is returned. */
    tally_status_t first = TALLY_SUCCESS;
    for (size_t i = n; i-- > 0;) {
        if (!reqs[i])
            continue; /* completed already, like MPI_REQUEST_NULL */
        tally_status_t st = tally_wait(&reqs[i]);
        if (st != TALLY_SUCCESS)
            first = st;
    }
    return first;
}
