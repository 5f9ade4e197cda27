/* preload.c - libtally-preload.so: an LD_PRELOAD interposer that sends an
 * unmodified program's MPI_Allreduce (C, and Fortran through mpif.h and
 * `use mpi`) through tally when tally can serve it and to PMPI_Allreduce
 * when it cannot.  Built over the public API only (tally.h and mpi.h).
 *
 * Per communicator, a state is cached as an attribute, created lazily by
 * the first call that tally could serve (tally_comm_create is collective;
 * that first MPI_Allreduce is collective too, and whether it creates the
 * state depends only on the datatype, op, count and communicator, which
 * MPI requires to be equal on every rank).  The keyval's delete callback
 * frees it on MPI_Comm_free; an attribute on MPI_COMM_SELF, deleted at the
 * start of MPI_Finalize, retires whatever is left and prints TALLY_STATS.
 * See tally-preload(7). */
#define _GNU_SOURCE
#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <tally.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

/* Why a call went to PMPI_Allreduce: name for the stats table, sentence. */
#define REASON_MAP(X)                                                            \
    X(USER_OP, "user_op", "user-defined op")                                     \
    X(LOC_OP, "loc_op", "MPI_MINLOC, MPI_MAXLOC or another op tally lacks")      \
    X(DERIVED, "derived_type", "derived datatype")                              \
    X(DTYPE, "dtype", "predefined datatype tally lacks (pairs, complex, ...)")   \
    X(OP_DTYPE, "op_dtype", "op that MPI does not define on the datatype")       \
    X(COUNT, "count", "count <= 0 or MPI_COMM_NULL")                             \
    X(INTERCOMM, "intercomm", "intercommunicator")                               \
    X(CREATE, "create_failed", "tally_comm_create failed on this communicator") \
    X(UNSUPPORTED, "unsupported", "tally cannot serve the call (host and device buffers mixed)") \
    X(ARGS, "bad_args", "NULL, overlapping or MPI_IN_PLACE receive buffer")      \
    X(NO_MEMORY, "no_memory", "no memory for the communicator's state")          \
    X(BROKEN, "broken", "an earlier call failed partway on tally's communicator") \
    X(REENTRANT, "reentrant", "called from inside tally")

enum reason {
#define REASON_ENUM_(id, name, text) R_##id,
    REASON_MAP(REASON_ENUM_)
#undef REASON_ENUM_
    R_COUNT_
};

static const char *const reason_names[] = {
#define REASON_NAME_(id, name, text) name,
    REASON_MAP(REASON_NAME_)
#undef REASON_NAME_
};

enum { UNSET, ACTIVE, OFF, DOWN };

#define MAX_ALGOS 8   /* per communicator */
#define MAX_ROWS 64   /* in the final table */
#define MAX_SITES 64  /* compressed call sites per communicator */

/* TALLY_COMPRESS: one compressor (error-feedback state) per call site. */
typedef struct site {
    const void *buffer;    /* the receive buffer: this rank's, not agreed */
    size_t count;
    tally_dtype_t dtype;
    tally_compressor_t *z;
} site_t;

typedef struct algo_stat {
    const char *name; /* static string from tally */
    uint64_t calls, bytes;
    double seconds;
} algo_stat_t;

typedef struct comm_state {
    MPI_Comm comm;         /* the user's communicator */
    tally_comm_t *tc;      /* NULL: every call falls back for `reason` */
    enum reason reason;
    int size;
    int retired;           /* torn down at MPI_Finalize; only free it */
    /* tally's last choice: it depends only on (count, dtype, op) */
    size_t last_count;
    tally_dtype_t last_dtype;
    tally_op_t last_op;
    const char *last_algo;
    int last_is_mpi;
    algo_stat_t stats[MAX_ALGOS];
    site_t sites[MAX_SITES];
    int nsites;
    struct comm_state *prev, *next;
} comm_state_t;

typedef struct stat_row {
    int size;
    algo_stat_t s;
} stat_row_t;

static int g_state = UNSET;              /* atomic */
static int g_stats;
static char g_compress[64];              /* TALLY_COMPRESS, "" when off; set by setup */
static size_t g_compress_min = SIZE_MAX;
static uint64_t g_wire, g_plain;         /* bytes of retired compressors, under g_lock */
static int g_keyval = MPI_KEYVAL_INVALID, g_self_keyval = MPI_KEYVAL_INVALID;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* below, and setup */
static comm_state_t *g_head, *g_tail;
static stat_row_t g_rows[MAX_ROWS];
static int g_nrows;
static uint64_t g_fallbacks[R_COUNT_];   /* atomic */
/* Reductions this library does not serve, counted (TALLY_STATS) and passed
 * straight to the MPI, so that the table says what tally never saw. */
