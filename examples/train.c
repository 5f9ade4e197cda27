/* train.c - a data-parallel trainer over tally: the proof that gradient
 * compression with error feedback trains as well as exact allreduce.
 *
 *   mpirun -np N build/examples/train [--model logreg|mlp] [--codec SPEC]
 *       [--no-ef] [--epochs E] [--batch B] [--lr LR] [--seed S] [--out FILE]
 *
 * The data set is generated here, the same on every rank from --seed: a
 * click-through-like binary classification with sparse inputs (32 active
 * features of 2^16 per sample, feature frequencies skewed like real ids)
 * labelled by a hidden teacher with interactions between features (a
 * small two-layer network), plus 5% label noise, so that neither model
 * fits it perfectly.  Each rank trains on its shard (sample i goes to rank
 * i mod N); a held-out test set measures loss and accuracy.
 *   logreg  logistic regression: one weight per feature (256 KiB of gradient)
 *   mlp     a bag of 16-wide feature embeddings, ReLU, one output (4 MiB of
 *           gradient, mostly zeros in a step: a sparse-input MLP)
 * Every step the ranks average their gradients with tally_allreduce
 * (--codec none) or tally_allreduce_compressed (any other SPEC; --no-ef adds
 * ef=off), then take the same SGD step (the rate falling linearly from
 * --lr to a tenth of it over the run), so the weights stay identical
 * everywhere (checked at the end with a hash).  Rank 0 prints one line per
 * evaluation: epoch, step, seconds, train loss, test loss, test accuracy
 * and bytes this rank sent across nodes; --out also writes them to FILE
 * for plotting (make train-cluster draws every codec's curves). */
#include <getopt.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally.h"

#define FEATURES (1u << 16)
#define ACTIVE 32
#define EMBED 16
#define TEACHER_HIDDEN 16
#define INFORMATIVE 2048

typedef struct options {
    const char *model, *codec, *out;
    int no_ef, epochs, batch, evals_per_epoch;
    double lr;
    uint64_t seed;
    size_t train, test;
} options_t;

/* --- the data set ----------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double uniform(uint64_t *s)
{
    *s = mix(*s);
    return (double)(*s >> 11) * 0x1p-53;
}

static double gaussian(uint64_t *s)
{
    double u = uniform(s), v = uniform(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

typedef struct sample {
    uint32_t f[ACTIVE];
    float y;
} sample_t;

typedef struct teacher {
    float *w;  /* [FEATURES] linear part */
    float *e;  /* [FEATURES][TEACHER_HIDDEN] interactions */
    float v[TEACHER_HIDDEN];
    double center; /* subtracted from the logit: balanced classes */
} teacher_t;

static void teacher_make(teacher_t *t, uint64_t seed)
{
    t->w = malloc(FEATURES * sizeof *t->w);
    t->e = malloc((size_t)FEATURES * TEACHER_HIDDEN * sizeof *t->e);
    if (!t->w || !t->e)
        MPI_Abort(MPI_COMM_WORLD, 1);
    /* The signal lives in the frequent features (the first INFORMATIVE ids,
     * some 40% of the draws); the rare ones add a little noise. */
    uint64_t s = seed ^ 0x7eac4e5ull;
    for (size_t i = 0; i < FEATURES; i++)
        t->w[i] = (float)((i < INFORMATIVE ? 0.5 : 0.05) * gaussian(&s));
    for (size_t i = 0; i < (size_t)FEATURES * TEACHER_HIDDEN; i++)
        t->e[i] = i / TEACHER_HIDDEN < INFORMATIVE ? (float)(0.4 * gaussian(&s)) : 0.0f;
    for (int h = 0; h < TEACHER_HIDDEN; h++)
        t->v[h] = (float)(0.8 * gaussian(&s));
}

static double teacher_logit(const teacher_t *t, uint64_t seed, size_t i, sample_t *out);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median logit of some samples: labels split about half and half. */
static void teacher_center(teacher_t *t, uint64_t seed)
{
    enum { PROBE = 4096 };
    double *z = malloc(PROBE * sizeof *z);
    sample_t tmp;
    if (!z)
        MPI_Abort(MPI_COMM_WORLD, 1);
    t->center = 0.0;
    for (size_t i = 0; i < PROBE; i++)
        z[i] = teacher_logit(t, seed ^ 0xce17e7ull, i, &tmp);
    qsort(z, PROBE, sizeof *z, cmp_double);
    t->center = z[PROBE / 2];
    free(z);
}

