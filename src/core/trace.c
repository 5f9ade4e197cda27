/* trace.c - TALLY_TRACE (see trace.h and tally(7), TRACE AND STATISTICS).
 *
 * TALLY_TRACE=PATH: this process writes PATH.R.json, R its rank in
 * MPI_COMM_WORLD, in Chrome's JSON array format: one complete event
 * ("ph":"X", ts and dur in microseconds of CLOCK_MONOTONIC) per call and
 * per phase, pid = R and tid = 0, so that the files of all ranks, merged
 * (tally-trace-merge(1)), show one row per rank.  The first events are
 * metadata: the process's name ("rank R") and, for tally-trace-merge, the
 * host and the offset of CLOCK_REALTIME from CLOCK_MONOTONIC, which line
 * up the ranks of different hosts.
 *
 * Process-wide state: the open trace below is, with the parsed
 * configuration, the one piece of state tally keeps per process rather
 * than per communicator.  Every communicator of the process writes to the
 * same file (tally_trace_open takes a reference), so its mutex guards it.
 * The last tally_trace_close writes the closing bracket and closes the
 * file; a later open (a communicator created after all others were
 * destroyed) reopens it and writes over that bracket, so earlier events
 * stay and the file is valid JSON whenever no communicator holds it.  A
 * process that exits with communicators alive gets its bracket from an
 * atexit handler.  Each event is one fprintf into stdio's buffer; the
 * file is flushed at close. */
#define _GNU_SOURCE
#include "trace.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../algo/algo.h"
#include "config.h"
#include "dtype.h"
#include "log.h"

struct tally_trace {
    FILE *file;
    int refs;
    int rank;
    bool any_event;  /* an event is in the file: the next one starts with "," */
    bool created;    /* the file was made by this process (reopen, do not truncate) */
    long end;        /* offset of the closing bracket, once closed */
    char prefix[TALLY_PATH_MAX]; /* TALLY_TRACE of the file made */
    char path[TALLY_PATH_MAX + 32];
    char buffer[1 << 16];
};

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tally_trace trace_state;
static bool trace_atexit_set;

double tally_trace_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Microseconds with three decimals (nanoseconds), from seconds. */
static long long to_ns(double seconds)
{
    return llround(seconds * 1e9);
}

static const char *status_name(tally_status_t status)
{
    switch (status) {
#define TALLY_TRACE_STATUS_(name, value, text) \
    case TALLY_##name:                         \
        return "TALLY_" #name;
        TALLY_STATUS_MAP(TALLY_TRACE_STATUS_)
#undef TALLY_TRACE_STATUS_
    }
    return "?";
}

/* Writes a string as a JSON string (the host name is the only text that
 * does not come from tally itself). */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Under trace_lock, with the file open: the bracket, then close. */
static void finish_locked(struct tally_trace *t)
{
    fputs(t->any_event ? "\n" : "", t->file);
    t->end = ftell(t->file);
    fputs("]\n", t->file);
    if (fclose(t->file) != 0)
        TALLY_LOG(NULL, TALLY_LOG_WARN, "TALLY_TRACE: writing %s failed: %s", t->path,
                  strerror(errno));
    t->file = NULL;
}

static void close_at_exit(void)
{
    pthread_mutex_lock(&trace_lock);
    if (trace_state.file) {
        finish_locked(&trace_state);
        trace_state.refs = 0;
    }
    pthread_mutex_unlock(&trace_lock);
}

/* The metadata events that start the file. */
static void write_header(struct tally_trace *t)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    long long offset_ns = ((long long)real.tv_sec - (long long)mono.tv_sec) * 1000000000LL +
                          ((long long)real.tv_nsec - (long long)mono.tv_nsec);
    FILE *f = t->file;
    fprintf(f, "[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"name\":\"rank %d\"}},\n",
            t->rank, t->rank);
    fprintf(f, "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"sort_index\":%d}},\n",
            t->rank, t->rank);
    fprintf(f, "{\"name\":\"tally_clock\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
               "\"args\":{\"host\":",
            t->rank);
    json_string(f, host);
    fprintf(f, ",\"clock\":\"CLOCK_MONOTONIC\",\"realtime_minus_monotonic_us\":%lld.%03lld}}",
            offset_ns / 1000, llabs(offset_ns % 1000));
    t->any_event = true;
}

static int world_rank(void)
{
    int initialized = 0, finalized = 0, rank = 0;
    PMPI_Initialized(&initialized);
    PMPI_Finalized(&finalized);
    if (initialized && !finalized && PMPI_Comm_rank(MPI_COMM_WORLD, &rank) != MPI_SUCCESS)
        rank = 0;
    return rank;
}

