/* preload_c.c - an ordinary MPI program (it knows nothing of tally) for
 * testing libtally-preload.so: MPI_Allreduce over every mapped datatype and
 * op, in place and not, on world, split, dup, reversed and self
 * communicators, plus calls tally must leave to the MPI (user op, MINLOC,
 * derived types, intercommunicator, errors), 300 dup/use/free cycles and,
 * under MPI_THREAD_MULTIPLE, two threads on two communicators.  Every
 * result is checked against a locally computed reference; rank 0 prints
 * one checksum line per case so that runs with and without the preload can
 * be compared with diff.  Exit status 1 on any wrong result. */
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    MPI_Datatype type;
    char kind; /* 'i' signed, 'u' unsigned, 'f' floating */
} dtype_t;

static int failures;
static int world_rank, world_size;

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

enum { SUM, PROD, MIN, MAX, BAND, BOR, BXOR, LAND, LOR, LXOR, NOPS };
static const char *const op_names[] = {"SUM", "PROD", "MIN", "MAX", "BAND",
                                       "BOR", "BXOR", "LAND", "LOR", "LXOR"};
static MPI_Op mpi_ops[NOPS];

/* The value rank r contributes at index i: small enough that no sum or
 * product overflows 8 bits on 5 ranks (Open MPI saturates 8-bit sums). */
static int64_t value(int op, char kind, int r, size_t i, uint64_t salt)
{
    uint64_t h = mix(salt ^ mix(((uint64_t)r << 40) ^ i));
    switch (op) {
    case SUM: return kind == 'u' ? (int64_t)(h % 7) : (int64_t)(h % 7) - 3;
    case PROD: return kind == 'u' ? 1 + (int64_t)(h % 2) : (int64_t[]){1, -1, 2}[h % 3];
    case MIN: case MAX: return kind == 'u' ? (int64_t)(h % 201) : (int64_t)(h % 201) - 100;
    case BAND: case BOR: case BXOR: return (int64_t)h;
    default: return h % 4 == 0 ? 0 : (int64_t)(h % 9) + 1;
    }
}

static int64_t combine(int op, char kind, int64_t a, int64_t b)
{
    switch (op) {
    case SUM: return (int64_t)((uint64_t)a + (uint64_t)b);
    case PROD: return (int64_t)((uint64_t)a * (uint64_t)b);
    case MIN: return a < b ? a : b;
    case MAX: return a > b ? a : b;
    case BAND: return a & b;
    case BOR: return a | b;
    case BXOR: return a ^ b;
    case LAND: return (a != 0) && (b != 0);
    case LOR: return (a != 0) || (b != 0);
    default: (void)kind; return (a != 0) != (b != 0);
    }
}

static void store(void *buf, size_t i, int64_t v, char kind, int size)
{
    char *p = (char *)buf + i * (size_t)size;
    if (kind == 'f') {
        if (size == 4) { float f = (float)v; memcpy(p, &f, 4); }
        else { double d = (double)v; memcpy(p, &d, 8); }
    } else {
        memcpy(p, &v, (size_t)size); /* little endian: the low bytes */
    }
}

