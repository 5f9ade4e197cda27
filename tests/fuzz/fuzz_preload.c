/* fuzz_preload.c - libFuzzer target for the drop-in's mapping of MPI
 * arguments (src/preload/preload.c, compiled into this program, so its
 * MPI_Allreduce is the one called): datatype, op, count, communicator,
 * in place, aliased and NULL buffers.  Differential: every input is run
 * through the preload's MPI_Allreduce and through PMPI_Allreduce on the same
 * bytes, and both must agree on success or error class and leave the same
 * receive buffer, guard bytes included.  A type mapped to the wrong tally
 * dtype, size or signedness, an op allowed on a type MPI refuses, or an
 * erroneous call tally serves instead of reporting shows up as a
 * difference.
 *
 * Run on two ranks (run-fuzz.sh starts it under mpirun), so the values are
 * really reduced: rank 0 runs libFuzzer and sends each input to rank 1,
 * which never returns from LLVMFuzzerInitialize; each rank derives its own
 * vector from the input, and a difference on either rank aborts rank 0.
 * Floating values are kept off NaN: with NaN operands MAX and MIN depend on
 * operand order, which MPI leaves open.  Input layout: type, op, comm,
 * flags, count (two bytes, signed), then the data. */
#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES 65536
#define GUARD 64
#define STOP ((uint64_t)-1)

/* A type; the size of its floating elements (0: none), kept off NaN; for
 * 8- and 16-bit integers, their bits (negative: signed); the type the
 * reference call passes (see add). */
typedef struct { MPI_Datatype type; int fsize, ibits; MPI_Datatype reference; } case_type_t;
static case_type_t types[64];
static int ntypes;
static MPI_Op ops[16];
static int nops;
static MPI_Comm comms[4];
static int rank;

static void user_fn(void *in, void *inout, int *len, MPI_Datatype *type)
{
    (void)in, (void)inout, (void)len, (void)type;
}

/* Open MPI 4.1.2-4.1.4 compare MPI_UNSIGNED_LONG as signed in MIN and MAX
 * (open-mpi/ompi#10525), and 4.1.4 compares MPI_OFFSET (a signed type) as
 * unsigned: their reference is the same call on the fixed-width type, which
 * that MPI gets right and tally must match. */
static void add(MPI_Datatype t, int fsize)
{
    MPI_Datatype reference = t;
    if (t == MPI_UNSIGNED_LONG && sizeof(long) == 8)
        reference = MPI_UINT64_T;
    else if (t == MPI_OFFSET && sizeof(MPI_Offset) == 8)
        reference = MPI_INT64_T;
    if (t != MPI_DATATYPE_NULL)
        types[ntypes++] = (case_type_t){t, fsize, 0, reference};
}

static void add_small_int(MPI_Datatype t, int ibits)
{
    if (t != MPI_DATATYPE_NULL)
        types[ntypes++] = (case_type_t){t, 0, ibits, t};
}

/* Clears one exponent bit of every NaN or infinity's twin among the
 * floating elements (little endian), so no operand is NaN. */
static void no_nan(uint8_t *p, size_t bytes, int fsize)
{
    for (size_t i = 0; fsize && i + (size_t)fsize <= bytes; i += (size_t)fsize) {
        uint8_t *hi = p + i + fsize - 1;
        const int nan = fsize == 4 ? (hi[0] & 0x7f) == 0x7f && (hi[-1] & 0x80)
                                   : (hi[0] & 0x7f) == 0x7f && (hi[-1] & 0xf0) == 0xf0;
        if (nan)
            hi[0] &= 0xbf;
    }
}

/* Rank r's vector for an input: every rank can make every rank's. */
static void make_vector(uint8_t *v, size_t len, const uint8_t *values, size_t nvalues, int r,
                        const case_type_t *ct, size_t from, size_t bytes)
{
    for (size_t i = 0; i < len; i++)
        v[i] = nvalues ? values[(i + 7 * (size_t)r) % nvalues] ^ (uint8_t)(r * 0x5a)
                       : (uint8_t)(i + r);
    no_nan(v + from, bytes, ct->fsize);
}

static long long small_int(const uint8_t *p, int ibits)
{
    switch (ibits) {
    case 8: return p[0];
    case -8: return (int8_t)p[0];
    case 16: return (uint16_t)(p[0] | p[1] << 8);
    default: return (int16_t)(p[0] | p[1] << 8);
    }
}

/* Open MPI 4.1's AVX kernels saturate 8- and 16-bit SUMs where tally wraps
 * around as C does (tally-preload(7), open-mpi/ompi#8045): there tally's
 * result must be the wrapped sum of every rank's vector, and the MPI's that
 * or the saturated one.  Returns 1 when both hold for every element. */
