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
 * the narrow floating types, whatever order the ranks are combined in. */
static const bench_dtype_t dtypes[] = {
    {"int8", TALLY_INT8, 1, false, 6, 127.0, 0},
    {"uint8", TALLY_UINT8, 1, false, 7, 255.0, 0},
    {"int32", TALLY_INT32, 4, false, 30, 2147483647.0, 0},
    {"uint32", TALLY_UINT32, 4, false, 31, 4294967295.0, 0},
    {"int64", TALLY_INT64, 8, false, 53, 9007199254740992.0, 0},
    {"uint64", TALLY_UINT64, 8, false, 53, 9007199254740992.0, 0},
    {"float16", TALLY_FLOAT16, 2, true, 11, 2048.0, 0x1p-10},
    {"bfloat16", TALLY_BFLOAT16, 2, true, 8, 256.0, 0x1p-7},
    {"float32", TALLY_FLOAT32, 4, true, 24, 16777216.0, 0x1p-23},
    {"float64", TALLY_FLOAT64, 8, true, 53, 9007199254740992.0, 0x1p-52},
    {"int16", TALLY_INT16, 2, false, 14, 32767.0, 0},
    {"uint16", TALLY_UINT16, 2, false, 15, 65535.0, 0},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

const bench_dtype_t *bench_dtype_find(tally_dtype_t dtype)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (dtypes[i].dtype == dtype)
            return &dtypes[i];
    return NULL;
}

const bench_dtype_t *bench_dtype_parse(const char *name)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0)
            return &dtypes[i];
    return NULL;
}

/* ----------------------------------------------------- option values */

bool bench_parse_bytes(const char *text, size_t *out)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return false;
    }
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

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
