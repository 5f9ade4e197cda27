/* bench_common.c - what tally-bench and tally-tune share (bench_common.h). */
#include "bench_common.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ dtypes */

/* exact_bits and limit keep every check value exact: no integer overflow
 * (Open MPI 4.1 saturates 8- and 16-bit sums instead of wrapping) and no rounding in
 * the narrow floating types, whatever order the ranks are combined in.  The
 * name, size and is_float fields are filled from the library on first use. */
static bench_dtype_t dtypes[] = {
    {.dtype = TALLY_INT8, .exact_bits = 6, .limit = 127.0},
    {.dtype = TALLY_UINT8, .exact_bits = 7, .limit = 255.0},
    {.dtype = TALLY_INT32, .exact_bits = 30, .limit = 2147483647.0},
    {.dtype = TALLY_UINT32, .exact_bits = 31, .limit = 4294967295.0},
    {.dtype = TALLY_INT64, .exact_bits = 53, .limit = 9007199254740992.0},
    {.dtype = TALLY_UINT64, .exact_bits = 53, .limit = 9007199254740992.0},
    {.dtype = TALLY_FLOAT16, .exact_bits = 11, .limit = 2048.0, .eps = 0x1p-10},
    {.dtype = TALLY_BFLOAT16, .exact_bits = 8, .limit = 256.0, .eps = 0x1p-7},
    {.dtype = TALLY_FLOAT32, .exact_bits = 24, .limit = 16777216.0, .eps = 0x1p-23},
    {.dtype = TALLY_FLOAT64, .exact_bits = 53, .limit = 9007199254740992.0, .eps = 0x1p-52},
    {.dtype = TALLY_INT16, .exact_bits = 14, .limit = 32767.0},
    {.dtype = TALLY_UINT16, .exact_bits = 15, .limit = 65535.0},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* Names and sizes as the library has them; AVG is defined on the floating
 * types only (tally_op_check(3)). */
static void fill_dtypes(void)
{
    static bool filled;
    if (filled)
        return;
    for (size_t i = 0; i < NDTYPES; i++) {
        dtypes[i].name = tally_dtype_name(dtypes[i].dtype);
        dtypes[i].size = tally_dtype_size(dtypes[i].dtype);
        dtypes[i].is_float = tally_op_check(TALLY_AVG, dtypes[i].dtype) == TALLY_SUCCESS;
    }
    filled = true;
}

const bench_dtype_t *bench_dtype_find(tally_dtype_t dtype)
{
    fill_dtypes();
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return &dtypes[i];
    return NULL;
}

const bench_dtype_t *bench_dtype_parse(const char *name)
{
    tally_dtype_t dtype;
    if (tally_dtype_parse(name, &dtype) != TALLY_SUCCESS)
        return NULL;
    return bench_dtype_find(dtype);
}

/* ----------------------------------------------------- option values */

bool bench_parse_int(const char *text, int min, int max, int *out)
{
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

bool bench_parse_factor(const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !(v > 1 && v < 1e6))
        return false;
    *out = v;
    return true;
}

/* ------------------------------------------------------------ sizes */

size_t *bench_make_counts(size_t min_bytes, size_t max_bytes, double factor, size_t esize,
                          int *n)
{
    size_t cap = 64, *counts = malloc(cap * sizeof *counts);
    *n = 0;
    for (double bytes = (double)min_bytes; counts; ) {
        size_t count = (size_t)bytes / esize;
        if (count == 0)
            count = 1;
        if (*n == 0 || count != counts[*n - 1]) {
            if ((size_t)*n == cap) {
                size_t *grown = realloc(counts, 2 * cap * sizeof *counts);
                if (!grown) {
                    free(counts);
                    return NULL;
                }
                counts = grown;
                cap *= 2;
            }
            counts[(*n)++] = count;
        }
        /* Always advance by at least one byte, whatever the factor. */
        double next = floor(bytes * factor);
        bytes = next > bytes ? next : bytes + 1;
        if (bytes > (double)max_bytes)
            break;
    }
    return counts;
}

/* ---------------------------------------------------- ranks together */

bool bench_all(MPI_Comm comm, bool ok)
{
    int mine = ok, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm);
    return all;
}

tally_status_t bench_agree(MPI_Comm comm, const char *program, tally_status_t st,
                           const char *label, const char *what)
{
    if (st != TALLY_SUCCESS) {
        int rank = 0;
        MPI_Comm_rank(comm, &rank);
        fprintf(stderr, "%s: rank %d: %s, %s: %s\n", program, rank, label, what,
                tally_strerror(st));
    }
    int mine = (int)st, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm);
    return (tally_status_t)all;
}

