/* tuning_check.h - invariants of tally_tuning_parse on any input, shared by
 * the libFuzzer target (fuzz_tuning.c, clang) and the Check unit test
 * (tests/unit/test_tuning.c, gcc), so that both hold the parser to the same
 * promises.  Header-only, static functions; include after tuning.h.
 *
 * tuning_check(text, len) returns NULL when every invariant holds, else a
 * sentence saying which one broke:
 *   - every rule has 1 <= min <= max <= INT_MAX for ranks and nodes,
 *     min_bytes <= max_bytes, segment <= TALLY_SEGMENT_MAX, a non-empty
 *     [a-z0-9_] name shorter than TALLY_RULE_NAME_MAX with zeros after it,
 *     source TALLY_RULE_FILE and a line number within the input;
 *   - rule lines and report lines increase strictly and never meet (one
 *     line gives one rule or at most one report);
 *   - every report message is non-empty, one line, shorter than 512 bytes;
 *   - tally_tuning_format then tally_tuning_parse gives back the same rule
 *     (apart from its line number), with no report;
 *   - parsing again with a small `max` keeps a prefix of the rules, the
 *     same malformed-line reports, and one "more than" report exactly when
 *     rows were left out.
 */
#ifndef TALLY_TUNING_CHECK_H
#define TALLY_TUNING_CHECK_H

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TUNING_CHECK_SMALL_MAX 3

typedef struct tuning_check_log {
    unsigned *lines; /* line of each report, in call order */
    int *more;       /* whether that report says "more than N rules" */
    size_t n, cap;
    const char *bad; /* first problem seen inside the callback */
} tuning_check_log_t;

static void tuning_check_report(void *ctx, unsigned line, const char *message)
{
    tuning_check_log_t *log = ctx;
    if (message == NULL || message[0] == '\0') {
        log->bad = "a report has an empty message";
        return;
    }
    size_t mlen = strlen(message);
    if (mlen >= 512 || memchr(message, '\n', mlen) != NULL)
        log->bad = "a report message is too long or holds a newline";
    if (log->n == log->cap) {
        log->bad = "more reports than lines";
        return;
    }
    log->lines[log->n] = line;
    log->more[log->n] = strncmp(message, "more than ", 10) == 0;
    log->n++;
}

static size_t tuning_check_lines(const char *text, size_t len)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (len > 0 && text[len - 1] != '\n')
        lines++;
    return lines;
}