static int small_sum_ok(const uint8_t *tally, const uint8_t *mpi, const uint8_t *values,
                        size_t nvalues, int ranks, const case_type_t *ct, size_t len,
                        size_t from, size_t bytes)
{
    const int width = ct->ibits < 0 ? -ct->ibits / 8 : ct->ibits / 8;
    const long long lo = ct->ibits == -8 ? -128 : ct->ibits == -16 ? -32768 : 0;
    const long long hi = ct->ibits == -8 ? 127 : ct->ibits == -16 ? 32767
                         : ct->ibits == 8 ? 255 : 65535;
    uint8_t *v = malloc(len * (size_t)ranks);
    if (!v)
        abort();
    for (int r = 0; r < ranks; r++)
        make_vector(v + (size_t)r * len, len, values, nvalues, r, ct, from, bytes);
    int ok = memcmp(tally, mpi, from) == 0 &&
             memcmp(tally + from + bytes, mpi + from + bytes, len - from - bytes) == 0;
    for (size_t i = from; ok && i < from + bytes; i += (size_t)width) {
        long long sum = 0;
        for (int r = 0; r < ranks; r++)
            sum += small_int(v + (size_t)r * len + i, ct->ibits);
        const long long wrapped = small_int((const uint8_t[]){(uint8_t)sum, (uint8_t)(sum >> 8)},
                                            ct->ibits);
        const long long saturated = sum < lo ? lo : sum > hi ? hi : sum;
        const long long t = small_int(tally + i, ct->ibits), m = small_int(mpi + i, ct->ibits);
        ok = t == wrapped && (m == wrapped || m == saturated);
    }
    free(v);
    return ok;
}

/* Runs one input on this rank; returns 0 when the preload and the MPI
 * agree, else prints the difference and returns 1. */
static int run_case(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    const case_type_t *ct = &types[data[0] % ntypes];
    const MPI_Op op = ops[data[1] % nops];
    const MPI_Comm comm = comms[data[2] % 4];
    const int flags = data[3];
    const int count = (int16_t)(data[4] | data[5] << 8);
    const uint8_t *values = data + 6;
    const size_t nvalues = size - 6;

    MPI_Aint lb = 0, extent = 0;
    MPI_Type_get_extent(ct->type, &lb, &extent);
    if (extent <= 0 || (count > 0 && (size_t)count * (size_t)extent > MAX_BYTES))
        return 0;
    const size_t bytes = count > 0 ? (size_t)count * (size_t)extent : 0;
    const size_t len = bytes + 2 * GUARD;
    uint8_t *send = malloc(len), *recv[2] = {malloc(len), malloc(len)};
    if (!send || !recv[0] || !recv[1])
        abort();
    make_vector(send, len, values, nvalues, rank, ct, GUARD, bytes);
    for (int k = 0; k < 2; k++)
        memset(recv[k], 0xa5, len);

    int rc[2];
    for (int k = 0; k < 2; k++) {
        void *r = recv[k] + GUARD;
        const void *s = send + GUARD;
        if (flags & 1) { /* in place: the receive buffer holds the input */
            memcpy(r, s, bytes);
            s = MPI_IN_PLACE;
        } else if (flags & 2) {
            s = r; /* aliased: erroneous */
        }
        if ((flags & 4) && count <= 0)
            r = NULL; /* with data, the MPI itself would write through it */
        rc[k] = k == 0 ? MPI_Allreduce(s, r, count, ct->type, op, comm)
                       : PMPI_Allreduce(s, r, count, ct->reference, op, comm);
    }
    int cls[2] = {rc[0], rc[1]};
    for (int k = 0; k < 2; k++)
        if (rc[k] != MPI_SUCCESS)
            MPI_Error_class(rc[k], &cls[k]);
    int ranks = 1;
    if (comm != MPI_COMM_NULL)
        MPI_Comm_size(comm, &ranks);
    const int differ =
        cls[0] != cls[1] ||
        (memcmp(recv[0], recv[1], len) != 0 &&
         !(rc[0] == MPI_SUCCESS && ct->ibits && op == MPI_SUM &&
           small_sum_ok(recv[0], recv[1], values, nvalues, ranks, ct, len, GUARD, bytes)));
    if (differ) {
        char name[MPI_MAX_OBJECT_NAME] = "?";
        int n = 0;
        MPI_Type_get_name(ct->type, name, &n);
        fprintf(stderr,
                "fuzz_preload: rank %d: the preload and the MPI differ: type %s op #%d "
                "comm #%d flags %d count %d: rc %d (class %d) against %d (class %d), "
                "buffers %s\n",
                rank, name, data[1] % nops, data[2] % 4, flags, count, rc[0], cls[0], rc[1],
                cls[1], memcmp(recv[0], recv[1], len) ? "differ" : "equal");
        for (size_t i = 0; i < len; i++)
            if (recv[0][i] != recv[1][i]) {
                fprintf(stderr, "fuzz_preload: rank %d: first difference at byte %td of the "
                                "data: %02x against %02x\n",
                        rank, (ptrdiff_t)i - GUARD, recv[0][i], recv[1][i]);
                break;
            }
    }
    free(recv[1]);
    free(recv[0]);
    free(send);
    return differ;
}

/* Rank 0 sends each input (its length, then its bytes) to the others and
 * learns whether any rank saw a difference. */
