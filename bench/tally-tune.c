/* tally-tune - measures every tally algorithm on this communicator over a
 * size sweep and writes a tuning file (tally-tuning(5)) that names the
 * fastest one per size range, for TALLY_TUNING_FILE.
 *
 * Each algorithm is forced in turn with tally_comm_set_algorithm; per size
 * the algorithms are measured REPEATS times, interleaved (for each repeat,
 * each algorithm), and the median of the slowest rank's mean time per call
 * decides, as in tally-bench -R.  Adjacent sizes with the same winner make
 * one row; between two measured sizes with different winners the boundary
 * lies at their geometric mean; the rows cover 0 bytes to no upper end and
 * name the run's exact rank and node counts.  --verify then points
 * TALLY_TUNING_FILE at the file, creates a new tally communicator and
 * checks with tally_comm_get_algorithm that tally now chooses the winner
 * at every measured size.  Uses only the public API (tally.h) and MPI,
 * and bench_common.c.  man -l man/tally-tune.1 documents it.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "tally.h"

#define PROGRAM "tally-tune"
#define MAX_ALGOS 32
#define NAME_LEN 64    /* the longest name a tuning file row takes, with its NUL */
#define PATH_LEN 4096  /* the longest TALLY_TUNING_FILE, with its NUL */
#define MAX_SIZES 512  /* keeps the file well below the 1 MiB tally reads */
/* What tally reads of a file (tally-tuning(5)): longer lines are malformed,
 * rows beyond the first 256 are ignored. */
#define FILE_LINE_MAX 1024
#define FILE_MAX_ROWS 256

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_MISMATCH = 3 };

typedef struct options {
    size_t min_bytes, max_bytes;
    double factor;
    int iters, warmup, repeats;
    const bench_dtype_t *dt;
    char algos[MAX_ALGOS][NAME_LEN];
    int nalgos;
    const char *out_path; /* NULL with --dry-run */
    bool dry_run, verify, help;
} options_t;

/* One algorithm at one size. */
typedef enum cell_state {
    CELL_OK,          /* measured */
    CELL_UNSUPPORTED, /* it cannot serve this call */
    CELL_FAILED       /* tally returned an error while measuring */
} cell_state_t;

/* A row of the file: bytes lo..hi (SIZE_MAX: no upper end) run algo. */
typedef struct row {
    size_t lo, hi;
    int algo;
} row_t;

typedef struct tune {
    const options_t *opt;
    int argc;
    char **argv;
    MPI_Comm comm;
    int rank, size, nodes;
    tally_comm_t *tc;
    void *send, *recv;
    bench_timer_t timer;
    bench_progress_t progress;
    size_t *counts;
    int nsizes;
    const char *algos[MAX_ALGOS]; /* those of -a that tally has */
    int nalgos;
    bool noted[MAX_ALGOS];  /* "cannot serve" already printed */
    cell_state_t *state;    /* [size * nalgos + algo] */
    double *median;         /* [size * nalgos + algo]: seconds per call */
    int *winner;            /* [size]: the fastest algorithm, -1 if none ran */
    double *rep;            /* [algo * repeats + repeat]: one size's averages */
    row_t *rows;            /* [size]: the file's rows */
    bool failed;            /* some measurement failed */
} tune_t;

/* --------------------------------------------------------------- options */

static const char *dtype_word(int i) { return tally_dtype_name((tally_dtype_t)i); }

/* The lists come from the library, so they are what it has. */
static void usage(FILE *out)
{
    fprintf(out,
            "usage: mpirun -np N tally-tune -o FILE [--verify] [options]\n"
            "       mpirun -np N tally-tune --dry-run [options]\n"
            "  -o FILE       write the tuning file to FILE (on rank 0)\n"
            "  --dry-run     print the tuning file on standard output instead\n"
            "  --verify      after writing, create a communicator with\n"
            "                TALLY_TUNING_FILE=FILE and check that tally chooses the\n"
            "                measured winner at every size\n"
            "  -b MINBYTES   smallest message (default 8); suffixes K, M, G = 1024^n\n"
            "  -e MAXBYTES   largest message (default 64M)\n"
            "  -f FACTOR     multiply the size by FACTOR each step (default 2, > 1)\n"
            "  -n ITERS      timed iterations per measurement (default 20)\n"
            "  -w WARMUP     untimed iterations before them (default 5)\n"
            "  -R REPEATS    measurements per size and algorithm, interleaved; the\n"
            "                median decides (default 5)\n"
            "  -a LIST       comma-separated algorithms to compare; names tally does\n"
            "                not have are skipped with a note (default: every one\n"
            "                it has)\n");
    bench_print_words(out, tally_algorithm_name, tally_algorithm_count(), ",", "");
    fprintf(out, "  -d DTYPE      (default float32; the op is sum)\n");
    bench_print_words(out, dtype_word, tally_dtype_count(), " ", "");
    fprintf(out, "  -h, --help    this text\n");
}

