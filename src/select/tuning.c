/* tuning.c - the tuning-file parser and writer (tally-tuning(5)).
 *
 * Depends on libc and tuning.h only: tests/fuzz/fuzz_tuning.c compiles this
 * file alone with clang's libFuzzer.
 *
 * The parser walks the buffer once, line by line, never past `len` and never
 * needing a terminating NUL.  Each line is cut into at most six fields of
 * (pointer, length) at blanks (space, tab) up to the first '#'; nothing is
 * copied or modified, so it is reentrant (no strtok, no static state).
 * Numbers are read digit by digit with explicit overflow checks, so signs,
 * blanks and "0x" prefixes that strtoull would accept can never slip in.
 * Every line gets at most one report: its first problem, in the order line
 * length, NUL byte, field count, then fields left to right.
 */
#include "tuning.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TUNING_FILE_MAX ((size_t)1 << 20) /* bytes tally_tuning_load reads */
#define MSG_MAX 512                       /* one report message */
#define QUOTE_MAX 40                      /* bytes of a field quoted in a message */
#define FIELDS_MAX 5                      /* ranks nodes bytes algorithm segment */

typedef struct field {
    const char *p;
    size_t n;
} field_t;

/* --- messages ------------------------------------------------------------ */

/* Writes f as a C-like string literal body: at most QUOTE_MAX bytes, bytes
 * outside printable ASCII (and '"', '\\') as \xNN, "..." when cut. */
