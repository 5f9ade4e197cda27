/* mismatch.c - what an erroneous program gets when its ranks disagree on a
 * call (the last rank passes another count, dtype, op or in-place-ness):
 * each case runs as its own mpirun (tests/mpirun.sh bounds it), once
 * without and once with TALLY_CHECK=1, and bench/mismatch-matrix tabulates
 * "report" (every rank got an error), "garbage" (success, but the ranks'
 * results differ from the reference or from each other), "ok" (success and
 * right: the disagreement does not matter to that algorithm) or "hang"
 * (killed at the bound).  Usage: mismatch CASE ALGO, CASE one of count,
 * dtype, op, in_place. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *what = argv[1];
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tally_comm_t *comm;
    if (tally_comm_create(MPI_COMM_WORLD, &comm) != TALLY_SUCCESS ||
        tally_comm_set_algorithm(comm, argv[2]) != TALLY_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 3);
    enum { N = 1 << 16 };
    int32_t *in = malloc((N + 64) * sizeof *in), *out = malloc((N + 64) * sizeof *out);
    /* Values whose bits, read as float32, have an exponent: a rank that
     * reduces them as floats gets other sums (small ints would be
     * denormals, whose float sum is the integer sum). */
    for (int i = 0; i < N + 64; i++)
        in[i] = (int32_t)((uint32_t)(i % 7 + rank + 1) << 23);
    memcpy(out, in, (N + 64) * sizeof *in);
    const int odd = rank == size - 1;
    size_t n = N;
    tally_dtype_t dtype = TALLY_INT32;
    tally_op_t op = TALLY_SUM;
    const void *send = in;
    if (odd && strcmp(what, "count") == 0)
        n = N + 64;
    else if (odd && strcmp(what, "dtype") == 0)
        dtype = TALLY_FLOAT32;
    else if (odd && strcmp(what, "op") == 0)
        op = TALLY_MAX;
    else if (odd && strcmp(what, "in_place") == 0)
        send = TALLY_IN_PLACE;
    const tally_status_t st = tally_allreduce(send, send == TALLY_IN_PLACE ? (void *)in : out, n,
                                              dtype, op, comm);
    const int32_t *res = send == TALLY_IN_PLACE ? in : out;
    int wrong = 0;
    for (int i = 0; i < N && st == TALLY_SUCCESS; i++) {
        uint32_t want = 0;
        for (int r = 0; r < size; r++)
            want += (uint32_t)(i % 7 + r + 1) << 23;
        wrong += (uint32_t)res[i] != want;
    }
    int local[2] = {st != TALLY_SUCCESS, wrong > 0}, all[2];
    PMPI_Allreduce(local, all, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s %s: %s\n", what, argv[2],
               all[0] == size ? "report" : all[0] ? "partial-report" : all[1] ? "garbage" : "ok");
    tally_comm_destroy(comm);
    MPI_Finalize();
    return 0;
}
