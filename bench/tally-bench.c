/* tally-bench - allreduce bandwidth and latency: every tally algorithm,
 * tally's own choice and the MPI's own MPI_Allreduce, side by side.
 *
 * Follows nccl-tests and OSU habits: a -b/-e/-f size sweep, -n timed
 * iterations after -w warm-up ones, the slowest rank's time per iteration,
 * algbw = bytes / time and busbw = algbw * 2(p-1)/p.  With -R the listed
 * algorithms are measured in turn, REPEATS times per size, so that they see
 * the same machine noise; the reported average is the median of the
 * per-repeat averages.  Uses only the public API (tally.h) and MPI; the
 * parts shared with tally-tune (sizes, timing, buffers) are in
 * bench_common.c.  man -l man/tally-bench.1 documents every option and
 * column.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "tally.h"
#if defined(__has_include)
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h> /* Open MPI: MPIX_Query_cuda_support */
#endif
#endif

#define MAX_ALGOS 32
#define NAME_LEN 64
#define LABEL_LEN 96

enum { EXIT_USAGE = 2 };

/* What one entry of -a measures. */
typedef enum algo_kind {
    KIND_AUTO,  /* tally_allreduce with tally's own choice */
    KIND_MPI,   /* the MPI's own MPI_Allreduce, called directly */
    KIND_TALLY, /* tally_allreduce with this algorithm forced */
    KIND_CODEC, /* tally_allreduce_compressed with the codec spec in `force` */
    KIND_HALF   /* tally's choice on float16 data of the same count (-z's baseline) */
} algo_kind_t;

typedef struct algo_spec {
    algo_kind_t kind;
    char name[NAME_LEN];  /* as listed: "ring", "tally:mpi", "auto", "mpi" */
    char force[NAME_LEN]; /* KIND_TALLY: the name given to tally */
} algo_spec_t;

typedef struct options {
    size_t min_bytes, max_bytes;
    double factor;
    int iters, warmup, repeats;
    bool check, in_place, help;
    bool device;           /* -m device: buffers in device memory */
    bool progress;         /* --progress: a line per size on stderr, even through a pipe */
    tally_dtype_t dtype;
    tally_op_t op;
    const char *json_path;
    char command_line[1024]; /* for the JSON's meta entry */
    algo_spec_t algos[MAX_ALGOS];
    int nalgos;
} options_t;

/* The known-result input of the check: small integers, different on every
 * rank and element, whose reduction is exact in every dtype. */
typedef struct pattern {
    tally_op_t op;
    int ranks;
    int k;              /* SUM/AVG/PROD: ranks r < k contribute, others are neutral */
    double sum_tab[5];  /* SUM: contribution of ranks r < k, by key % 5 */
    int twos_tab[3];    /* PROD: how many of them contribute a 2, by key % 3 */
} pattern_t;

typedef enum row_state { ROW_OK, ROW_UNSUPPORTED, ROW_FAILED } row_state_t;

/* One algorithm at one size, over all repeats. */
typedef struct algo_result {
    row_state_t state;
    char label[LABEL_LEN];
    const char *ran;     /* the algorithm tally runs; NULL for mpi */
    double *rep_avg;     /* repeats entries, seconds */
    double min, max;     /* seconds, over every iteration of every repeat */
    long long errors;    /* mismatching elements; -1: not checked */
    bool noted;          /* "unsupported" already explained (kept across sizes) */
    tally_compressor_t *z;      /* KIND_CODEC: the compressor for this size */
    size_t z_wire, z_plain;     /* its bytes over the timed calls */
    long long z_calls;
    double busbw_sum;    /* over the sizes it ran, for the closing summary */
    int busbw_sizes;
    double last_avg;     /* this size's median seconds; NAN: did not run */
} algo_result_t;

typedef struct bench {
    const options_t *opt;
    const bench_dtype_t *dt;
    MPI_Comm comm;
    int rank, size;
    tally_comm_t *tc;
    MPI_Datatype mpi_type; /* MPI_DATATYPE_NULL: mpi cannot run this dtype */
    MPI_Op mpi_op;
    void *send, *recv;     /* send is NULL in place; device memory with -m device */
    void *host_send, *host_recv; /* their host copies with -m device (else the same) */
    bool mpi_reads_device; /* the MPI is CUDA-aware: mpi runs on device buffers */
    size_t max_count;
    bench_timer_t timer;
    pattern_t pat;
    algo_result_t results[MAX_ALGOS];
    FILE *json;
    int json_rows;
    long json_end;         /* where the closing bracket goes (kept valid after each row) */
    double *speedup;       /* auto's speed-up over mpi, at the sizes both ran */
    size_t *speedup_bytes;
    int speedups;
    bench_progress_t progress;
} bench_t;

/* ---------------------------------------------------------------- values */

/* splitmix64: spreads element indices so that no block of the result
 * looks like another (a misplaced block is caught). */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* IEEE binary16 <-> double, independent of the library's own conversions. */
