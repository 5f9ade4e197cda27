/* bench_common.h - what tally-bench and tally-tune share: element types,
 * option parsing, the size sweep, page-aligned buffers, agreement between
 * ranks, timing of one measurement, medians and the progress line.
 *
 * Uses only the public API (tally.h) and MPI.  Messages printed here
 * start with the `program` name passed in ("tally-bench").
 */
#ifndef TALLY_BENCH_COMMON_H
#define TALLY_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tally.h"

/* ------------------------------------------------------------ dtypes */

/* The library's facts (name, size, whether floating) come from its
 * introspection (tally_dtype_name, tally_dtype_size, tally_op_check); the
 * rest is what tally-bench's result check needs. */
typedef struct bench_dtype {
    tally_dtype_t dtype;
    const char *name;
    size_t size;
    bool is_float;
    /* For tally-bench's result check: */
    int exact_bits; /* integers up to 2^exact_bits stay exact and in range */
    double limit;   /* the largest value a check sum may reach */
    double eps;     /* one unit in the last place at 1.0 (0 for integers) */
} bench_dtype_t;

/* The descriptor of a tally dtype; NULL for a value that is not one. */
const bench_dtype_t *bench_dtype_find(tally_dtype_t dtype);

/* The descriptor named `name` ("float32", tally_dtype_parse); NULL if
 * none is. */
const bench_dtype_t *bench_dtype_parse(const char *name);

/* ----------------------------------------------------- option values */

/* Byte counts (-b, -e, --explain) go through the library's own parser,
 * tally_size_parse(3), so that they read like TALLY_SEGMENT_SIZE. */

/* A decimal integer in [min, max]. */
bool bench_parse_int(const char *text, int min, int max, int *out);

/* The -f factor of a sweep: a number above 1 (and below 1e6). */
bool bench_parse_factor(const char *text, double *out);

/* ------------------------------------------------------------ sizes */

/* Element counts of a -b/-e/-f sweep: min_bytes, times factor each step,
 * up to max_bytes; bytes rounded down to whole elements of esize (at least
 * one), a count equal to the previous one skipped.  Returns a malloc'ed
 * array of *n counts (n >= 1), or NULL when out of memory. */
size_t *bench_make_counts(size_t min_bytes, size_t max_bytes, double factor, size_t esize,
                          int *n);

/* ---------------------------------------------------- ranks together */

/* Every rank learns whether `ok` holds on all ranks of comm. */
bool bench_all(MPI_Comm comm, bool ok);

/* Every rank learns whether any rank failed: a rank whose st is an error
 * prints "PROGRAM: rank R: LABEL, WHAT: reason" on stderr.  Returns the
 * most negative status over all ranks. */
tally_status_t bench_agree(MPI_Comm comm, const char *program, tally_status_t st,
                           const char *label, const char *what);

/* Page-aligned memory of `bytes` (> 0) bytes, or NULL; free() releases
 * it.  Write it before timing so that no timed call pays for first-touch
 * page faults. */
void *bench_alloc_pages(size_t bytes);

/* ------------------------------------------------------------ timing */

/* One collective call of the measured operation. */
typedef tally_status_t (*bench_call_fn)(void *ctx);

typedef struct bench_timer {
    MPI_Comm comm;
    const char *program; /* for bench_agree's messages */
    int iters, warmup;
    double *times;   /* this rank's time per iteration */
    double *slowest; /* the slowest rank's */
} bench_timer_t;

typedef struct bench_times {
    double avg, min, max; /* seconds per call of the slowest rank */
} bench_times_t;

/* Allocates the per-iteration arrays on this rank; false when out of
 * memory (agree with bench_all).  bench_timer_free is safe either way. */
bool bench_timer_init(bench_timer_t *t, MPI_Comm comm, const char *program, int iters,
                      int warmup);
void bench_timer_free(bench_timer_t *t);

/* One measurement: a barrier, t->warmup untimed calls, then t->iters timed
 * ones back to back.  Each rank times its own calls with MPI_Wtime; the
 * slowest rank of each iteration is what a synchronous step waits for, and
 * *out gets the mean, minimum and maximum over those.  A failing call ends
 * the loops; the failure is agreed as bench_agree(LABEL, "timed run").
 * Returns the agreed status; *out is written only on success. */
tally_status_t bench_time(bench_timer_t *t, bench_call_fn call, void *ctx, const char *label,
                          bench_times_t *out);

/* The median of v[0..n), n >= 1; sorts v. */
double bench_median(double *v, int n);

/* ------------------------------------------------------------ output */

/* Writes word(0) .. word(n-1), each followed by `sep` and the last by
 * `end`, wrapped at 78 columns with every line indented by 16 (the option
 * column of a usage text): lists that come from the library. */
void bench_print_words(FILE *out, const char *(*word)(int i), int n, const char *sep,
                       const char *end);

/* "tally 0.1.0, Open MPI v4.1.4": the library loaded and the MPI's first
 * line. */
void bench_versions(char *buf, size_t len);

/* --version anywhere in argv: prints "TOOL: tally X.Y.Z, <the MPI
 * library's first line>" and returns true (no MPI_Init needed). */
bool bench_version_flag(int argc, char **argv, const char *tool);

/* A one-line progress report on stderr, shown only when `on` (rank 0 and
 * stderr a terminal) and erased before results are printed; with `lines`
 * (--progress: under mpirun stderr is a pipe, where a line rewritten in
 * place never shows) one line per size instead. */
typedef struct bench_progress {
    bool on;
    bool lines;
    int len; /* characters of the line shown now */
} bench_progress_t;

/* "size 3/24 (32 bytes), repeat 2/5, ring" over the previous line. */
void bench_progress_show(bench_progress_t *p, int step, int nsteps, size_t bytes, int repeat,
                         int repeats, const char *algo);
void bench_progress_clear(bench_progress_t *p);

#endif
