/* config.c - the one configuration table.  Each row names a TALLY_*
 * variable, its default, its documentation, a parser and the field it fills;
 * the same rows parse the environment and print `tally-info -c`.  Nothing
 * here logs: a bad value comes back as a status and a sentence for the
 * caller to report. */
#include "config.h"

#include "../compress/codec.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"

typedef struct config_field config_field_t;
typedef bool (*config_parse_fn)(const config_field_t *field, const char *text,
                                void *dst);

struct config_field {
    const char *name;
    const char *default_value;
    const char *doc;
    config_parse_fn parse;
    size_t offset;                /* of the destination in tally_config_t */
    const char *const *choices;   /* enum parsers: names, by value */
    size_t min, max;              /* numeric parsers: inclusive range */
};

static const char *const fallback_names[] = {"error", "warn", "silent", NULL};
static const char *const log_level_names[] = {"none", "error", "warn", "info",
                                              "debug", "trace", NULL};
/* In the order of tally_device_choice_t (mem.h). */
static const char *const device_names[] = {"auto", "none", "emulated", NULL};

static bool parse_algo(const config_field_t *field, const char *text, void *dst);
static bool parse_size_field(const config_field_t *field, const char *text, void *dst);
static bool parse_unsigned_field(const config_field_t *field, const char *text,
                                 void *dst);
static bool parse_enum(const config_field_t *field, const char *text, void *dst);
static bool parse_path(const config_field_t *field, const char *text, void *dst);
static bool parse_codec(const config_field_t *field, const char *text, void *dst);
static bool parse_rank_field(const config_field_t *field, const char *text, void *dst);
static bool parse_bool(const config_field_t *field, const char *text, void *dst);
static bool parse_seconds(const config_field_t *field, const char *text, void *dst);

#define FIELD(member) offsetof(tally_config_t, member)

