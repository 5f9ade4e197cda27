/* whatif.c - a what-if cluster from a spec (see whatif.h): parse the
 * items, lay the ranks on the nodes as mpirun --map-by slot or node would,
 * derive the shape from the entries every rank would have contributed, set
 * the model's figures and build the plan. */
#include "whatif.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum value_kind {
    VALUE_COUNT,     /* a positive integer */
    VALUE_LIST,      /* ppn: counts, the first after '=', the others bare items */
    VALUE_PLACEMENT, /* slot | node */
    VALUE_TIME,      /* seconds */
    VALUE_RATE,      /* bytes per second */
    VALUE_SIZE,      /* bytes */
    VALUE_SHARE      /* a number above 0 and at most 1 */
} value_kind_t;

/* What the spec says; a field is "not given" as 0 (counts, sizes) or -1
 * (times and rates). */
typedef struct spec {
    int nodes;
    int *ppn, nppn;
    int by_node; /* placement=node */
    int packages, cores;
    size_t cache, chunk;
    double latency, bandwidth, node_latency, node_bandwidth, copy, reduce, barrier, duplex;
} spec_t;

typedef struct key {
    const char *name;
    value_kind_t kind;
    size_t offset; /* of the field in spec_t */
    long long min, max; /* counts and sizes */
} spec_key_t;

#define AT(field) offsetof(spec_t, field)
static const spec_key_t keys[] = {
    {"nodes", VALUE_COUNT, AT(nodes), 1, TALLY_WHATIF_MAX_RANKS},
    {"ppn", VALUE_LIST, AT(ppn), 1, TALLY_WHATIF_MAX_RANKS},
    {"placement", VALUE_PLACEMENT, AT(by_node), 0, 0},
    {"packages", VALUE_COUNT, AT(packages), 1, 1024},
    {"cores", VALUE_COUNT, AT(cores), 1, 1 << 20},
    {"latency", VALUE_TIME, AT(latency), 0, 0},
    {"bandwidth", VALUE_RATE, AT(bandwidth), 0, 0},
    {"duplex", VALUE_SHARE, AT(duplex), 0, 0},
    {"node_latency", VALUE_TIME, AT(node_latency), 0, 0},
    {"node_bandwidth", VALUE_RATE, AT(node_bandwidth), 0, 0},
    {"copy", VALUE_RATE, AT(copy), 0, 0},
    {"reduce", VALUE_RATE, AT(reduce), 0, 0},
    {"barrier", VALUE_TIME, AT(barrier), 0, 0},
    {"cache", VALUE_SIZE, AT(cache), 1024, (long long)INT_MAX << 10},
    {"chunk", VALUE_SIZE, AT(chunk), 4096, 1LL << 30},
};
#define NKEYS (sizeof keys / sizeof keys[0])
#define KEY_NAMES                                                                     \
    "nodes, ppn, placement, packages, cores, latency, bandwidth, duplex, node_latency, "\
    "node_bandwidth, copy, reduce, barrier, cache, chunk"

typedef struct unit {
    const char *name;
    double factor;
    bool any_case;
} unit_t;

static const unit_t time_units[] = {
    {"s", 1.0, false}, {"ms", 1e-3, false}, {"us", 1e-6, false}, {"ns", 1e-9, false},
};
#define TIME_UNITS "s, ms, us or ns"

/* Bits per second in any case ("Gbit", "gbit"); bytes per second with the
 * case that tells bytes from bits. */
static const unit_t rate_units[] = {
    {"gbit", 1e9 / 8, true},  {"mbit", 1e6 / 8, true},     {"kbit", 1e3 / 8, true},
    {"gbit/s", 1e9 / 8, true}, {"mbit/s", 1e6 / 8, true},  {"kbit/s", 1e3 / 8, true},
    {"GB/s", 1e9, false},     {"MB/s", 1e6, false},        {"kB/s", 1e3, false},
    {"KB/s", 1e3, false},     {"GiB/s", 1073741824.0, false}, {"MiB/s", 1048576.0, false},
};
static const unit_t share_units[] = {{"", 1.0, false}, {"%", 0.01, false}};

