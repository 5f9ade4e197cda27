/* stats.c - TALLY_STATS and the choice logs (see stats.h).
 *
 * Rows are keyed by the algorithm's name, a static string of its
 * descriptor (pointer first, then by text), and the calls that ran
 * elsewhere by the pair (algorithm asked, reason), both static strings.
 * Lines are logged after the lock is released. */
#define _GNU_SOURCE /* open_memstream */
#include "stats.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../algo/algo.h"
#include "dtype.h"
#include "log.h"

#define STATS_ALGOS 32    /* more than the registry holds */
#define STATS_ELSEWHERE 16 /* distinct (asked, reason) pairs; more count as "other" */

typedef struct algo_row {
    const char *name;
    uint64_t calls, bytes, failed;
    double seconds;
    uint64_t classes_seen; /* bit k: a call of 2^k .. 2^(k+1)-1 bytes was logged */
    bool zero_seen;        /* a call of 0 bytes was logged */
} algo_row_t;

typedef struct elsewhere_row {
    const char *asked, *reason;
    uint64_t calls;
} elsewhere_row_t;

struct tally_stats {
    pthread_mutex_t lock;
    char label[64];       /* the communicator's, for logs and the table */
    int size;             /* its ranks */
    algo_row_t algos[STATS_ALGOS];
    int nalgos;
    uint64_t other_algos; /* calls of algorithms beyond STATS_ALGOS (never, in practice) */
    elsewhere_row_t elsewhere[STATS_ELSEWHERE];
    int nelsewhere;
    uint64_t other_elsewhere;
};

tally_status_t tally_stats_create(const char *label, int size, tally_stats_t **out)
{
    tally_stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return TALLY_ERR_NO_MEMORY;
    snprintf(s->label, sizeof s->label, "%s", label);
    s->size = size;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return TALLY_ERR_NO_MEMORY;
    }
    *out = s;
    return TALLY_SUCCESS;
}

void tally_stats_destroy(tally_stats_t *stats)
{
    if (!stats)
        return;
    pthread_mutex_destroy(&stats->lock);
    free(stats);
}

/* Under the lock: the row of `name`, or NULL when the table is full. */
static algo_row_t *algo_row(tally_stats_t *s, const char *name)
{
    for (int i = 0; i < s->nalgos; i++)
        if (s->algos[i].name == name || strcmp(s->algos[i].name, name) == 0)
            return &s->algos[i];
    if (s->nalgos == STATS_ALGOS)
        return NULL;
    algo_row_t *row = &s->algos[s->nalgos++];
    *row = (algo_row_t){.name = name};
    return row;
}

/* "1 KiB" for 1024: bytes that are a power of two, in the largest unit. */
static void pow2_text(unsigned k, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    snprintf(buf, len, "%llu %s", 1ull << (k % 10), units[k / 10]);
}

static unsigned floor_log2(uint64_t x)
{
    return 63u - (unsigned)__builtin_clzll(x);
}