#define UNSEEN_MAP(X) X(IALLREDUCE, "MPI_Iallreduce") X(REDUCE, "MPI_Reduce")     \
    X(REDUCE_SCATTER, "MPI_Reduce_scatter") X(REDUCE_SCATTER_BLOCK, "MPI_Reduce_scatter_block")
enum unseen {
#define UNSEEN_ENUM_(id, name) U_##id,
    UNSEEN_MAP(UNSEEN_ENUM_)
#undef UNSEEN_ENUM_
    U_COUNT_
};
static const char *const unseen_names[] = {
#define UNSEEN_NAME_(id, name) name,
    UNSEEN_MAP(UNSEEN_NAME_)
#undef UNSEEN_NAME_
};
static uint64_t g_unseen[U_COUNT_];       /* atomic */
static uint64_t g_generation;            /* atomic; bumped when a state retires */

/* Per thread: the re-entrancy guard, and the last communicator with its
 * state (valid while g_generation is unchanged).  initial-exec: this
 * library is loaded at start-up (LD_PRELOAD), and the hot path then makes
 * no __tls_get_addr call. */
static __thread struct {
    int inside;                          /* > 0 inside a tally call */
    MPI_Comm comm;
    struct comm_state *state;
    uint64_t generation;
} t __attribute__((tls_model("initial-exec")));

/* --- datatypes and ops ---------------------------------------------------- */

/* What MPI allows on a type: the arithmetic ops on all, the bitwise ops on
 * integers, the logical ops on C integers only (not on MPI_INTEGER). */
enum { OPS_ARITH = 0, OPS_BITWISE = 1, OPS_LOGICAL = 2 };

typedef struct type_map {
    MPI_Datatype type;
    tally_dtype_t dtype;
    MPI_Datatype exact; /* the fixed-width MPI type of dtype (see add_type) */
    int ops;  /* the highest OPS_* allowed */
    int size;
} type_map_t;

static type_map_t g_types[48];
static int g_ntypes;
static MPI_Op g_ops[10]; /* in map_op's order, filled by setup */

/* kind: 'i' signed C integer, 'u' unsigned C integer, 'F' Fortran or
 * multi-language integer (no logical ops), 'f' IEEE floating. */
static void add_type(MPI_Datatype type, char kind)
{
    int size = 0;
    if (type == MPI_DATATYPE_NULL || PMPI_Type_size(type, &size) != MPI_SUCCESS)
        return;
    static const tally_dtype_t sints[] = {TALLY_INT8, TALLY_INT16, TALLY_INT32, TALLY_INT64};
    static const tally_dtype_t uints[] = {TALLY_UINT8, TALLY_UINT16, TALLY_UINT32,
                                          TALLY_UINT64};
    /* When tally hands a call to the MPI it passes these, not the program's
     * type: Open MPI 4.1.2-4.1.4 compare MPI_UNSIGNED_LONG as signed in MIN
     * and MAX (open-mpi/ompi#10525), where MPI_UINT64_T is right, and the
     * answer must not depend on which path the size took. */
    const MPI_Datatype sexact[] = {MPI_INT8_T, MPI_INT16_T, MPI_INT32_T, MPI_INT64_T};
    const MPI_Datatype uexact[] = {MPI_UINT8_T, MPI_UINT16_T, MPI_UINT32_T, MPI_UINT64_T};
    int log2 = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
    tally_dtype_t dtype;
    MPI_Datatype exact;
    if (log2 < 0)
        return;
    if (kind == 'f') {
        if (size != 4 && size != 8)
            return;
        dtype = size == 4 ? TALLY_FLOAT32 : TALLY_FLOAT64;
        exact = size == 4 ? MPI_FLOAT : MPI_DOUBLE;
    } else {
        dtype = kind == 'u' ? uints[log2] : sints[log2];
        exact = kind == 'u' ? uexact[log2] : sexact[log2];
    }
    int ops = kind == 'f' ? OPS_ARITH : kind == 'F' ? OPS_BITWISE : OPS_LOGICAL;
    if (g_ntypes < (int)(sizeof g_types / sizeof g_types[0]))
        g_types[g_ntypes++] = (type_map_t){type, dtype, exact, ops, size};
}

