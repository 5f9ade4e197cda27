/* overhead.c - what tally adds to a small allreduce that it passes to the
 * MPI: blocks of back-to-back 8-byte calls (two floats, sum), in turn
 * through PMPI_Allreduce on MPI_COMM_WORLD, PMPI_Allreduce on a duplicate
 * of it (tally calls the MPI on its own duplicate, so this is the floor of
 * what tally can cost), tally_allreduce and tally_iallreduce + tally_wait
 * (MPI_THREAD_MULTIPLE: the hand-over to the progress thread and back;
 * TALLY_PROGRESS_THREAD=0 measures the queue alone), on the same ranks, each
 * block's time per call taken as the slowest rank's; prints the median of
 * each and the ratios, measured side by side in one run.
 * Usage: mpirun -np N build/bench/overhead [CALLS_PER_BLOCK [BLOCKS]]
 * (defaults 20000 and 31); set TALLY_* as for any program. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "tally.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Seconds per call of `calls` calls, the slowest rank's. */
static double block(int which, MPI_Comm dup, tally_comm_t *comm, int calls)
{
    float in[2] = {1.0f, 2.0f}, out[2];
    PMPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < calls; i++) {
        if (which == 0)
            PMPI_Allreduce(in, out, 2, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        else if (which == 1)
            PMPI_Allreduce(in, out, 2, MPI_FLOAT, MPI_SUM, dup);
        else if (which == 2) {
            if (tally_allreduce(in, out, 2, TALLY_FLOAT32, TALLY_SUM, comm) != TALLY_SUCCESS)
                MPI_Abort(MPI_COMM_WORLD, 1);
        } else {
            tally_request_t *req;
            if (tally_iallreduce(in, out, 2, TALLY_FLOAT32, TALLY_SUM, comm, &req) !=
                    TALLY_SUCCESS ||
                tally_wait(&req) != TALLY_SUCCESS)
                MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    double t = (MPI_Wtime() - t0) / calls;
    PMPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return t;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    int calls = argc > 1 ? atoi(argv[1]) : 20000, blocks = argc > 2 ? atoi(argv[2]) : 31;
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tally_comm_t *comm;
    if (calls < 1 || blocks < 1 || tally_comm_create(MPI_COMM_WORLD, &comm) != TALLY_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 2);
    const char *algo = "?";
    tally_comm_get_algorithm(comm, 2, TALLY_FLOAT32, TALLY_SUM, &algo);
    MPI_Comm dup;
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    enum { MODES = 4 };
    double *t[MODES];
    for (int k = 0; k < MODES; k++) {
        t[k] = malloc(blocks * sizeof(double));
        block(k, dup, comm, calls); /* warm-up */
    }
    for (int b = 0; b < blocks; b++)
        for (int k = 0; k < MODES; k++) {
            /* Rotate which goes first, so drift favours none. */
            int which = (b + k) % MODES;
            t[which][b] = block(which, dup, comm, calls);
        }
    double med[MODES];
    for (int k = 0; k < MODES; k++) {
        qsort(t[k], blocks, sizeof(double), cmp);
        med[k] = t[k][blocks / 2];
        free(t[k]);
    }
    if (rank == 0)
        printf("overhead: %d ranks, 8 B, tally runs %s; median of %d blocks of %d calls: "
               "PMPI_Allreduce %.1f ns, on a duplicate %.1f ns, tally_allreduce %.1f ns; "
               "tally/MPI %.3f (%+.1f%%), tally/duplicate %.3f (%+.1f%%)\n",
               size, algo, blocks, calls, med[0] * 1e9, med[1] * 1e9, med[2] * 1e9,
               med[2] / med[0], (med[2] / med[0] - 1.0) * 100.0, med[2] / med[1],
               (med[2] / med[1] - 1.0) * 100.0);
    if (rank == 0)
        printf("overhead: tally_iallreduce + tally_wait %.1f ns (%s), %.3f of tally_allreduce "
               "(%+.1f ns)\n", med[3] * 1e9,
               provided == MPI_THREAD_MULTIPLE ? "MPI_THREAD_MULTIPLE" : "no thread level",
               med[3] / med[2], (med[3] - med[2]) * 1e9);
    MPI_Comm_free(&dup);
    tally_comm_destroy(comm);
    MPI_Finalize();
    return 0;
}