static const config_field_t config_table[] = {
    {"TALLY_ALGO", "auto",
     "Algorithm for every allreduce: auto (tally's choice by size) or one "
     "of the algorithms listed below (tally-info --algorithms prints their "
     "names). A name tally does not have makes tally_comm_create fail; one "
     "whose restrictions do not fit follows TALLY_FALLBACK.",
     parse_algo, FIELD(algo), NULL, 0, 0},
    {"TALLY_SEGMENT_SIZE", "256K",
     "Bytes per pipelined message in the point-to-point algorithms (ring, "
     "recursive_doubling, rabenseifner): a received segment is reduced while "
     "the next ones are in flight; between nodes at most 63K (below the MPI's TCP "
     "eager limit). Suffixes K, M, G (powers of 1024); rounded down to whole "
     "elements, at least one.",
     parse_size_field, FIELD(segment_size), NULL, 1, (size_t)1 << 30},
    {"TALLY_PIPELINE_DEPTH", "4",
     "Segments in flight per peer in the point-to-point algorithms (1 to 64).",
     parse_unsigned_field, FIELD(pipeline_depth), NULL, 1, 64},
    {"TALLY_FALLBACK", "warn",
     "What happens when a forced algorithm (TALLY_ALGO or "
     "tally_comm_set_algorithm) cannot serve a call, for example mpi on "
     "float16: error (the call fails with TALLY_ERR_UNSUPPORTED), warn (tally's "
     "own choice runs, with one warning per communicator and algorithm) or "
     "silent (tally's own choice runs).",
     parse_enum, FIELD(fallback), fallback_names, 0, 0},
    {"TALLY_LOG_LEVEL", "warn",
     "Messages on stderr: none, error, warn, info, debug or trace, each "
     "adding to the ones before it. debug logs each choice once per "
     "communicator, algorithm and size class with its reason; trace logs "
     "every call.",
     parse_enum, FIELD(log_level), log_level_names, 0, 0},
    {"TALLY_PRELOAD", "on",
     "libtally-preload.so only: on (MPI_Allreduce calls that tally can serve "
     "go through tally) or off (every call goes straight to the MPI's own "
     "PMPI_Allreduce). Set the same value on every rank.",
     parse_bool, FIELD(preload), NULL, 0, 1},
    {"TALLY_COMPRESS", "",
     "libtally-preload.so only: a codec spec (tally(7), COMPRESSION: fp16, bf16, "
     "int8, topk:RATIO, sign, powersgd:RANK, options ,ef=off ,seed=N) that "
     "compresses float MPI_Allreduce sums across nodes from "
     "TALLY_COMPRESS_MIN_BYTES up, with error feedback kept per call site "
     "(communicator, count, datatype and receive buffer address); empty: off. "
     "Lossy: use it for gradients only. Set the same value on every rank.",
     parse_codec, FIELD(compress), NULL, 0, TALLY_ALGO_NAME_MAX - 1},
    {"TALLY_COMPRESS_MIN_BYTES", "256K",
     "libtally-preload.so only: calls smaller than this are never compressed "
     "(latency, not bytes, rules them). Suffixes K, M, G.",
     parse_size_field, FIELD(compress_min_bytes), NULL, 0, (size_t)1 << 40},
    {"TALLY_FUSION_BYTES", "1M",
     "Bytes of the fusion buffer of tally_allreduce_multi (one per communicator, "
     "grown on demand): consecutive tensors that fit together are packed into it "
     "and reduced in one call; a tensor as large goes alone. Larger buffers mean "
     "fewer calls, smaller ones keep the packing in cache (make bench-fusion). "
     "Suffixes K, M, G; the same on every rank.",
     parse_size_field, FIELD(fusion_bytes), NULL, 1, (size_t)1 << 40},
    {"TALLY_PROGRESS_THREAD", "1",
     "1: where the MPI grants MPI_THREAD_MULTIPLE, a thread per communicator runs "
     "its non-blocking calls (tally_iallreduce and the like) in order, overlapping "
     "the caller's work, and sleeps when idle; 0, or without MPI_THREAD_MULTIPLE: "
     "they run inside tally_test and tally_wait (no overlap). Set the same value on "
     "every rank.",
     parse_bool, FIELD(progress_thread), NULL, 0, 1},
    {"TALLY_DEVICE", "auto",
     "Device buffers: auto loads libtally-cuda.so (beside libtally.so) when it "
     "loads and sees a GPU, so that tally_allreduce takes device pointers; none "
     "never loads it (every buffer is host memory); emulated is for tests: a "
     "device made of host memory, its copies run by worker threads "
     "(tally_mem_alloc gives its memory), so that the device paths run without a "
     "GPU. tally-info shows what was loaded or why not. The same on every rank "
     "(auto may load on some nodes and not on others).",
     parse_enum, FIELD(device), device_names, 0, 0},
    {"TALLY_STAGE_CHUNK", "4M",
     "Bytes per chunk of the staged algorithm (device buffers through host "
     "memory): chunk k+1 is copied down and chunk k-1 copied up while chunk k "
     "is allreduced between hosts; two pinned buffers of this size are kept "
     "per communicator. Suffixes K, M, G; 64K to 1G; the same on every rank.",
     parse_size_field, FIELD(stage_chunk), NULL, 65536, (size_t)1 << 30},
    {"TALLY_CHECK", "0",
     "1: before every call the ranks compare its count, dtype, op, in-place-ness, "
     "memory type, call number and chosen algorithm (one allgather of 40 bytes "
     "per rank), and a disagreement fails the call on every rank with "
     "TALLY_ERR_ARGS_MISMATCH, naming the first rank and field that differ, "
     "before any data moves; without it such an erroneous program may hang or "
     "get wrong data. For debugging; the same on every rank. 0: off.",
     parse_bool, FIELD(check), NULL, 0, 1},
    {"TALLY_TIMEOUT", "0",
     "Seconds a call may wait for its peers (a decimal number; 0: forever). A call "
     "still waiting then fails with TALLY_ERR_TIMEOUT, naming the communicator, "
     "the call's number, its algorithm, what it waited for and for whom, and "
     "breaks the communicator; waits poll with growing sleeps instead of blocking "
     "inside the MPI. Covers tally's own waits (point-to-point algorithms, "
     "shared-memory barriers, the mpi algorithm as a non-blocking call), not the "
     "small agreements of set-up. The same on every rank.",
     parse_seconds, FIELD(timeout), NULL, 0, 0},
    {"TALLY_STATS", "0",
     "1 prints, at tally_comm_destroy (rank 0 of each communicator) and "
     "for libtally-preload.so at MPI_Finalize, a table on stderr: calls, "
     "bytes and seconds per algorithm, and calls that ran elsewhere counted "
     "by reason; 0 prints nothing.",
     parse_bool, FIELD(stats), NULL, 0, 1},
    {"TALLY_TRACE", "",
     "A path FILE: writes a Chrome trace (JSON for Perfetto / chrome://tracing) of every "
     "call: rank R writes FILE.R.json (one row per rank, pid = rank in "
     "MPI_COMM_WORLD); merge them with bench/tally-trace-merge. Empty: off.",
     parse_path, FIELD(trace), NULL, 0, TALLY_PATH_MAX - 1},
    {"TALLY_TUNING_FILE", "",
     "A tuning file (tally-tuning(5), written by tally-tune(1)) whose rows "
     "come before tally's own rules: the first row matching the "
     "communicator size, node count and byte count chooses the algorithm "
     "and segment size; TALLY_ALGO still overrides it. Rows naming an "
     "algorithm tally does not have are disabled with a warning; malformed "
     "lines are reported with file and line and skipped. A file that cannot "
     "be read, or is not a regular file (a FIFO, a device such as /dev/stdin), "
     "makes tally_comm_create fail at once. Empty: no file.",
     parse_path, FIELD(tuning_file), NULL, 0, TALLY_PATH_MAX - 1},
    {"TALLY_MODEL", "on",
     "on: tally's rules come from its alpha-beta cost model of the "
     "communicator (tally-info --explain BYTES shows the predictions); off: "
     "the built-in size thresholds decide.",
     parse_bool, FIELD(model), NULL, 0, 1},
    {"TALLY_CALIBRATE", "0",
     "1: tally_comm_create measures the cost model's latency and bandwidth "
     "per level (same package, same node, across nodes; short ping-pongs "
     "between one pair of ranks per level), the rate of a pairwise exchange "
     "across nodes (the ranks of two nodes exchanging both ways at once) and "
     "the reduction rate, and uses them instead of "
     "the built-in constants; takes tens of milliseconds on a fast network "
     "(about two seconds at 1 Gbit/s) and is collective, so set it on every "
     "rank. 0: built-in constants.",
     parse_bool, FIELD(calibrate), NULL, 0, 1},
    {"TALLY_SHM_CHUNK", "256K",
     "Bytes of a message that shm, hier and hier_leader move through the "
     "node's shared window at a time; each rank's window holds two such "
     "chunks, so one fills while the other drains. Larger chunks mean fewer "
     "barriers and, for hier, fewer allreduces across nodes; smaller ones "
     "stay in the cache. Suffixes K, M, G; 4K to 1G; the same on every rank.",
     parse_size_field, FIELD(shm_chunk), NULL, 4096, (size_t)1 << 30},
    {"TALLY_DEBUG_FAIL_SETUP", "none",
     "For tests of failure handling: the rank (in the communicator being "
     "created) whose last collective set-up step fails as if out of memory "
     "(the shared window on one node, the groups across nodes on several); "
     "every rank must then agree to run without them. none: no failure.",
     parse_rank_field, FIELD(fail_setup_rank), NULL, 0, INT_MAX},
};

