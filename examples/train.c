/* train.c - a data-parallel trainer over tally: the proof that gradient
 * compression with error feedback trains as well as exact allreduce, and
 * the demonstration that a started allreduce hides behind the rest of the
 * backward step.
 *
 *   mpirun -np N build/examples/train [--model logreg|mlp|deep] [--codec SPEC]
 *       [--no-ef] [--overlap] [--epochs E] [--batch B] [--lr LR] [--seed S]
 *       [--train SAMPLES] [--out FILE]
 *
 * The data set is generated here, the same on every rank from --seed: a
 * click-through-like binary classification with sparse inputs (32 active
 * features of 2^16 per sample, feature frequencies skewed like real ids)
 * labelled by a hidden teacher with interactions between features (a
 * small two-layer network), plus 5% label noise, so that neither model
 * fits it perfectly.  Each rank trains on its shard (sample i goes to rank
 * i mod N; --train samples in all, 2^17 by default); a held-out test set
 * measures loss and accuracy.
 *   logreg  logistic regression: one weight per feature (256 KiB of gradient)
 *   mlp     a bag of 16-wide feature embeddings, ReLU, one output (4 MiB of
 *           gradient, mostly zeros in a step: a sparse-input MLP)
 *   deep    a dense MLP: the active ids as counts over 256 inputs (the 192
 *           most frequent ids one input each, the rest hashed into 64),
 *           three ReLU layers of 512, one output (2.5 MiB of gradient, all
 *           of it dense); its backward step runs layer by layer over the
 *           batch, output layer first
 * Every step the ranks average their gradients with tally_allreduce
 * (--codec none) or tally_allreduce_compressed (any other SPEC; --no-ef adds
 * ef=off), then take the same SGD step (the rate falling linearly from
 * --lr to a tenth of it over the run), so the weights stay identical
 * everywhere (checked at the end with a hash).  With --overlap (deep only)
 * each layer's gradient is started with tally_iallreduce (with a codec,
 * tally_iallreduce_compressed through one compressor per layer) as soon
 * as the backward step has it, while the earlier layers' gradients are
 * computed, and tally_waitall ends them all before the update; that needs
 * MPI_THREAD_MULTIPLE, without which the calls run inside tally_waitall.
 * Rank 0 prints one line per evaluation: epoch, step, seconds, train loss,
 * test loss, test accuracy and bytes this rank sent across nodes; --out
 * also writes them to FILE for plotting (make train-cluster draws every
 * codec's curves).  For deep it ends with the median step time and the
 * median time of a step spent in the allreduce (blocking) or in starting
 * and waiting (--overlap), so that runs with and without overlap compare. */
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
    int no_ef, overlap, epochs, batch, evals_per_epoch;
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

/* deep: DEEP_LAYERS dense layers, deep_dim[l] inputs to deep_dim[l + 1]
 * outputs. */
#define DEEP_IN 256
#define DEEP_OWN 192 /* ids below this have an input of their own */
#define DEEP_WIDTH 512
#define DEEP_LAYERS 4
static const int deep_dim[DEEP_LAYERS + 1] = {DEEP_IN, DEEP_WIDTH, DEEP_WIDTH, DEEP_WIDTH, 1};

typedef enum model_kind { MODEL_LOGREG, MODEL_MLP, MODEL_DEEP } model_kind_t;

typedef struct model {
    model_kind_t kind;
    size_t nparams;
    float *p;    /* logreg: w[FEATURES], bias; mlp: E[FEATURES][EMBED], b[EMBED], v[EMBED], c;
                    deep: per layer l, W[in][out] then b[out], from off[l] */
    /* deep only */
    size_t off[DEEP_LAYERS + 1]; /* layer l's parameters: p[off[l] .. off[l + 1]) */
    int cap;                     /* samples the buffers below hold */
    float *act[DEEP_LAYERS + 1]; /* act[0] the inputs, act[l + 1] layer l's outputs */
    float *dact, *dact_next;     /* the loss's gradient by one layer's outputs, and the next */
} model_t;

static float *emb(const model_t *m) { return m->p; }
static float *hb(const model_t *m) { return m->p + (size_t)FEATURES * EMBED; }
static float *out_w(const model_t *m) { return hb(m) + EMBED; }

static void deep_init(model_t *m, int cap, uint64_t seed);