/* Most common first: the lookup is a linear scan on every call. */
static void build_tables(void)
{
    const MPI_Op ops[] = {MPI_SUM, MPI_MAX, MPI_MIN, MPI_PROD, MPI_BAND,
                          MPI_BOR, MPI_BXOR, MPI_LAND, MPI_LOR, MPI_LXOR};
    memcpy(g_ops, ops, sizeof ops);
    g_ntypes = 0;
    add_type(MPI_DOUBLE, 'f');
    add_type(MPI_FLOAT, 'f');
    add_type(MPI_INT, 'i');
    add_type(MPI_LONG, 'i');
    add_type(MPI_LONG_LONG, 'i');
    add_type(MPI_UNSIGNED, 'u');
    add_type(MPI_UNSIGNED_LONG, 'u');
    add_type(MPI_UNSIGNED_LONG_LONG, 'u');
    add_type(MPI_INT64_T, 'i');
    add_type(MPI_UINT64_T, 'u');
    add_type(MPI_INT32_T, 'i');
    add_type(MPI_UINT32_T, 'u');
    add_type(MPI_SHORT, 'i');
    add_type(MPI_UNSIGNED_SHORT, 'u');
    add_type(MPI_INT16_T, 'i');
    add_type(MPI_UINT16_T, 'u');
    add_type(MPI_CHAR, CHAR_MIN < 0 ? 'i' : 'u');
    add_type(MPI_SIGNED_CHAR, 'i');
    add_type(MPI_UNSIGNED_CHAR, 'u');
    add_type(MPI_INT8_T, 'i');
    add_type(MPI_UINT8_T, 'u');
    add_type(MPI_AINT, 'F');
    add_type(MPI_OFFSET, 'F');
#ifdef MPI_COUNT
    add_type(MPI_COUNT, 'F');
#endif
    /* Fortran types (their C handles; Fortran handles are converted). */
    add_type(MPI_INTEGER, 'F');
    add_type(MPI_REAL, 'f');
    add_type(MPI_DOUBLE_PRECISION, 'f');
#ifdef MPI_INTEGER1
    add_type(MPI_INTEGER1, 'F');
#endif
#ifdef MPI_INTEGER2
    add_type(MPI_INTEGER2, 'F');
#endif
#ifdef MPI_INTEGER4
    add_type(MPI_INTEGER4, 'F');
#endif
#ifdef MPI_INTEGER8
    add_type(MPI_INTEGER8, 'F');
#endif
#ifdef MPI_REAL4
    add_type(MPI_REAL4, 'f');
#endif
#ifdef MPI_REAL8
    add_type(MPI_REAL8, 'f');
#endif
}

static const type_map_t *find_type(MPI_Datatype type)
{
    for (int i = 0; i < g_ntypes; i++)
        if (g_types[i].type == type)
            return &g_types[i];
    return NULL;
}

/* Returns -1 and sets *op and *needs (an OPS_* level), or a reason. */
static int map_op(MPI_Op mop, tally_op_t *op, int *needs)
{
    static const struct { MPI_Op *mpi; tally_op_t op; int needs; } ops[] = {
        {&g_ops[0], TALLY_SUM, OPS_ARITH},      {&g_ops[1], TALLY_MAX, OPS_ARITH},
        {&g_ops[2], TALLY_MIN, OPS_ARITH},      {&g_ops[3], TALLY_PROD, OPS_ARITH},
        {&g_ops[4], TALLY_BAND, OPS_BITWISE},   {&g_ops[5], TALLY_BOR, OPS_BITWISE},
        {&g_ops[6], TALLY_BXOR, OPS_BITWISE},   {&g_ops[7], TALLY_LAND, OPS_LOGICAL},
        {&g_ops[8], TALLY_LOR, OPS_LOGICAL},    {&g_ops[9], TALLY_LXOR, OPS_LOGICAL},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (*ops[i].mpi == mop) {
            *op = ops[i].op;
            *needs = ops[i].needs;
            return -1;
        }
    }
    if (mop == MPI_MINLOC || mop == MPI_MAXLOC || mop == MPI_REPLACE || mop == MPI_NO_OP)
        return R_LOC_OP;
    return R_USER_OP;
}

static int unmapped_type_reason(MPI_Datatype type)
{
    int ni, na, nd, combiner;
    if (type != MPI_DATATYPE_NULL &&
        PMPI_Type_get_envelope(type, &ni, &na, &nd, &combiner) == MPI_SUCCESS &&
        combiner != MPI_COMBINER_NAMED)
        return R_DERIVED;
    return R_DTYPE;
}

/* --- configuration, through the public config table ----------------------- */

/* An on/off variable's value (tally(7): 1, on, yes, true). */
static int is_on(const char *value)
{
    return strcmp(value, "1") == 0 || strcasecmp(value, "on") == 0 ||
           strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0;
}

static void read_config(int *preload, int *stats)
{
    char value[64];
    /* A bad value is reported by the library; then the safe choice holds. */
    *preload = tally_config_get("TALLY_PRELOAD", value, sizeof value) == TALLY_SUCCESS &&
               is_on(value);
    *stats = tally_config_get("TALLY_STATS", value, sizeof value) == TALLY_SUCCESS &&
             is_on(value);
    if (tally_config_get("TALLY_COMPRESS", g_compress, sizeof g_compress) != TALLY_SUCCESS)
        g_compress[0] = '\0';
    size_t min = 0;
    if (tally_config_get("TALLY_COMPRESS_MIN_BYTES", value, sizeof value) == TALLY_SUCCESS &&
        tally_size_parse(value, &min) == TALLY_SUCCESS)
        g_compress_min = min;
    else
        g_compress[0] = '\0';
}

