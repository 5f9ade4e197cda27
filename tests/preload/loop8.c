/* loop8.c - an ordinary MPI program that times an MPI_Allreduce loop, for
 * comparing runs with and without libtally-preload.so.
 *   loop8 [BYTES [ITERS [REPS]]]    (defaults: 8 bytes, 10000, 15)
 * Sums BYTES/8 doubles on MPI_COMM_WORLD; each repetition times ITERS calls
 * (slowest rank); prints the median and the minimum microseconds per call
 * over the repetitions, and exits 1 if a result is wrong. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    long bytes = argc > 1 ? atol(argv[1]) : 8;
    int iters = argc > 2 ? atoi(argv[2]) : 10000;
    int reps = argc > 3 ? atoi(argv[3]) : 15;
    int n = (int)(bytes / 8 > 0 ? bytes / 8 : 1), rank, size, bad = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double *s = malloc((size_t)n * 8), *r = malloc((size_t)n * 8);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int i = 0; i < n; i++)
        s[i] = rank + i % 7;
    MPI_Allreduce(s, r, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    for (int k = 0; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int i = 0; i < iters; i++)
            MPI_Allreduce(s, r, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        double mine = (MPI_Wtime() - t0) / iters * 1e6;
        MPI_Reduce(&mine, &t[k], 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    }
    for (int i = 0; i < n; i++)
        bad |= r[i] != (double)size * (i % 7) + size * (size - 1) / 2.0;
    if (rank == 0) {
        qsort(t, (size_t)reps, sizeof *t, cmp);
        printf("loop8: %d ranks, %ld bytes, %d calls x %d: median %.3f us, min %.3f us%s\n",
               size, (long)n * 8, iters, reps, t[reps / 2], t[0], bad ? ", WRONG" : "");
    }
    MPI_Finalize();
    return bad;
}