/* Sample i: skewed feature ids (some features are frequent), label from the
 * teacher's logit with 5% of labels flipped. */
static void sample_make(const teacher_t *t, uint64_t seed, size_t i, sample_t *out)
{
    uint64_t s = mix(seed ^ mix(i + 1) ^ 0x1abe1ull);
    int label = teacher_logit(t, seed, i, out) > 0.0;
    if (uniform(&s) < 0.05)
        label = !label;
    out->y = (float)label;
}

static double teacher_logit(const teacher_t *t, uint64_t seed, size_t i, sample_t *out)
{
    uint64_t s = mix(seed ^ mix(i + 1));
    double logit = 0.0, hid[TEACHER_HIDDEN] = {0};
    for (int k = 0; k < ACTIVE; k++) {
        double u = uniform(&s);
        uint32_t f = (uint32_t)(pow(u, 4.0) * FEATURES) % FEATURES; /* skewed */
        out->f[k] = f;
        logit += t->w[f];
        for (int h = 0; h < TEACHER_HIDDEN; h++)
            hid[h] += t->e[(size_t)f * TEACHER_HIDDEN + h];
    }
    for (int h = 0; h < TEACHER_HIDDEN; h++)
        logit += t->v[h] * (hid[h] > 0 ? hid[h] : 0.0);
    return logit - t->center;
}

/* --- the models ------------------------------------------------------------------- */

typedef struct model {
    int mlp;
    size_t nparams;
    float *p;    /* logreg: w[FEATURES], bias; mlp: E[FEATURES][EMBED], b[EMBED], v[EMBED], c */
} model_t;

static float *emb(const model_t *m) { return m->p; }
static float *hb(const model_t *m) { return m->p + (size_t)FEATURES * EMBED; }
static float *out_w(const model_t *m) { return hb(m) + EMBED; }

static void model_init(model_t *m, int mlp, uint64_t seed)
{
    m->mlp = mlp;
    m->nparams = mlp ? (size_t)FEATURES * EMBED + 2 * EMBED + 1 : FEATURES + 1;
    m->p = calloc(m->nparams, sizeof *m->p);
    if (!m->p)
        MPI_Abort(MPI_COMM_WORLD, 1);
    if (mlp) {
        uint64_t s = seed ^ 0x1417ull;
        for (size_t i = 0; i < (size_t)FEATURES * EMBED; i++)
            m->p[i] = (float)(0.05 * gaussian(&s));
        for (int h = 0; h < EMBED; h++)
            out_w(m)[h] = (float)(0.3 * gaussian(&s));
    }
}

/* Logit of one sample; for the MLP also the hidden pre-activations. */
static double forward(const model_t *m, const sample_t *x, double *pre)
{
    if (!m->mlp) {
        double z = m->p[FEATURES];
        for (int k = 0; k < ACTIVE; k++)
            z += m->p[x->f[k]];
        return z;
    }
    for (int h = 0; h < EMBED; h++)
        pre[h] = hb(m)[h];
    for (int k = 0; k < ACTIVE; k++) {
        const float *row = emb(m) + (size_t)x->f[k] * EMBED;
        for (int h = 0; h < EMBED; h++)
            pre[h] += row[h];
    }
    double z = out_w(m)[EMBED];
    for (int h = 0; h < EMBED; h++)
        z += out_w(m)[h] * (pre[h] > 0 ? pre[h] : 0.0);
    return z;
}