#define CONFIG_FIELDS (sizeof config_table / sizeof config_table[0])

bool tally_config_parse_size(const char *text, size_t *out)
{
    /* Digits, an optional K/M/G suffix, nothing else: no sign, no spaces. */
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno == ERANGE)
        return false;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return false;
    }
    if (*end != '\0' || value > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)value << shift;
    return true;
}

bool tally_config_parse_unsigned(const char *text, unsigned *out)
{
    if (text[0] < '0' || text[0] > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (errno == ERANGE || *end != '\0' || value > UINT_MAX)
        return false;
    *out = (unsigned)value;
    return true;
}

static bool parse_algo(const config_field_t *field, const char *text, void *dst)
{
    (void)field;
    /* Only the spelling is checked here; the registry decides whether the
     * name exists, at tally_comm_create. */
    size_t len = strlen(text);
    if (len == 0 || len >= TALLY_ALGO_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    memcpy(dst, text, len + 1);
    return true;
}

static bool parse_size_field(const config_field_t *field, const char *text, void *dst)
{
    size_t value;
    if (!tally_config_parse_size(text, &value) || value < field->min || value > field->max)
        return false;
    *(size_t *)dst = value;
    return true;
}

/* "none" (-1) or a rank number. */
static bool parse_rank_field(const config_field_t *field, const char *text, void *dst)
{
    unsigned value;
    if (strcasecmp(text, "none") == 0) {
        *(int *)dst = -1;
        return true;
    }
    if (!tally_config_parse_unsigned(text, &value) || value > field->max)
        return false;
    *(int *)dst = (int)value;
    return true;
}

static bool parse_unsigned_field(const config_field_t *field, const char *text,
                                 void *dst)
{
    unsigned value;
    if (!tally_config_parse_unsigned(text, &value) || value < field->min ||
        value > field->max)
        return false;
    *(unsigned *)dst = value;
    return true;
}

static bool parse_seconds(const config_field_t *field, const char *text, void *dst)
{
    (void)field;
    char *end;
    errno = 0;
    const double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !(v >= 0) || v > 1e9)
        return false;
    *(double *)dst = v;
    return true;
}

/* Every on/off variable takes the same words. */
static const char *const bool_words[][2] = {{"0", "1"}, {"off", "on"}, {"no", "yes"},
                                           {"false", "true"}};

static bool parse_bool(const config_field_t *field, const char *text, void *dst)
{
    (void)field;
    for (size_t i = 0; i < sizeof bool_words / sizeof bool_words[0]; i++)
        for (int v = 0; v < 2; v++)
            if (strcasecmp(text, bool_words[i][v]) == 0) {
                *(int *)dst = v;
                return true;
            }
    return false;
}

static bool parse_enum(const config_field_t *field, const char *text, void *dst)
{
    for (int i = 0; field->choices[i]; i++) {
        if (strcasecmp(text, field->choices[i]) == 0) {
            *(int *)dst = i;
            return true;
        }
    }
    return false;
}

static bool parse_path(const config_field_t *field, const char *text, void *dst)
{
    size_t len = strlen(text);
    if (len > field->max)
        return false;
    memcpy(dst, text, len + 1);
    return true;
}

/* A codec spec that parses, or empty. */
static bool parse_codec(const config_field_t *field, const char *text, void *dst)
{
    tally_codec_spec_t spec;
    if (*text && tally_codec_spec_parse(text, &spec, NULL, 0) != TALLY_SUCCESS)
        return false;
    return parse_path(field, text, dst);
}

static void describe_expected(const config_field_t *field, char *buf, size_t len)
{
    if (field->choices) {
        size_t used = (size_t)snprintf(buf, len, "one of");
        for (int i = 0; field->choices[i] && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, " %s", field->choices[i]);
    } else if (field->parse == parse_algo) {
        snprintf(buf, len, "an algorithm name");
    } else if (field->parse == parse_path) {
        snprintf(buf, len, "a path of at most %zu bytes", field->max);
    } else if (field->parse == parse_seconds) {
        snprintf(buf, len, "seconds, a decimal number from 0 (forever) up");
    } else if (field->parse == parse_bool) {
        snprintf(buf, len, "0 or 1 (or off/on, no/yes, false/true)");
    } else if (field->parse == parse_size_field) {
        snprintf(buf, len, "a byte count from %zu to %zu: digits and an optional K, M or G "
                 "(powers of 1024)", field->min, field->max);
    } else if (field->parse == parse_codec) {
        snprintf(buf, len, "empty or a codec spec such as fp16 or topk:0.01 (tally(7))");
    } else {
        snprintf(buf, len, "a number from %zu to %zu", field->min, field->max);
    }
}

/* "12KB", "1MiB": the size without its B (or iB), when that parses. */
static void size_suffix_hint(const config_field_t *field, const char *text, char *hint,
                             size_t len)
{
    if (field->parse != parse_size_field)
        return;
    char trimmed[64];
    const size_t n = strlen(text);
    if (n < 2 || n >= sizeof trimmed || (text[n - 1] != 'B' && text[n - 1] != 'b'))
        return;
    snprintf(trimmed, sizeof trimmed, "%.*s", (int)(n - 1), text);
    size_t m = strlen(trimmed);
    if (m > 1 && (trimmed[m - 1] == 'i' || trimmed[m - 1] == 'I'))
        trimmed[m - 1] = '\0';
    size_t value;
    if (tally_config_parse_size(trimmed, &value))
        snprintf(hint, len, " (did you mean %s?)", trimmed);
}

tally_status_t tally_config_load(tally_config_t *cfg, char *err, size_t errlen)
{
    tally_config_t parsed;
    memset(&parsed, 0, sizeof parsed);
    for (size_t i = 0; i < CONFIG_FIELDS; i++) {
        const config_field_t *field = &config_table[i];
        const char *env = getenv(field->name);
        const char *text = env ? env : field->default_value;
        if (!field->parse(field, text, (char *)&parsed + field->offset)) {
            char expected[160], hint[96] = "";
            describe_expected(field, expected, sizeof expected);
            size_suffix_hint(field, text, hint, sizeof hint);
            snprintf(err, errlen, "%s=\"%s\" is not valid: expected %s%s", field->name,
                     text, expected, hint);
            return TALLY_ERR_INVALID_CONFIG;
        }
    }
    *cfg = parsed;
    return TALLY_SUCCESS;
}

tally_status_t tally_config_defaults(tally_config_t *cfg)
{
    tally_config_t parsed;
    memset(&parsed, 0, sizeof parsed);
    for (size_t i = 0; i < CONFIG_FIELDS; i++) {
        const config_field_t *field = &config_table[i];
        if (!field->parse(field, field->default_value, (char *)&parsed + field->offset))
            return TALLY_ERR_INVALID_CONFIG;
    }
    *cfg = parsed;
    return TALLY_SUCCESS;
}

tally_log_level_t tally_config_log_level_from_env(void)
{
    const config_field_t *field = NULL;
    for (size_t i = 0; i < CONFIG_FIELDS; i++)
        if (config_table[i].offset == FIELD(log_level))
            field = &config_table[i];
    int level = TALLY_LOG_WARN;
    const char *env = getenv(field->name);
    if (env)
        parse_enum(field, env, &level);
    return (tally_log_level_t)level;
}

/* Edit distance of two short names (for suggestions). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            const size_t up = row[j];
            const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* TALLY_* names that are not tally's own settings but are documented
 * elsewhere: the Python binding's library path, the tests' knobs and the
 * GPU script's. */
static bool used_elsewhere(const char *name)
{
    return strcmp(name, "TALLY_LIBRARY") == 0 || strcmp(name, "TALLY_GPU_DEVICE") == 0 ||
           strncmp(name, "TALLY_TEST_", 11) == 0;
}

bool tally_config_unknown(char *msg, size_t len)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "TALLY_", 6) != 0)
            continue;
        char name[128];
        const size_t n = strcspn(*e, "=");
        if (n >= sizeof name)
            continue;
        memcpy(name, *e, n);
        name[n] = '\0';
        if (used_elsewhere(name))
            continue;
        const char *closest = NULL;
        size_t best = SIZE_MAX;
        bool known = false;
        for (size_t i = 0; i < CONFIG_FIELDS && !known; i++) {
            known = strcmp(name, config_table[i].name) == 0;
            const size_t d = distance(name, config_table[i].name);
            if (d < best) {
                best = d;
                closest = config_table[i].name;
            }
        }
        /* A longer spelling of a name (TALLY_ALGORITHM) is a likely slip too. */
        for (size_t i = 0; i < CONFIG_FIELDS && !known; i++)
            if (strncmp(name, config_table[i].name, strlen(config_table[i].name)) == 0) {
                closest = config_table[i].name;
                best = 0;
            }
        if (known)
            continue;
        if (closest && best <= 4)
            snprintf(msg, len, "%s is not a tally variable (did you mean %s?); tally-info -c "
                     "lists them", name, closest);
        else
            snprintf(msg, len, "%s is not a tally variable; tally-info -c lists them", name);
        return true;
    }
    return false;
}