/* --- statistics ------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void count_served(comm_state_t *s, const char *algo, size_t bytes, double seconds)
{
    for (int i = 0; i < MAX_ALGOS; i++) {
        algo_stat_t *a = &s->stats[i];
        if (a->name && a->name != algo)
            continue;
        a->name = algo;
        a->calls++;
        a->bytes += bytes;
        a->seconds += seconds;
        return;
    }
}

/* Under g_lock: adds a communicator's counts to the table. */
static void merge_stats(const comm_state_t *s)
{
    for (int i = 0; i < MAX_ALGOS && s->stats[i].name; i++) {
        const algo_stat_t *a = &s->stats[i];
        int r = 0;
        while (r < g_nrows && !(g_rows[r].size == s->size && strcmp(g_rows[r].s.name, a->name) == 0))
            r++;
        if (r == g_nrows) {
            if (g_nrows == MAX_ROWS)
                continue;
            g_rows[g_nrows++] = (stat_row_t){s->size, {a->name, 0, 0, 0.0}};
        }
        g_rows[r].s.calls += a->calls;
        g_rows[r].s.bytes += a->bytes;
        g_rows[r].s.seconds += a->seconds;
    }
}

static void print_stats(void)
{
    int rank = 0, size = 1;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank != 0)
        return;
    FILE *o = stderr;
    fprintf(o, "tally-preload: statistics of rank 0 of %d (TALLY_STATS=1)\n", size);
    fprintf(o, "tally-preload: %6s %-20s %12s %16s %12s\n", "ranks", "algorithm", "calls",
            "bytes", "seconds");
    for (int r = 0; r < g_nrows; r++)
        fprintf(o, "tally-preload: %6d %-20s %12llu %16llu %12.6f\n", g_rows[r].size,
                g_rows[r].s.name, (unsigned long long)g_rows[r].s.calls,
                (unsigned long long)g_rows[r].s.bytes, g_rows[r].s.seconds);
    if (g_compress[0])
        fprintf(o, "tally-preload: TALLY_COMPRESS=%s: %llu bytes sent across nodes for %llu "
                   "uncompressed (%.4f)\n", g_compress, (unsigned long long)g_wire,
                (unsigned long long)g_plain, g_plain ? (double)g_wire / (double)g_plain : 0.0);
    fprintf(o, "tally-preload: %6s %-20s %12s   (passed to PMPI_Allreduce)\n", "", "fallback",
            "calls");
    for (int i = 0; i < R_COUNT_; i++) {
        uint64_t n = __atomic_load_n(&g_fallbacks[i], __ATOMIC_RELAXED);
        if (n)
            fprintf(o, "tally-preload: %6s %-20s %12llu\n", "", reason_names[i],
                    (unsigned long long)n);
    }
    fprintf(o, "tally-preload: %6s %-26s %6s   (not served: only MPI_Allreduce is; C calls)\n",
            "", "other reductions", "calls");
    for (int i = 0; i < U_COUNT_; i++)
        fprintf(o, "tally-preload: %6s %-26s %6llu\n", "", unseen_names[i],
                (unsigned long long)__atomic_load_n(&g_unseen[i], __ATOMIC_RELAXED));
    fflush(o);
}

/* libtally's communicators print no TALLY_STATS table of their own while
 * this library prints the process's (core/stats.c calls this through a
 * weak reference): one table at MPI_Finalize, over every communicator and
 * with the calls passed to PMPI_Allreduce, rather than one per
 * communicator at each MPI_Comm_free. */
EXPORT int tally_preload_prints_stats(void);
EXPORT int tally_preload_prints_stats(void)
{
    return __atomic_load_n(&g_stats, __ATOMIC_RELAXED);
}

/* --- communicator states and lifecycle ------------------------------------- */

/* Unlinks s, adds its counts, destroys its tally communicator. */
static void retire(comm_state_t *s)
{
    pthread_mutex_lock(&g_lock);
    if (s->prev) s->prev->next = s->next; else g_head = s->next;
    if (s->next) s->next->prev = s->prev; else g_tail = s->prev;
    s->prev = s->next = NULL;
    merge_stats(s);
    for (int i = 0; i < s->nsites; i++) {
        size_t wire = 0, plain = 0;
        tally_compressor_bytes(s->sites[i].z, &wire, &plain);
        g_wire += wire;
        g_plain += plain;
    }
    __atomic_fetch_add(&g_generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&g_lock);
    for (int i = 0; i < s->nsites; i++) {
        t.inside++;
        tally_compressor_destroy(s->sites[i].z);
        t.inside--;
    }
    s->nsites = 0;
    if (s->tc) {
        t.inside++;
        tally_comm_destroy(s->tc);
        t.inside--;
        s->tc = NULL;
        s->reason = R_CREATE;
    }
    s->retired = 1;
}