/* Algorithm names as the tuning file spells them: [a-z0-9_]+. */
static bool valid_name(const char *name)
{
    if (*name == '\0' || strlen(name) >= NAME_LEN)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static const char *parse_algo_list(options_t *opt, const char *list, char *msg, size_t len)
{
    opt->nalgos = 0;
    char copy[1024];
    if (strlen(list) >= sizeof copy) {
        snprintf(msg, len, "-a: the list is too long");
        return msg;
    }
    snprintf(copy, sizeof copy, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "auto") == 0) {
            snprintf(msg, len, "-a: auto is tally's own choice, not an algorithm to measure");
            return msg;
        }
        if (!valid_name(tok)) {
            snprintf(msg, len, "-a: \"%s\" is not an algorithm name (lower-case letters, "
                               "digits and _, at most %d)", tok, NAME_LEN - 1);
            return msg;
        }
        bool dup = false;
        for (int i = 0; i < opt->nalgos; i++)
            dup = dup || strcmp(opt->algos[i], tok) == 0;
        if (dup)
            continue; /* measured once */
        if (opt->nalgos == MAX_ALGOS) {
            snprintf(msg, len, "-a: more than %d algorithms", MAX_ALGOS);
            return msg;
        }
        snprintf(opt->algos[opt->nalgos++], NAME_LEN, "%s", tok);
    }
    if (opt->nalgos == 0) {
        snprintf(msg, len, "-a: no algorithm in \"%s\"", list);
        return msg;
    }
    return NULL;
}

/* Every algorithm the library has, in its registry's order. */
static void default_algos(options_t *opt)
{
    opt->nalgos = 0;
    for (int i = 0; i < tally_algorithm_count() && opt->nalgos < MAX_ALGOS; i++)
        if (valid_name(tally_algorithm_name(i)))
            snprintf(opt->algos[opt->nalgos++], NAME_LEN, "%s", tally_algorithm_name(i));
}

/* Parses argv into opt; on error returns a message (printed by rank 0).
 * Every rank parses the same argv, so every rank gets the same answer. */