void tally_stats_record(tally_stats_t *s, const tally_call_t *call, double seconds,
                        tally_status_t status)
{
    const struct tally_comm *comm = call->comm;
    const char *name = call->algo ? call->algo->name : "?";
    const uint64_t bytes = (uint64_t)call->count * call->elem_size;
    const unsigned k = bytes ? floor_log2(bytes) : 0;
    const tally_log_level_t level = tally_comm_log_level(comm);
    bool first_of_class = false;

    pthread_mutex_lock(&s->lock);
    algo_row_t *row = algo_row(s, name);
    if (!row) {
        s->other_algos++;
    } else {
        if (status == TALLY_SUCCESS) {
            row->calls++;
            row->bytes += bytes;
            row->seconds += seconds;
        } else {
            row->failed++;
        }
        if (level >= TALLY_LOG_DEBUG) {
            if (bytes == 0) {
                first_of_class = !row->zero_seen;
                row->zero_seen = true;
            } else {
                first_of_class = !(row->classes_seen & (1ull << k));
                row->classes_seen |= 1ull << k;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);

    if (level < TALLY_LOG_DEBUG)
        return;
    const char *label = s->label;
    if (first_of_class) {
        char lo[32] = "0 B", hi[32] = "";
        if (bytes) {
            pow2_text(k, lo, sizeof lo);
            if (k < 63)
                pow2_text(k + 1, hi, sizeof hi);
        }
        TALLY_LOG(comm, TALLY_LOG_DEBUG,
                  "%s: %s for calls of %s%s%s (first: call %" PRIu64
                  ", %" PRIu64 " bytes of %s, %s): %s",
                  label, name, lo, bytes ? " up to " : "", bytes ? hi : "", call->seq,
                  bytes, tally_dtype_name(call->dtype), tally_op_name(call->op),
                  call->reason ? call->reason : "(no reason given)");
    }
    if (level >= TALLY_LOG_TRACE)
        TALLY_LOG(comm, TALLY_LOG_TRACE,
                  "%s: call %" PRIu64 ": %s, %" PRIu64 " bytes of %s, %s, %.6f s%s%s", label,
                  call->seq, name, bytes, tally_dtype_name(call->dtype),
                  tally_op_name(call->op), seconds, status == TALLY_SUCCESS ? "" : ": ",
                  status == TALLY_SUCCESS ? "" : tally_strerror(status));
}

void tally_stats_elsewhere(tally_stats_t *s, const struct tally_comm *comm, const char *asked,
                           const char *reason)
{
    if (!asked)
        asked = "?";
    if (!reason)
        reason = "(no reason given)";
    bool first = false;
    pthread_mutex_lock(&s->lock);
    elsewhere_row_t *row = NULL;
    for (int i = 0; i < s->nelsewhere && !row; i++) {
        elsewhere_row_t *r = &s->elsewhere[i];
        if ((r->asked == asked || strcmp(r->asked, asked) == 0) &&
            (r->reason == reason || strcmp(r->reason, reason) == 0))
            row = r;
    }
    if (!row && s->nelsewhere < STATS_ELSEWHERE) {
        row = &s->elsewhere[s->nelsewhere++];
        *row = (elsewhere_row_t){asked, reason, 0};
    }
    if (row) {
        first = row->calls == 0;
        row->calls++;
    } else {
        s->other_elsewhere++;
    }
    pthread_mutex_unlock(&s->lock);
    if (first)
        TALLY_LOG(comm, TALLY_LOG_DEBUG, "%s: %s asked, the call runs elsewhere: %s", s->label,
                  asked, reason);
}

/* The table, in the layout of libtally-preload.so's (tally-preload(7)). */
static void write_table(const tally_stats_t *s, FILE *o)
{
    fprintf(o, "tally: statistics of a communicator of %s, its rank 0 (TALLY_STATS=1)\n",
            s->label);
    fprintf(o, "tally: %6s %-20s %12s %16s %12s\n", "ranks", "algorithm", "calls", "bytes",
            "seconds");
    for (int i = 0; i < s->nalgos; i++) {
        const algo_row_t *r = &s->algos[i];
        if (r->calls)
            fprintf(o, "tally: %6d %-20s %12" PRIu64 " %16" PRIu64 " %12.6f\n", s->size,
                    r->name, r->calls, r->bytes, r->seconds);
    }
    if (s->other_algos)
        fprintf(o, "tally: %6d %-20s %12" PRIu64 "\n", s->size, "(others)", s->other_algos);
    if (s->nelsewhere || s->other_elsewhere) {
        fprintf(o, "tally: %6s %-20s %12s   (algorithm asked; why the call ran elsewhere)\n",
                "", "elsewhere", "calls");
        for (int i = 0; i < s->nelsewhere; i++)
            fprintf(o, "tally: %6s %-20s %12" PRIu64 "   %s\n", "", s->elsewhere[i].asked,
                    s->elsewhere[i].calls, s->elsewhere[i].reason);
        if (s->other_elsewhere)
            fprintf(o, "tally: %6s %-20s %12" PRIu64 "\n", "", "(others)", s->other_elsewhere);
    }
    bool any_failed = false;
    for (int i = 0; i < s->nalgos; i++)
        any_failed = any_failed || s->algos[i].failed;
    if (any_failed) {
        fprintf(o, "tally: %6s %-20s %12s   (returned an error)\n", "", "failed", "calls");
        for (int i = 0; i < s->nalgos; i++)
            if (s->algos[i].failed)
                fprintf(o, "tally: %6s %-20s %12" PRIu64 "\n", "", s->algos[i].name,
                        s->algos[i].failed);
    }
}

/* Defined by libtally-preload.so (src/preload/preload.c): nonzero when
 * it prints the process's TALLY_STATS table at MPI_Finalize.  That table
 * covers every communicator the drop-in made and the calls it passed to
 * the MPI, so the communicators it destroys print none of their own
 * (which would be one table per MPI_Comm_free).  Weak: NULL unless the
 * drop-in is loaded. */
extern int tally_preload_prints_stats(void) __attribute__((weak, visibility("default")));

void tally_stats_print(tally_stats_t *s, FILE *out)
{
    if (!s || (tally_preload_prints_stats && tally_preload_prints_stats()))
        return;
    pthread_mutex_lock(&s->lock);
    bool any = s->other_algos || s->nelsewhere || s->other_elsewhere;
    for (int i = 0; i < s->nalgos; i++)
        any = any || s->algos[i].calls || s->algos[i].failed;
    if (any) {
        /* One write, so that other ranks' lines do not cut into the table. */
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (mem) {
            write_table(s, mem);
            if (fclose(mem) == 0 && text)
                fwrite(text, 1, len, out);
            free(text);
        } else {
            write_table(s, out);
        }
        fflush(out);
    }
    pthread_mutex_unlock(&s->lock);
}
