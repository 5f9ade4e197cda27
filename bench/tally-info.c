/* tally-info - what tally sees and would do here: its version, what hwloc
 * sees on this node, every configuration variable with its documentation
 * (-c), the shape of MPI_COMM_WORLD with its cost model and rule table, and
 * why a byte count runs the algorithm it runs (--explain BYTES).  Run it
 * under mpirun to see a real communicator.  --what-if SPEC answers the
 * same for a cluster described by SPEC (tally_model_print,
 * tally_model_explain) without MPI.  --algorithms prints the name of every
 * algorithm the library has, one a line, without MPI: scripts and tests
 * take their lists from it.  Uses only the public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"
#include "bench_common.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tally-info [-c] [-d DTYPE] [-o OP] [--explain BYTES]...\n"
            "       tally-info [-c] [-d DTYPE] [-o OP] --what-if SPEC [--explain BYTES]...\n"
            "       tally-info --algorithms | --version\n"
            "  (no option)      version, hwloc summary, communicator shape, cost model\n"
            "                   and rule table of MPI_COMM_WORLD (run under mpirun)\n"
            "  -c               also every TALLY_* variable: default, current value, doc\n"
            "  --explain BYTES  why BYTES of DTYPE reduced with OP run the algorithm they\n"
            "                   run, with every candidate's predicted time and busbw\n"
            "                   (repeatable); suffixes K, M, G = 1024^n\n"
            "  -d DTYPE, -o OP  for --explain (default float32 and sum; tally-bench -h\n"
            "                   lists the names)\n"
            "  --what-if SPEC   the shape, cost model and rule table of a cluster we do\n"
            "                   not have, and --explain on it (no MPI), e.g.\n"
            "                   nodes=64,ppn=8,placement=slot,latency=2us,bandwidth=100gbit\n"
            "                   keys: nodes ppn placement packages cores latency bandwidth\n"
            "                   duplex node_latency node_bandwidth copy reduce barrier cache\n"
            "                   chunk;\n"
            "                   see man tally_model_explain\n"
            "  --algorithms     only the name of every algorithm tally has, one a\n"
            "                   line (no MPI, no mpirun needed)\n"
            "  --version        tally's and the MPI library's versions\n"
            "  -h, --help       this text\n");
}

static void print_version(void)
{
    unsigned v = tally_version();
    printf("tally %u.%u.%u (header %d.%d.%d)\n", v / 10000, v / 100 % 100, v % 100,
           TALLY_VERSION_MAJOR, TALLY_VERSION_MINOR, TALLY_VERSION_PATCH);
}

/* --what-if: everything from the spec, nothing from MPI.  A spec that does
 * not parse is a usage error (the library logs what is wrong with it). */
/* What --explain prices: -d and -o. */
typedef struct explained {
    tally_dtype_t dtype;
    tally_op_t op;
} explained_t;

static int what_if(const char *spec, int show_config, explained_t ex, int argc, char **argv)
{
    /* The spec is checked before anything is printed. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tally_status_t st = f ? tally_model_print(spec, f) : TALLY_ERR_NO_MEMORY;
    if (f)
        fclose(f);
    if (st != TALLY_SUCCESS) {
        if (st == TALLY_ERR_INVALID_ARGUMENT)
            fprintf(stderr, "tally-info: --what-if \"%s\" is not a cluster tally can read "
                            "(see man tally_model_explain)\n", spec);
        else
            fprintf(stderr, "tally-info: --what-if: %s\n", tally_strerror(st));
        free(text);
        return st == TALLY_ERR_INVALID_ARGUMENT ? 2 : 1;
    }
    print_version();
    if (show_config) {
        printf("\n");
        tally_config_print(stdout);
    }
    printf("\nwhat-if: %s\n%s", spec, text);
    free(text);
    for (int i = 1; i < argc; i++) {
        size_t bytes;
        if (strcmp(argv[i], "--explain") != 0 ||
            tally_size_parse(argv[++i], &bytes) != TALLY_SUCCESS)
            continue;
        printf("\n");
        st = tally_model_explain(spec, bytes / tally_dtype_size(ex.dtype), ex.dtype, ex.op, stdout);
        if (st != TALLY_SUCCESS) {
            fprintf(stderr, "tally-info: --explain %s: %s\n", argv[i], tally_strerror(st));
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int show_config = 0, rc = 0;
    const char *spec = NULL;
    explained_t ex = {TALLY_FLOAT32, TALLY_SUM};
    if (bench_version_flag(argc, argv, "tally-info"))
        return 0;
    for (int i = 1; i < argc; i++) {
        size_t bytes;
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "-o") == 0) && i + 1 < argc) {
            const int is_dtype = argv[i][1] == 'd';
            const tally_status_t st = is_dtype ? tally_dtype_parse(argv[i + 1], &ex.dtype)
                                               : tally_op_parse(argv[i + 1], &ex.op);
            if (st != TALLY_SUCCESS) {
                fprintf(stderr, "tally-info: %s: no %s named \"%s\" (tally-bench -h lists "
                        "them)\n", argv[i], is_dtype ? "dtype" : "op", argv[i + 1]);
                return 2;
            }
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--algorithms") == 0 && argc == 2) {
            for (int a = 0; a < tally_algorithm_count(); a++)
                printf("%s\n", tally_algorithm_name(a));
            return 0;
        } else if (strcmp(argv[i], "--what-if") == 0 && i + 1 < argc && !spec) {
            spec = argv[++i];
        } else if (strcmp(argv[i], "-c") == 0) {
            show_config = 1;
        } else if (strcmp(argv[i], "--explain") == 0 && i + 1 < argc) {
            if (tally_size_parse(argv[++i], &bytes) != TALLY_SUCCESS) {
                fprintf(stderr, "tally-info: --explain needs a byte count, not \"%s\"\n",
                        argv[i]);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (tally_op_check(ex.op, ex.dtype) != TALLY_SUCCESS) {
        fprintf(stderr, "tally-info: op %s is not defined on %s\n", tally_op_name(ex.op),
                tally_dtype_name(ex.dtype));
        return 2;
    }
    if (spec)
        return what_if(spec, show_config, ex, argc, argv);
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0) {
        print_version();
        tally_topology_print(stdout);
        if (show_config) {
            printf("\n");
            tally_config_print(stdout);
        }
    }
    tally_comm_t *comm = NULL;
    tally_status_t st = tally_comm_create(MPI_COMM_WORLD, &comm);
    if (st != TALLY_SUCCESS) {
        if (rank == 0)
            fprintf(stderr, "tally-info: tally_comm_create: %s\n", tally_strerror(st));
        rc = 1;
    } else {
        if (rank == 0) {
            printf("\n");
            tally_comm_print(comm, stdout);
        }
        for (int i = 1; i < argc; i++) {
            size_t bytes;
            if (strcmp(argv[i], "--explain") != 0 || tally_size_parse(argv[++i], &bytes) != TALLY_SUCCESS ||
                rank != 0)
                continue;
            printf("\n");
            st = tally_comm_explain(comm, bytes / tally_dtype_size(ex.dtype), ex.dtype, ex.op,
                                    stdout);
            if (st != TALLY_SUCCESS) {
                fprintf(stderr, "tally-info: --explain %s: %s\n", argv[i], tally_strerror(st));
                rc = 1;
            }
        }
        tally_comm_destroy(comm);
    }
    MPI_Finalize();
    return rc;
}