static void model_init(model_t *m, model_kind_t kind, int cap, uint64_t seed)
{
    *m = (model_t){.kind = kind};
    if (kind == MODEL_DEEP) {
        deep_init(m, cap, seed);
        return;
    }
    const int mlp = kind == MODEL_MLP;
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
    if (m->kind == MODEL_LOGREG) {
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
        if (m->kind == MODEL_LOGREG) {
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

/* --- the deep model: dense layers, a backward step layer by layer ----------------- */

/* y[0 .. n) += a x[0 .. n); in blocks of 8, which the compiler vectorizes
 * at -O2. */
static inline void axpy(float *restrict y, float a, const float *restrict x, int n)
{
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int i = 0; i < 8; i++)
            y[j + i] += a * x[j + i];
    for (; j < n; j++)
        y[j] += a * x[j];
}

/* Eight partial sums, for the same reason. */
static inline float dot(const float *restrict x, const float *restrict y, int n)
{
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int i = 0; i < 8; i++)
            acc[i] += x[j + i] * y[j + i];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; j < n; j++)
        s += x[j] * y[j];
    return s;
}

static float *deep_alloc(size_t n)
{
    float *a = malloc(n * sizeof *a);
    if (!a)
        MPI_Abort(MPI_COMM_WORLD, 1);
    return a;
}

/* He initialization (the logit layer's without the ReLU's factor 2), zero
 * biases; buffers for `cap` samples at a time. */
static void deep_init(model_t *m, int cap, uint64_t seed)
{
    m->off[0] = 0;
    for (int l = 0; l < DEEP_LAYERS; l++)
        m->off[l + 1] = m->off[l] + (size_t)deep_dim[l] * deep_dim[l + 1] + deep_dim[l + 1];
    m->nparams = m->off[DEEP_LAYERS];
    m->p = calloc(m->nparams, sizeof *m->p);
    if (!m->p)
        MPI_Abort(MPI_COMM_WORLD, 1);
    uint64_t s = seed ^ 0xdee9ull;
    for (int l = 0; l < DEEP_LAYERS; l++) {
        const double sd = sqrt((l + 1 < DEEP_LAYERS ? 2.0 : 1.0) / deep_dim[l]);
        for (size_t i = 0; i < (size_t)deep_dim[l] * deep_dim[l + 1]; i++)
            m->p[m->off[l] + i] = (float)(sd * gaussian(&s));
    }
    m->cap = cap;
    for (int l = 0; l <= DEEP_LAYERS; l++)
        m->act[l] = deep_alloc((size_t)cap * deep_dim[l]);
    m->dact = deep_alloc((size_t)cap * DEEP_WIDTH);
    m->dact_next = deep_alloc((size_t)cap * DEEP_WIDTH);
}

/* The sample's active ids as counts: the frequent ids, which carry most of
 * the teacher's signal, get an input each. */
static void deep_input(const sample_t *x, float *in)
{
    memset(in, 0, DEEP_IN * sizeof *in);
    for (int k = 0; k < ACTIVE; k++) {
        const uint32_t f = x->f[k];
        in[f < DEEP_OWN ? f : DEEP_OWN + mix(f) % (DEEP_IN - DEEP_OWN)] += 1.0f;
    }
}

/* act[l + 1] = act[l] W + b for n samples, ReLU on all but the logit.  The
 * loop over inputs is outermost so that a row of W is read once per batch. */