static uint64_t fnv(const void *data, size_t len)
{
    const unsigned char *b = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* Rank 0 prints the case and every rank's checksum of its result. */
static void report(const char *what, MPI_Comm world, const void *res, size_t len, int ok)
{
    uint64_t h = fnv(res, len), *all = malloc(sizeof h * (size_t)world_size);
    MPI_Gather(&h, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, world);
    if (!ok) {
        fprintf(stderr, "FAIL rank %d: %s\n", world_rank, what);
        failures++;
    }
    if (world_rank == 0) {
        printf("%s", what);
        for (int r = 0; r < world_size; r++)
            printf(" %016llx", (unsigned long long)all[r]);
        printf("\n");
    }
    free(all);
}

static void run_case(const dtype_t *dt, int op, MPI_Comm comm, const char *cname,
                     size_t count, int in_place, uint64_t salt)
{
    int size, rank, es;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    MPI_Type_size(dt->type, &es);
    size_t bytes = count * (size_t)es;
    char *send = malloc(bytes), *recv = malloc(bytes), *want = malloc(bytes);
    for (size_t i = 0; i < count; i++) {
        store(send, i, value(op, dt->kind, rank, i, salt), dt->kind, es);
        int64_t acc = value(op, dt->kind, 0, i, salt);
        if (op >= LAND && size > 1) /* one rank: MPI applies no op */
            acc = acc != 0;
        for (int r = 1; r < size; r++)
            acc = combine(op, dt->kind, acc, value(op, dt->kind, r, i, salt));
        store(want, i, acc, dt->kind, es);
    }
    /* MIN/MAX on truncated bit patterns are not what the reference
     * computes, so they use values that fit; bitwise ops need the truncated
     * bits only, which store() keeps. */
    int rc;
    if (in_place) {
        memcpy(recv, send, bytes);
        rc = MPI_Allreduce(MPI_IN_PLACE, recv, (int)count, dt->type, mpi_ops[op], comm);
    } else {
        memset(recv, 0x5a, bytes);
        rc = MPI_Allreduce(send, recv, (int)count, dt->type, mpi_ops[op], comm);
    }
    char what[200];
    snprintf(what, sizeof what, "case %s %s %s n=%zu %s", dt->name, op_names[op], cname, count,
             in_place ? "in_place" : "separate");
    report(what, MPI_COMM_WORLD, recv, bytes, rc == MPI_SUCCESS && memcmp(recv, want, bytes) == 0);
    free(send);
    free(recv);
    free(want);
}

static void user_sum(void *in, void *inout, int *len, MPI_Datatype *type)
{
    int es;
    MPI_Type_size(*type, &es);
    for (int i = 0; i < *len * es / (int)sizeof(int); i++)
        ((int *)inout)[i] += ((int *)in)[i];
}

/* Calls tally must leave to the MPI: user op, MINLOC/MAXLOC, derived types. */
static void fallback_cases(MPI_Comm comm, const char *cname)
{
    int size, rank;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &rank);
    char what[200];
    enum { N = 1000 };
    int a[N], b[N], ok = 1;

    MPI_Op op;
    MPI_Op_create(user_sum, 1, &op);
    for (int i = 0; i < N; i++)
        a[i] = rank * 3 + i;
    MPI_Allreduce(a, b, N, MPI_INT, op, comm);
    for (int i = 0; i < N; i++)
        ok &= b[i] == 3 * size * (size - 1) / 2 + size * i;
    MPI_Op_free(&op);
    snprintf(what, sizeof what, "user_op %s", cname);
    report(what, MPI_COMM_WORLD, b, sizeof b, ok);

    struct { double v; int i; } dl[N], dlr[N];
    memset(dl, 0, sizeof dl); /* the padding, for the checksum */
    memset(dlr, 0, sizeof dlr);
    for (int i = 0; i < N; i++) {
        dl[i].v = (double)((rank * 7 + i) % size);
        dl[i].i = rank;
    }
    MPI_Allreduce(dl, dlr, N, MPI_DOUBLE_INT, MPI_MINLOC, comm);
    ok = 1;
    for (int i = 0; i < N; i++) {
        /* the minimum 0 is held by the lowest rank r with (7r + i) % size == 0 */
        int best = -1;
        for (int r = 0; r < size && best < 0; r++)
            if ((r * 7 + i) % size == 0)
                best = r;
        if (best < 0) {
            double m = 1e9;
            for (int r = 0; r < size; r++)
                if ((r * 7 + i) % size < m) { m = (r * 7 + i) % size; best = r; }
        }
        ok &= dlr[i].v == (double)((best * 7 + i) % size) && dlr[i].i == best;
    }
    snprintf(what, sizeof what, "minloc %s", cname);
    report(what, MPI_COMM_WORLD, dlr, sizeof dlr, ok);

    int p[2 * N], pr[2 * N];
    for (int i = 0; i < N; i++) { p[2 * i] = (rank + i) % 5; p[2 * i + 1] = rank; }
    MPI_Allreduce(p, pr, N, MPI_2INT, MPI_MAXLOC, comm);
    snprintf(what, sizeof what, "maxloc_2int %s", cname);
    report(what, MPI_COMM_WORLD, pr, sizeof pr, 1);

    /* Open MPI refuses predefined ops on derived types (MPI_ERR_OP); the
     * preload must pass that on, and serve a user op on one. */
    MPI_Datatype quad;
    MPI_Type_contiguous(4, MPI_INT, &quad);
    MPI_Type_commit(&quad);
    MPI_Errhandler old;
    MPI_Comm_get_errhandler(comm, &old);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    int rc = MPI_Allreduce(a, b, N / 4, quad, MPI_SUM, comm), cls = -1;
    MPI_Error_class(rc, &cls);
    MPI_Comm_set_errhandler(comm, old);
    MPI_Errhandler_free(&old);
    snprintf(what, sizeof what, "derived_contiguous_sum %s class %d", cname,
             rc == MPI_SUCCESS ? 0 : cls);
    report(what, MPI_COMM_WORLD, &cls, 0, 1);
    MPI_Op_create(user_sum, 1, &op);
    for (int i = 0; i < N; i++)
        a[i] = rank - i;
    MPI_Allreduce(a, b, N / 4, quad, op, comm);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= b[i] == size * (size - 1) / 2 - size * i;
    MPI_Op_free(&op);
    MPI_Type_free(&quad);
    snprintf(what, sizeof what, "derived_contiguous_user_op %s", cname);
    report(what, MPI_COMM_WORLD, b, sizeof b, ok);

    MPI_Datatype vec;
    double dv[20];
    MPI_Type_vector(10, 1, 2, MPI_DOUBLE, &vec);
    MPI_Type_commit(&vec);
    for (int i = 0; i < 20; i++)
        dv[i] = rank + i;
    MPI_Comm_get_errhandler(comm, &old);
    MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
    rc = MPI_Allreduce(MPI_IN_PLACE, dv, 1, vec, MPI_MAX, comm);
    MPI_Error_class(rc, &cls);
    MPI_Comm_set_errhandler(comm, old);
    MPI_Errhandler_free(&old);
    MPI_Type_free(&vec);
    snprintf(what, sizeof what, "derived_vector_max %s class %d", cname,
             rc == MPI_SUCCESS ? 0 : cls);
    report(what, MPI_COMM_WORLD, &cls, 0, 1);
}