uint64_t tally_config_hash(const tally_config_t *cfg)
{
    /* Field by field: padding bytes must not make equal configs differ.
     * log_level is left out on purpose: ranks may be verbose on their own. */
    uint64_t h = TALLY_HASH_INIT;
    h = tally_hash_fnv1a(h, cfg->algo, strlen(cfg->algo));
    uint64_t segment = cfg->segment_size;
    h = tally_hash_fnv1a(h, &segment, sizeof segment);
    h = tally_hash_fnv1a(h, &cfg->pipeline_depth, sizeof cfg->pipeline_depth);
    int fallback = (int)cfg->fallback;
    h = tally_hash_fnv1a(h, &fallback, sizeof fallback);
    /* The tuning file's path may differ between nodes; the rule table it
     * yields is compared separately.  Calibration is collective, so ranks
     * must agree on it before it starts.  TALLY_TRACE and TALLY_STATS only
     * record what runs, so ranks may differ there. */
    h = tally_hash_fnv1a(h, &cfg->model, sizeof cfg->model);
    h = tally_hash_fnv1a(h, &cfg->calibrate, sizeof cfg->calibrate);
    uint64_t chunk = cfg->shm_chunk;
    h = tally_hash_fnv1a(h, &chunk, sizeof chunk);
    uint64_t stage = cfg->stage_chunk;
    h = tally_hash_fnv1a(h, &stage, sizeof stage);
    h = tally_hash_fnv1a(h, &cfg->check, sizeof cfg->check); /* a collective per call */
    /* The preload decides collectively whether to compress a call. */
    h = tally_hash_fnv1a(h, cfg->compress, strlen(cfg->compress));
    uint64_t min_bytes = cfg->compress_min_bytes;
    h = tally_hash_fnv1a(h, &min_bytes, sizeof min_bytes);
    /* Fused calls group tensors by the fusion buffer's size, the mpi
     * algorithm starts its call non-blocking under a timeout, and the
     * device backend decides which calls the fast path may serve: ranks
     * that differed there would run different collectives. */
    uint64_t fusion = cfg->fusion_bytes;
    h = tally_hash_fnv1a(h, &fusion, sizeof fusion);
    h = tally_hash_fnv1a(h, &cfg->timeout, sizeof cfg->timeout);
    h = tally_hash_fnv1a(h, &cfg->device, sizeof cfg->device);
    return h;
}