static int comm_delete(MPI_Comm comm, int keyval, void *attr, void *extra)
{
    (void)comm, (void)keyval, (void)extra;
    comm_state_t *s = attr;
    if (!s->retired)
        retire(s);
    free(s);
    return MPI_SUCCESS;
}

static void *retire_on_thread(void *s)
{
    retire(s);
    return NULL;
}

/* Retires every state left; retiring one is collective over its
 * communicator.  Where threads may have made the states of different
 * communicators at once (MPI_THREAD_MULTIPLE), the list's order may differ
 * between ranks, and one rank retiring A then B while another retires B
 * then A would wait for ever: each state then retires on a thread of its
 * own.  What is left (no threads, or one could not start) goes in creation
 * order, the same on every rank of a communicator when one thread made
 * them. */
static void retire_all(void)
{
    int level = MPI_THREAD_SINGLE;
    PMPI_Query_thread(&level);
    pthread_mutex_lock(&g_lock);
    size_t n = 0, started = 0;
    for (const comm_state_t *p = g_head; p; p = p->next)
        n++;
    const int threaded = level == MPI_THREAD_MULTIPLE && n > 1;
    comm_state_t **states = threaded ? malloc(n * sizeof *states) : NULL;
    pthread_t *threads = threaded ? malloc(n * sizeof *threads) : NULL;
    if (states && threads) {
        n = 0;
        for (comm_state_t *p = g_head; p; p = p->next)
            states[n++] = p;
    }
    pthread_mutex_unlock(&g_lock);
    while (states && threads && started < n &&
           pthread_create(&threads[started], NULL, retire_on_thread, states[started]) == 0)
        started++;
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    free(states);
    for (;;) {
        pthread_mutex_lock(&g_lock);
        comm_state_t *s = g_head;
        pthread_mutex_unlock(&g_lock);
        if (!s)
            break;
        retire(s); /* freed by comm_delete, if the MPI ever calls it */
    }
}

/* Runs at the start of MPI_Finalize. */
static int self_delete(MPI_Comm comm, int keyval, void *attr, void *extra)
{
    (void)comm, (void)keyval, (void)attr, (void)extra;
    __atomic_store_n(&g_state, DOWN, __ATOMIC_RELEASE);
    retire_all();
    if (g_stats)
        print_stats();
    PMPI_Comm_free_keyval(&g_keyval);
    return MPI_SUCCESS;
}

static void setup(void)
{
    pthread_mutex_lock(&g_lock);
    int initialized = 0, finalized = 0;
    PMPI_Initialized(&initialized);
    PMPI_Finalized(&finalized);
    if (__atomic_load_n(&g_state, __ATOMIC_RELAXED) != UNSET || !initialized || finalized)
        goto out;
    int preload, stats;
    read_config(&preload, &stats);
    int state = OFF;
    if (preload) {
        build_tables();
        if (PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, comm_delete, &g_keyval, NULL) ==
                MPI_SUCCESS &&
            PMPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, self_delete, &g_self_keyval,
                                    NULL) == MPI_SUCCESS &&
            PMPI_Comm_set_attr(MPI_COMM_SELF, g_self_keyval, NULL) == MPI_SUCCESS) {
            __atomic_store_n(&g_stats, stats, __ATOMIC_RELAXED);
            state = ACTIVE;
        } else {
            fprintf(stderr, "tally-preload: cannot create MPI keyvals; passing every "
                            "call to the MPI\n");
        }
    }
    __atomic_store_n(&g_state, state, __ATOMIC_RELEASE);
    if (!preload && stats) { /* say so: no table will come */
        int rank = 0;
        PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
        if (rank == 0)
            fprintf(stderr, "tally-preload: loaded, but TALLY_PRELOAD is off: every "
                            "MPI_Allreduce goes straight to the MPI (TALLY_STATS=1)\n");
    }
out:
    pthread_mutex_unlock(&g_lock);
}

EXPORT int MPI_Init(int *argc, char ***argv)
{
    int rc = PMPI_Init(argc, argv);
    if (rc == MPI_SUCCESS)
        setup();
    return rc;
}

EXPORT int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    int rc = PMPI_Init_thread(argc, argv, required, provided);
    if (rc == MPI_SUCCESS)
        setup();
    return rc;
}

/* Collective over comm (it creates the tally communicator); NULL only when
 * out of memory. */