static void deep_layer_forward(const model_t *m, int l, int n)
{
    const int in = deep_dim[l], out = deep_dim[l + 1];
    const float *w = m->p + m->off[l], *bias = w + (size_t)in * out, *x = m->act[l];
    float *y = m->act[l + 1];
    for (int b = 0; b < n; b++)
        memcpy(y + (size_t)b * out, bias, (size_t)out * sizeof *y);
    for (int k = 0; k < in; k++)
        for (int b = 0; b < n; b++) {
            const float a = x[(size_t)b * in + k];
            if (a != 0.0f) /* an empty input or a ReLU's zero */
                axpy(y + (size_t)b * out, a, w + (size_t)k * out, out);
        }
    if (l + 1 < DEEP_LAYERS)
        for (size_t i = 0; i < (size_t)n * out; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* The logits of n samples, in act[DEEP_LAYERS]. */
static void deep_forward(const model_t *m, const sample_t *set, int n)
{
    for (int b = 0; b < n; b++)
        deep_input(&set[b], m->act[0] + (size_t)b * DEEP_IN);
    for (int l = 0; l < DEEP_LAYERS; l++)
        deep_layer_forward(m, l, n);
}

/* Called by deep_backward as soon as layer l's slice of the gradient,
 * g[off[l] .. off[l + 1]), is final. */
typedef void layer_done_fn(int l, void *ctx);

/* Adds the gradient of the batch's mean loss to g, layer by layer from the
 * output down, calling done (if not NULL) after each layer's weights and
 * bias and before the gradient flows on to the layer below; returns the
 * loss sum. */
static double deep_backward(model_t *m, const sample_t *batch, int n, float *g,
                            layer_done_fn *done, void *ctx)
{
    deep_forward(m, batch, n);
    double loss = 0.0;
    float *dy = m->dact; /* the loss by layer l's outputs (pre-ReLU), n x out */
    for (int b = 0; b < n; b++) {
        const double z = m->act[DEEP_LAYERS][b];
        loss += bce(z, batch[b].y);
        dy[b] = (float)((1.0 / (1.0 + exp(-z)) - batch[b].y) / n);
    }
    for (int l = DEEP_LAYERS - 1; l >= 0; l--) {
        const int in = deep_dim[l], out = deep_dim[l + 1];
        const float *w = m->p + m->off[l], *x = m->act[l];
        float *gw = g + m->off[l], *gb = gw + (size_t)in * out;
        for (int k = 0; k < in; k++)
            for (int b = 0; b < n; b++) {
                const float a = x[(size_t)b * in + k];
                if (a != 0.0f)
                    axpy(gw + (size_t)k * out, a, dy + (size_t)b * out, out);
            }
        for (int b = 0; b < n; b++)
            axpy(gb, 1.0f, dy + (size_t)b * out, out);
        if (done)
            done(l, ctx);
        if (l == 0)
            break;
        /* Through W, then through the ReLU below: zero where it was off. */
        float *dx = m->dact_next;
        for (int k = 0; k < in; k++)
            for (int b = 0; b < n; b++)
                dx[(size_t)b * in + k] = x[(size_t)b * in + k] > 0.0f
                                             ? dot(w + (size_t)k * out, dy + (size_t)b * out, out)
                                             : 0.0f;
        m->dact_next = m->dact;
        m->dact = dx;
        dy = dx;
    }
    return loss;
}

static void deep_evaluate(const model_t *m, const sample_t *set, size_t n, double *loss,
                          double *acc)
{
    double l = 0.0;
    size_t right = 0;
    for (size_t i = 0; i < n; i += (size_t)m->cap) {
        const int chunk = n - i < (size_t)m->cap ? (int)(n - i) : m->cap;
        deep_forward(m, &set[i], chunk);
        for (int b = 0; b < chunk; b++) {
            const double z = m->act[DEEP_LAYERS][b];
            l += bce(z, set[i + b].y);
            right += (z > 0) == (set[i + b].y > 0.5f);
        }
    }
    *loss = l / n;
    *acc = (double)right / n;
}

static void model_free(model_t *m)
{
    free(m->p);
    for (int l = 0; l <= DEEP_LAYERS; l++)
        free(m->act[l]);
    free(m->dact);
    free(m->dact_next);
}

static void evaluate(const model_t *m, const sample_t *set, size_t n, double *loss, double *acc)
{
    if (m->kind == MODEL_DEEP) {
        deep_evaluate(m, set, n, loss, acc);
        return;
    }
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
    fprintf(stderr,
            "usage: mpirun -np N train [--model logreg|mlp|deep] [--codec SPEC] [--no-ef]\n"
            "       [--overlap] [--epochs E] [--batch B] [--lr LR] [--seed S]\n"
            "       [--train SAMPLES] [--out FILE]\n"
            "  --overlap  (deep only) start each layer's allreduce as soon as the backward\n"
            "             step has its gradient; wait for all of them before the update\n");
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
        {"overlap", no_argument, NULL, 'v'},     {"train", required_argument, NULL, 't'},
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
        case 'v': o->overlap = 1; break;
        case 't': o->train = strtoull(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (optind < argc || o->epochs < 1 || o->batch < 1 || o->train < 1 ||
        (strcmp(o->model, "mlp") != 0 && strcmp(o->model, "logreg") != 0 &&
         strcmp(o->model, "deep") != 0))
        return -1;
    if (o->lr <= 0.0)
        o->lr = 0.5;
    return 0;
}

/* What --overlap's per-layer calls need; the starting side of the
 * deep_backward hook. */
typedef struct overlap {
    tally_comm_t *comm;
    tally_compressor_t **per_layer; /* with a codec: one per layer, else NULL */
    const model_t *m;
    float *g;
    tally_request_t *req[DEEP_LAYERS];
    double seconds; /* spent starting calls this step */
} overlap_t;

static void start_layer(int l, void *ctx)
{
    overlap_t *ov = ctx;
    float *slice = ov->g + ov->m->off[l];
    const size_t count = ov->m->off[l + 1] - ov->m->off[l];
    const double t0 = MPI_Wtime();
    tally_status_t st =
        ov->per_layer ? tally_iallreduce_compressed(TALLY_IN_PLACE, slice, count, TALLY_FLOAT32,
                                                    TALLY_AVG, ov->per_layer[l], &ov->req[l])
                      : tally_iallreduce(TALLY_IN_PLACE, slice, count, TALLY_FLOAT32,
                                         TALLY_AVG, ov->comm, &ov->req[l]);
    ov->seconds += MPI_Wtime() - t0;
    if (st != TALLY_SUCCESS) {
        fprintf(stderr, "train: layer %d: iallreduce: %s\n", l, tally_strerror(st));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static tally_compressor_t *compressor_make(tally_comm_t *tc, const options_t *o, size_t count,
                                           int rank)
{
    char spec[256];
    snprintf(spec, sizeof spec, "%s%s", o->codec, o->no_ef ? ",ef=off" : "");
    tally_compressor_t *z;
    tally_status_t st = tally_compressor_create(tc, spec, count, TALLY_FLOAT32, &z);
    if (st != TALLY_SUCCESS) {
        if (rank == 0)
            fprintf(stderr, "train: --codec %s: %s\n", spec, tally_strerror(st));
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    return z;
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    options_t o;
    if (parse(argc, argv, &o) != 0) {
        if (rank == 0)
            usage();
        MPI_Finalize();
        return 2;
    }
    const model_kind_t kind = strcmp(o.model, "deep") == 0  ? MODEL_DEEP
                              : strcmp(o.model, "mlp") == 0 ? MODEL_MLP
                                                            : MODEL_LOGREG;
    /* Every step of logreg and mlp computes all layers' gradients sample by
     * sample, so no layer's gradient is final before the backward step ends. */
    const char *refusal = NULL;
    if (o.overlap && kind != MODEL_DEEP)
        refusal = "--overlap needs --model deep: logreg and mlp have no layer whose gradient "
                  "is ready before the backward step ends";
    /* Every rank takes the same number of steps: the smallest shard's. */
    const size_t steps_per_epoch = (o.train / (size_t)size) / (size_t)o.batch;
    if (steps_per_epoch == 0)
        refusal = "--train is less than one batch per rank";
    if (refusal) {
        if (rank == 0)
            fprintf(stderr, "train: %s\n", refusal);
        MPI_Finalize();
        return 2;
    }
    if (o.overlap && provided < MPI_THREAD_MULTIPLE && rank == 0)
        fprintf(stderr, "train: note: the MPI granted thread level %d, not "
                        "MPI_THREAD_MULTIPLE: started calls run inside tally_waitall, after "
                        "the backward step, so --overlap hides nothing\n", provided);
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
    model_init(&m, kind, o.batch, o.seed);
    float *g = malloc(m.nparams * sizeof *g);
    if (!g)
        MPI_Abort(MPI_COMM_WORLD, 1);
    /* With --overlap each layer is its own tensor, so each gets its own
     * compressor (and error-feedback state). */
    const int ncompressors = strcmp(o.codec, "none") == 0 ? 0 : o.overlap ? DEEP_LAYERS : 1;
    tally_compressor_t *z = NULL, *per_layer[DEEP_LAYERS] = {NULL};
    if (ncompressors == 1)
        z = compressor_make(tc, &o, m.nparams, rank);
    for (int l = 0; l < DEEP_LAYERS && ncompressors == DEEP_LAYERS; l++)
        per_layer[l] = compressor_make(tc, &o, m.off[l + 1] - m.off[l], rank);
    overlap_t ov = {.comm = tc, .per_layer = ncompressors == DEEP_LAYERS ? per_layer : NULL,
                    .m = &m, .g = g};
    FILE *out = rank == 0 && o.out ? fopen(o.out, "w") : NULL;
    if (rank == 0) {
        printf("# train: %s, %zu parameters, %d ranks, codec %s%s, batch %d per rank, lr %g",
               o.model, m.nparams, size, o.codec, o.no_ef ? " without error feedback" : "",
               o.batch, o.lr);
        if (kind == MODEL_DEEP)
            printf(", overlap %s", o.overlap ? "on" : "off");
        printf("\n# %5s %7s %9s %11s %10s %9s %14s\n", "epoch", "step", "seconds",
               "train_loss", "test_loss", "test_acc", "wire_bytes");
        if (out)
            fprintf(out, "# epoch step seconds train_loss test_loss test_acc wire_bytes\n");
    }
    const size_t eval_every = steps_per_epoch / (size_t)o.evals_per_epoch
                                  ? steps_per_epoch / (size_t)o.evals_per_epoch : 1;
    const size_t total = steps_per_epoch * (size_t)o.epochs;
    double *step_time = malloc(total * sizeof *step_time);
    double *step_comm = malloc(total * sizeof *step_comm);
    if (!step_time || !step_comm)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), loss_sum = 0.0, comm_time = 0.0;
    size_t loss_n = 0, step = 0;
    for (int epoch = 0; epoch < o.epochs; epoch++) {
        for (size_t b = 0; b < steps_per_epoch; b++, step++) {
            const double s0 = MPI_Wtime();
            const sample_t *batch = &train[b * (size_t)o.batch];
            memset(g, 0, m.nparams * sizeof *g);
            ov.seconds = 0.0;
            loss_sum += kind == MODEL_DEEP
                            ? deep_backward(&m, batch, o.batch, g, o.overlap ? start_layer : NULL,
                                            &ov)
                            : backward(&m, batch, o.batch, g);
            loss_n += (size_t)o.batch;
            double c0 = MPI_Wtime();
            tally_status_t st =
                o.overlap ? tally_waitall(DEEP_LAYERS, ov.req)
                : z ? tally_allreduce_compressed(TALLY_IN_PLACE, g, m.nparams, TALLY_FLOAT32,
                                                 TALLY_AVG, z)
                    : tally_allreduce(TALLY_IN_PLACE, g, m.nparams, TALLY_FLOAT32, TALLY_AVG, tc);
            const double comm = MPI_Wtime() - c0 + ov.seconds;
            comm_time += comm;
            if (st != TALLY_SUCCESS) {
                fprintf(stderr, "train: rank %d: allreduce: %s\n", rank, tally_strerror(st));
                MPI_Abort(MPI_COMM_WORLD, 1);
            }
            /* The rate falls linearly to a tenth, so the last evaluations
             * measure the model rather than the noise of its last steps. */
            const float lr = (float)(o.lr * (1.0 - 0.9 * (double)step / (double)total));
            for (size_t i = 0; i < m.nparams; i++)
                m.p[i] -= lr * g[i];
            step_time[step] = MPI_Wtime() - s0;
            step_comm[step] = comm;
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
                for (int l = 0; l < DEEP_LAYERS && per_layer[l]; l++) {
                    size_t layer_wire = 0;
                    tally_compressor_bytes(per_layer[l], &layer_wire, &plain);
                    wire += layer_wire;
                }
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
        if (kind == MODEL_DEEP)
            printf("# step on rank 0, median of %zu: %.2f ms, of which %.2f ms %s "
                   "(thread level %d)\n",
                   total, median(step_time, total) * 1e3, median(step_comm, total) * 1e3,
                   o.overlap ? "starting and waiting for the per-layer allreduces"
                             : "in the allreduce",
                   provided);
        if (out)
            fclose(out);
    }
    for (int l = 0; l < DEEP_LAYERS; l++)
        tally_compressor_destroy(per_layer[l]);
    tally_compressor_destroy(z);
    tally_comm_destroy(tc);
    free(step_time);
    free(step_comm);
    free(g);
    model_free(&m);
    free(train);
    free(test);
    MPI_Finalize();
    return rc;
}