static double half_to_double(uint16_t h)
{
    int exp = (h >> 10) & 0x1f;
    double mant = h & 0x3ff;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant != 0 ? NAN : INFINITY;
    else
        v = ldexp(mant + 1024, exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* Round to nearest even; used only on the small integers of the check. */
static uint16_t double_to_half(double v)
{
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    double x = fabs(v);
    if (isnan(v))
        return 0x7e00;
    if (x == 0)
        return sign;
    int e = ilogb(x);
    if (e < -14)
        return sign | (uint16_t)rint(ldexp(x, 24)); /* subnormal; 1024 becomes the
                                                      * smallest normal */
    double m = rint(ldexp(x, 10 - e));
    if (m >= 2048) {
        m = 1024;
        e++;
    }
    if (e > 15)
        return sign | 0x7c00;
    return sign | (uint16_t)((e + 15) << 10) | (uint16_t)(m - 1024);
}

static double bfloat16_to_double(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t double_to_bfloat16(double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (isnan(f))
        return 0x7fc0;
    bits += 0x7fffu + ((bits >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(bits >> 16);
}

static void store_value(void *buf, size_t i, tally_dtype_t dtype, double v)
{
    switch (dtype) {
    case TALLY_INT8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case TALLY_UINT8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case TALLY_INT16: ((int16_t *)buf)[i] = (int16_t)v; break;
    case TALLY_UINT16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
    case TALLY_INT32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case TALLY_UINT32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case TALLY_INT64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case TALLY_UINT64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case TALLY_FLOAT16: ((uint16_t *)buf)[i] = double_to_half(v); break;
    case TALLY_BFLOAT16: ((uint16_t *)buf)[i] = double_to_bfloat16(v); break;
    case TALLY_FLOAT32: ((float *)buf)[i] = (float)v; break;
    case TALLY_FLOAT64: ((double *)buf)[i] = v; break;
    }
}

static double load_value(const void *buf, size_t i, tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_INT8: return ((const int8_t *)buf)[i];
    case TALLY_UINT8: return ((const uint8_t *)buf)[i];
    case TALLY_INT16: return ((const int16_t *)buf)[i];
    case TALLY_UINT16: return ((const uint16_t *)buf)[i];
    case TALLY_INT32: return ((const int32_t *)buf)[i];
    case TALLY_UINT32: return ((const uint32_t *)buf)[i];
    case TALLY_INT64: return (double)((const int64_t *)buf)[i];
    case TALLY_UINT64: return (double)((const uint64_t *)buf)[i];
    case TALLY_FLOAT16: return half_to_double(((const uint16_t *)buf)[i]);
    case TALLY_BFLOAT16: return bfloat16_to_double(((const uint16_t *)buf)[i]);
    case TALLY_FLOAT32: return ((const float *)buf)[i];
    case TALLY_FLOAT64: return ((const double *)buf)[i];
    }
    return NAN;
}

/* ------------------------------------------------------------- pattern
 * Per element i, key = mix(i) gives a = key % 5, b = key>>8 % 3,
 * c = key>>16 % 3, a "winner" rank w = key>>24 % (k or p), base =
 * 1 + key>>40 % 4 and two bit numbers x = key>>48 % 6, y = key>>56 % 6.
 * The winner's value differs from the others' so that every rank's
 * contribution decides some elements, and b and base make the result vary
 * from element to element:
 *   SUM, AVG  r < k: 1 + (a + r) % 5, plus b on the winner; else 0
 *   PROD      r < k: 2 if (c + r) % 3 == 0 else 1, doubled on the winner
 *             when b != 0; else 1
 *   MIN       base on the winner, base + 1 + (a + r) % 3 elsewhere
 *   MAX       base + 4 on the winner, base + (a + r) % 4 elsewhere
 *   BAND      63 without bit x, and without bit y too on the winner
 *   BOR       bit y on the winner, bit x elsewhere
 *   BXOR      bit (a + r) % 6, flipped with bit y on the winner
 *   LAND      0 on the winner when c == 0, else 1 + (a + r) % 4
 *   LOR       0 if c == 0; else 1 + (a + r) % 4 on the winner, 2 or 0
 *             (b == 2 or not) elsewhere
 *   LXOR      1 + (r + b) % 3 where a + r is odd, else 0
 * Every value is below 64, so it fits every integer dtype.  The logical
 * operands are not just 0 and 1 (1 & 2 is 0), so a bitwise kernel shows.
 * With one rank no op is applied: the result is rank 0's value (as in MPI).
 * k bounds the sum by the dtype's limit and the product by 2^exact_bits. */

static pattern_t pattern_make(tally_op_t op, int ranks, const bench_dtype_t *dt)
{
    pattern_t p = {.op = op, .ranks = ranks, .k = ranks};
    if (op == TALLY_SUM || op == TALLY_AVG) {
        double k = floor(dt->limit / 7); /* 7: the largest value a rank gives */
        if (k < ranks)
            p.k = k < 1 ? 1 : (int)k;
        for (int a = 0; a < 5; a++)
            for (int r = 0; r < p.k; r++)
                p.sum_tab[a] += 1 + (a + r) % 5;
    } else if (op == TALLY_PROD) {
        /* At most ceil(k/3) + 1 twos multiply up to 2^exact_bits. */
        int k = 3 * (dt->exact_bits - 1);
        if (k < ranks)
            p.k = k < 1 ? 1 : k;
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < p.k; r++)
                p.twos_tab[c] += (c + r) % 3 == 0;
    }
    return p;
}

static double pattern_value(const pattern_t *p, size_t i, int r)
{
    uint64_t key = mix(i);
    int a = (int)(key % 5), b = (int)((key >> 8) % 3), c = (int)((key >> 16) % 3);
    int base = 1 + (int)((key >> 40) % 4);
    switch (p->op) {
    case TALLY_SUM:
    case TALLY_AVG: {
        if (r >= p->k)
            return 0;
        int w = (int)((key >> 24) % (uint64_t)p->k);
        return 1 + (a + r) % 5 + (r == w ? b : 0);
    }
    case TALLY_PROD: {
        if (r >= p->k)
            return 1;
        int w = (int)((key >> 24) % (uint64_t)p->k);
        double v = (c + r) % 3 == 0 ? 2 : 1;
        return r == w && b != 0 ? 2 * v : v;
    }
    case TALLY_MIN: {
        int w = (int)((key >> 24) % (uint64_t)p->ranks);
        return r == w ? base : base + 1 + (a + r) % 3;
    }
    case TALLY_MAX: {
        int w = (int)((key >> 24) % (uint64_t)p->ranks);
        return r == w ? base + 4 : base + (a + r) % 4;
    }
    default:
        break;
    }
    const int w = (int)((key >> 24) % (uint64_t)p->ranks);
    const int x = 1 << (int)((key >> 48) % 6), y = 1 << (int)((key >> 56) % 6);
    switch (p->op) {
    case TALLY_BAND: return r == w ? 63 & ~x & ~y : 63 & ~x;
    case TALLY_BOR: return r == w ? y : x;
    case TALLY_BXOR: return (1 << (a + r) % 6) ^ (r == w ? y : 0);
    case TALLY_LAND: return r == w && c == 0 ? 0 : 1 + (a + r) % 4;
    case TALLY_LOR: return c == 0 ? 0 : r == w ? 1 + (a + r) % 4 : (b == 2 ? 2 : 0);
    case TALLY_LXOR: return (a + r) % 2 ? 1 + (r + b) % 3 : 0;
    default: return 0;
    }
}

/* BXOR's rotating part: bit k is set iff an odd number of ranks r < p have
 * (a + r) % 6 == k. */
static int xor_bits(int a, int p)
{
    int bits = 0;
    for (int k = 0; k < 6; k++) {
        int first = ((k - a) % 6 + 6) % 6; /* the first r with (a + r) % 6 == k */
        int n = first < p ? (p - 1 - first) / 6 + 1 : 0;
        bits |= (n % 2) << k;
    }
    return bits;
}

static double pattern_expected(const pattern_t *p, size_t i)
{
    uint64_t key = mix(i);
    int a = (int)(key % 5), b = (int)((key >> 8) % 3), c = (int)((key >> 16) % 3);
    int base = 1 + (int)((key >> 40) % 4);
    switch (p->op) {
    case TALLY_SUM: return p->sum_tab[a] + b;
    case TALLY_AVG: return (p->sum_tab[a] + b) / p->ranks;
    case TALLY_PROD: return ldexp(1, p->twos_tab[c] + (b != 0));
    case TALLY_MIN: return base;
    case TALLY_MAX: return base + 4;
    default: break;
    }
    if (p->ranks == 1)
        return pattern_value(p, i, 0);
    const int x = 1 << (int)((key >> 48) % 6), y = 1 << (int)((key >> 56) % 6);
    switch (p->op) {
    case TALLY_BAND: return 63 & ~x & ~y;
    case TALLY_BOR: return x | y;
    case TALLY_BXOR: return xor_bits(a, p->ranks) ^ y;
    case TALLY_LAND: return c != 0;
    case TALLY_LOR: return c != 0;
    /* ranks r < p with a + r odd: p / 2 for even a, (p + 1) / 2 for odd a. */
    case TALLY_LXOR: return ((a % 2 ? p->ranks + 1 : p->ranks) / 2) % 2;
    default: return NAN;
    }
}

static void fill_input(const bench_t *b, void *buf, size_t count)
{
    for (size_t i = 0; i < count; i++)
        store_value(buf, i, b->dt->dtype, pattern_value(&b->pat, i, b->rank));
}

/* AVG divides, so the result is rounded: accept about one ulp.  Everything
 * else is an exact small integer. */
static size_t count_mismatches(const bench_t *b, const void *buf, size_t count)
{
    size_t bad = 0;
    bool avg = b->pat.op == TALLY_AVG;
    for (size_t i = 0; i < count; i++) {
        double want = pattern_expected(&b->pat, i);
        double got = load_value(buf, i, b->dt->dtype);
        bool ok = avg ? fabs(got - want) <= b->dt->eps * fabs(want) : got == want;
        bad += !ok;
    }
    return bad;
}

/* --------------------------------------------------------------- options */

static const char *dtype_word(int i) { return tally_dtype_name((tally_dtype_t)i); }
static const char *op_word(int i) { return tally_op_name((tally_op_t)i); }

/* Tally's algorithms but its "mpi", which -a spells tally:mpi: "mpi" is
 * the MPI's own MPI_Allreduce, called directly. */
static int algo_count(void)
{
    int n = 0;
    for (int i = 0; i < tally_algorithm_count(); i++)
        n += strcmp(tally_algorithm_name(i), "mpi") != 0;
    return n;
}

static const char *algo_word(int k)
{
    for (int i = 0; i < tally_algorithm_count(); i++)
        if (strcmp(tally_algorithm_name(i), "mpi") != 0 && k-- == 0)
            return tally_algorithm_name(i);
    return NULL;
}

/* The lists come from the library, so they are what it has. */
static void usage(FILE *out)
{
    fprintf(out,
            "usage: mpirun -np N tally-bench [options]\n"
            "  -b MINBYTES   smallest message (default 8); suffixes K, M, G = 1024^n\n"
            "  -e MAXBYTES   largest message (default 64M)\n"
            "  -f FACTOR     multiply the size by FACTOR each step (default 2, > 1)\n"
            "  -n ITERS      timed iterations per measurement (default 20)\n"
            "  -w WARMUP     untimed iterations before them (default 5)\n"
            "  -c 0|1        check results against known values (default 1)\n"
            "  -a LIST       comma-separated: auto (tally's choice), mpi (MPI_Allreduce\n"
            "                directly), tally's algorithms:\n");
    bench_print_words(out, algo_word, algo_count(), ", ", ",");
    fprintf(out,
            "                tally:NAME (force NAME in tally, e.g. tally:mpi), all\n"
            "                (default auto,mpi)\n"
            "  -d DTYPE      (default float32)\n");
    bench_print_words(out, dtype_word, tally_dtype_count(), " ", "");
    fprintf(out, "  -o OP         (default sum); avg needs a floating dtype, the bitwise and\n"
                 "                logical ops an integer one\n");
    bench_print_words(out, op_word, tally_op_count(), " ", "");
    fprintf(out,
            "  -z SPEC       also measure tally_allreduce_compressed with codec SPEC\n"
            "                (tally(7): fp16, bf16, int8, topk:RATIO, sign, powersgd:RANK,\n"
            "                options ,ef=off ,seed=N); repeatable; adds auto and auto on\n"
            "                float16 data of the same count (auto@float16) as baselines;\n"
            "                the errors column counts elements not identical on every rank\n"
            "  -i            in place\n"
            "  -m MEMORY     host (default) or device: buffers from tally_mem_alloc on\n"
            "                the device tally loaded (TALLY_DEVICE); there mpi is the\n"
            "                MPI's allreduce on device pointers if it is CUDA-aware, else\n"
            "                naive staging (malloc, copy down, MPI_Allreduce, copy up,\n"
            "                free per call, as Open MPI's coll/cuda)\n"
            "  -R REPEATS    measure every algorithm REPEATS times per size, interleaved;\n"
            "                report the median (default 1)\n"
            "  --json FILE   also write the rows to FILE as a JSON array\n"
            "  --progress    a progress line per size on stderr (rank 0), also under\n"
            "                mpirun, where stderr is a pipe (on a terminal: always shown)\n"
            "  -h, --help    this text\n");
}

static bool add_algo(options_t *opt, algo_kind_t kind, const char *name, const char *force)
{
    for (int i = 0; i < opt->nalgos; i++)
        if (strcmp(opt->algos[i].name, name) == 0)
            return true; /* "all,mpi": measure it once */
    if (opt->nalgos == MAX_ALGOS || strlen(name) >= NAME_LEN)
        return false;
    algo_spec_t *s = &opt->algos[opt->nalgos++];
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->force, sizeof s->force, "%s", force ? force : "");
    return true;
}

/* One -a entry.  Tally names are checked against the library later. */
static bool add_algo_name(options_t *opt, const char *name)
{
    if (strcmp(name, "auto") == 0)
        return add_algo(opt, KIND_AUTO, name, NULL);
    if (strcmp(name, "mpi") == 0)
        return add_algo(opt, KIND_MPI, name, NULL);
    if (strcmp(name, "all") == 0) {
        bool ok = add_algo(opt, KIND_AUTO, "auto", NULL) && add_algo(opt, KIND_MPI, "mpi", NULL);
        for (int i = 0; i < algo_count(); i++)
            ok = ok && add_algo(opt, KIND_TALLY, algo_word(i), algo_word(i));
        return ok;
    }
    const char *force = strncmp(name, "tally:", 6) == 0 ? name + 6 : name;
    return *force != '\0' && add_algo(opt, KIND_TALLY, name, force);
}

static bool parse_algo_list(options_t *opt, const char *list)
{
    opt->nalgos = 0;
    char copy[1024];
    if (strlen(list) >= sizeof copy)
        return false;
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (!add_algo_name(opt, tok))
            return false;
    return opt->nalgos > 0;
}

/* Parses argv into opt; on error returns a message (printed by rank 0). */
static const char *parse_options(int argc, char **argv, options_t *opt, char *msg, size_t len)
{
    static const struct option longopts[] = {
        {"json", required_argument, NULL, 'J'},
        {"progress", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (options_t){.min_bytes = 8, .max_bytes = (size_t)64 << 20, .factor = 2,
                       .iters = 20, .warmup = 5, .repeats = 1, .check = true,
                       .dtype = TALLY_FLOAT32, .op = TALLY_SUM};
    parse_algo_list(opt, "auto,mpi");
    for (int i = 0, at = 0; i < argc && at < (int)sizeof opt->command_line; i++)
        at += snprintf(opt->command_line + at, sizeof opt->command_line - (size_t)at, "%s%s",
                       i ? " " : "", argv[i]);
    int c, flag;
    opterr = 0; /* our own messages, from rank 0 only */
    optind = 1;
    int codecs = 0;
    const char *codec_specs[MAX_ALGOS];
    while ((c = getopt_long(argc, argv, ":b:e:f:n:w:c:a:d:o:im:R:z:h", longopts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'b': ok = tally_size_parse(optarg, &opt->min_bytes) == TALLY_SUCCESS; break;
        case 'e': ok = tally_size_parse(optarg, &opt->max_bytes) == TALLY_SUCCESS; break;
        case 'f': ok = bench_parse_factor(optarg, &opt->factor); break;
        case 'n': ok = bench_parse_int(optarg, 1, 100000000, &opt->iters); break;
        case 'w': ok = bench_parse_int(optarg, 0, 100000000, &opt->warmup); break;
        case 'R': ok = bench_parse_int(optarg, 1, 100000, &opt->repeats); break;
        case 'c':
            ok = bench_parse_int(optarg, 0, 1, &flag);
            opt->check = flag;
            break;
        case 'a':
            if (!parse_algo_list(opt, optarg)) {
                snprintf(msg, len, "-a: bad algorithm list \"%s\"", optarg);
                return msg;
            }
            break;
        case 'd':
            /* A dtype of the library that this check does not know is refused. */
            ok = bench_dtype_parse(optarg) != NULL;
            if (ok)
                opt->dtype = bench_dtype_parse(optarg)->dtype;
            break;
        case 'o': ok = tally_op_parse(optarg, &opt->op) == TALLY_SUCCESS; break;
        case 'i': opt->in_place = true; break;
        case 'm':
            ok = strcmp(optarg, "host") == 0 || strcmp(optarg, "device") == 0;
            opt->device = strcmp(optarg, "device") == 0;
            break;
        case 'z':
            ok = codecs < MAX_ALGOS && *optarg;
            if (ok)
                codec_specs[codecs++] = optarg;
            break;
        case 'J': opt->json_path = optarg; break;
        case 'P': opt->progress = true; break;
        case 'h': opt->help = true; return NULL;
        case ':': snprintf(msg, len, "option -%c needs a value", optopt); return msg;
        default: snprintf(msg, len, "unknown option \"%s\"", argv[optind - 1]); return msg;
        }
        if (!ok) {
            snprintf(msg, len, "-%c: bad value \"%s\"", c, optarg);
            return msg;
        }
    }
    if (optind < argc) {
        snprintf(msg, len, "unexpected argument \"%s\"", argv[optind]);
        return msg;
    }
    /* -z rows after -a's, with their two baselines. */
    for (int i = 0; i < codecs; i++) {
        char name[NAME_LEN];
        snprintf(name, sizeof name, "z:%s", codec_specs[i]);
        bool ok = strlen(codec_specs[i]) + 2 < NAME_LEN &&
                  add_algo(opt, KIND_AUTO, "auto", NULL) &&
                  add_algo(opt, KIND_HALF, "auto@float16", NULL) &&
                  add_algo(opt, KIND_CODEC, name, codec_specs[i]);
        if (!ok) {
            snprintf(msg, len, "-z %s: too many rows or too long a spec", codec_specs[i]);
            return msg;
        }
    }
    if (opt->min_bytes > opt->max_bytes) {
        snprintf(msg, len, "-b %zu is larger than -e %zu", opt->min_bytes, opt->max_bytes);
        return msg;
    }
    if (tally_op_check(opt->op, opt->dtype) != TALLY_SUCCESS) {
        snprintf(msg, len, "-o %s needs %s dtype, not %s", tally_op_name(opt->op),
                 opt->op == TALLY_AVG ? "a floating" : "an integer",
                 tally_dtype_name(opt->dtype));
        return msg;
    }
    return NULL;
}

/* ------------------------------------------------------------ MPI baseline */

static MPI_Datatype mpi_datatype(tally_dtype_t dtype)
{
    switch (dtype) {
    case TALLY_INT8: return MPI_INT8_T;
    case TALLY_UINT8: return MPI_UINT8_T;
    case TALLY_INT16: return MPI_INT16_T;
    case TALLY_UINT16: return MPI_UINT16_T;
    case TALLY_INT32: return MPI_INT32_T;
    case TALLY_UINT32: return MPI_UINT32_T;
    case TALLY_INT64: return MPI_INT64_T;
    case TALLY_UINT64: return MPI_UINT64_T;
    case TALLY_FLOAT32: return MPI_FLOAT;
    case TALLY_FLOAT64: return MPI_DOUBLE;
    case TALLY_FLOAT16:
    case TALLY_BFLOAT16: break;
    }
    return MPI_DATATYPE_NULL;
}

/* MPI has no AVG: SUM, then bench_mpi_allreduce divides. */
static MPI_Op mpi_operation(tally_op_t op)
{
    switch (op) {
    case TALLY_SUM:
    case TALLY_AVG: return MPI_SUM;
    case TALLY_PROD: return MPI_PROD;
    case TALLY_MIN: return MPI_MIN;
    case TALLY_MAX: return MPI_MAX;
    case TALLY_BAND: return MPI_BAND;
    case TALLY_BOR: return MPI_BOR;
    case TALLY_BXOR: return MPI_BXOR;
    case TALLY_LAND: return MPI_LAND;
    case TALLY_LOR: return MPI_LOR;
    case TALLY_LXOR: return MPI_LXOR;
    }
    return MPI_OP_NULL;
}

/* MPI counts are int: larger messages go in INT_MAX-element pieces. */
static tally_status_t host_mpi_allreduce(const bench_t *b, const void *sendbuf, void *recv,
                                         size_t count)
{
    const size_t es = b->dt->size;
    for (size_t done = 0; done < count;) {
        size_t left = count - done;
        int n = left > (size_t)INT32_MAX ? INT32_MAX : (int)left;
        const void *send = sendbuf ? (const char *)sendbuf + done * es : MPI_IN_PLACE;
        if (MPI_Allreduce(send, (char *)recv + done * es, n, b->mpi_type, b->mpi_op,
                          b->comm) != MPI_SUCCESS)
            return TALLY_ERR_MPI;
        done += (size_t)n;
    }
    if (b->opt->op == TALLY_AVG) {
        if (b->dt->dtype == TALLY_FLOAT32)
            for (size_t i = 0; i < count; i++)
                ((float *)recv)[i] /= (float)b->size;
        else
            for (size_t i = 0; i < count; i++)
                ((double *)recv)[i] /= b->size;
    }
    return TALLY_SUCCESS;
}

/* The MPI's allreduce as a program would call it: on device buffers that a
 * CUDA-unaware MPI cannot read, the naive staging through a fresh host
 * buffer on every call (what Open MPI's coll/cuda does). */
static tally_status_t bench_mpi_allreduce(const bench_t *b, size_t count)
{
    if (!b->opt->device || b->mpi_reads_device)
        return host_mpi_allreduce(b, b->send, b->recv, count);
    const size_t bytes = count * b->dt->size;
    void *host = malloc(bytes ? bytes : 1);
    if (!host)
        return TALLY_ERR_NO_MEMORY;
    tally_status_t st = tally_mem_copy(b->tc, host, b->send ? b->send : b->recv, bytes);
    if (st == TALLY_SUCCESS)
        st = host_mpi_allreduce(b, NULL, host, count);
    if (st == TALLY_SUCCESS)
        st = tally_mem_copy(b->tc, b->recv, host, bytes);
    free(host);
    return st;
}

/* Whether the MPI reads device pointers itself (Open MPI built with CUDA);
 * never for the emulated device, which no MPI knows. */
static bool mpi_reads_device(void)
{
#if defined(MPIX_CUDA_AWARE_SUPPORT) && MPIX_CUDA_AWARE_SUPPORT
    char device[32] = "";
    tally_config_get("TALLY_DEVICE", device, sizeof device);
    return MPIX_Query_cuda_support() == 1 && strcmp(device, "emulated") != 0;
#else
    return false;
#endif
}

/* Input written on the host, then copied where the calls read it. */
static void upload(const bench_t *b, size_t count)
{
    if (b->opt->device) {
        const size_t bytes = count * b->dt->size;
        if (b->send)
            tally_mem_copy(b->tc, b->send, b->host_send, bytes);
        tally_mem_copy(b->tc, b->recv, b->host_recv, bytes);
    }
}

/* Where the buffers of the calls are. */
static tally_memtype_t memory(const bench_t *b)
{
    return b->opt->device ? TALLY_MEM_DEVICE : TALLY_MEM_HOST;
}

/* The result, where the host reads it. */
static void download(const bench_t *b, size_t count)
{
    if (b->opt->device)
        tally_mem_copy(b->tc, b->host_recv, b->recv, count * b->dt->size);
}

/* ------------------------------------------------------------ measuring */

/* The result row of an entry of opt->algos. */
static algo_result_t *res_of(const bench_t *b, const algo_spec_t *spec)
{
    return (algo_result_t *)&b->results[spec - b->opt->algos];
}

static tally_status_t run_once(const bench_t *b, const algo_spec_t *spec,
                               const algo_result_t *res, size_t count)
{
    if (spec->kind == KIND_MPI)
        return bench_mpi_allreduce(b, count);
    const void *send = b->send ? b->send : TALLY_IN_PLACE;
    if (spec->kind == KIND_CODEC)
        return tally_allreduce_compressed(send, b->recv, count, b->opt->dtype, b->opt->op,
                                          res->z);
    if (spec->kind == KIND_HALF)
        return tally_allreduce(send, b->recv, count, TALLY_FLOAT16, b->opt->op, b->tc);
    return tally_allreduce(send, b->recv, count, b->opt->dtype, b->opt->op, b->tc);
}

/* Points tally at the algorithm; the "auto" of -a undoes an earlier force
 * (and TALLY_ALGO). */
static tally_status_t select_algo(const bench_t *b, const algo_spec_t *spec)
{
    if (spec->kind == KIND_MPI)
        return TALLY_SUCCESS;
    return tally_comm_set_algorithm(b->tc, spec->kind == KIND_TALLY ? spec->force : "auto");
}

/* One call of the measured operation, for bench_time. */
typedef struct call_ctx {
    const bench_t *b;
    const algo_spec_t *spec;
    const algo_result_t *res;
    size_t count;
} call_ctx_t;

static tally_status_t run_call(void *ctx)
{
    const call_ctx_t *c = ctx;
    return run_once(c->b, c->spec, c->res, c->count);
}

/* "ring, 4096 bytes": names the measurement in messages about a failure. */
static void failure_label(const bench_t *b, const algo_spec_t *spec, size_t count, char *buf,
                          size_t len)
{
    snprintf(buf, len, "%s, %zu bytes", spec->name, count * b->dt->size);
}

/* Fixes the row's label and whether it can run at all: the same answer on
 * every rank, since it depends only on the arguments. */
static void resolve(bench_t *b, const algo_spec_t *spec, size_t count, algo_result_t *res)
{
    res->state = ROW_OK;
    res->ran = NULL;
    snprintf(res->label, sizeof res->label, "%s", spec->name);
    const char *why = NULL;
    const bool floating = b->opt->dtype == TALLY_FLOAT32 || b->opt->dtype == TALLY_FLOAT64 ||
                          b->opt->dtype == TALLY_FLOAT16 || b->opt->dtype == TALLY_BFLOAT16;
    if (spec->kind == KIND_MPI) {
        if (b->mpi_type == MPI_DATATYPE_NULL)
            why = "MPI has no datatype for it";
    } else if (spec->kind == KIND_CODEC || spec->kind == KIND_HALF) {
        tally_compressor_destroy(res->z);
        res->z = NULL;
        if (!floating || (b->opt->op != TALLY_SUM && b->opt->op != TALLY_AVG))
            why = "compression serves SUM and AVG on floating dtypes";
        else if (spec->kind == KIND_HALF) {
            tally_status_t st = select_algo(b, spec);
            if (st == TALLY_SUCCESS)
                st = tally_comm_get_algorithm_on(b->tc, memory(b), count, TALLY_FLOAT16,
                                                 b->opt->op, &res->ran);
            if (st != TALLY_SUCCESS)
                why = tally_strerror(st);
            else
                snprintf(res->label, sizeof res->label, "auto@float16:%s", res->ran);
        } else {
            tally_status_t st = select_algo(b, spec); /* the exact parts run tally's choice */
            if (st == TALLY_SUCCESS)
                st = tally_compressor_create(b->tc, spec->force, count, b->opt->dtype, &res->z);
            if (st != TALLY_SUCCESS)
                why = tally_strerror(st);
            res->z_wire = res->z_plain = 0;
            res->z_calls = 0;
        }
    } else {
        tally_status_t st = select_algo(b, spec);
        if (st == TALLY_SUCCESS)
            st = tally_comm_get_algorithm_on(b->tc, memory(b), count, b->opt->dtype, b->opt->op,
                                             &res->ran);
        if (st != TALLY_SUCCESS)
            why = tally_strerror(st);
        else if (spec->kind == KIND_AUTO)
            snprintf(res->label, sizeof res->label, "auto:%s", res->ran);
        else if (strcmp(res->ran, spec->force) != 0) /* TALLY_FALLBACK=warn|silent */
            snprintf(res->label, sizeof res->label, "%s->%s", spec->name, res->ran);
    }
    if (!why)
        return;
    res->state = ROW_UNSUPPORTED;
    if (b->rank == 0 && !res->noted)
        fprintf(stderr, "tally-bench: %s cannot run %s %s: %s\n", spec->name, b->dt->name,
                tally_op_name(b->opt->op), why);
    res->noted = true;
}

/* One untimed call on known input.  Returns the agreed status; *errors is
 * the number of wrong elements over all ranks. */
static tally_status_t check_once(const bench_t *b, const algo_spec_t *spec, size_t count,
                                 long long *errors)
{
    /* In place the input is the output buffer; otherwise poison the output
     * so that elements never written are caught too. */
    if (b->send) {
        fill_input(b, b->host_send, count);
        memset(b->host_recv, 0xa5, count * b->dt->size);
    } else {
        fill_input(b, b->host_recv, count);
    }
    const bool lossy = spec->kind == KIND_CODEC || spec->kind == KIND_HALF;
    const size_t es = spec->kind == KIND_HALF ? 2 : b->dt->size;
    if (spec->kind == KIND_HALF) { /* the pattern as float16 */
        void *in = b->send ? b->host_send : b->host_recv;
        for (size_t i = 0; i < count; i++)
            store_value(in, i, TALLY_FLOAT16, pattern_value(&b->pat, i, b->rank));
    }
    upload(b, count);
    char label[LABEL_LEN + 32];
    failure_label(b, spec, count, label, sizeof label);
    tally_status_t st =
        bench_agree(b->comm, "tally-bench", run_once(b, spec, res_of(b, spec), count), label,
                    "check");
    if (st != TALLY_SUCCESS)
        return st;
    download(b, count);
    long long mine = 0;
    if (!lossy) {
        mine = (long long)count_mismatches(b, b->host_recv, count);
    } else {
        /* A lossy result is checked for being the same bits everywhere. */
        unsigned char *root = malloc(count > 0 ? count * es : 1);
        if (!root)
            MPI_Abort(b->comm, 1);
        if (b->rank == 0)
            memcpy(root, b->host_recv, count * es);
        for (size_t done = 0; done < count * es;) {
            int n = count * es - done > (size_t)INT32_MAX ? INT32_MAX : (int)(count * es - done);
            MPI_Bcast(root + done, n, MPI_BYTE, 0, b->comm);
            done += (size_t)n;
        }
        for (size_t i = 0; i < count; i++)
            mine += memcmp(root + i * es, (const char *)b->host_recv + i * es, es) != 0;
        free(root);
    }
    MPI_Allreduce(&mine, errors, 1, MPI_LONG_LONG, MPI_SUM, b->comm);
    return TALLY_SUCCESS;
}

/* Warm-up, then iters timed calls (bench_time). */
static tally_status_t time_once(bench_t *b, const algo_spec_t *spec, size_t count,
                                bench_times_t *out)
{
    call_ctx_t ctx = {b, spec, res_of(b, spec), count};
    char label[LABEL_LEN + 32];
    failure_label(b, spec, count, label, sizeof label);
    return bench_time(&b->timer, run_call, &ctx, label, out);
}

/* One algorithm, one repeat of one size.  The check runs on the first
 * repeat only, before timing, so it never perturbs a timed call. */
static void measure(bench_t *b, int a, size_t count, int repeat)
{
    const algo_spec_t *spec = &b->opt->algos[a];
    algo_result_t *res = &b->results[a];
    if (repeat == 0) {
        resolve(b, spec, count, res);
        res->errors = -1;
        res->min = INFINITY;
        res->max = 0;
    }
    if (res->state != ROW_OK)
        return;
    if (select_algo(b, spec) != TALLY_SUCCESS) { /* resolve() just succeeded */
        res->state = ROW_FAILED;
        return;
    }
    if (repeat == 0 && b->opt->check &&
        check_once(b, spec, count, &res->errors) != TALLY_SUCCESS) {
        res->state = ROW_FAILED;
        return;
    }
    bench_times_t t;
    size_t wire0 = 0, plain0 = 0, wire1 = 0, plain1 = 0;
    if (res->z)
        tally_compressor_bytes(res->z, &wire0, &plain0);
    if (time_once(b, spec, count, &t) != TALLY_SUCCESS) {
        res->state = ROW_FAILED;
        return;
    }
    if (res->z) {
        tally_compressor_bytes(res->z, &wire1, &plain1);
        res->z_wire += wire1 - wire0;
        res->z_plain += plain1 - plain0;
        res->z_calls += b->opt->iters + b->opt->warmup;
    }
    res->rep_avg[repeat] = t.avg;
    res->min = fmin(res->min, t.min);
    res->max = fmax(res->max, t.max);
}

/* ------------------------------------------------------------- reporting */

static void print_header(const bench_t *b)
{
    const options_t *o = b->opt;
    char versions[MPI_MAX_LIBRARY_VERSION_STRING + 64];
    bench_versions(versions, sizeof versions);
    printf("# tally-bench: %s\n", versions);
    printf("# ranks %d, dtype %s, op %s, %s, iters %d, warm-up %d, repeats %d, check %s\n",
           b->size, b->dt->name, tally_op_name(o->op), o->in_place ? "in place" : "out of place",
           o->iters, o->warmup, o->repeats, o->check ? "on" : "off");
    if (o->device)
        printf("# buffers: device memory; mpi: %s\n",
               b->mpi_reads_device ? "MPI_Allreduce on device pointers (the MPI is CUDA-aware)"
                                   : "naive staging per call (the MPI is not CUDA-aware)");
    printf("# avg: %s; min/max: over every iteration; slowest rank per iteration\n",
           o->repeats > 1 ? "median of the per-repeat averages" : "mean of the iterations");
    printf("# busbw = algbw * 2(p-1)/p (0 on one rank); GB/s = 1e9 bytes/s\n");
    printf("# pred: tally's cost model for the algorithm that ran (tally_comm_predict)\n");
    printf("#%13s %12s  %-30s %10s %10s %10s %11s %11s %7s %10s\n", "bytes", "count",
           "algorithm", "avg(us)", "min(us)", "max(us)", "algbw(GB/s)", "busbw(GB/s)", "errors",
           "pred(us)");
    fflush(stdout);
}

static void json_escape(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Closes the array after each entry and flushes, so that the file is
 * valid JSON whenever the run stops; the next entry overwrites the
 * bracket. */
static void json_close_array(bench_t *b)
{
    b->json_end = ftell(b->json);
    fputs("\n]\n", b->json);
    fflush(b->json);
    fseek(b->json, b->json_end, SEEK_SET);
}

static void json_row(bench_t *b, const algo_spec_t *spec, const algo_result_t *res,
                     size_t count, double avg, double algbw, double busbw, double predicted)
{
    static const char *const states[] = {"ok", "unsupported", "failed"};
    FILE *f = b->json;
    const options_t *o = b->opt;
    fprintf(f, "%s\n  {\"bytes\": %zu, \"count\": %zu, \"algorithm\": ", b->json_rows++ ? "," : "",
            count * b->dt->size, count);
    json_escape(f, res->label);
    fprintf(f, ", \"requested\": ");
    json_escape(f, spec->name);
    fprintf(f, ", \"ran\": ");
    if (res->ran)
        json_escape(f, res->ran);
    else
        fprintf(f, "null");
    fprintf(f, ", \"dtype\": \"%s\", \"op\": \"%s\", \"in_place\": %s, \"ranks\": %d, "
               "\"iters\": %d, \"warmup\": %d, \"repeats\": %d, \"status\": \"%s\"",
            b->dt->name, tally_op_name(o->op), o->in_place ? "true" : "false", b->size, o->iters,
            o->warmup, o->repeats, states[res->state]);
    if (res->state == ROW_OK)
        fprintf(f, ", \"avg_us\": %.3f, \"min_us\": %.3f, \"max_us\": %.3f, "
                   "\"algbw_gbps\": %.4f, \"busbw_gbps\": %.4f",
                avg * 1e6, res->min * 1e6, res->max * 1e6, algbw, busbw);
    else
        fprintf(f, ", \"avg_us\": null, \"min_us\": null, \"max_us\": null, "
                   "\"algbw_gbps\": null, \"busbw_gbps\": null");
    if (predicted >= 0)
        fprintf(f, ", \"predicted_us\": %.3f", predicted * 1e6);
    else
        fprintf(f, ", \"predicted_us\": null");
    if (res->errors >= 0)
        fprintf(f, ", \"errors\": %lld}", res->errors);
    else
        fprintf(f, ", \"errors\": null}");
    json_close_array(b);
}

/* The model's seconds for the algorithm the row ran (MPI_Allreduce: tally's
 * mpi algorithm), or -1 where there is none. */
static double predicted(const bench_t *b, const algo_spec_t *spec, const algo_result_t *res,
                        size_t count)
{
    const char *name = spec->kind == KIND_MPI ? "mpi" : res->ran;
    double t = -1.0;
    if (!name || tally_comm_predict(b->tc, name, count, b->opt->dtype, b->opt->op, &t) !=
                     TALLY_SUCCESS)
        return -1.0;
    return t;
}

/* Rank 0 prints one row; returns true if it counts against the exit status. */
static bool report_row(bench_t *b, int a, size_t count)
{
    const algo_spec_t *spec = &b->opt->algos[a];
    algo_result_t *res = &b->results[a];
    const size_t bytes = count * b->dt->size;
    double avg = 0, algbw = 0, busbw = 0;
    if (res->state == ROW_OK) {
        avg = bench_median(res->rep_avg, b->opt->repeats);
        algbw = avg > 0 ? bytes / avg / 1e9 : 0;
        busbw = algbw * 2 * (b->size - 1) / b->size;
        res->busbw_sum += busbw;
        res->busbw_sizes++;
    }
    res->last_avg = res->state == ROW_OK ? avg : NAN;
    bool bad = res->state == ROW_FAILED || res->errors > 0;
    /* Bytes across nodes per call: the busiest rank's. */
    unsigned long long zb[2] = {res->z_wire, res->z_plain}, zmax[2] = {0, 0};
    if (spec->kind == KIND_CODEC)
        MPI_Allreduce(zb, zmax, 2, MPI_UNSIGNED_LONG_LONG, MPI_MAX, b->comm);
    if (b->rank != 0)
        return bad;
    printf("%14zu %12zu  %-30s ", bytes, count, res->label);
    if (res->state == ROW_OK) {
        printf("%10.2f %10.2f %10.2f %11.3f %11.3f ", avg * 1e6, res->min * 1e6,
               res->max * 1e6, algbw, busbw);
        if (res->errors >= 0)
            printf("%7lld", res->errors);
        else
            printf("%7s", "-");
    } else {
        printf("%10s %10s %10s %11s %11s %7s", "-", "-", "-", "-", "-",
               res->state == ROW_UNSUPPORTED ? "n/a" : "fail");
    }
    double pred = predicted(b, spec, res, count);
    if (pred >= 0)
        printf(" %10.2f\n", pred * 1e6);
    else
        printf(" %10s\n", "-");
    if (spec->kind == KIND_CODEC && res->state == ROW_OK && res->z_calls > 0) {
        if (zmax[1] > 0)
            printf("#   %s: %.0f bytes across nodes per rank and call, %.4f of uncompressed "
                   "(%.0f)\n", spec->name, (double)zmax[0] / res->z_calls,
                   (double)zmax[0] / zmax[1], (double)zmax[1] / res->z_calls);
        else
            printf("#   %s: nothing crossed nodes (one node: not compressed)\n", spec->name);
    }
    fflush(stdout);
    if (b->json)
        json_row(b, spec, res, count, avg, algbw, busbw, pred);
    return bad;
}

/* -------------------------------------------------------------- set-up */

/* Every rank allocates; all learn whether all succeeded.  Page-aligned and
 * filled now, so that no timed call pays for first-touch page faults. */
static bool alloc_buffers(bench_t *b)
{
    const size_t bytes = b->max_count * b->dt->size;
    bool ok = (b->host_recv = bench_alloc_pages(bytes)) != NULL;
    if (ok && !b->opt->in_place)
        ok = (b->host_send = bench_alloc_pages(bytes)) != NULL;
    if (ok && b->opt->device) {
        ok = tally_mem_alloc(b->tc, TALLY_MEM_DEVICE, bytes, &b->recv) == TALLY_SUCCESS;
        if (ok && !b->opt->in_place)
            ok = tally_mem_alloc(b->tc, TALLY_MEM_DEVICE, bytes, &b->send) == TALLY_SUCCESS;
    } else if (ok) {
        b->send = b->host_send;
        b->recv = b->host_recv;
    }
    ok = bench_timer_init(&b->timer, b->comm, "tally-bench", b->opt->iters, b->opt->warmup) &&
         ok;
    for (int a = 0; a < b->opt->nalgos && ok; a++) {
        b->results[a].rep_avg = calloc((size_t)b->opt->repeats, sizeof(double));
        ok = b->results[a].rep_avg != NULL;
    }
    if (ok) {
        fill_input(b, b->host_recv, b->max_count);
        if (b->send)
            fill_input(b, b->host_send, b->max_count);
        upload(b, b->max_count);
    }
    bool all = bench_all(b->comm, ok);
    if (!ok)
        fprintf(stderr, "tally-bench: rank %d: cannot allocate 2 x %zu bytes%s\n", b->rank,
                bytes, b->opt->device ? " of device memory (and their host copies)" : "");
    return all;
}

static void free_buffers(bench_t *b)
{
    if (b->opt->device) {
        tally_mem_free(b->tc, b->send);
        tally_mem_free(b->tc, b->recv);
    }
    free(b->host_send);
    free(b->host_recv);
    bench_timer_free(&b->timer);
    for (int a = 0; a < b->opt->nalgos; a++) {
        free(b->results[a].rep_avg);
        tally_compressor_destroy(b->results[a].z);
    }
}

/* Asks tally about every forced name; the same answer on every rank. */
static bool validate_algos(const bench_t *b)
{
    bool ok = true;
    for (int a = 0; a < b->opt->nalgos; a++) {
        const algo_spec_t *spec = &b->opt->algos[a];
        if (spec->kind != KIND_TALLY)
            continue;
        tally_status_t st = tally_comm_set_algorithm(b->tc, spec->force);
        if (st != TALLY_SUCCESS) {
            if (b->rank == 0) {
                fprintf(stderr, "tally-bench: -a: unknown algorithm \"%s\" (%s); the names "
                        "are auto, mpi, all and tally's own:", spec->name, tally_strerror(st));
                for (int i = 0; i < tally_algorithm_count(); i++)
                    fprintf(stderr, " %s", tally_algorithm_name(i));
                fprintf(stderr, " (tally:NAME forces one of them)\n");
            }
            ok = false;
        }
    }
    tally_comm_set_algorithm(b->tc, "auto");
    return ok;
}

/* Opens the JSON file on rank 0; every rank learns whether that worked. */
/* The array's first entry, {"meta": ...}: the versions, the ranks and
 * their hosts, the command line and every TALLY_* variable set.  Rows are
 * the entries with "bytes". */
static void json_meta(bench_t *b)
{
    char host[MPI_MAX_PROCESSOR_NAME] = "";
    int len = 0;
    MPI_Get_processor_name(host, &len);
    char *hosts = b->rank == 0 ? calloc((size_t)b->size, MPI_MAX_PROCESSOR_NAME) : NULL;
    MPI_Gather(host, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, hosts, MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
               0, b->comm);
    if (!b->json) {
        free(hosts);
        return;
    }
    char versions[MPI_MAX_LIBRARY_VERSION_STRING + 64];
    bench_versions(versions, sizeof versions);
    fprintf(b->json, "[\n  {\"meta\": {\"versions\": ");
    json_escape(b->json, versions);
    fprintf(b->json, ", \"ranks\": %d, \"hosts\": [", b->size);
    int distinct = 0;
    for (int r = 0; hosts && r < b->size; r++) {
        const char *h = hosts + (size_t)r * MPI_MAX_PROCESSOR_NAME;
        bool seen = false;
        for (int q = 0; q < r && !seen; q++)
            seen = strcmp(h, hosts + (size_t)q * MPI_MAX_PROCESSOR_NAME) == 0;
        if (seen)
            continue;
        fprintf(b->json, "%s", distinct++ ? ", " : "");
        json_escape(b->json, h);
    }
    fprintf(b->json, "], \"argv\": ");
    json_escape(b->json, b->opt->command_line);
    fprintf(b->json, ", \"settings\": {");
    extern char **environ;
    int n = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "TALLY_", 6) != 0)
            continue;
        char name[128];
        const size_t k = strcspn(*e, "=");
        snprintf(name, sizeof name, "%.*s", (int)(k < sizeof name ? k : sizeof name - 1), *e);
        fprintf(b->json, "%s", n++ ? ", " : "");
        json_escape(b->json, name);
        fprintf(b->json, ": ");
        json_escape(b->json, (*e)[k] ? *e + k + 1 : "");
    }
    fprintf(b->json, "}}}");
    b->json_rows = 1;
    json_close_array(b);
    free(hosts);
}

static bool open_json(bench_t *b)
{
    int ok = 1;
    if (b->rank == 0 && b->opt->json_path) {
        b->json = fopen(b->opt->json_path, "w");
        if (!b->json) {
            fprintf(stderr, "tally-bench: --json %s: %s\n", b->opt->json_path, strerror(errno));
            ok = 0;
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, b->comm);
    if (ok)
        json_meta(b);
    return ok;
}

static bool close_json(bench_t *b)
{
    if (!b->json)
        return true;
    bool ok = !ferror(b->json); /* the closing bracket is there already */
    ok = fclose(b->json) == 0 && ok;
    if (!ok)
        fprintf(stderr, "tally-bench: --json %s: write failed\n", b->opt->json_path);
    b->json = NULL;
    return ok;
}

/* The sweep: size-major, then repeats, then algorithms, so that each
 * algorithm's repeats are spread over the same stretch of time as the
 * others'.  Returns the process exit status. */
/* auto's speed-up over mpi at this size, if both ran. */
static void note_speedup(bench_t *b, size_t bytes)
{
    double t_auto = NAN, t_mpi = NAN;
    for (int a = 0; a < b->opt->nalgos; a++) {
        if (b->opt->algos[a].kind == KIND_AUTO)
            t_auto = b->results[a].last_avg;
        else if (b->opt->algos[a].kind == KIND_MPI)
            t_mpi = b->results[a].last_avg;
    }
    if (isfinite(t_auto) && isfinite(t_mpi) && t_auto > 0 && b->speedup) {
        b->speedup[b->speedups] = t_mpi / t_auto;
        b->speedup_bytes[b->speedups++] = bytes;
    }
}

/* The closing lines: every row's average busbw over the sizes (as
 * nccl-tests closes), and tally's choice against the MPI's allreduce. */
static void print_summary(const bench_t *b)
{
    printf("# Avg bus bandwidth (GB/s, mean over the sizes each ran):");
    for (int a = 0; a < b->opt->nalgos; a++) {
        const algo_result_t *res = &b->results[a];
        if (res->busbw_sizes)
            printf(" %s %.3f", b->opt->algos[a].name, res->busbw_sum / res->busbw_sizes);
    }
    printf("\n");
    if (b->speedups > 0) {
        int lo = 0, hi = 0;
        for (int i = 1; i < b->speedups; i++) {
            lo = b->speedup[i] < b->speedup[lo] ? i : lo;
            hi = b->speedup[i] > b->speedup[hi] ? i : hi;
        }
        double *sorted = malloc((size_t)b->speedups * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, b->speedup, (size_t)b->speedups * sizeof *sorted);
            printf("# auto against mpi: median speed-up %.2fx over %d sizes (least %.2fx at "
                   "%zu B, most %.2fx at %zu B; above 1: tally faster)\n",
                   bench_median(sorted, b->speedups), b->speedups, b->speedup[lo],
                   b->speedup_bytes[lo], b->speedup[hi], b->speedup_bytes[hi]);
            free(sorted);
        }
    }
    fflush(stdout);
}

static int sweep(bench_t *b, const size_t *counts, int nsizes)
{
    bool bad = false;
    b->speedup = calloc((size_t)nsizes, sizeof *b->speedup);
    b->speedup_bytes = calloc((size_t)nsizes, sizeof *b->speedup_bytes);
    if (b->rank == 0)
        print_header(b);
    for (int s = 0; s < nsizes; s++) {
        for (int r = 0; r < b->opt->repeats; r++)
            for (int a = 0; a < b->opt->nalgos; a++) {
                bench_progress_show(&b->progress, s, nsizes, counts[s] * b->dt->size, r,
                                    b->opt->repeats, b->opt->algos[a].name);
                measure(b, a, counts[s], r);
            }
        bench_progress_clear(&b->progress);
        for (int a = 0; a < b->opt->nalgos; a++)
            bad |= report_row(b, a, counts[s]);
        note_speedup(b, counts[s] * b->dt->size);
    }
    if (b->rank == 0)
        print_summary(b);
    free(b->speedup_bytes);
    free(b->speedup);
    b->speedup = NULL;
    return bad ? 1 : 0;
}

static int run(const options_t *opt, MPI_Comm world)
{
    bench_t b = {.opt = opt, .dt = bench_dtype_find(opt->dtype), .comm = world};
    MPI_Comm_rank(world, &b.rank);
    MPI_Comm_size(world, &b.size);
    b.mpi_type = mpi_datatype(opt->dtype);
    b.mpi_op = mpi_operation(opt->op);
    b.pat = pattern_make(opt->op, b.size, b.dt);
    b.mpi_reads_device = opt->device && mpi_reads_device();
    b.progress.on = b.rank == 0 && isatty(STDERR_FILENO);
    b.progress.lines = b.rank == 0 && opt->progress && !b.progress.on;

    int nsizes = 0;
    size_t *counts = bench_make_counts(opt->min_bytes, opt->max_bytes, opt->factor, b.dt->size,
                                       &nsizes);
    if (!counts) {
        fprintf(stderr, "tally-bench: out of memory\n");
        MPI_Abort(world, 1); /* before any collective: nothing to agree on */
    }
    b.max_count = counts[nsizes - 1];

    tally_status_t st = tally_comm_create(world, &b.tc);
    if (st != TALLY_SUCCESS) {
        if (b.rank == 0)
            fprintf(stderr, "tally-bench: tally_comm_create: %s\n", tally_strerror(st));
        free(counts);
        return 1;
    }
    int rc = 1;
    if (!validate_algos(&b)) {
        rc = EXIT_USAGE;
    } else if (alloc_buffers(&b) && open_json(&b)) {
        rc = sweep(&b, counts, nsizes);
        if (!close_json(&b))
            rc = 1;
    }
    free_buffers(&b);
    tally_comm_destroy(b.tc);
    free(counts);
    /* Every rank exits with rank 0's verdict. */
    MPI_Bcast(&rc, 1, MPI_INT, 0, world);
    return rc;
}

int main(int argc, char **argv)
{
    if (bench_version_flag(argc, argv, "tally-bench"))
        return 0;
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    options_t opt;
    char msg[256];
    const char *err = parse_options(argc, argv, &opt, msg, sizeof msg);
    int rc = 0;
    if (err) {
        if (rank == 0)
            fprintf(stderr, "tally-bench: %s (-h lists the options)\n", err);
        rc = EXIT_USAGE;
    } else if (opt.help) {
        if (rank == 0)
            usage(stdout);
    } else {
        /* Our own communicator: the barrier and time reductions never mix
         * with anything else on MPI_COMM_WORLD. */
        MPI_Comm world;
        MPI_Comm_dup(MPI_COMM_WORLD, &world);
        rc = run(&opt, world);
        MPI_Comm_free(&world);
    }
    MPI_Finalize();
    return rc;
}
