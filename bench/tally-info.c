/* tally-info - what tally would do here: its version, every configuration
 * variable with its documentation (-c), and which algorithm tally's own
 * choice picks for a byte count on this communicator (--explain BYTES). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tally-info [-c] [--explain BYTES]...\n"
            "  -c               every TALLY_* variable: default, current value, doc\n"
            "  --explain BYTES  the algorithm tally chooses for BYTES of float32 sum\n"
            "                   on MPI_COMM_WORLD (run under mpirun for a real size)\n"
            "  -h, --help       this text\n");
}

static int explain(tally_comm_t *comm, const char *text, int rank, int size)
{
    char *end;
    errno = 0;
    unsigned long long bytes = strtoull(text, &end, 10);
    if (*end != '\0' || text[0] < '0' || text[0] > '9' || errno == ERANGE) {
        if (rank == 0)
            fprintf(stderr, "tally-info: --explain needs a byte count, not \"%s\"\n", text);
        return 1;
    }
    const char *name = NULL;
    tally_status_t st = tally_comm_get_algorithm(comm, (size_t)(bytes / 4), TALLY_FLOAT32,
                                                 TALLY_SUM, &name);
    if (st != TALLY_SUCCESS) {
        if (rank == 0)
            fprintf(stderr, "tally-info: %s\n", tally_strerror(st));
        return 1;
    }
    if (rank == 0)
        printf("%llu bytes of float32 sum on %d ranks: %s\n", bytes, size, name);
    return 0;
}

int main(int argc, char **argv)
{
    int show_config = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-c") == 0) {
            show_config = 1;
        } else if (strcmp(argv[i], "--explain") == 0 && i + 1 < argc) {
            i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    unsigned v = tally_version();
    if (rank == 0)
        printf("tally %u.%u.%u (header %d.%d.%d)\n", v / 10000, v / 100 % 100, v % 100,
               TALLY_VERSION_MAJOR, TALLY_VERSION_MINOR, TALLY_VERSION_PATCH);
    if (show_config && rank == 0)
        tally_config_print(stdout);
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    if (st != TALLY_SUCCESS) {
        if (rank == 0)
            fprintf(stderr, "tally-info: tally_comm_create: %s\n", tally_strerror(st));
        rc = 1;
    } else {
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "--explain") == 0)
                rc |= explain(comm, argv[++i], rank, size);
        tally_comm_destroy(comm);
    }
    MPI_Finalize();
    return rc;
}