static comm_state_t *create_state(MPI_Comm comm)
{
    comm_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->comm = comm;
    int inter = 0;
    PMPI_Comm_test_inter(comm, &inter);
    PMPI_Comm_size(comm, &s->size);
    if (inter) {
        s->reason = R_INTERCOMM;
    } else {
        t.inside++;
        tally_status_t st = tally_comm_create(comm, &s->tc);
        t.inside--;
        if (st != TALLY_SUCCESS) {
            s->tc = NULL;
            s->reason = R_CREATE;
        }
    }
    if (PMPI_Comm_set_attr(comm, g_keyval, s) != MPI_SUCCESS) {
        if (s->tc) {
            t.inside++;
            tally_comm_destroy(s->tc);
            t.inside--;
        }
        free(s);
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    s->prev = g_tail;
    if (g_tail) g_tail->next = s; else g_head = s;
    g_tail = s;
    pthread_mutex_unlock(&g_lock);
    return s;
}

/* The compressor of the call site (receive buffer, count, dtype) on s,
 * made on first use; NULL: this call runs exactly.  Collective: the ranks
 * agree on the site's number among the sites they know (one small
 * allreduce), since a site's buffer address is the rank's own and a
 * compressor is made by all ranks or none. */
static tally_compressor_t *site_compressor(comm_state_t *s, const void *buffer, size_t count,
                                           tally_dtype_t dtype)
{
    int mine = 0;
    while (mine < s->nsites && !(s->sites[mine].buffer == buffer &&
                                 s->sites[mine].count == count && s->sites[mine].dtype == dtype))
        mine++;
    int v[4] = {mine, -mine, s->nsites, -s->nsites}, all[4];
    if (PMPI_Allreduce(v, all, 4, MPI_INT, MPI_MAX, s->comm) != MPI_SUCCESS)
        return NULL;
    if (all[0] != -all[1] || all[2] != -all[3]) {
        /* Ranks see different call sites here (buffers used in a different
         * order): this call runs exactly, and no residual is mixed up. */
        static int warned;
        if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "tally-preload: TALLY_COMPRESS: ranks reached a call site in a "
                            "different order; such calls run uncompressed\n");
        return NULL;
    }
    if (mine < s->nsites)
        return s->sites[mine].z;
    if (s->nsites == MAX_SITES)
        return NULL;
    tally_compressor_t *z = NULL;
    t.inside++;
    tally_status_t st = tally_compressor_create(s->tc, g_compress, count, dtype, &z);
    t.inside--;
    if (st != TALLY_SUCCESS)
        return NULL; /* on every rank: creation agrees */
    s->sites[s->nsites++] = (site_t){buffer, count, dtype, z};
    return z;
}

/* Whether either buffer is device memory (never when tally loaded no
 * device backend: then every buffer is host memory). */
static int on_device(tally_comm_t *tc, const void *sendbuf, const void *recvbuf)
{
    tally_memtype_t send = TALLY_MEM_HOST, recv = TALLY_MEM_HOST;
    if (sendbuf != MPI_IN_PLACE)
        tally_mem_type(tc, sendbuf, &send);
    tally_mem_type(tc, recvbuf, &recv);
    return send == TALLY_MEM_DEVICE || recv == TALLY_MEM_DEVICE;
}

static int fallback(enum reason why, const void *sendbuf, void *recvbuf, int count,
                    MPI_Datatype type, MPI_Op op, MPI_Comm comm)
{
    __atomic_fetch_add(&g_fallbacks[why], 1, __ATOMIC_RELAXED);
    return PMPI_Allreduce(sendbuf, recvbuf, count, type, op, comm);
}

static int mpi_error_of(tally_status_t st)
{
    switch (st) {
    case TALLY_ERR_NO_MEMORY: return MPI_ERR_NO_MEM;
    case TALLY_ERR_COUNT_TOO_LARGE: return MPI_ERR_COUNT;
    default: return MPI_ERR_INTERN;
    }
}