/* MPI's error semantics survive: MPI_ERRORS_RETURN gets the same class. */
static void error_cases(void)
{
    MPI_Comm c;
    MPI_Comm_dup(MPI_COMM_WORLD, &c);
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
    float f = 1, g = 0;
    int cls1 = -1, cls2 = -1;
    int rc = MPI_Allreduce(&f, &g, 1, MPI_FLOAT, MPI_BAND, c);
    MPI_Error_class(rc, &cls1);
    rc = MPI_Allreduce(&f, &g, -1, MPI_FLOAT, MPI_SUM, c);
    MPI_Error_class(rc, &cls2);
    char what[100];
    snprintf(what, sizeof what, "errors band_float=%d negative_count=%d", cls1 == MPI_ERR_OP,
             cls2 == MPI_ERR_COUNT);
    report(what, MPI_COMM_WORLD, &g, sizeof g, cls1 == MPI_ERR_OP && cls2 == MPI_ERR_COUNT);
    MPI_Comm_free(&c);
}

static void intercomm_case(void)
{
    if (world_size < 2)
        return;
    int color = world_rank < world_size / 2;
    MPI_Comm half, inter;
    MPI_Comm_split(MPI_COMM_WORLD, color, world_rank, &half);
    MPI_Intercomm_create(half, 0, MPI_COMM_WORLD, color ? world_size / 2 : 0, 7, &inter);
    int v = world_rank + 1, r = 0, want = 0;
    MPI_Allreduce(&v, &r, 1, MPI_INT, MPI_SUM, inter);
    /* the remote group's sum */
    for (int q = 0; q < world_size; q++)
        if ((q < world_size / 2) != color)
            want += q + 1;
    report("intercomm", MPI_COMM_WORLD, &r, sizeof r, r == want);
    MPI_Comm_free(&inter);
    MPI_Comm_free(&half);
}

static void dup_cycles(void)
{
    enum { N = 8192 };
    static double d[N];
    int ok = 1;
    for (int cycle = 0; cycle < 300; cycle++) {
        MPI_Comm c;
        MPI_Comm_dup(MPI_COMM_WORLD, &c);
        for (int i = 0; i < N; i++)
            d[i] = world_rank + i + cycle;
        MPI_Allreduce(MPI_IN_PLACE, d, N, MPI_DOUBLE, MPI_SUM, c);
        for (int i = 0; i < N; i++)
            ok &= d[i] == (double)world_size * (i + cycle) + world_size * (world_size - 1) / 2;
        long one = 1, n = 0;
        MPI_Allreduce(&one, &n, 1, MPI_LONG, MPI_SUM, c);
        ok &= n == world_size;
        MPI_Comm_free(&c);
    }
    report("dup_use_free x300", MPI_COMM_WORLD, d, sizeof d, ok);
}

typedef struct { MPI_Comm comm; int ok; int id; } thread_arg_t;

static void *thread_main(void *p)
{
    thread_arg_t *t = p;
    enum { N = 20000 };
    double *d = malloc(N * sizeof *d);
    int size;
    MPI_Comm_size(t->comm, &size);
    t->ok = 1;
    for (int it = 0; it < 100; it++) {
        size_t n = it % 2 ? N : 3;
        for (size_t i = 0; i < n; i++)
            d[i] = (double)(i + (size_t)t->id + (size_t)it);
        MPI_Allreduce(MPI_IN_PLACE, d, (int)n, MPI_DOUBLE, MPI_SUM, t->comm);
        for (size_t i = 0; i < n; i++)
            t->ok &= d[i] == (double)size * (double)(i + (size_t)t->id + (size_t)it);
    }
    free(d);
    return NULL;
}