/* Writes text wrapped at about 76 columns: the first line after `first`
 * (already `indent` columns wide), the others indented by `indent`. */
static void write_wrapped(FILE *stream, const char *first, int indent, const char *text)
{
    const size_t width = 76 - (size_t)indent;
    const char *p = text;
    fputs(first, stream);
    while (*p) {
        size_t n = strlen(p);
        if (n > width) {
            n = width;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0)
                n = width;
        }
        fprintf(stream, "%*s%.*s\n", p == text ? 0 : indent, "", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

/* TALLY_ALGO's list: every algorithm the registry has, with its summary,
 * through the public introspection (config.c knows no algorithm). */
static void write_algorithms(FILE *stream)
{
    int width = 0;
    for (int i = 0; i < tally_algorithm_count(); i++) {
        int len = (int)strlen(tally_algorithm_name(i));
        width = len > width ? len : width;
    }
    fprintf(stream, "    algorithms:\n");
    for (int i = 0; i < tally_algorithm_count(); i++) {
        char first[TALLY_ALGO_NAME_MAX + 16];
        snprintf(first, sizeof first, "      %-*s  ", width, tally_algorithm_name(i));
        write_wrapped(stream, first, 6 + width + 2, tally_algorithm_summary(i));
    }
}

void tally_config_write(FILE *stream)
{
    for (size_t i = 0; i < CONFIG_FIELDS; i++) {
        const config_field_t *field = &config_table[i];
        const char *env = getenv(field->name);
        fprintf(stream, "%s\n    default: %s\n    current: %s%s\n", field->name,
                field->default_value, env ? env : field->default_value,
                env ? "" : " (default)");
        write_wrapped(stream, "    ", 4, field->doc);
        if (field->parse == parse_algo)
            write_algorithms(stream);
    }
}

tally_status_t tally_config_lookup(const char *name, char *value, size_t len, char *err,
                                   size_t errlen)
{
    if (!name || !value || len == 0)
        return TALLY_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < CONFIG_FIELDS; i++) {
        const config_field_t *field = &config_table[i];
        if (strcmp(field->name, name) != 0)
            continue;
        const char *env = getenv(field->name);
        const char *text = env ? env : field->default_value;
        /* Parsed into scratch space: only a valid value is handed out. */
        tally_config_t scratch;
        if (!field->parse(field, text, (char *)&scratch + field->offset)) {
            char expected[128];
            describe_expected(field, expected, sizeof expected);
            snprintf(err, errlen, "%s=\"%s\" is not valid: expected %s", name, text,
                     expected);
            return TALLY_ERR_INVALID_CONFIG;
        }
        if (strlen(text) >= len)
            return TALLY_ERR_INVALID_ARGUMENT;
        strcpy(value, text);
        return TALLY_SUCCESS;
    }
    return TALLY_ERR_INVALID_ARGUMENT;
}

tally_status_t tally_config_print(FILE *stream)
{
    if (!stream)
        return TALLY_ERR_INVALID_ARGUMENT;
    tally_config_write(stream);
    return TALLY_SUCCESS;
}
