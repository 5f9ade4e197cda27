/* fusion.c - what fusion buys: n tensors of `bytes` each allreduced one
 * call at a time (tally_allreduce in a loop), started together
 * (tally_iallreduce + tally_waitall) and fused (tally_allreduce_multi)
 * with the fusion buffer TALLY_FUSION_BYTES; median of REPS runs of each,
 * the modes taking turns, the slowest rank.  The tensors are allocated one
 * by one (separate, the default) or are views of one buffer (adjacent, as
 * a framework's flat gradient buffer), which a fused call reduces as one
 * stretch.  `make bench-fusion`; mpirun -np N build/bench/fusion
 * [TENSORS [BYTES [separate|adjacent]]]. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

enum { REPS = 21 };

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000;
    const size_t count = (argc > 2 ? strtoul(argv[2], NULL, 10) : 4096) / sizeof(float);
    tally_comm_t *comm;
    if (tally_comm_create(MPI_COMM_WORLD, &comm) != TALLY_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);
    const int adjacent = argc > 3 && strcmp(argv[3], "adjacent") == 0;
    if (argc > 3 && !adjacent && strcmp(argv[3], "separate") != 0) {
        if (rank == 0)
            fprintf(stderr, "fusion: layout is separate or adjacent, not %s\n", argv[3]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    float *data = adjacent ? calloc(n * count, sizeof *data) : NULL;
    tally_buffer_t *bufs = malloc(n * sizeof *bufs);
    tally_request_t **reqs = malloc(n * sizeof *reqs);
    if ((adjacent && !data) || !bufs || !reqs)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < n; i++) {
        float *t = adjacent ? data + i * count : calloc(count ? count : 1, sizeof *t);
        if (!t)
            MPI_Abort(MPI_COMM_WORLD, 1);
        bufs[i] = (tally_buffer_t){TALLY_IN_PLACE, t, count};
    }
    const char *names[3] = {"one call per tensor", "started together", "fused"};
    /* The modes take turns, one run each per round, so a slow spell of
     * this machine hits all three alike; the first round warms up. */
    double t[3][REPS], med[3];
    for (int rep = -1; rep < REPS; rep++) {
        for (int mode = 0; mode < 3; mode++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            if (mode == 0)
                for (size_t i = 0; i < n; i++)
                    tally_allreduce(TALLY_IN_PLACE, bufs[i].recvbuf, count, TALLY_FLOAT32,
                                    TALLY_SUM, comm);
            else if (mode == 1) {
                for (size_t i = 0; i < n; i++)
                    tally_iallreduce(TALLY_IN_PLACE, bufs[i].recvbuf, count, TALLY_FLOAT32,
                                     TALLY_SUM, comm, &reqs[i]);
                tally_waitall(n, reqs);
            } else
                tally_allreduce_multi(bufs, n, TALLY_FLOAT32, TALLY_SUM, comm);
            double mine = MPI_Wtime() - t0, slowest;
            MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (rep >= 0)
                t[mode][rep] = slowest;
        }
    }
    /* Each round's own ratio too: its runs were side by side in time. */
    double ratio[2][REPS];
    for (int rep = 0; rep < REPS; rep++)
        for (int mode = 1; mode < 3; mode++)
            ratio[mode - 1][rep] = t[0][rep] / t[mode][rep];
    for (int mode = 0; mode < 3; mode++) {
        qsort(t[mode], REPS, sizeof t[mode][0], cmp);
        med[mode] = t[mode][REPS / 2];
    }
    for (int mode = 0; mode < 2; mode++)
        qsort(ratio[mode], REPS, sizeof ratio[mode][0], cmp);
    if (rank == 0) {
        const char *fb = getenv("TALLY_FUSION_BYTES");
        printf("# %zu tensors of %zu bytes, %s, TALLY_FUSION_BYTES=%s, thread level %d\n", n,
               count * sizeof(float),
               adjacent ? "adjacent (views of one buffer)" : "separate allocations",
               fb ? fb : "(default)", provided);
        for (int mode = 0; mode < 3; mode++)
            printf("%-22s %10.3f ms  %6.2fx\n", names[mode], med[mode] * 1e3, med[0] / med[mode]);
        for (int mode = 1; mode < 3; mode++)
            printf("# %s against one call per tensor, round by round: median %.2fx "
                   "(quartiles %.2fx-%.2fx)\n",
                   names[mode], ratio[mode - 1][REPS / 2], ratio[mode - 1][REPS / 4],
                   ratio[mode - 1][3 * REPS / 4]);
    }
    if (!adjacent)
        for (size_t i = 0; i < n; i++)
            free(bufs[i].recvbuf);
    free(data);
    free(bufs);
    free(reqs);
    tally_comm_destroy(comm);
    MPI_Finalize();
    return 0;
}