static void quote(char *out, size_t outlen, field_t f)
{
    size_t o = 0;
    for (size_t i = 0; i < f.n && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)f.p[i];
        if (o + 5 >= outlen)
            break;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
    }
    if (f.n > QUOTE_MAX && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

typedef struct reporter {
    tally_tuning_report_fn fn;
    void *ctx;
} reporter_t;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void report(const reporter_t *r, unsigned line, const char *fmt, ...)
{
    if (r->fn == NULL)
        return;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->fn(r->ctx, line, msg);
}

/* --- numbers and ranges ---------------------------------------------------- */

typedef enum num_status {
    NUM_OK,
    NUM_EMPTY,     /* no characters */
    NUM_SIGN,      /* starts with '+' or '-' */
    NUM_SUFFIX,    /* a K/M/G suffix where none is allowed */
    NUM_SYNTAX,    /* anything else that is not digits [suffix] */
    NUM_TOO_LARGE  /* above `limit`, including a suffix that overflows */
} num_status_t;

/* Digits, then (if `suffix`) one of K M G k m g, then the end of the field.
 * The value must not exceed `limit`. */
static num_status_t parse_number(field_t f, bool suffix, uint64_t limit, uint64_t *out)
{
    if (f.n == 0)
        return NUM_EMPTY;
    if (f.p[0] == '+' || f.p[0] == '-')
        return NUM_SIGN;
    size_t digits = 0;
    while (digits < f.n && f.p[digits] >= '0' && f.p[digits] <= '9')
        digits++;
    if (digits == 0)
        return NUM_SYNTAX;
    unsigned shift = 0;
    if (digits < f.n) {
        switch (f.p[digits]) {
        case 'K': case 'k': shift = 10; break;
        case 'M': case 'm': shift = 20; break;
        case 'G': case 'g': shift = 30; break;
        default: return NUM_SYNTAX;
        }
        if (digits + 1 != f.n)
            return NUM_SYNTAX;
        if (!suffix)
            return NUM_SUFFIX;
    }
    uint64_t value = 0;
    for (size_t i = 0; i < digits; i++) {
        unsigned d = (unsigned)(f.p[i] - '0');
        if (value > (UINT64_MAX - d) / 10)
            return NUM_TOO_LARGE;
        value = value * 10 + d;
    }
    if (value > (limit >> shift))
        return NUM_TOO_LARGE;
    *out = value << shift;
    return NUM_OK;
}

typedef struct range_kind {
    const char *what;   /* "ranks", "nodes", "bytes" */
    bool suffix;        /* K/M/G allowed */
    uint64_t min, max;  /* allowed values; max is also the open upper end */
} range_kind_t;

/* Reports why number `num` (part of range field `f`) is not acceptable. */
static void report_number(const reporter_t *r, unsigned line, const range_kind_t *k,
                          field_t f, field_t num, num_status_t st)
{
    char q[QUOTE_MAX * 4 + 8], qn[QUOTE_MAX * 4 + 8];
    quote(q, sizeof q, f);
    quote(qn, sizeof qn, num);
    switch (st) {
    case NUM_SIGN:
        report(r, line, "%s range \"%s\": numbers take no sign", k->what, q);
        break;
    case NUM_SUFFIX:
        report(r, line, "%s range \"%s\": %s take no K, M or G suffix", k->what, q, k->what);
        break;
    case NUM_TOO_LARGE:
        if (num.n == f.n)
            report(r, line, "%s range \"%s\" is above the maximum %llu", k->what, q,
                   (unsigned long long)k->max);
        else
            report(r, line, "%s range \"%s\": \"%s\" is above the maximum %llu", k->what, q, qn,
                   (unsigned long long)k->max);
        break;
    default:
        report(r, line, "%s range \"%s\" is not '*', N, N-M or N- (N: %s)", k->what, q,
               k->suffix ? "digits with an optional K, M or G suffix" : "decimal digits");
        break;
    }
}

/* RANGE: '*', N, N-M, N- or N-*.  Reports and returns false when malformed. */
static bool parse_range(const reporter_t *r, unsigned line, const range_kind_t *k, field_t f,
                        uint64_t *lo, uint64_t *hi)
{
    if (f.n == 1 && f.p[0] == '*') {
        *lo = k->min;
        *hi = k->max;
        return true;
    }
    const char *dash = memchr(f.p, '-', f.n);
    field_t a = f, b = {NULL, 0};
    bool open = false;
    if (dash != NULL) {
        a.n = (size_t)(dash - f.p);
        b.p = dash + 1;
        b.n = f.n - a.n - 1;
        if (a.n == 0) { /* "-5": a sign, or a bare '-' */
            bool digit = f.n > 1 && f.p[1] >= '0' && f.p[1] <= '9';
            report_number(r, line, k, f, f, digit ? NUM_SIGN : NUM_SYNTAX);
            return false;
        }
        open = b.n == 0 || (b.n == 1 && b.p[0] == '*');
    }
    num_status_t st = parse_number(a, k->suffix, k->max, lo);
    if (st != NUM_OK) {
        report_number(r, line, k, f, a, st);
        return false;
    }
    if (dash == NULL) {
        *hi = *lo;
    } else if (open) {
        *hi = k->max;
    } else {
        st = parse_number(b, k->suffix, k->max, hi);
        if (st != NUM_OK) {
            report_number(r, line, k, f, b, st);
            return false;
        }
    }
    char q[QUOTE_MAX * 4 + 8];
    if (*lo < k->min || *hi < k->min) {
        quote(q, sizeof q, f);
        report(r, line, "%s range \"%s\": %s start at %llu", k->what, q, k->what,
               (unsigned long long)k->min);
        return false;
    }
    if (*lo > *hi) {
        quote(q, sizeof q, f);
        report(r, line, "%s range \"%s\" is empty", k->what, q);
        return false;
    }
    return true;
}

static const range_kind_t ranks_kind = {"ranks", false, 1, INT_MAX};
static const range_kind_t nodes_kind = {"nodes", false, 1, INT_MAX};
static const range_kind_t bytes_kind = {"bytes", true, 0, SIZE_MAX};

/* --- one line -------------------------------------------------------------- */

/* Parses the data fields of one line into *rule.  Reports and returns false
 * when malformed.  `nfields` may exceed FIELDS_MAX (only the first
 * FIELDS_MAX + 1 are stored). */
static bool parse_fields(const reporter_t *r, unsigned line, const field_t *fld, size_t nfields,
                         tally_rule_t *rule)
{
    char q[QUOTE_MAX * 4 + 8];
    if (nfields < 4) {
        report(r, line,
               "too few fields (%zu): expected RANKS NODES BYTES ALGORITHM [SEGMENT]", nfields);
        return false;
    }
    if (nfields > FIELDS_MAX) {
        quote(q, sizeof q, fld[FIELDS_MAX]);
        report(r, line,
               "unknown field \"%s\" after the segment: expected RANKS NODES BYTES ALGORITHM "
               "[SEGMENT] (comments start with '#')",
               q);
        return false;
    }

    uint64_t lo, hi;
    memset(rule, 0, sizeof *rule);
    if (!parse_range(r, line, &ranks_kind, fld[0], &lo, &hi))
        return false;
    rule->min_ranks = (int)lo;
    rule->max_ranks = (int)hi;
    if (!parse_range(r, line, &nodes_kind, fld[1], &lo, &hi))
        return false;
    rule->min_nodes = (int)lo;
    rule->max_nodes = (int)hi;
    if (!parse_range(r, line, &bytes_kind, fld[2], &lo, &hi))
        return false;
    rule->min_bytes = (size_t)lo;
    rule->max_bytes = (size_t)hi;

    field_t name = fld[3];
    for (size_t i = 0; i < name.n; i++) {
        char c = name.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            quote(q, sizeof q, name);
            report(r, line, "algorithm name \"%s\" may hold only a-z, 0-9 and _", q);
            return false;
        }
    }
    if (name.n >= TALLY_RULE_NAME_MAX) {
        quote(q, sizeof q, name);
        report(r, line, "algorithm name \"%s\" is longer than %d characters", q,
               TALLY_RULE_NAME_MAX - 1);
        return false;
    }
    memcpy(rule->algo, name.p, name.n);
    rule->algo[name.n] = '\0';

    rule->segment = 0;
    if (nfields == FIELDS_MAX && !(fld[4].n == 1 && fld[4].p[0] == '-')) {
        uint64_t seg = 0;
        num_status_t st = parse_number(fld[4], true, TALLY_SEGMENT_MAX, &seg);
        if (st != NUM_OK || seg == 0) {
            quote(q, sizeof q, fld[4]);
            if (st == NUM_SIGN)
                report(r, line, "segment \"%s\": numbers take no sign", q);
            else if (st == NUM_OK || st == NUM_TOO_LARGE)
                report(r, line, "segment \"%s\" is out of range (1 to 1G bytes)", q);
            else
                report(r, line,
                       "segment \"%s\" is not a byte count (digits with an optional K, M or G "
                       "suffix) or '-'",
                       q);
            return false;
        }
        rule->segment = (size_t)seg;
    }
    rule->source = TALLY_RULE_FILE;
    rule->line = line;
    return true;
}