tally_status_t tally_trace_open(const char *path, tally_trace_t **out)
{
    if (!path || !path[0]) {
        *out = NULL;
        return TALLY_SUCCESS;
    }
    tally_status_t st = TALLY_SUCCESS;
    struct tally_trace *t = &trace_state;
    pthread_mutex_lock(&trace_lock);
    if (t->file) {
        /* Already open: every communicator of the process shares the file
         * named by the first TALLY_TRACE (the rank does not change). */
        t->refs++;
        goto out;
    }
    /* A TALLY_TRACE changed since (tests do that) starts a file of its own. */
    if (t->created && strcmp(t->prefix, path) != 0)
        t->created = false;
    if (!t->created) {
        t->rank = world_rank();
        snprintf(t->prefix, sizeof t->prefix, "%s", path);
        snprintf(t->path, sizeof t->path, "%s.%d.json", path, t->rank);
        t->file = fopen(t->path, "w");
    } else {
        /* Reopened after the last close: write over the closing bracket. */
        t->file = fopen(t->path, "r+");
        if (t->file && fseek(t->file, t->end, SEEK_SET) != 0) {
            fclose(t->file);
            t->file = NULL;
        }
    }
    if (!t->file) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "TALLY_TRACE: cannot open %s: %s", t->path,
                  strerror(errno));
        st = TALLY_ERR_INVALID_CONFIG;
        goto out;
    }
    setvbuf(t->file, t->buffer, _IOFBF, sizeof t->buffer);
    if (!t->created) {
        t->any_event = false;
        write_header(t);
        t->created = true;
    } else {
        /* The "\n" before the bracket stays; the next event adds ",". */
        t->any_event = true;
    }
    if (!trace_atexit_set)
        trace_atexit_set = atexit(close_at_exit) == 0;
    t->refs = 1;
out:
    pthread_mutex_unlock(&trace_lock);
    if (st == TALLY_SUCCESS)
        *out = t;
    return st;
}

void tally_trace_close(tally_trace_t *trace)
{
    if (!trace)
        return;
    pthread_mutex_lock(&trace_lock);
    if (trace->file && --trace->refs == 0)
        finish_locked(trace);
    pthread_mutex_unlock(&trace_lock);
}

/* ",\n{... "ts":T,"dur":D,"pid":R,"tid":0," with T and D from t0, t1. */
static void begin_event(struct tally_trace *t, const char *name, const char *cat, double t0,
                        double t1)
{
    long long ns0 = to_ns(t0), ns1 = to_ns(t1);
    long long dur = ns1 > ns0 ? ns1 - ns0 : 0;
    fprintf(t->file,
            "%s{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%lld.%03lld,"
            "\"dur\":%lld.%03lld,\"pid\":%d,\"tid\":0,",
            t->any_event ? ",\n" : "", name, cat, ns0 / 1000, ns0 % 1000, dur / 1000,
            dur % 1000, t->rank);
    t->any_event = true;
}

void tally_trace_call(const tally_call_t *call, double t1, tally_status_t status)
{
    struct tally_trace *t = call->trace;
    const char *label = call->comm_label ? call->comm_label : "?";
    const char *algo = call->algo ? call->algo->name : "?";
    pthread_mutex_lock(&trace_lock);
    if (t->file) {
        /* The names and reasons are tally's own static strings (registry,
         * dtype and op tables, status map, the label): no JSON escaping
         * needed. */
        begin_event(t, algo, "call", call->t_start, t1);
        fprintf(t->file,
                "\"args\":{\"seq\":%" PRIu64 ",\"bytes\":%zu,\"count\":%zu,\"dtype\":\"%s\","
                "\"op\":\"%s\",\"comm\":\"%s\",\"status\":\"%s\",\"why\":\"%s\"}}",
                call->seq, call->count * call->elem_size, call->count,
                tally_dtype_name(call->dtype), tally_op_name(call->op), label,
                status_name(status), call->reason ? call->reason : "");
    }
    pthread_mutex_unlock(&trace_lock);
}

void tally_trace_queued(tally_trace_t *t, uint64_t seq, double t0, double t1)
{
    pthread_mutex_lock(&trace_lock);
    if (t->file) {
        begin_event(t, "queued", "queue", t0, t1);
        fprintf(t->file, "\"args\":{\"seq\":%" PRIu64 "}}", seq);
    }
    pthread_mutex_unlock(&trace_lock);
}

void tally_trace_phase(const tally_call_t *call, const char *phase, double t0, double t1)
{
    struct tally_trace *t = call->trace;
    pthread_mutex_lock(&trace_lock);
    if (t->file) {
        begin_event(t, phase, "phase", t0, t1);
        fprintf(t->file, "\"args\":{\"seq\":%" PRIu64 "}}", call->seq);
    }
    pthread_mutex_unlock(&trace_lock);
}