/* Two threads, each on its own communicator (one created lazily while the
 * other thread is inside tally). */
static void thread_case(int provided)
{
    if (provided != MPI_THREAD_MULTIPLE) {
        report("threads skipped", MPI_COMM_WORLD, &provided, 0, 1);
        return;
    }
    thread_arg_t t[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        MPI_Comm_dup(MPI_COMM_WORLD, &t[i].comm);
        t[i].id = i;
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, thread_main, &t[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        MPI_Comm_free(&t[i].comm);
    }
    report("threads", MPI_COMM_WORLD, &provided, 0, t[0].ok && t[1].ok);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    MPI_Op ops[NOPS] = {MPI_SUM, MPI_PROD, MPI_MIN, MPI_MAX, MPI_BAND,
                        MPI_BOR, MPI_BXOR, MPI_LAND, MPI_LOR, MPI_LXOR};
    memcpy(mpi_ops, ops, sizeof ops);
    const dtype_t dtypes[] = {
        {"MPI_CHAR", MPI_CHAR, CHAR_MIN < 0 ? 'i' : 'u'},
        {"MPI_SIGNED_CHAR", MPI_SIGNED_CHAR, 'i'},
        {"MPI_UNSIGNED_CHAR", MPI_UNSIGNED_CHAR, 'u'},
        {"MPI_SHORT", MPI_SHORT, 'i'},
        {"MPI_UNSIGNED_SHORT", MPI_UNSIGNED_SHORT, 'u'},
        {"MPI_INT", MPI_INT, 'i'},
        {"MPI_UNSIGNED", MPI_UNSIGNED, 'u'},
        {"MPI_LONG", MPI_LONG, 'i'},
        {"MPI_UNSIGNED_LONG", MPI_UNSIGNED_LONG, 'u'},
        {"MPI_LONG_LONG", MPI_LONG_LONG, 'i'},
        {"MPI_UNSIGNED_LONG_LONG", MPI_UNSIGNED_LONG_LONG, 'u'},
        {"MPI_INT8_T", MPI_INT8_T, 'i'},
        {"MPI_UINT8_T", MPI_UINT8_T, 'u'},
        {"MPI_INT16_T", MPI_INT16_T, 'i'},
        {"MPI_UINT16_T", MPI_UINT16_T, 'u'},
        {"MPI_INT32_T", MPI_INT32_T, 'i'},
        {"MPI_UINT32_T", MPI_UINT32_T, 'u'},
        {"MPI_INT64_T", MPI_INT64_T, 'i'},
        {"MPI_UINT64_T", MPI_UINT64_T, 'u'},
        {"MPI_INTEGER", MPI_INTEGER, 'i'},
        {"MPI_FLOAT", MPI_FLOAT, 'f'},
        {"MPI_DOUBLE", MPI_DOUBLE, 'f'},
        {"MPI_REAL", MPI_REAL, 'f'},
        {"MPI_DOUBLE_PRECISION", MPI_DOUBLE_PRECISION, 'f'},
    };
    MPI_Comm split, dup, rev, comms[5];
    MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, world_rank, &split);
    MPI_Comm_dup(MPI_COMM_WORLD, &dup);
    MPI_Comm_split(MPI_COMM_WORLD, 0, world_size - world_rank, &rev);
    const char *cnames[5] = {"world", "split", "dup", "reversed", "self"};
    comms[0] = MPI_COMM_WORLD, comms[1] = split, comms[2] = dup, comms[3] = rev;
    comms[4] = MPI_COMM_SELF;
    const size_t counts[] = {1, 3, 1000, 20000};
    uint64_t salt = 1;
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (int op = 0; op < NOPS; op++) {
            if ((dtypes[d].kind == 'f' && op >= BAND) ||
                (dtypes[d].type == MPI_INTEGER && op >= LAND)) /* MPI_ERR_OP */
                continue;
            for (int c = 0; c < 5; c++)
                for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
                    for (int ip = 0; ip < 2; ip++)
                        run_case(&dtypes[d], op, comms[c], cnames[c], counts[k], ip, salt++);
        }
    for (int c = 0; c < 5; c++)
        fallback_cases(comms[c], cnames[c]);
    error_cases();
    intercomm_case();
    dup_cycles();
    thread_case(provided);
    MPI_Comm_free(&split);
    MPI_Comm_free(&dup);
    MPI_Comm_free(&rev);
    int all = 0;
    MPI_Reduce(&failures, &all, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (world_rank == 0)
        printf("preload_c: %d ranks, %d wrong results\n", world_size, all);
    MPI_Bcast(&all, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return all != 0;
}