static int preload_allreduce(const void *sendbuf, void *recvbuf, int count,
                             MPI_Datatype type, MPI_Op mop, MPI_Comm comm)
{
    int state = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
    if (state == UNSET) {
        setup();
        state = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
    }
    if (state != ACTIVE)
        return PMPI_Allreduce(sendbuf, recvbuf, count, type, mop, comm);
    if (t.inside)
        return fallback(R_REENTRANT, sendbuf, recvbuf, count, type, mop, comm);

    /* Decided from arguments that MPI requires to be equal on all ranks. */
    tally_op_t op;
    int needs;
    int why = map_op(mop, &op, &needs);
    if (why >= 0)
        return fallback(why, sendbuf, recvbuf, count, type, mop, comm);
    const type_map_t *tm = find_type(type);
    if (!tm)
        return fallback(unmapped_type_reason(type), sendbuf, recvbuf, count, type, mop, comm);
    if (needs > tm->ops)
        return fallback(R_OP_DTYPE, sendbuf, recvbuf, count, type, mop, comm);
    if (count <= 0 || comm == MPI_COMM_NULL)
        return fallback(R_COUNT, sendbuf, recvbuf, count, type, mop, comm);

    comm_state_t *s = t.state;
    uint64_t generation = __atomic_load_n(&g_generation, __ATOMIC_ACQUIRE);
    if (comm != t.comm || generation != t.generation || !s) {
        void *attr = NULL;
        int found = 0;
        if (PMPI_Comm_get_attr(comm, g_keyval, &attr, &found) != MPI_SUCCESS)
            return fallback(R_COUNT, sendbuf, recvbuf, count, type, mop, comm);
        s = found ? attr : create_state(comm);
        if (!s)
            return fallback(R_NO_MEMORY, sendbuf, recvbuf, count, type, mop, comm);
        t.comm = comm;
        t.state = s;
        t.generation = generation;
    }
    if (!s->tc)
        return fallback(s->reason, sendbuf, recvbuf, count, type, mop, comm);

    size_t n = (size_t)count;
    if (!s->last_algo || s->last_count != n || s->last_dtype != tm->dtype ||
        s->last_op != op) {
        const char *name;
        if (tally_comm_get_algorithm(s->tc, n, tm->dtype, op, &name) != TALLY_SUCCESS)
            return fallback(R_UNSUPPORTED, sendbuf, recvbuf, count, type, mop, comm);
        s->last_count = n;
        s->last_dtype = tm->dtype;
        s->last_op = op;
        s->last_algo = name;
        s->last_is_mpi = strcmp(name, "mpi") == 0;
    }
    const char *algo = s->last_algo;
    size_t bytes = n * (size_t)tm->size;
    double t0 = g_stats ? now() : 0.0;

    const int compress = g_compress[0] && op == TALLY_SUM && bytes >= g_compress_min &&
                         (tm->dtype == TALLY_FLOAT32 || tm->dtype == TALLY_FLOAT64 ||
                          tm->dtype == TALLY_FLOAT16 || tm->dtype == TALLY_BFLOAT16);
    if (s->last_is_mpi && !compress && !on_device(s->tc, sendbuf, recvbuf)) {
        /* tally would call the MPI anyway: do it directly, on the user's
         * communicator, with the user's arguments but the type tally's own
         * "mpi" algorithm would pass (host memory: device memory goes
         * through tally, the MPI may not read it). */
        int rc = PMPI_Allreduce(sendbuf, recvbuf, count, tm->exact, mop, comm);
        if (g_stats && rc == MPI_SUCCESS)
            count_served(s, algo, bytes, now() - t0);
        return rc;
    }

    /* Local checks: an erroneous call goes to the MPI, which reports it. */
    int in_place = sendbuf == MPI_IN_PLACE;
    uintptr_t sb = (uintptr_t)sendbuf, rb = (uintptr_t)recvbuf;
    if (!recvbuf || recvbuf == MPI_IN_PLACE || (!in_place && !sendbuf) ||
        (!in_place && sb < rb + bytes && rb < sb + bytes))
        return fallback(R_ARGS, sendbuf, recvbuf, count, type, mop, comm);

    tally_compressor_t *z = compress ? site_compressor(s, recvbuf, n, tm->dtype) : NULL;
    t.inside++;
    tally_status_t st =
        z ? tally_allreduce_compressed(in_place ? TALLY_IN_PLACE : sendbuf, recvbuf, n, tm->dtype,
                                       op, z)
          : tally_allreduce(in_place ? TALLY_IN_PLACE : sendbuf, recvbuf, n, tm->dtype, op,
                            s->tc);
    t.inside--;
    if (z)
        algo = "compressed";
    if (st == TALLY_SUCCESS) {
        if (g_stats)
            count_served(s, algo, bytes, now() - t0);
        return MPI_SUCCESS;
    }
    if (st == TALLY_ERR_UNSUPPORTED) /* refused before any message */
        return fallback(R_UNSUPPORTED, sendbuf, recvbuf, count, type, mop, comm);
    /* After a failed call (reported to the program then) tally's private
     * communicator may hold stale messages; the program's own is clean, so
     * the MPI serves the calls that follow. */
    if (st == TALLY_ERR_COMM_BROKEN)
        return fallback(R_BROKEN, sendbuf, recvbuf, count, type, mop, comm);
    int code = mpi_error_of(st);
    PMPI_Comm_call_errhandler(comm, code);
    return code;
}

EXPORT int MPI_Allreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type,
                         MPI_Op op, MPI_Comm comm)
{
    return preload_allreduce(sendbuf, recvbuf, count, type, op, comm);
}