static const char *parse_options(int argc, char **argv, options_t *opt, char *msg, size_t len)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'D'},
        {"verify", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *opt = (options_t){.min_bytes = 8, .max_bytes = (size_t)64 << 20, .factor = 2,
                       .iters = 20, .warmup = 5, .repeats = 5,
                       .dt = bench_dtype_find(TALLY_FLOAT32)};
    default_algos(opt);
    int c;
    opterr = 0; /* our own messages, from rank 0 only */
    optind = 1;
    while ((c = getopt_long(argc, argv, ":b:e:f:n:w:R:a:d:o:h", longopts, NULL)) != -1) {
        bool ok = true;
        const char *err;
        switch (c) {
        case 'b': ok = tally_size_parse(optarg, &opt->min_bytes) == TALLY_SUCCESS; break;
        case 'e': ok = tally_size_parse(optarg, &opt->max_bytes) == TALLY_SUCCESS; break;
        case 'f': ok = bench_parse_factor(optarg, &opt->factor); break;
        case 'n': ok = bench_parse_int(optarg, 1, 100000000, &opt->iters); break;
        case 'w': ok = bench_parse_int(optarg, 0, 100000000, &opt->warmup); break;
        case 'R': ok = bench_parse_int(optarg, 1, 100000, &opt->repeats); break;
        case 'a':
            if ((err = parse_algo_list(opt, optarg, msg, len)))
                return err;
            break;
        case 'd': ok = (opt->dt = bench_dtype_parse(optarg)) != NULL; break;
        case 'o':
            if (optarg[0] == '\0' || strlen(optarg) >= PATH_LEN) {
                snprintf(msg, len, "-o: the file name must have 1 to %d characters",
                         PATH_LEN - 1);
                return msg;
            }
            opt->out_path = optarg;
            break;
        case 'D': opt->dry_run = true; break;
        case 'V': opt->verify = true; break;
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
    if (opt->min_bytes > opt->max_bytes) {
        snprintf(msg, len, "-b %zu is larger than -e %zu", opt->min_bytes, opt->max_bytes);
        return msg;
    }
    if (opt->dry_run && opt->out_path) {
        snprintf(msg, len, "give -o FILE or --dry-run, not both");
        return msg;
    }
    if (opt->dry_run && opt->verify) {
        snprintf(msg, len, "--verify needs the file: give -o FILE instead of --dry-run");
        return msg;
    }
    if (!opt->dry_run && !opt->out_path) {
        snprintf(msg, len, "-o FILE is required (or --dry-run to print the file)");
        return msg;
    }
    return NULL;
}

/* --------------------------------------------------------------- set-up */

/* Nodes of comm: ranks that share memory form one node; its lowest rank
 * counts it. */
static int count_nodes(MPI_Comm comm)
{
    MPI_Comm node;
    int node_rank = 0, leader, nodes = 0;
    MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_free(&node);
    leader = node_rank == 0;
    MPI_Allreduce(&leader, &nodes, 1, MPI_INT, MPI_SUM, comm);
    return nodes;
}

/* Before minutes of measuring, rank 0 makes sure that FILE can be written,
 * without truncating a file that is there; every rank learns the answer. */
static bool check_output(const tune_t *t)
{
    int ok = 1;
    const char *path = t->opt->out_path;
    if (t->rank == 0 && path) {
        struct stat st;
        bool existed = stat(path, &st) == 0;
        FILE *f = fopen(path, "a");
        if (!f) {
            fprintf(stderr, "%s: -o %s: %s\n", PROGRAM, path, strerror(errno));
            ok = 0;
        } else {
            fclose(f);
            if (!existed)
                unlink(path);
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, t->comm);
    return ok;
}

/* Keeps the names of -a that tally accepts; the same answer on every
 * rank, since tally_comm_set_algorithm is collective.  Returns how many. */
static int check_algorithms(tune_t *t)
{
    t->nalgos = 0;
    for (int a = 0; a < t->opt->nalgos; a++) {
        const char *name = t->opt->algos[a];
        tally_status_t st = tally_comm_set_algorithm(t->tc, name);
        if (st == TALLY_SUCCESS)
            t->algos[t->nalgos++] = name;
        else if (t->rank == 0)
            fprintf(stderr, "%s: note: skipping \"%s\": %s\n", PROGRAM, name,
                    tally_strerror(st));
    }
    tally_comm_set_algorithm(t->tc, "auto");
    return t->nalgos;
}

/* Every rank allocates; all learn whether all succeeded.  The buffers are
 * written now, so that no timed call pays for first-touch page faults. */
static bool alloc_all(tune_t *t)
{
    const options_t *o = t->opt;
    const size_t bytes = t->counts[t->nsizes - 1] * o->dt->size;
    const size_t cells = (size_t)t->nsizes * (size_t)t->nalgos;
    bool ok = (t->send = bench_alloc_pages(bytes)) != NULL;
    ok = (t->recv = bench_alloc_pages(bytes)) != NULL && ok;
    ok = bench_timer_init(&t->timer, t->comm, PROGRAM, o->iters, o->warmup) && ok;
    ok = (t->state = calloc(cells, sizeof *t->state)) != NULL && ok;
    ok = (t->median = calloc(cells, sizeof *t->median)) != NULL && ok;
    ok = (t->winner = calloc((size_t)t->nsizes, sizeof *t->winner)) != NULL && ok;
    ok = (t->rows = calloc((size_t)t->nsizes, sizeof *t->rows)) != NULL && ok;
    ok = (t->rep = calloc((size_t)t->nalgos * (size_t)o->repeats, sizeof *t->rep)) != NULL &&
         ok;
    if (ok) {
        /* Zero is a plain value in every dtype, and out of place the
         * result never grows. */
        memset(t->send, 0, bytes);
        memset(t->recv, 0, bytes);
    }
    bool all = bench_all(t->comm, ok);
    if (!ok)
        fprintf(stderr, "%s: rank %d: cannot allocate 2 x %zu bytes\n", PROGRAM, t->rank,
                bytes);
    return all;
}

static void free_all(tune_t *t)
{
    free(t->send);
    free(t->recv);
    bench_timer_free(&t->timer);
    free(t->state);
    free(t->median);
    free(t->winner);
    free(t->rep);
    free(t->rows);
}

/* ------------------------------------------------------------ measuring */

typedef struct call_ctx {
    const tune_t *t;
    size_t count;
} call_ctx_t;

static tally_status_t run_call(void *ctx)
{
    const call_ctx_t *c = ctx;
    return tally_allreduce(c->t->send, c->t->recv, c->count, c->t->opt->dt->dtype, TALLY_SUM,
                           c->t->tc);
}

/* Whether the algorithm can serve this size: forced, tally must still run
 * it (not fall back to its own choice).  The same answer on every rank,
 * since it depends only on the arguments. */
static cell_state_t resolve(tune_t *t, int a, size_t count)
{
    const char *name = t->algos[a];
    const char *ran = NULL;
    char why[160] = "";
    tally_status_t st = tally_comm_set_algorithm(t->tc, name);
    if (st == TALLY_SUCCESS)
        st = tally_comm_get_algorithm(t->tc, count, t->opt->dt->dtype, TALLY_SUM, &ran);
    if (st != TALLY_SUCCESS)
        snprintf(why, sizeof why, "%s", tally_strerror(st));
    else if (strcmp(ran, name) != 0)
        snprintf(why, sizeof why, "tally would run %s instead", ran);
    else
        return CELL_OK;
    if (t->rank == 0 && !t->noted[a])
        fprintf(stderr, "%s: note: %s cannot serve %s sum at %zu bytes (%s); skipped "
                        "wherever it cannot\n",
                PROGRAM, name, t->opt->dt->name, count * t->opt->dt->size, why);
    t->noted[a] = true;
    return CELL_UNSUPPORTED;
}

/* One size: every usable algorithm, repeats interleaved, then the medians
 * and the winner (the first listed among equal times). */
static void measure_size(tune_t *t, int s)
{
    const options_t *o = t->opt;
    const size_t count = t->counts[s], bytes = count * o->dt->size;
    cell_state_t *state = &t->state[(size_t)s * t->nalgos];
    double *median = &t->median[(size_t)s * t->nalgos];
    for (int a = 0; a < t->nalgos; a++)
        state[a] = resolve(t, a, count);
    for (int r = 0; r < o->repeats; r++)
        for (int a = 0; a < t->nalgos; a++) {
            if (state[a] != CELL_OK)
                continue;
            bench_progress_show(&t->progress, s, t->nsizes, bytes, r, o->repeats,
                                t->algos[a]);
            char label[NAME_LEN + 32];
            snprintf(label, sizeof label, "%s, %zu bytes", t->algos[a], bytes);
            tally_status_t st = tally_comm_set_algorithm(t->tc, t->algos[a]);
            bench_times_t times;
            call_ctx_t ctx = {t, count};
            if (st != TALLY_SUCCESS)
                st = bench_agree(t->comm, PROGRAM, st, label, "tally_comm_set_algorithm");
            else
                st = bench_time(&t->timer, run_call, &ctx, label, &times);
            if (st != TALLY_SUCCESS) {
                state[a] = CELL_FAILED;
                t->failed = true;
                continue;
            }
            t->rep[a * o->repeats + r] = times.avg;
        }
    bench_progress_clear(&t->progress);
    t->winner[s] = -1;
    for (int a = 0; a < t->nalgos; a++) {
        if (state[a] != CELL_OK)
            continue;
        median[a] = bench_median(&t->rep[a * o->repeats], o->repeats);
        if (t->winner[s] < 0 || median[a] < median[t->winner[s]])
            t->winner[s] = a;
    }
}

/* A size whose winner beats the algorithm that wins both neighbouring
 * sizes by less than TIE_MARGIN is a tie that noise decided (measured here:
 * such single-size flips did not repeat in the next run): the neighbours'
 * algorithm keeps it, so the file does not switch back and forth. */
#define TIE_MARGIN 0.03

static void smooth_winners(tune_t *t, bool live)
{
    for (int s = 1; s + 1 < t->nsizes; s++) {
        const int w = t->winner[s], x = t->winner[s - 1];
        const size_t cell = (size_t)s * t->nalgos;
        if (w < 0 || x < 0 || x == w || t->winner[s + 1] != x || t->state[cell + x] != CELL_OK)
            continue;
        const double *median = &t->median[cell];
        if (median[x] > median[w] * (1.0 + TIE_MARGIN))
            continue;
        if (live)
            printf("# %zu bytes: %s measured within %.0f%% of %s, which wins both "
                   "neighbouring sizes; %s kept\n",
                   t->counts[s] * t->opt->dt->size, t->algos[w], TIE_MARGIN * 100,
                   t->algos[x], t->algos[x]);
        t->winner[s] = x;
    }
}

/* ------------------------------------------------------------- the file */

/* "256K" where the value is a whole number of K, M or G, else decimal. */
static void format_bytes(size_t v, char *buf, size_t len)
{
    static const struct { unsigned shift; char suffix; } units[] = {
        {30, 'G'}, {20, 'M'}, {10, 'K'},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t unit = (size_t)1 << units[i].shift;
        if (v != 0 && v % unit == 0) {
            snprintf(buf, len, "%zu%c", v / unit, units[i].suffix);
            return;
        }
    }
    snprintf(buf, len, "%zu", v);
}

/* The last byte count of the smaller size's row: the geometric mean of two
 * adjacent measured sizes a < b, kept within [a, b - 1] so that each
 * measured size stays in its own winner's row. */
static size_t boundary(size_t a, size_t b)
{
    double m = floor(sqrt((double)a * (double)b));
    if (m <= (double)a)
        return a;
    if (m >= (double)(b - 1))
        return b - 1;
    return (size_t)m;
}

/* t->rows from the winners: from 0 bytes to the largest size measured
 * (beyond it tally's own rules decide: a short tune must not decide
 * 64 MiB), one row per run of adjacent sizes with the same winner.
 * Returns how many (0: no size has a winner). */
static int make_rows(tune_t *t)
{
    row_t *rows = t->rows;
    int n = 0;
    size_t prev = 0;
    for (int s = 0; s < t->nsizes; s++) {
        const int w = t->winner[s];
        const size_t bytes = t->counts[s] * t->opt->dt->size;
        if (w < 0)
            continue;
        if (n == 0) {
            rows[n++] = (row_t){0, SIZE_MAX, w};
        } else if (rows[n - 1].algo != w) {
            size_t end = boundary(prev, bytes);
            rows[n - 1].hi = end;
            rows[n++] = (row_t){end + 1, SIZE_MAX, w};
        }
        prev = bytes;
    }
    if (n > 0)
        rows[n - 1].hi = prev;
    return n;
}

/* An argument as a shell would need it; control characters become '?' so
 * that the comment stays on one line. */
static void write_arg(FILE *f, const char *arg)
{
    bool plain = *arg != '\0';
    for (const char *p = arg; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       "_-+=/.,:@%", *p) != NULL;
    if (plain) {
        fputs(arg, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    }
    fputc('\'', f);
}

static int column_width(const char *name)
{
    int w = (int)strlen(name);
    return w > 10 ? w : 10;
}

/* The table of median times: "#        bytes  ring ..." and one line per
 * size, every line a comment in the file (comment) or a row on stdout. */
static void write_table_header(const tune_t *t, FILE *f)
{
    fprintf(f, "#%13s", "bytes");
    for (int a = 0; a < t->nalgos; a++)
        fprintf(f, "  %*s", column_width(t->algos[a]), t->algos[a]);
    fprintf(f, "  %s\n", "fastest");
}

static void write_table_row(const tune_t *t, FILE *f, int s, bool comment)
{
    const options_t *o = t->opt;
    fprintf(f, comment ? "#%13zu" : "%14zu", t->counts[s] * o->dt->size);
    for (int a = 0; a < t->nalgos; a++) {
        const int w = column_width(t->algos[a]);
        const size_t cell = (size_t)s * t->nalgos + a;
        switch (t->state[cell]) {
        case CELL_OK: fprintf(f, "  %*.2f", w, t->median[cell] * 1e6); break;
        case CELL_UNSUPPORTED: fprintf(f, "  %*s", w, "n/a"); break;
        case CELL_FAILED: fprintf(f, "  %*s", w, "fail"); break;
        }
    }
    fprintf(f, "  %s\n", t->winner[s] >= 0 ? t->algos[t->winner[s]] : "-");
}

/* The whole file: comments saying where it came from and why each row was
 * chosen, then the rows. */
static void write_file(const tune_t *t, FILE *f, int nrows)
{
    const options_t *o = t->opt;
    char versions[MPI_MAX_LIBRARY_VERSION_STRING + 64], date[64] = "unknown";
    bench_versions(versions, sizeof versions);
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
    fprintf(f, "# tally tuning file (tally-tuning(5)), written by tally-tune: %s\n", versions);
    fprintf(f, "# date: %s\n", date);
    fprintf(f, "# command:");
    for (int i = 0; i < t->argc; i++) {
        fputc(' ', f);
        write_arg(f, t->argv[i]);
    }
    fprintf(f, "\n# ranks: %d\n# nodes: %d\n", t->size, t->nodes);
    fprintf(f, "# dtype: %s, op: sum, out of place (the rows apply to every dtype and op)\n",
            o->dt->name);
    fprintf(f, "# timing: iters %d, warm-up %d, repeats %d (interleaved); time per call of "
               "the slowest rank, median over the repeats\n",
            o->iters, o->warmup, o->repeats);
    fprintf(f, "# rows: the fastest algorithm per measured size; adjacent sizes with the same "
               "winner share a row, and\n# between sizes with different winners the boundary "
               "lies at their geometric mean\n");
    fprintf(f, "#\n# median time per call in microseconds (n/a: cannot serve this call, "
               "fail: returned an error)\n");
    write_table_header(t, f);
    for (int s = 0; s < t->nsizes; s++)
        write_table_row(t, f, s, true);
    fprintf(f, "#\n# %-6s %-6s %-22s %s\n", "ranks", "nodes", "bytes", "algorithm");
    for (int i = 0; i < nrows; i++) {
        const row_t *row = &t->rows[i];
        char lo[32], hi[32] = "", range[72];
        format_bytes(row->lo, lo, sizeof lo);
        if (row->hi != SIZE_MAX)
            format_bytes(row->hi, hi, sizeof hi);
        snprintf(range, sizeof range, "%s-%s", lo, hi);
        fprintf(f, "%-8d %-6d %-22s %s\n", t->size, t->nodes, range, t->algos[row->algo]);
    }
}

/* Copies text to f line by line, cutting a line longer than tally reads
 * (only a comment can be: a long command line or many algorithms) to
 * FILE_LINE_MAX bytes that end in "...". */
static void put_lines(FILE *f, const char *text)
{
    while (*text) {
        size_t len = strcspn(text, "\n");
        if (len > FILE_LINE_MAX)
            fprintf(f, "%.*s...\n", FILE_LINE_MAX - 3, text);
        else
            fprintf(f, "%.*s\n", (int)len, text);
        text += len + (text[len] == '\n');
    }
}

/* Rank 0 writes the file (or prints it with --dry-run); every rank learns
 * whether that worked. */
static bool output(const tune_t *t, int nrows)
{
    int ok = 1;
    const char *path = t->opt->out_path;
    if (t->rank == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        if (mem) {
            write_file(t, mem, nrows);
            if (fclose(mem) != 0) {
                free(text);
                text = NULL;
            }
        }
        FILE *f = !text ? NULL : path ? fopen(path, "w") : stdout;
        if (!text) {
            fprintf(stderr, "%s: out of memory\n", PROGRAM);
            ok = 0;
        } else if (!f) {
            fprintf(stderr, "%s: -o %s: %s\n", PROGRAM, path, strerror(errno));
            ok = 0;
        } else {
            errno = 0;
            put_lines(f, text);
            ok = fflush(f) == 0 && !ferror(f);
            if (path)
                ok = fclose(f) == 0 && ok;
            if (!ok)
                fprintf(stderr, "%s: %s: write failed: %s\n", PROGRAM,
                        path ? path : "standard output", strerror(errno ? errno : EIO));
            else if (path)
                printf("# wrote %d row%s for %d ranks on %d node%s to %s\n", nrows,
                       nrows == 1 ? "" : "s", t->size, t->nodes, t->nodes == 1 ? "" : "s",
                       path);
            fflush(stdout);
            if (ok && nrows > FILE_MAX_ROWS)
                fprintf(stderr, "%s: warning: %d rows, but tally reads only the first %d of "
                                "a file; a larger -f or more -R give fewer\n",
                        PROGRAM, nrows, FILE_MAX_ROWS);
        }
        free(text);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, t->comm);
    return ok;
}

/* --------------------------------------------------------------- verify */

/* Points TALLY_TUNING_FILE at the file on every rank, creates a new tally
 * communicator and compares tally's own choice (a forced one, such as
 * TALLY_ALGO's, is undone) with the winner at every measured size.
 * Returns the exit status. */
static int verify(const tune_t *t)
{
    const options_t *o = t->opt;
    const char *path = o->out_path;
    char value[PATH_LEN];
    tally_status_t st = tally_config_get("TALLY_TUNING_FILE", value, sizeof value);
    if (st == TALLY_ERR_INVALID_ARGUMENT) { /* the same library on every rank */
        if (t->rank == 0)
            fprintf(stderr, "%s: --verify: this libtally does not know TALLY_TUNING_FILE\n",
                    PROGRAM);
        return EXIT_FAILED;
    }
    if (tally_config_get("TALLY_ALGO", value, sizeof value) == TALLY_SUCCESS &&
        strcmp(value, "auto") != 0 && t->rank == 0)
        fprintf(stderr, "%s: note: TALLY_ALGO=%s overrides tuning files; --verify checks "
                        "tally's own choice\n", PROGRAM, value);

    /* Every rank must read the file at the same path. */
    bool ok = setenv("TALLY_TUNING_FILE", path, 1) == 0;
    FILE *f = ok ? fopen(path, "r") : NULL;
    if (f)
        fclose(f);
    else
        fprintf(stderr, "%s: rank %d: --verify: cannot read %s: %s (every rank needs the "
                        "file at the same path)\n", PROGRAM, t->rank, path, strerror(errno));
    if (!bench_all(t->comm, f != NULL))
        return EXIT_FAILED;

    tally_comm_t *tc = NULL;
    st = tally_comm_create(t->comm, &tc);
    if (st == TALLY_SUCCESS)
        st = tally_comm_set_algorithm(tc, "auto");
    if (st != TALLY_SUCCESS) { /* both are collective: every rank fails alike */
        if (t->rank == 0)
            fprintf(stderr, "%s: --verify: a communicator with TALLY_TUNING_FILE=%s: %s\n",
                    PROGRAM, path, tally_strerror(st));
        tally_comm_destroy(tc);
        return EXIT_FAILED;
    }
    if (t->rank == 0) {
        printf("# verify: TALLY_TUNING_FILE=%s, a new communicator, tally's own choice\n",
               path);
        printf("#%13s  %-22s %-22s %s\n", "bytes", "winner", "chosen", "ok");
    }
    int sizes = 0, differ = 0;
    for (int s = 0; s < t->nsizes; s++) {
        if (t->winner[s] < 0)
            continue;
        const char *want = t->algos[t->winner[s]], *chosen = NULL;
        st = tally_comm_get_algorithm(tc, t->counts[s], o->dt->dtype, TALLY_SUM, &chosen);
        bool same = st == TALLY_SUCCESS && strcmp(chosen, want) == 0;
        sizes++;
        differ += !same;
        if (t->rank == 0)
            printf("%14zu  %-22s %-22s %s\n", t->counts[s] * o->dt->size, want,
                   st == TALLY_SUCCESS ? chosen : tally_strerror(st), same ? "yes" : "no");
    }
    tally_comm_destroy(tc);
    /* Every rank decides alike; a rank whose choice differs from rank 0's
     * would be a tally bug, and counts as a difference too. */
    int all = 0;
    MPI_Allreduce(&differ, &all, 1, MPI_INT, MPI_MAX, t->comm);
    if (t->rank == 0) {
        if (all == 0)
            printf("# verify: tally chooses the measured winner at all %d sizes\n", sizes);
        else
            printf("# verify: tally chooses differently at %d of %d sizes\n", all, sizes);
        fflush(stdout);
    }
    return all == 0 ? 0 : EXIT_MISMATCH;
}

/* ------------------------------------------------------------------ run */

/* The sweep, size by size; outside --dry-run rank 0 prints each size's
 * times as it goes. */
static void sweep(tune_t *t)
{
    const bool live = t->rank == 0 && !t->opt->dry_run;
    if (live) {
        char versions[MPI_MAX_LIBRARY_VERSION_STRING + 64];
        bench_versions(versions, sizeof versions);
        printf("# tally-tune: %s\n", versions);
        printf("# ranks %d, nodes %d, dtype %s, op sum, out of place, iters %d, warm-up %d, "
               "repeats %d\n", t->size, t->nodes, t->opt->dt->name, t->opt->iters,
               t->opt->warmup, t->opt->repeats);
        printf("# median time per call of the slowest rank, microseconds\n");
        write_table_header(t, stdout);
        fflush(stdout);
    }
    for (int s = 0; s < t->nsizes; s++) {
        measure_size(t, s);
        if (live) {
            write_table_row(t, stdout, s, false);
            fflush(stdout);
        }
    }
    smooth_winners(t, live);
}

static int run(const options_t *opt, int argc, char **argv, MPI_Comm world)
{
    tune_t t = {.opt = opt, .argc = argc, .argv = argv, .comm = world};
    MPI_Comm_rank(world, &t.rank);
    MPI_Comm_size(world, &t.size);
    t.nodes = count_nodes(world);
    t.progress.on = t.rank == 0 && isatty(STDERR_FILENO);
    t.counts = bench_make_counts(opt->min_bytes, opt->max_bytes, opt->factor, opt->dt->size,
                                 &t.nsizes);
    if (!t.counts) {
        fprintf(stderr, "%s: out of memory\n", PROGRAM);
        MPI_Abort(world, EXIT_FAILED); /* before any collective: nothing to agree on */
    }
    if (t.nsizes > MAX_SIZES) { /* the same sweep, so the same answer, on every rank */
        if (t.rank == 0) {
            fprintf(stderr, "%s: -b/-e/-f: %d sizes, more than %d; use a larger -f\n",
                    PROGRAM, t.nsizes, MAX_SIZES);
            usage(stderr);
        }
        free(t.counts);
        return EXIT_USAGE;
    }
    tally_status_t st = tally_comm_create(world, &t.tc);
    if (st != TALLY_SUCCESS) {
        if (t.rank == 0)
            fprintf(stderr, "%s: tally_comm_create: %s\n", PROGRAM, tally_strerror(st));
        free(t.counts);
        return EXIT_FAILED;
    }
    int rc = EXIT_FAILED;
    if (!check_output(&t)) {
        rc = EXIT_FAILED;
    } else if (check_algorithms(&t) == 0) {
        if (t.rank == 0)
            fprintf(stderr, "%s: -a: tally has none of these algorithms\n", PROGRAM);
        rc = EXIT_USAGE;
    } else if (alloc_all(&t)) {
        sweep(&t);
        int nrows = make_rows(&t);
        if (nrows == 0) {
            if (t.rank == 0)
                fprintf(stderr, "%s: no algorithm could serve %s sum at any size; no file "
                                "written\n", PROGRAM, opt->dt->name);
        } else if (output(&t, nrows)) {
            rc = t.failed ? EXIT_FAILED : 0;
            if (opt->verify) {
                int vrc = verify(&t);
                if (rc == 0)
                    rc = vrc;
            }
        }
    }
    free_all(&t);
    tally_comm_destroy(t.tc);
    free(t.counts);
    /* Every rank exits with rank 0's verdict. */
    MPI_Bcast(&rc, 1, MPI_INT, 0, world);
    return rc;
}

int main(int argc, char **argv)
{
    if (bench_version_flag(argc, argv, "tally-tune"))
        return 0;
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    options_t opt;
    char msg[256];
    const char *err = parse_options(argc, argv, &opt, msg, sizeof msg);
    int rc = 0;
    if (err) {
        if (rank == 0) {
            fprintf(stderr, "%s: %s\n", PROGRAM, err);
            usage(stderr);
        }
        rc = EXIT_USAGE;
    } else if (opt.help) {
        if (rank == 0)
            usage(stdout);
    } else {
        /* Our own communicator: the barriers and reductions never mix with
         * anything else on MPI_COMM_WORLD. */
        MPI_Comm world;
        MPI_Comm_dup(MPI_COMM_WORLD, &world);
        rc = run(&opt, argc, argv, world);
        MPI_Comm_free(&world);
    }
    MPI_Finalize();
    return rc;
}