static int run_everywhere(const uint8_t *data, size_t size)
{
    uint64_t n = size;
    PMPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (n == STOP)
        return 0;
    PMPI_Bcast((void *)data, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
    int mine = run_case(data, n), any = 0;
    PMPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any;
}

static void stop_others(void)
{
    uint64_t n = STOP;
    PMPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Finalize();
}

static void serve(void)
{
    static uint8_t buf[1 << 20];
    for (;;) {
        uint64_t n = 0;
        PMPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        if (n == STOP || n > sizeof buf)
            break;
        PMPI_Bcast(buf, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD);
        int mine = run_case(buf, n), any = 0;
        PMPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    }
    MPI_Finalize();
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("TALLY_PRELOAD", "1", 1);
    /* Open MPI's own SIGABRT handler would stop libFuzzer's from keeping
     * the input that failed. */
    setenv("OMPI_MCA_opal_signal", "", 1);
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "fuzz_preload: MPI_Init failed\n");
        abort();
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    /* What the preload maps, what it must pass on, and derived types. */
    add_small_int(MPI_CHAR, (char)-1 < 0 ? -8 : 8), add_small_int(MPI_SIGNED_CHAR, -8);
    add_small_int(MPI_UNSIGNED_CHAR, 8), add(MPI_BYTE, 0), add(MPI_WCHAR, 0);
    add_small_int(MPI_SHORT, -16), add_small_int(MPI_UNSIGNED_SHORT, 16), add(MPI_INT, 0);
    add(MPI_UNSIGNED, 0), add(MPI_LONG, 0), add(MPI_UNSIGNED_LONG, 0), add(MPI_LONG_LONG, 0);
    add(MPI_UNSIGNED_LONG_LONG, 0), add(MPI_FLOAT, 4), add(MPI_DOUBLE, 8);
    add(MPI_LONG_DOUBLE, 0), add_small_int(MPI_INT8_T, -8), add_small_int(MPI_INT16_T, -16);
    add(MPI_INT32_T, 0), add(MPI_INT64_T, 0), add_small_int(MPI_UINT8_T, 8);
    add_small_int(MPI_UINT16_T, 16), add(MPI_UINT32_T, 0);
    add(MPI_UINT64_T, 0), add(MPI_C_BOOL, 0), add(MPI_C_FLOAT_COMPLEX, 4);
    add(MPI_C_DOUBLE_COMPLEX, 8), add(MPI_AINT, 0), add(MPI_OFFSET, 0), add(MPI_COUNT, 0);
    add(MPI_FLOAT_INT, 0), add(MPI_DOUBLE_INT, 0), add(MPI_LONG_INT, 0), add(MPI_2INT, 0);
    add(MPI_SHORT_INT, 0), add(MPI_INTEGER, 0), add(MPI_REAL, 4);
    add(MPI_DOUBLE_PRECISION, 8), add(MPI_LOGICAL, 0), add(MPI_COMPLEX, 4), add(MPI_PACKED, 0);
    MPI_Datatype d;
    if (MPI_Type_dup(MPI_FLOAT, &d) == MPI_SUCCESS && MPI_Type_commit(&d) == MPI_SUCCESS)
        add(d, 4);
    if (MPI_Type_contiguous(3, MPI_INT, &d) == MPI_SUCCESS && MPI_Type_commit(&d) == MPI_SUCCESS)
        add(d, 0);
    if (MPI_Type_vector(2, 1, 2, MPI_DOUBLE, &d) == MPI_SUCCESS &&
        MPI_Type_commit(&d) == MPI_SUCCESS)
        add(d, 8);
    if (MPI_Type_create_resized(MPI_INT, 0, 8, &d) == MPI_SUCCESS &&
        MPI_Type_commit(&d) == MPI_SUCCESS)
        add(d, 0);
    const MPI_Op named_ops[] = {MPI_SUM,    MPI_MAX,    MPI_MIN,     MPI_PROD,  MPI_BAND,
                                MPI_BOR,    MPI_BXOR,   MPI_LAND,    MPI_LOR,   MPI_LXOR,
                                MPI_MINLOC, MPI_MAXLOC, MPI_REPLACE, MPI_NO_OP};
    memcpy(ops, named_ops, sizeof named_ops);
    nops = (int)(sizeof named_ops / sizeof named_ops[0]);
    MPI_Op_create(user_fn, 1, &ops[nops++]);
    MPI_Op_create(user_fn, 0, &ops[nops++]);
    comms[0] = MPI_COMM_WORLD;
    comms[1] = MPI_COMM_SELF;
    MPI_Comm_dup(MPI_COMM_WORLD, &comms[2]);
    comms[3] = MPI_COMM_NULL;
    for (int i = 0; i < 3; i++)
        MPI_Comm_set_errhandler(comms[i], MPI_ERRORS_RETURN);
    if (rank != 0)
        serve();
    atexit(stop_others);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (run_everywhere(data, size))
        abort(); /* the input is kept; the rank that differs said how */
    return 0;
}
