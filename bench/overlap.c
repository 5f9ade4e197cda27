/* overlap.c - how much of an allreduce a started call hides behind
 * computation: for one message (float32, sum), t_comm is a blocking
 * tally_allreduce, t_compute a floating-point loop over a private,
 * cache-resident array (no memory traffic, no sleeping) calibrated to about
 * 1x and 2x t_comm, and t_both is tally_iallreduce, that loop, tally_wait;
 * the `idle` rows compute by sleeping instead, 1x and 2x t_comm, as a host
 * does while its GPU runs the backward pass: they show what the call hides
 * when it does not compete with the computation for cores;
 * hidden = (t_comm + t_compute - t_both) / t_comm, 100% when the call cost
 * the computation nothing and the computation the call nothing.  Every
 * repetition starts at a barrier and takes the slowest rank's time; each
 * figure is the median of REPS, and `paired` is the median of each
 * repetition's own hidden fraction: its runs follow one another, the
 * computation alone timed before and after the overlapped run and
 * averaged, and a repetition whose two differ by more than 10% (the
 * machine's speed changed under it: virtual machines' cores do) is left
 * out, `kept` saying how many were not.
 * The call progresses on tally's progress thread, which needs
 * MPI_THREAD_MULTIPLE (the thread level is printed); last, what a call
 * left to that thread costs in CPU time (background_cost).
 * `make bench-overlap`; mpirun -np N build/bench/overlap [BYTES [REPS]]
 * (defaults 4M and 15). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "tally.h"

/* Small enough to stay in L1 and L2: the loop competes with the call for
 * cores, not for memory bandwidth. */
#define WORK_FLOATS 4096

static float work[WORK_FLOATS];
static volatile float sink;

/* The computation: `passes` passes of a multiply-add over the array (a
 * pass depends on the one before, so the compiler can neither drop nor
 * merge them), or, with `idle` seconds, a sleep that leaves the cores free. */
typedef struct {
    long passes;
    double idle;
} work_t;