size_t tally_tuning_parse(const char *text, size_t len, tally_rule_t *rules, size_t max,
                          tally_tuning_report_fn report_fn, void *ctx)
{
    const reporter_t r = {report_fn, ctx};
    size_t count = 0;
    bool full = false;
    unsigned line = 0;
    size_t pos = 0;
    if (text == NULL)
        len = 0;

    while (pos < len) {
        if (line < UINT_MAX)
            line++;
        /* The line is text[pos, end); next starts after its '\n' (if any). */
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        size_t next = nl != NULL ? end + 1 : len;
        if (end > pos && text[end - 1] == '\r') /* CRLF */
            end--;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = next;

        if (n > TALLY_TUNING_MAX_LINE) {
            report(&r, line, "line is longer than %d bytes", TALLY_TUNING_MAX_LINE);
            continue;
        }
        const char *nul = memchr(s, '\0', n);
        if (nul != NULL) {
            report(&r, line, "NUL byte in column %zu", (size_t)(nul - s) + 1);
            continue;
        }
        const char *hash = memchr(s, '#', n);
        if (hash != NULL)
            n = (size_t)(hash - s);

        field_t fld[FIELDS_MAX + 1];
        size_t nfields = 0;
        for (size_t i = 0; i < n;) {
            if (s[i] == ' ' || s[i] == '\t') {
                i++;
                continue;
            }
            size_t start = i;
            while (i < n && s[i] != ' ' && s[i] != '\t')
                i++;
            if (nfields <= FIELDS_MAX)
                fld[nfields] = (field_t){s + start, i - start};
            nfields++;
        }
        if (nfields == 0) /* blank or comment only */
            continue;

        tally_rule_t rule;
        if (!parse_fields(&r, line, fld, nfields, &rule) || full)
            continue;
        if (count >= max) {
            report(&r, line, "more than %zu rules (this line and all later rows)", max);
            full = true;
            continue;
        }
        memcpy(&rules[count++], &rule, sizeof rule); /* padding too: zeroed */
    }
    return count;
}