static double bce(double z, float y)
{
    /* log(1 + e^z) - y z, stable. */
    return (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y * z;
}

/* Adds the gradient of the batch's mean loss to g; returns the loss sum. */
static double backward(const model_t *m, const sample_t *batch, int n, float *g)
{
    double loss = 0.0, pre[EMBED];
    for (int i = 0; i < n; i++) {
        const sample_t *x = &batch[i];
        double z = forward(m, x, pre);
        loss += bce(z, x->y);
        double dz = (1.0 / (1.0 + exp(-z)) - x->y) / n;
        if (!m->mlp) {
            for (int k = 0; k < ACTIVE; k++)
                g[x->f[k]] += (float)dz;
            g[FEATURES] += (float)dz;
            continue;
        }
        float *gv = g + (size_t)FEATURES * EMBED + EMBED, *gb = g + (size_t)FEATURES * EMBED;
        double dpre[EMBED];
        for (int h = 0; h < EMBED; h++) {
            double a = pre[h] > 0 ? pre[h] : 0.0;
            gv[h] += (float)(dz * a);
            dpre[h] = pre[h] > 0 ? dz * out_w(m)[h] : 0.0;
            gb[h] += (float)dpre[h];
        }
        gv[EMBED] += (float)dz;
        for (int k = 0; k < ACTIVE; k++) {
            float *row = g + (size_t)x->f[k] * EMBED;
            for (int h = 0; h < EMBED; h++)
                row[h] += (float)dpre[h];
        }
    }
    return loss;
}

static void evaluate(const model_t *m, const sample_t *set, size_t n, double *loss, double *acc)
{
    double l = 0.0, pre[EMBED];
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        double z = forward(m, &set[i], pre);
        l += bce(z, set[i].y);
        right += (z > 0) == (set[i].y > 0.5f);
    }
    *loss = l / n;
    *acc = (double)right / n;
}