static void compute(const work_t *w)
{
    if (w->idle > 0) {
        const double end = MPI_Wtime() + w->idle;
        for (double left = w->idle; left > 0; left = end - MPI_Wtime()) {
            const struct timespec ts = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
            nanosleep(&ts, NULL);
        }
        return;
    }
    for (long p = 0; p < w->passes; p++)
        for (int i = 0; i < WORK_FLOATS; i++)
            work[i] = work[i] * 0.999f + 0.001f;
    sink = work[w->passes % WORK_FLOATS];
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The runs of a repetition, in order: COMPUTE_AFTER is the computation
 * alone again. */
enum mode { COMM, COMPUTE, BOTH, COMPUTE_AFTER, MODES };

/* One repetition at a barrier: the slowest rank's seconds. */
static double once(enum mode mode, float *data, size_t count, const work_t *w,
                   tally_comm_t *comm)
{
    tally_status_t st = TALLY_SUCCESS;
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (mode == COMM) {
        st = tally_allreduce(TALLY_IN_PLACE, data, count, TALLY_FLOAT32, TALLY_SUM, comm);
    } else if (mode == COMPUTE || mode == COMPUTE_AFTER) {
        compute(w);
    } else {
        tally_request_t *req;
        st = tally_iallreduce(TALLY_IN_PLACE, data, count, TALLY_FLOAT32, TALLY_SUM, comm, &req);
        compute(w);
        if (st == TALLY_SUCCESS)
            st = tally_wait(&req);
    }
    double t = MPI_Wtime() - t0;
    if (st != TALLY_SUCCESS) {
        fprintf(stderr, "overlap: %s\n", tally_strerror(st));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return t;
}

static double hidden(double t_comm, double t_compute, double t_both)
{
    return (t_comm + t_compute - t_both) / t_comm;
}

/* The median of reps repetitions of each mode in `modes` (a bit mask),
 * interleaved so that a change in the machine's speed shows in all alike;
 * with every mode, *paired is the median of the kept repetitions' own
 * hidden fractions (*kept of them; see the top), which such changes
 * disturb less than the fraction of the medians. */
static void measure(unsigned modes, float *data, size_t count, const work_t *w,
                    tally_comm_t *comm, int reps, double med[MODES], double *paired, int *kept)
{
    double *t = malloc((size_t)reps * (MODES + 1) * sizeof *t), *h = t + (size_t)reps * MODES;
    if (!t)
        MPI_Abort(MPI_COMM_WORLD, 1);
    int n = 0;
    for (int r = 0; r < reps; r++) {
        for (int mode = 0; mode < MODES; mode++)
            if (modes >> mode & 1)
                t[mode * reps + r] = once(mode, data, count, w, comm);
        if (!paired)
            continue;
        const double before = t[COMPUTE * reps + r], after = t[COMPUTE_AFTER * reps + r];
        if (fabs(before - after) <= 0.1 * (before + after) / 2)
            h[n++] = hidden(t[COMM * reps + r], (before + after) / 2, t[BOTH * reps + r]);
    }
    for (int mode = 0; mode < MODES; mode++)
        if (modes >> mode & 1) {
            qsort(t + mode * reps, reps, sizeof *t, cmp);
            med[mode] = t[mode * reps + reps / 2];
        }
    if (paired) {
        qsort(h, (size_t)n, sizeof *h, cmp);
        *paired = n ? h[n / 2] : NAN;
        *kept = n;
    }
    free(t);
}

static double compute_time(long passes, int reps)
{
    double med[MODES];
    const work_t w = {passes, 0};
    measure(1u << COMPUTE, NULL, 0, &w, NULL, reps, med, NULL, NULL);
    return med[COMPUTE];
}

/* Passes that take about `seconds` with every rank computing at once (as
 * they do in the overlapped run), refined on the measured time.  Every rank
 * gets the same count: t is the slowest rank's. */
static long calibrate(double seconds, int reps)
{
    long passes = 64;
    double t = compute_time(passes, reps);
    while (t < 0.01 && passes < (1L << 40)) { /* long enough to time well */
        passes *= 4;
        t = compute_time(passes, reps);
    }
    for (int i = 0; i < 3; i++) {
        passes = (long)(passes * seconds / t) + 1;
        t = compute_time(passes, reps);
        if (t > 0.97 * seconds && t < 1.03 * seconds)
            break;
    }
    return passes;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

/* The call with nothing to overlap, left to the progress thread while the
 * caller sleeps (tally_test every 200 us): the median over reps of its
 * wall time (slowest rank) and of the process's CPU time (the busiest
 * rank's), which is what the thread takes from a computation on the same
 * cores.  Unlike the hidden fractions, a change of the cores' speed barely
 * moves the wall time, which the wire sets. */
static void background_cost(float *data, size_t count, tally_comm_t *comm, int reps,
                            double *wall, double *cpu)
{
    double *t = malloc(2 * (size_t)reps * sizeof *t), *c = t + reps;
    if (!t)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime(), c0 = cpu_seconds();
        tally_request_t *req;
        tally_status_t st =
            tally_iallreduce(TALLY_IN_PLACE, data, count, TALLY_FLOAT32, TALLY_SUM, comm, &req);
        for (int done = 0; st == TALLY_SUCCESS && !done;) {
            const struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
            st = tally_test(&req, &done);
        }
        if (st != TALLY_SUCCESS) {
            fprintf(stderr, "overlap: %s\n", tally_strerror(st));
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        double mine[2] = {MPI_Wtime() - t0, cpu_seconds() - c0};
        MPI_Allreduce(MPI_IN_PLACE, mine, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        t[r] = mine[0], c[r] = mine[1];
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    qsort(c, (size_t)reps, sizeof *c, cmp);
    *wall = t[reps / 2], *cpu = c[reps / 2];
    free(t);
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t bytes = 4u << 20;
    const int reps = argc > 2 ? atoi(argv[2]) : 15;
    if ((argc > 1 && tally_size_parse(argv[1], &bytes) != TALLY_SUCCESS) || bytes < 4 ||
        reps < 1) {
        if (rank == 0)
            fprintf(stderr, "usage: mpirun -np N overlap [BYTES [REPS]]\n");
        MPI_Finalize();
        return 2;
    }
    tally_comm_t *comm;
    if (tally_comm_create(MPI_COMM_WORLD, &comm) != TALLY_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);
    const size_t count = bytes / sizeof(float);
    float *data = calloc(count, sizeof *data);
    if (!data)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int i = 0; i < WORK_FLOATS; i++)
        work[i] = (float)i / WORK_FLOATS;
    /* Warm-up: connections, buffers and the progress thread exist before
     * anything is timed. */
    double med[MODES];
    const work_t none = {0, 0};
    measure(1u << COMM | 1u << BOTH, data, count, &none, comm, 2, med, NULL, NULL);

    measure(1u << COMM, data, count, &none, comm, reps, med, NULL, NULL);
    const double t_comm_alone = med[COMM];
    const char *algo = "?";
    tally_comm_get_algorithm(comm, count, TALLY_FLOAT32, TALLY_SUM, &algo);
    if (rank == 0) {
        printf("# overlap: %zu bytes float32 sum, %d ranks, %s, thread level %d%s; "
               "median of %d, slowest rank\n",
               count * sizeof(float), size, algo, provided,
               provided == MPI_THREAD_MULTIPLE ? "" : " (no progress thread: nothing overlaps)",
               reps);
        printf("%-8s %10s %12s %10s %8s %8s %6s\n", "compute", "t_comm_ms", "t_compute_ms",
               "t_both_ms", "hidden", "paired", "kept");
    }
    for (int row = 0; row < 4; row++) {
        const int factor = 1 + row % 2, idle = row >= 2;
        const work_t w = {idle ? 0 : calibrate(factor * t_comm_alone, reps < 5 ? reps : 5),
                          idle ? factor * t_comm_alone : 0};
        double paired;
        int kept;
        measure((1u << MODES) - 1, data, count, &w, comm, reps, med, &paired, &kept);
        const double t_comm = med[COMM], t_compute = med[COMPUTE], t_both = med[BOTH];
        if (rank == 0)
            printf("%dx %-5s %10.3f %12.3f %10.3f %7.1f%% %7.1f%% %3d/%d\n", factor,
                   idle ? "idle" : "comm", t_comm * 1e3, t_compute * 1e3, t_both * 1e3,
                   100.0 * hidden(t_comm, t_compute, t_both), 100.0 * paired, kept, reps);
    }
    /* Last: this machine ran the overlapped rows slower after it, as if
     * its host had moved our cores. */
    if (provided == MPI_THREAD_MULTIPLE) {
        double wall, cpu;
        background_cost(data, count, comm, reps, &wall, &cpu);
        if (rank == 0)
            printf("# alone on the progress thread, the caller asleep: %.3f ms wall, %.3f ms "
                   "CPU per call\n", wall * 1e3, cpu * 1e3);
    }
    free(data);
    tally_comm_destroy(comm);
    MPI_Finalize();
    return 0;
}