#define RATE_UNITS "gbit, mbit, kbit (bits per second), GB/s, MB/s, kB/s, GiB/s or MiB/s"

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(err, errlen, "what-if spec: ");
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bool parse_count(const char *text, long long min, long long max, long long *out)
{
    if (!isdigit((unsigned char)text[0]))
        return false;
    long long v = 0;
    for (const char *c = text; *c; c++) {
        if (!isdigit((unsigned char)*c))
            return false;
        v = v * 10 + (*c - '0');
        if (v > max)
            return false;
    }
    if (v < min)
        return false;
    *out = v;
    return true;
}

/* A decimal number (digits, '.', an exponent; no sign, no hex, no inf)
 * followed by one of `units`; the value in the units' base. */
static bool parse_quantity(const char *text, const unit_t *units, size_t nunits, double *out)
{
    if (!(isdigit((unsigned char)text[0]) || text[0] == '.') ||
        (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')))
        return false;
    char *unit;
    double v = strtod(text, &unit);
    if (unit == text || !isfinite(v))
        return false;
    for (size_t i = 0; i < nunits; i++) {
        if (units[i].any_case ? strcasecmp(unit, units[i].name) == 0
                              : strcmp(unit, units[i].name) == 0) {
            *out = v * units[i].factor;
            return isfinite(*out);
        }
    }
    return false;
}

static bool append_ppn(spec_t *s, long long v)
{
    int *grown = realloc(s->ppn, (size_t)(s->nppn + 1) * sizeof *grown);
    if (!grown)
        return false;
    s->ppn = grown;
    s->ppn[s->nppn++] = (int)v;
    return true;
}

/* key=value, with key and value trimmed. */
static bool parse_item(spec_t *s, const spec_key_t *k, const char *item, const char *value,
                       bool *oom, char *err, size_t errlen)
{
    void *field = (char *)s + k->offset;
    long long n;
    double q;
    switch (k->kind) {
    case VALUE_COUNT:
        if (!parse_count(value, k->min, k->max, &n))
            return fail(err, errlen, "\"%s\": %s= takes a whole number from %lld to %lld",
                        item, k->name, k->min, k->max);
        *(int *)field = (int)n;
        return true;
    case VALUE_LIST:
        if (!parse_count(value, k->min, k->max, &n))
            return fail(err, errlen,
                        "\"%s\": ppn= takes ranks per node from 1 to %lld, one number for "
                        "every node or one per node (ppn=2,1,2)",
                        item, k->max);
        if (!append_ppn(s, n)) {
            *oom = true;
            return false;
        }
        return true;
    case VALUE_PLACEMENT:
        if (strcmp(value, "slot") == 0)
            *(int *)field = 0;
        else if (strcmp(value, "node") == 0)
            *(int *)field = 1;
        else
            return fail(err, errlen,
                        "\"%s\": placement= is slot (consecutive ranks fill a node) or node "
                        "(round-robin over the nodes), as mpirun --map-by",
                        item);
        return true;
    case VALUE_TIME:
        if (!parse_quantity(value, time_units, sizeof time_units / sizeof time_units[0], &q))
            return fail(err, errlen, "\"%s\": %s= takes a time: a number and %s", item,
                        k->name, TIME_UNITS);
        *(double *)field = q;
        return true;
    case VALUE_RATE:
        if (!parse_quantity(value, rate_units, sizeof rate_units / sizeof rate_units[0], &q) ||
            !(q > 0.0))
            return fail(err, errlen, "\"%s\": %s= takes a rate above 0: a number and %s",
                        item, k->name, RATE_UNITS);
        *(double *)field = q;
        return true;
    case VALUE_SHARE:
        if (!parse_quantity(value, share_units, sizeof share_units / sizeof share_units[0],
                            &q) ||
            !(q > 0.0 && q <= 1.0))
            return fail(err, errlen, "\"%s\": %s= takes a share above 0 and at most 1: "
                        "0.9 or 90%%", item, k->name);
        *(double *)field = q;
        return true;
    case VALUE_SIZE: {
        size_t v;
        if (!tally_config_parse_size(value, &v) || (long long)v < k->min ||
            (unsigned long long)v > (unsigned long long)k->max)
            return fail(err, errlen,
                        "\"%s\": %s= takes bytes from %lld to %lld (digits with K, M or G, "
                        "powers of 1024)",
                        item, k->name, k->min, k->max);
        *(size_t *)field = v;
        return true;
    }
    }
    return false;
}

static char *trim(char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    return text;
}

/* Fills *s from the text; false with err set (or *oom) on failure. */
static bool parse_spec(const char *text, spec_t *s, bool *oom, char *err, size_t errlen)
{
    *s = (spec_t){.latency = -1, .bandwidth = -1, .node_latency = -1, .node_bandwidth = -1,
                  .copy = -1, .reduce = -1, .barrier = -1, .duplex = -1};
    char *copy = strdup(text);
    if (!copy) {
        *oom = true;
        return false;
    }
    bool ok = true, seen[NKEYS] = {false};
    const spec_key_t *last = NULL;
    char *rest = copy;
    if (*trim(copy) == '\0')
        ok = fail(err, errlen, "empty; it needs ppn= (and nodes= unless ppn= lists every "
                               "node), for example nodes=32,ppn=1,bandwidth=1gbit");
    while (ok && rest) {
        char *comma = strchr(rest, ',');
        if (comma)
            *comma = '\0';
        char *item = trim(rest);
        rest = comma ? comma + 1 : NULL;
        char *eq = strchr(item, '=');
        if (*item == '\0') {
            ok = fail(err, errlen, "an empty item (two commas in a row, or one at an end)");
            break;
        }
        if (!eq) {
            /* A bare count continues ppn's list. */
            if (last && last->kind == VALUE_LIST) {
                ok = parse_item(s, last, item, item, oom, err, errlen);
                continue;
            }
            ok = fail(err, errlen,
                      "\"%s\" is not key=value (only ppn= takes a list: ppn=2,1,2); keys: %s",
                      item, KEY_NAMES);
            break;
        }
        *eq = '\0';
        char *name = trim(item), *value = trim(eq + 1);
        const spec_key_t *k = NULL;
        for (size_t i = 0; i < NKEYS && !k; i++)
            if (strcmp(name, keys[i].name) == 0)
                k = &keys[i];
        if (!k) {
            ok = fail(err, errlen, "no key \"%s\"; keys: %s", name, KEY_NAMES);
            break;
        }
        if (seen[k - keys]) {
            ok = fail(err, errlen, "%s= is given twice", k->name);
            break;
        }
        seen[k - keys] = true;
        *eq = '=';
        ok = parse_item(s, k, item, value, oom, err, errlen);
        last = k;
    }
    free(copy);
    if (!ok)
        return false;
    if (s->nppn == 0)
        return fail(err, errlen, "ppn= is missing: ranks per node, one number for every "
                                 "node (with nodes=) or one per node (ppn=2,1,2)");
    if (s->nppn == 1) {
        if (s->nodes == 0)
            return fail(err, errlen, "nodes= is missing (ppn=%d gives the ranks of every "
                                     "node, not how many nodes there are)",
                        s->ppn[0]);
        int *every = realloc(s->ppn, (size_t)s->nodes * sizeof *every);
        if (!every) {
            *oom = true;
            return false;
        }
        for (int n = 1; n < s->nodes; n++)
            every[n] = every[0];
        s->ppn = every;
        s->nppn = s->nodes;
    } else if (s->nodes != 0 && s->nodes != s->nppn) {
        return fail(err, errlen, "nodes=%d but ppn= lists %d nodes", s->nodes, s->nppn);
    }
    s->nodes = s->nppn;
    long long ranks = 0;
    for (int n = 0; n < s->nodes; n++)
        ranks += s->ppn[n];
    if (ranks > TALLY_WHATIF_MAX_RANKS)
        return fail(err, errlen, "%lld ranks (nodes times ppn); at most %d", ranks,
                    TALLY_WHATIF_MAX_RANKS);
    return true;
}

/* The entries each rank would contribute to tally_shape_create's allgather,
 * placed by slot (a node's ranks consecutive) or by node (round-robin over
 * the nodes that still have a free slot, as mpirun --map-by node). */
static tally_shape_entry_t *place(const spec_t *s, int ranks)
{
    tally_shape_entry_t *e = malloc((size_t)ranks * sizeof *e);
    int *used = calloc((size_t)s->nodes, sizeof *used);
    int *leader = malloc((size_t)s->nodes * sizeof *leader);
    if (!e || !used || !leader) {
        free(e);
        e = NULL;
        goto done;
    }
    const int packages = s->packages ? s->packages : 1;
    const int cache_kib = (int)(s->cache >> 10);
    for (int r = 0, n = 0; r < ranks;) {
        if (s->by_node) {
            while (used[n] == s->ppn[n])
                n = (n + 1) % s->nodes;
        } else if (used[n] == s->ppn[n]) {
            n++;
            continue;
        }
        if (used[n] == 0)
            leader[n] = r;
        e[r] = (tally_shape_entry_t){leader[n], (int)((long long)used[n] * packages / s->ppn[n]),
                                     s->cores, cache_kib};
        used[n]++;
        r++;
        if (s->by_node)
            n = (n + 1) % s->nodes;
    }
done:
    free(leader);
    free(used);
    return e;
}

tally_status_t tally_whatif_build(const char *text, tally_whatif_t *w, char *err,
                                  size_t errlen)
{
    if (!text || !w) {
        fail(err, errlen, "NULL");
        return TALLY_ERR_INVALID_ARGUMENT;
    }
    spec_t s;
    bool oom = false;
    if (!parse_spec(text, &s, &oom, err, errlen)) {
        free(s.ppn);
        return oom ? TALLY_ERR_NO_MEMORY : TALLY_ERR_INVALID_ARGUMENT;
    }
    int ranks = 0;
    for (int n = 0; n < s.nodes; n++)
        ranks += s.ppn[n];
    tally_shape_entry_t *entries = place(&s, ranks);
    free(s.ppn);
    if (!entries)
        return TALLY_ERR_NO_MEMORY;
    tally_shape_t shape;
    tally_status_t st = tally_shape_derive(ranks, 0, entries, &shape);
    free(entries);
    if (st != TALLY_SUCCESS)
        return st;

    tally_config_t config;
    st = tally_config_defaults(&config);
    if (st != TALLY_SUCCESS) {
        tally_shape_free(&shape);
        return st;
    }
    if (s.chunk)
        config.shm_chunk = s.chunk;
    tally_model_t model;
    tally_model_defaults(&model, &shape);
    model.shm_chunk = config.shm_chunk;
    model.what_if = true;
    if (s.latency >= 0)
        model.link[TALLY_LEVEL_NETWORK].alpha = s.latency;
    if (s.bandwidth > 0)
        model.link[TALLY_LEVEL_NETWORK].beta = 1.0 / s.bandwidth;
    if (s.duplex > 0)
        model.duplex = s.duplex;
    if (s.node_latency >= 0)
        model.link[TALLY_LEVEL_PACKAGE].alpha = model.link[TALLY_LEVEL_NODE].alpha =
            s.node_latency;
    if (s.node_bandwidth > 0)
        model.link[TALLY_LEVEL_PACKAGE].beta = model.link[TALLY_LEVEL_NODE].beta =
            1.0 / s.node_bandwidth;
    if (s.copy > 0)
        model.copy = 1.0 / s.copy;
    if (s.reduce > 0)
        model.gamma = 1.0 / s.reduce;
    if (s.barrier >= 0)
        model.shm_sync = s.barrier;

    tally_plan_t plan;
    st = tally_plan_build(&plan, &config, &shape, &model, 0);
    if (st != TALLY_SUCCESS) {
        tally_shape_free(&shape);
        return st;
    }
    w->shape = shape;
    w->model = model;
    w->config = config;
    w->sel = (tally_selector_t){.plan = plan, .shape = &w->shape, .config = &w->config};
    return TALLY_SUCCESS;
}

void tally_whatif_free(tally_whatif_t *w)
{
    tally_plan_free(&w->sel.plan);
    tally_shape_free(&w->shape);
}