/* --- the run ----------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: mpirun -np N train [--model logreg|mlp] [--codec SPEC] [--no-ef]\n"
                    "       [--epochs E] [--batch B] [--lr LR] [--seed S] [--out FILE]\n");
}

static int parse(int argc, char **argv, options_t *o)
{
    *o = (options_t){.model = "mlp", .codec = "none", .epochs = 3, .batch = 64,
                     .evals_per_epoch = 8, .lr = 0.0, .seed = 1, .train = 1u << 17,
                     .test = 1u << 13};
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"codec", required_argument, NULL, 'c'},
        {"no-ef", no_argument, NULL, 'n'},       {"epochs", required_argument, NULL, 'e'},
        {"batch", required_argument, NULL, 'b'}, {"lr", required_argument, NULL, 'l'},
        {"seed", required_argument, NULL, 's'},  {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'c': o->codec = optarg; break;
        case 'n': o->no_ef = 1; break;
        case 'e': o->epochs = atoi(optarg); break;
        case 'b': o->batch = atoi(optarg); break;
        case 'l': o->lr = atof(optarg); break;
        case 's': o->seed = strtoull(optarg, NULL, 10); break;
        case 'o': o->out = optarg; break;
        default: return -1;
        }
    }
    if (optind < argc || o->epochs < 1 || o->batch < 1 ||
        (strcmp(o->model, "mlp") != 0 && strcmp(o->model, "logreg") != 0))
        return -1;
    if (o->lr <= 0.0)
        o->lr = 0.5;
    return 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        if (rank == 0)
            usage();
        MPI_Finalize();
        return 2;
    }
    tally_comm_t *tc;
    if (tally_comm_create(MPI_COMM_WORLD, &tc) != TALLY_SUCCESS)
        MPI_Abort(MPI_COMM_WORLD, 1);

    teacher_t teacher;
    teacher_make(&teacher, o.seed);
    teacher_center(&teacher, o.seed);
    const size_t mine = (o.train + (size_t)size - 1 - (size_t)rank) / (size_t)size;
    sample_t *train = malloc(mine * sizeof *train), *test = malloc(o.test * sizeof *test);
    if (!train || !test)
        MPI_Abort(MPI_COMM_WORLD, 1);
    for (size_t i = 0; i < mine; i++)
        sample_make(&teacher, o.seed, i * (size_t)size + (size_t)rank, &train[i]);
    for (size_t i = 0; i < o.test; i++)
        sample_make(&teacher, o.seed + 1000003, i, &test[i]);
    free(teacher.w);
    free(teacher.e);

    model_t m;
    model_init(&m, strcmp(o.model, "mlp") == 0, o.seed);
    float *g = malloc(m.nparams * sizeof *g);
    if (!g)
        MPI_Abort(MPI_COMM_WORLD, 1);
    tally_compressor_t *z = NULL;
    if (strcmp(o.codec, "none") != 0) {
        char spec[256];
        snprintf(spec, sizeof spec, "%s%s", o.codec, o.no_ef ? ",ef=off" : "");
        tally_status_t st = tally_compressor_create(tc, spec, m.nparams, TALLY_FLOAT32, &z);
        if (st != TALLY_SUCCESS) {
            if (rank == 0)
                fprintf(stderr, "train: --codec %s: %s\n", spec, tally_strerror(st));
            MPI_Abort(MPI_COMM_WORLD, 2);
        }
    }
    FILE *out = rank == 0 && o.out ? fopen(o.out, "w") : NULL;
    if (rank == 0) {
        printf("# train: %s, %zu parameters, %d ranks, codec %s%s, batch %d per rank, lr %g\n",
               o.model, m.nparams, size, o.codec, o.no_ef ? " without error feedback" : "",
               o.batch, o.lr);
        printf("# %5s %7s %9s %11s %10s %9s %14s\n", "epoch", "step", "seconds", "train_loss",
               "test_loss", "test_acc", "wire_bytes");
        if (out)
            fprintf(out, "# epoch step seconds train_loss test_loss test_acc wire_bytes\n");
    }
    /* Every rank takes the same number of steps: the smallest shard's. */
    const size_t steps_per_epoch = (o.train / (size_t)size) / (size_t)o.batch;
    const size_t eval_every = steps_per_epoch / (size_t)o.evals_per_epoch
                                  ? steps_per_epoch / (size_t)o.evals_per_epoch : 1;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), loss_sum = 0.0, comm_time = 0.0;
    size_t loss_n = 0, step = 0;
    for (int epoch = 0; epoch < o.epochs; epoch++) {
        for (size_t b = 0; b < steps_per_epoch; b++, step++) {
            memset(g, 0, m.nparams * sizeof *g);
            loss_sum += backward(&m, &train[b * (size_t)o.batch], o.batch, g);
            loss_n += (size_t)o.batch;
            double c0 = MPI_Wtime();
            tally_status_t st =
                z ? tally_allreduce_compressed(TALLY_IN_PLACE, g, m.nparams, TALLY_FLOAT32,
                                               TALLY_AVG, z)
                  : tally_allreduce(TALLY_IN_PLACE, g, m.nparams, TALLY_FLOAT32, TALLY_AVG, tc);
            comm_time += MPI_Wtime() - c0;
            if (st != TALLY_SUCCESS) {
                fprintf(stderr, "train: rank %d: allreduce: %s\n", rank, tally_strerror(st));
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            /* The rate falls linearly to a tenth, so the last evaluations
             * measure the model rather than the noise of its last steps. */
            const size_t total = steps_per_epoch * (size_t)o.epochs;
            const float lr = (float)(o.lr * (1.0 - 0.9 * (double)step / (double)total));
            for (size_t i = 0; i < m.nparams; i++)
                m.p[i] -= lr * g[i];
            if ((step + 1) % eval_every == 0 || b + 1 == steps_per_epoch) {
                double sums[2] = {loss_sum, (double)loss_n}, all[2];
                MPI_Allreduce(sums, all, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
                loss_sum = 0.0;
                loss_n = 0;
                double tl, ta, elapsed = MPI_Wtime() - t0;
                evaluate(&m, test, o.test, &tl, &ta);
                size_t wire = 0, plain = 0;
                if (z)
                    tally_compressor_bytes(z, &wire, &plain);
                if (rank == 0) {
                    printf("  %5.2f %7zu %9.2f %11.5f %10.5f %9.4f %14zu\n",
                           epoch + (b + 1.0) / steps_per_epoch, step + 1, elapsed,
                           all[0] / all[1], tl, ta, wire);
                    if (out)
                        fprintf(out, "%.4f %zu %.4f %.6f %.6f %.5f %zu\n",
                                epoch + (b + 1.0) / steps_per_epoch, step + 1, elapsed,
                                all[0] / all[1], tl, ta, wire);
                    fflush(stdout);
                }
                t0 += MPI_Wtime() - t0 - elapsed; /* evaluation time is not training time */
            }
        }
    }
    /* The weights must be the same bits everywhere. */
    uint64_t h = 1469598103934665603ull;
    const unsigned char *bytes = (const unsigned char *)m.p;
    for (size_t i = 0; i < m.nparams * sizeof *m.p; i++)
        h = (h ^ bytes[i]) * 1099511628211ull;
    uint64_t hmax, hmin;
    MPI_Allreduce(&h, &hmax, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hmin, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    int rc = hmax == hmin ? 0 : 1;
    if (rank == 0) {
        printf("# weights %s on every rank; %.2f s in allreduce on rank 0\n",
               rc == 0 ? "identical" : "DIFFER", comm_time);
        if (out)
            fclose(out);
    }
    tally_compressor_destroy(z);
    tally_comm_destroy(tc);
    free(g);
    free(m.p);
    free(train);
    free(test);
    MPI_Finalize();
    return rc;
}
