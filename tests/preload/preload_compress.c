/* preload_compress.c - a plain MPI program (no tally API) with a
 * training-like loop, for TALLY_COMPRESS under libtally-preload.so: every
 * step allreduces the same float "gradient" (different on every rank) in
 * place, and the program adds what it gets to an "applied" sum.  With
 * error feedback, after T steps applied / T approaches the exact sum
 * (computed here without MPI), and every rank must hold the same bits.
 * Prints "preload_compress: ok" and exits 0, or says what failed. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N (1 << 18) /* 1 MiB of floats: above TALLY_COMPRESS_MIN_BYTES's default */
#define STEPS 40

static float gradient(int rank, size_t i)
{
    return (float)sin(0.37 * (double)i + rank) * (float)(1 + (i % 7));
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    float *buf = malloc(N * sizeof *buf);
    double *applied = calloc(N, sizeof *applied);
    if (!buf || !applied)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (int t = 0; t < STEPS; t++) {
        for (size_t i = 0; i < N; i++)
            buf[i] = gradient(rank, i);
        MPI_Allreduce(MPI_IN_PLACE, buf, N, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (size_t i = 0; i < N; i++)
            applied[i] += buf[i];
    }
    double err = 0, norm = 0;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < N; i++) {
        double exact = 0;
        for (int r = 0; r < size; r++)
            exact += gradient(r, i);
        err += (applied[i] / STEPS - exact) * (applied[i] / STEPS - exact);
        norm += exact * exact;
        const unsigned char *b = (const unsigned char *)&applied[i];
        for (size_t k = 0; k < sizeof applied[i]; k++)
            h = (h ^ b[k]) * 1099511628211ull;
    }
    double rel = sqrt(err / norm);
    /* Integer reductions are never compressed. */
    uint64_t hmax, hmin;
    MPI_Allreduce(&h, &hmax, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hmin, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    const double bound = argc > 1 ? atof(argv[1]) : 0.01;
    int ok = hmax == hmin && rel <= bound;
    if (rank == 0) {
        printf("preload_compress: %d ranks, %d steps, relative error of the mean applied "
               "sum %.3g (bound %g), results %s\n", size, STEPS, rel, bound,
               hmax == hmin ? "identical on every rank" : "DIFFER between ranks");
        printf("preload_compress: %s\n", ok ? "ok" : "FAILED");
    }
    free(buf);
    free(applied);
    MPI_Finalize();
    return ok ? 0 : 1;
}
