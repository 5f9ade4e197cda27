/* bound.c - the costs that bound an allreduce on this machine, measured
 * as the issues' performance notes describe them: an MPI_Sendrecv exchange
 * of half the vector between two ranks, one core summing y += x over half
 * the vector, and one core's memcpy rate (the bound of the shared-memory
 * algorithms' copies).  For 2 ranks a pipelined ring or Rabenseifner needs
 * at least two such exchanges and one such sum:
 *     bound = 2 * exchange(n/2) + sum(n/2)      (no overlap: one core a rank)
 * Usage: mpirun -np 2 build/bench/bound [BYTES]   (default 64 MiB) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The compiler vectorizes this the way tally's kernel is vectorized. */
static void __attribute__((noinline, optimize("O3")))
sum_into(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)64 << 20;
    size_t half = bytes / 2, n = half / sizeof(float);
    char *a = malloc(half), *b = malloc(half);
    memset(a, 1, half);
    memset(b, 2, half);
    enum { REPS = 9 };
    double ex[REPS], su[REPS], cp[REPS];
    int peer = rank ^ 1;
    for (int r = 0; r < REPS; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (peer < size)
            MPI_Sendrecv(a, (int)half, MPI_BYTE, peer, 0, b, (int)half, MPI_BYTE, peer, 0,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ex[r] = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &ex[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        sum_into((float *)a, (const float *)b, n);
        su[r] = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &su[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        memcpy(b, a, half);
        cp[r] = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &cp[r], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    }
    qsort(ex, REPS, sizeof ex[0], cmp);
    qsort(su, REPS, sizeof su[0], cmp);
    qsort(cp, REPS, sizeof cp[0], cmp);
    if (rank == 0) {
        double e = ex[REPS / 2], s = su[REPS / 2];
        printf("vector %zu bytes, %d ranks, medians of %d\n", bytes, size, REPS);
        printf("  exchange of %zu bytes (MPI_Sendrecv): %8.2f ms (%.2f GB/s each way)\n",
               half, e * 1e3, half / e / 1e9);
        printf("  y += x over %zu bytes, one core:      %8.2f ms (%.2f GB/s of x)\n", half,
               s * 1e3, half / s / 1e9);
        printf("  memcpy of %zu bytes, one core:        %8.2f ms (%.2f GB/s)\n", half,
               cp[REPS / 2] * 1e3, half / cp[REPS / 2] / 1e9);
        printf("  2-rank ring/Rabenseifner bound:       %8.2f ms (busbw %.2f GB/s)\n",
               (2 * e + s) * 1e3, bytes / (2 * e + s) / 1e9);
    }
    free(a);
    free(b);
    MPI_Finalize();
    return 0;
}