/* --- files ----------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *path, const char *why)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: %s", path, why);
}

bool tally_tuning_load(const char *path, tally_rule_t *rules, size_t max, size_t *count,
                       tally_tuning_report_fn report_fn, void *ctx, char *err, size_t errlen)
{
    if (path == NULL || path[0] == '\0') {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "empty tuning file name");
        return false;
    }
    /* Regular files only: opening a FIFO or a terminal for reading would
     * block (O_NONBLOCK), and reading one would wait for a writer. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errlen, path, "not a regular file (a tuning file must be one)");
        close(fd);
        return false;
    }
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        set_err(err, errlen, path, strerror(errno));
        close(fd);
        return false;
    }
    /* Read up to one byte more than the limit, to tell "too large". */
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    bool ok = buf != NULL;
    if (!ok)
        set_err(err, errlen, path, strerror(ENOMEM));
    while (ok) {
        if (len == cap) {
            if (cap > TUNING_FILE_MAX) {
                set_err(err, errlen, path, "larger than 1 MiB, the most a tuning file may hold");
                ok = false;
                break;
            }
            size_t ncap = cap * 2 > TUNING_FILE_MAX + 1 ? TUNING_FILE_MAX + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                set_err(err, errlen, path, strerror(ENOMEM));
                ok = false;
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        errno = 0;
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) {
                set_err(err, errlen, path, strerror(errno != 0 ? errno : EIO));
                ok = false;
            }
            break;
        }
    }
    fclose(f);
    if (ok)
        *count = tally_tuning_parse(buf, len, rules, max, report_fn, ctx);
    free(buf);
    return ok;
}

/* --- writing --------------------------------------------------------------- */

/* A byte count with the largest K/M/G suffix that divides it exactly. */
static void format_bytes(char *out, size_t outlen, size_t v)
{
    static const struct { unsigned shift; char suffix; } units[] = {{30, 'G'}, {20, 'M'}, {10, 'K'}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t unit = (size_t)1 << units[i].shift;
        if (v != 0 && v % unit == 0) {
            snprintf(out, outlen, "%llu%c", (unsigned long long)(v / unit), units[i].suffix);
            return;
        }
    }
    snprintf(out, outlen, "%llu", (unsigned long long)v);
}

static void format_int_range(char *out, size_t outlen, int lo, int hi)
{
    if (lo == 1 && hi == INT_MAX)
        snprintf(out, outlen, "*");
    else if (hi == INT_MAX)
        snprintf(out, outlen, "%d-", lo);
    else if (lo == hi)
        snprintf(out, outlen, "%d", lo);
    else
        snprintf(out, outlen, "%d-%d", lo, hi);
}

static void format_byte_range(char *out, size_t outlen, size_t lo, size_t hi)
{
    char a[32], b[32];
    format_bytes(a, sizeof a, lo);
    format_bytes(b, sizeof b, hi);
    if (lo == 0 && hi == SIZE_MAX)
        snprintf(out, outlen, "*");
    else if (hi == SIZE_MAX)
        snprintf(out, outlen, "%s-", a);
    else if (lo == hi)
        snprintf(out, outlen, "%s", a);
    else
        snprintf(out, outlen, "%s-%s", a, b);
}

void tally_tuning_format(const tally_rule_t *rule, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    char ranks[32], nodes[32], bytes[64], seg[32];
    format_int_range(ranks, sizeof ranks, rule->min_ranks, rule->max_ranks);
    format_int_range(nodes, sizeof nodes, rule->min_nodes, rule->max_nodes);
    format_byte_range(bytes, sizeof bytes, rule->min_bytes, rule->max_bytes);
    int name_len = 0;
    while (name_len < TALLY_RULE_NAME_MAX - 1 && rule->algo[name_len] != '\0')
        name_len++;
    /* Columns as in tuning.h and tally-tuning(5); no trailing blanks. */
    if (rule->segment == 0) {
        snprintf(buf, len, "%-8s %-6s %-14s %.*s", ranks, nodes, bytes, name_len, rule->algo);
    } else {
        format_bytes(seg, sizeof seg, rule->segment);
        snprintf(buf, len, "%-8s %-6s %-14s %-19.*s %s", ranks, nodes, bytes, name_len,
                 rule->algo, seg);
    }
}