static const char *tuning_check_rule(const tally_rule_t *r, size_t lines)
{
    if (r->min_ranks < 1 || r->min_ranks > r->max_ranks)
        return "a rule has a bad ranks range";
    if (r->min_nodes < 1 || r->min_nodes > r->max_nodes)
        return "a rule has a bad nodes range";
    if (r->min_bytes > r->max_bytes)
        return "a rule has an empty bytes range";
    if (r->segment > TALLY_SEGMENT_MAX)
        return "a rule has a segment above TALLY_SEGMENT_MAX";
    if (r->source != TALLY_RULE_FILE)
        return "a rule's source is not TALLY_RULE_FILE";
    if (r->line < 1 || r->line > lines)
        return "a rule's line number is outside the input";
    size_t i = 0;
    for (; i < TALLY_RULE_NAME_MAX && r->algo[i] != '\0'; i++) {
        char c = r->algo[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return "a rule's name has a character outside [a-z0-9_]";
    }
    if (i == 0 || i >= TALLY_RULE_NAME_MAX)
        return "a rule's name is empty or not terminated";
    for (; i < TALLY_RULE_NAME_MAX; i++)
        if (r->algo[i] != '\0')
            return "a rule's name is not zero-padded";
    return NULL;
}

static int tuning_check_same(const tally_rule_t *a, const tally_rule_t *b)
{
    return a->min_ranks == b->min_ranks && a->max_ranks == b->max_ranks &&
           a->min_nodes == b->min_nodes && a->max_nodes == b->max_nodes &&
           a->min_bytes == b->min_bytes && a->max_bytes == b->max_bytes &&
           a->segment == b->segment && a->source == b->source &&
           memcmp(a->algo, b->algo, TALLY_RULE_NAME_MAX) == 0;
}

static const char *tuning_check_run(const char *text, size_t len, tally_rule_t *big,
                                    tally_rule_t *small, tuning_check_log_t *lb,
                                    tuning_check_log_t *ls)
{
    size_t lines = tuning_check_lines(text, len);
    size_t nb = tally_tuning_parse(text, len, big, TALLY_TUNING_MAX_RULES, tuning_check_report, lb);
    if (lb->bad != NULL)
        return lb->bad;
    if (nb > TALLY_TUNING_MAX_RULES || nb > lines)
        return "more rules than allowed or than lines";

    unsigned prev = 0;
    for (size_t i = 0; i < lb->n; i++) {
        if (lb->lines[i] <= prev || lb->lines[i] > lines)
            return "report lines do not increase or lie outside the input";
        prev = lb->lines[i];
    }
    size_t more_big = 0;
    for (size_t i = 0; i < lb->n; i++)
        more_big += lb->more[i] != 0;
    if (more_big > 1 || (more_big == 1 && nb != TALLY_TUNING_MAX_RULES))
        return "a wrong \"more than N rules\" report";

    size_t j = 0;
    prev = 0;
    for (size_t i = 0; i < nb; i++) {
        const char *why = tuning_check_rule(&big[i], lines);
        if (why != NULL)
            return why;
        if (big[i].line <= prev)
            return "rule lines do not increase";
        prev = big[i].line;
        while (j < lb->n && lb->lines[j] < big[i].line)
            j++;
        if (j < lb->n && lb->lines[j] == big[i].line)
            return "a line gave both a rule and a report";

        char buf[TALLY_TUNING_MAX_LINE];
        memset(buf, 'x', sizeof buf);
        tally_tuning_format(&big[i], buf, sizeof buf);
        size_t blen = strnlen(buf, sizeof buf);
        if (blen == 0 || blen >= sizeof buf - 1 || memchr(buf, '\n', blen) != NULL)
            return "tally_tuning_format wrote an empty, unterminated or multi-line row";
        tally_rule_t again[2];
        unsigned again_lines[2];
        int again_more[2];
        tuning_check_log_t la = {again_lines, again_more, 0, 2, NULL};
        size_t na = tally_tuning_parse(buf, blen, again, 2, tuning_check_report, &la);
        if (na != 1 || la.n != 0 || la.bad != NULL)
            return "a formatted rule does not parse back cleanly";
        if (!tuning_check_same(&big[i], &again[0]) || again[0].line != 1)
            return "a formatted rule parses back as a different rule";
    }

    size_t ns = tally_tuning_parse(text, len, small, TUNING_CHECK_SMALL_MAX, tuning_check_report,
                                   ls);
    if (ls->bad != NULL)
        return ls->bad;
    size_t want = nb < TUNING_CHECK_SMALL_MAX ? nb : TUNING_CHECK_SMALL_MAX;
    if (ns != want)
        return "a small max does not keep the first rules";
    for (size_t i = 0; i < ns; i++)
        if (!tuning_check_same(&big[i], &small[i]) || big[i].line != small[i].line)
            return "a small max keeps different rules";
    size_t more_small = 0, bad_big = 0, bad_small = 0;
    for (size_t i = 0; i < ls->n; i++)
        more_small += ls->more[i] != 0;
    for (size_t i = 0; i < lb->n; i++)
        bad_big += lb->more[i] == 0;
    for (size_t i = 0; i < ls->n; i++)
        bad_small += ls->more[i] == 0;
    if (bad_small != bad_big)
        return "a small max changes the malformed-line reports";
    if (more_small != ((nb > TUNING_CHECK_SMALL_MAX || more_big) ? 1u : 0u))
        return "a small max gives a wrong \"more than N rules\" report";
    return NULL;
}

/* NULL when every invariant holds on text[0, len); else which one broke. */
static const char *tuning_check(const char *text, size_t len)
{
    static tally_rule_t big[TALLY_TUNING_MAX_RULES], small[TUNING_CHECK_SMALL_MAX];
    size_t cap = tuning_check_lines(text, len) + 1;
    tuning_check_log_t lb = {calloc(cap, sizeof(unsigned)), calloc(cap, sizeof(int)), 0, cap, NULL};
    tuning_check_log_t ls = {calloc(cap, sizeof(unsigned)), calloc(cap, sizeof(int)), 0, cap, NULL};
    const char *why = "out of memory";
    if (lb.lines != NULL && lb.more != NULL && ls.lines != NULL && ls.more != NULL)
        why = tuning_check_run(text, len, big, small, &lb, &ls);
    free(lb.lines);
    free(lb.more);
    free(ls.lines);
    free(ls.more);
    return why;
}

#endif
