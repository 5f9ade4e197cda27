/* preload_threads.c - an ordinary threaded MPI program for
 * libtally-preload.so: under MPI_THREAD_MULTIPLE, THREADS threads each
 * reduce on a communicator of their own (MPI_Comm_dup of MPI_COMM_WORLD),
 * all at once, so the drop-in makes their tally communicators concurrently
 * and in an order that may differ between ranks; the communicators are
 * left to MPI_Finalize, where the drop-in retires them (collective steps:
 * retired one after the other in a rank's own order, they could wait for
 * ever).  Every result is checked; stdout is the same with and without the
 * preload.  Without MPI_THREAD_MULTIPLE it says so and runs the threads'
 * work one after the other. */
#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

enum { THREADS = 4, CALLS = 6 };

static int rank, size;
static MPI_Comm comms[THREADS];
static int wrong[THREADS];

static void *work(void *arg)
{
    const int k = (int)(long)arg;
    /* 8 B to 512 KiB: the MPI's own algorithm and tally's ring alike. */
    for (int c = 0; c < CALLS; c++) {
        const int n = 1 << (3 * c);
        double *s = malloc((size_t)n * sizeof *s), *r = malloc((size_t)n * sizeof *r);
        if (!s || !r)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (int i = 0; i < n; i++)
            s[i] = rank + k + i % 5;
        MPI_Allreduce(s, r, n, MPI_DOUBLE, MPI_SUM, comms[k]);
        for (int i = 0; i < n; i++) /* integers: exact in any order */
            wrong[k] += r[i] != (double)size * (k + i % 5) + size * (size - 1) / 2.0;
        free(s);
        free(r);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int k = 0; k < THREADS; k++)
        MPI_Comm_dup(MPI_COMM_WORLD, &comms[k]);
    if (provided == MPI_THREAD_MULTIPLE) {
        pthread_t t[THREADS];
        for (long k = 0; k < THREADS; k++)
            if (pthread_create(&t[k], NULL, work, (void *)k) != 0)
                MPI_Abort(MPI_COMM_WORLD, 1);
        for (int k = 0; k < THREADS; k++)
            pthread_join(t[k], NULL);
    } else {
        if (rank == 0)
            fprintf(stderr, "NOTE: no MPI_THREAD_MULTIPLE; the threads' work runs in turn\n");
        for (long k = 0; k < THREADS; k++)
            work((void *)k);
    }
    int bad = 0;
    for (int k = 0; k < THREADS; k++)
        bad += wrong[k];
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%d threads x %d calls on their own communicators: %s\n", THREADS, CALLS,
               bad ? "WRONG RESULTS" : "all correct");
    MPI_Finalize(); /* the communicators are not freed: retired here */
    return bad ? 1 : 0;
}