void *bench_alloc_pages(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, (size_t)sysconf(_SC_PAGESIZE), bytes) != 0)
        return NULL;
    return p;
}

/* ------------------------------------------------------------ timing */

bool bench_timer_init(bench_timer_t *t, MPI_Comm comm, const char *program, int iters,
                      int warmup)
{
    *t = (bench_timer_t){.comm = comm, .program = program, .iters = iters, .warmup = warmup};
    t->times = malloc((size_t)iters * sizeof *t->times);
    t->slowest = malloc((size_t)iters * sizeof *t->slowest);
    return t->times && t->slowest;
}

void bench_timer_free(bench_timer_t *t)
{
    free(t->times);
    free(t->slowest);
    t->times = t->slowest = NULL;
}

tally_status_t bench_time(bench_timer_t *t, bench_call_fn call, void *ctx, const char *label,
                          bench_times_t *out)
{
    const int iters = t->iters;
    tally_status_t st = TALLY_SUCCESS;
    MPI_Barrier(t->comm);
    for (int i = 0; i < t->warmup && st == TALLY_SUCCESS; i++)
        st = call(ctx);
    for (int i = 0; i < iters && st == TALLY_SUCCESS; i++) {
        double t0 = MPI_Wtime();
        st = call(ctx);
        t->times[i] = MPI_Wtime() - t0;
    }
    st = bench_agree(t->comm, t->program, st, label, "timed run");
    if (st != TALLY_SUCCESS)
        return st;
    MPI_Allreduce(t->times, t->slowest, iters, MPI_DOUBLE, MPI_MAX, t->comm);
    double sum = 0, min = t->slowest[0], max = t->slowest[0];
    for (int i = 0; i < iters; i++) {
        sum += t->slowest[i];
        min = fmin(min, t->slowest[i]);
        max = fmax(max, t->slowest[i]);
    }
    *out = (bench_times_t){.avg = sum / iters, .min = min, .max = max};
    return TALLY_SUCCESS;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ------------------------------------------------------------ output */

void bench_print_words(FILE *out, const char *(*word)(int i), int n, const char *sep,
                       const char *end)
{
    /* sep is a mark ("," or "") and spaces; a line ends after the mark. */
    const size_t mark = strcspn(sep, " ");
    const int spaces = (int)(strlen(sep) - mark);
    int col = 16;
    fprintf(out, "%16s", "");
    for (int i = 0; i < n; i++) {
        const char *after = i + 1 < n ? sep : end;
        const int after_len = i + 1 < n ? (int)mark : (int)strlen(end);
        const int len = (int)strlen(word(i)) + after_len;
        if (i > 0 && col + spaces + len > 78) {
            fprintf(out, "\n%16s", "");
            col = 16;
        } else if (i > 0) {
            fprintf(out, "%*s", spaces, "");
            col += spaces;
        }
        fprintf(out, "%s%.*s", word(i), after_len, after);
        col += len;
    }
    fprintf(out, "\n");
}

bool bench_version_flag(int argc, char **argv, const char *tool)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            char versions[MPI_MAX_LIBRARY_VERSION_STRING + 64];
            bench_versions(versions, sizeof versions);
            printf("%s: %s\n", tool, versions);
            return true;
        }
    }
    return false;
}

void bench_versions(char *buf, size_t len)
{
    unsigned v = tally_version();
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int mlen = 0;
    MPI_Get_library_version(mpi, &mlen);
    mpi[strcspn(mpi, "\n,")] = '\0'; /* its first line is enough */
    snprintf(buf, len, "tally %u.%u.%u, %s", v / 10000, v / 100 % 100, v % 100, mpi);
}

void bench_progress_show(bench_progress_t *p, int step, int nsteps, size_t bytes, int repeat,
                         int repeats, const char *algo)
{
    if (p->lines) {
        if (repeat == 0)
            fprintf(stderr, "progress: size %d/%d (%zu bytes), %s ...\n", step + 1, nsteps,
                    bytes, algo);
        return;
    }
    if (!p->on)
        return;
    char line[160];
    int len = snprintf(line, sizeof line, "size %d/%d (%zu bytes), repeat %d/%d, %s", step + 1,
                       nsteps, bytes, repeat + 1, repeats, algo);
    /* Pad with spaces over the end of a longer previous line. */
    fprintf(stderr, "\r%s%*s", line, p->len > len ? p->len - len : 0, "");
    fflush(stderr);
    p->len = len;
}

void bench_progress_clear(bench_progress_t *p)
{
    if (!p->on || p->len == 0)
        return;
    fprintf(stderr, "\r%*s\r", p->len, "");
    fflush(stderr);
    p->len = 0;
}