/* The reductions tally does not serve: counted, then the MPI's. */
static void count_unseen(enum unseen which)
{
    if (__atomic_load_n(&g_stats, __ATOMIC_RELAXED))
        __atomic_fetch_add(&g_unseen[which], 1, __ATOMIC_RELAXED);
}

EXPORT int MPI_Iallreduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type,
                          MPI_Op op, MPI_Comm comm, MPI_Request *req)
{
    count_unseen(U_IALLREDUCE);
    return PMPI_Iallreduce(sendbuf, recvbuf, count, type, op, comm, req);
}

EXPORT int MPI_Reduce(const void *sendbuf, void *recvbuf, int count, MPI_Datatype type,
                      MPI_Op op, int root, MPI_Comm comm)
{
    count_unseen(U_REDUCE);
    return PMPI_Reduce(sendbuf, recvbuf, count, type, op, root, comm);
}

EXPORT int MPI_Reduce_scatter(const void *sendbuf, void *recvbuf, const int recvcounts[],
                              MPI_Datatype type, MPI_Op op, MPI_Comm comm)
{
    count_unseen(U_REDUCE_SCATTER);
    return PMPI_Reduce_scatter(sendbuf, recvbuf, recvcounts, type, op, comm);
}

EXPORT int MPI_Reduce_scatter_block(const void *sendbuf, void *recvbuf, int recvcount,
                                    MPI_Datatype type, MPI_Op op, MPI_Comm comm)
{
    count_unseen(U_REDUCE_SCATTER_BLOCK);
    return PMPI_Reduce_scatter_block(sendbuf, recvbuf, recvcount, type, op, comm);
}

/* --- Fortran (mpif.h and `use mpi`) ---------------------------------------
 * Open MPI's Fortran MPI_IN_PLACE and MPI_BOTTOM are common blocks; a
 * buffer argument at their address means the constant.  Weak, so that the
 * library loads under MPIs that spell them otherwise (or not at all). */
extern int mpi_fortran_in_place_ __attribute__((weak));
extern int mpi_fortran_in_place __attribute__((weak));
extern int mpi_fortran_in_place__ __attribute__((weak));
extern int MPI_FORTRAN_IN_PLACE __attribute__((weak));
extern int mpi_fortran_bottom_ __attribute__((weak));
extern int mpi_fortran_bottom __attribute__((weak));
extern int mpi_fortran_bottom__ __attribute__((weak));
extern int MPI_FORTRAN_BOTTOM __attribute__((weak));

static int is_f_in_place(const void *p)
{
    return p && (p == (void *)&mpi_fortran_in_place_ || p == (void *)&mpi_fortran_in_place ||
                 p == (void *)&mpi_fortran_in_place__ || p == (void *)&MPI_FORTRAN_IN_PLACE);
}

static int is_f_bottom(const void *p)
{
    return p && (p == (void *)&mpi_fortran_bottom_ || p == (void *)&mpi_fortran_bottom ||
                 p == (void *)&mpi_fortran_bottom__ || p == (void *)&MPI_FORTRAN_BOTTOM);
}

static void f_allreduce(void *sendbuf, void *recvbuf, const MPI_Fint *count,
                        const MPI_Fint *type, const MPI_Fint *op, const MPI_Fint *comm,
                        MPI_Fint *ierr)
{
    const void *send = is_f_in_place(sendbuf) ? MPI_IN_PLACE
                       : is_f_bottom(sendbuf) ? MPI_BOTTOM : sendbuf;
    void *recv = is_f_bottom(recvbuf) ? MPI_BOTTOM : recvbuf;
    int rc = preload_allreduce(send, recv, (int)*count, PMPI_Type_f2c(*type),
                               PMPI_Op_f2c(*op), PMPI_Comm_f2c(*comm));
    if (ierr)
        *ierr = (MPI_Fint)rc;
}

#define F_ALLREDUCE(name)                                                           \
    EXPORT void name(void *sendbuf, void *recvbuf, MPI_Fint *count, MPI_Fint *type, \
                     MPI_Fint *op, MPI_Fint *comm, MPI_Fint *ierr);                 \
    EXPORT void name(void *sendbuf, void *recvbuf, MPI_Fint *count, MPI_Fint *type, \
                     MPI_Fint *op, MPI_Fint *comm, MPI_Fint *ierr)                  \
    {                                                                               \
        f_allreduce(sendbuf, recvbuf, count, type, op, comm, ierr);                 \
    }

F_ALLREDUCE(mpi_allreduce_)
F_ALLREDUCE(mpi_allreduce__)
F_ALLREDUCE(mpi_allreduce)
F_ALLREDUCE(MPI_ALLREDUCE)
