/* test_tuning.c - unit tests for the tuning-file parser and writer
 * (src/select/tuning.c, tally-tuning(5)): every range form and its edges,
 * every kind of malformed line (reported once, with its line number, and
 * dropped while its neighbours are kept), the row limit, files, and
 * format -> parse round trips.  The seed corpus of the fuzz target
 * (tests/fuzz/corpus-tuning) is read here too, and the fuzz target's
 * invariants (tests/fuzz/tuning_check.h) are checked on it and on a few
 * thousand deterministic mutations of it, so a gcc-only build exercises
 * them as well. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "select/tuning.h"
#include "../fuzz/tuning_check.h"

#define CORPUS_DIR TALLY_SOURCE_DIR "/tests/fuzz/corpus-tuning"

/* --- helpers --------------------------------------------------------------- */

#define LOG_MAX 64

typedef struct report_log {
    size_t n;
    unsigned line[LOG_MAX];
    char msg[LOG_MAX][512];
} report_log_t;

static void log_report(void *ctx, unsigned line, const char *message)
{
    report_log_t *log = ctx;
    ck_assert_ptr_nonnull(message);
    ck_assert_uint_lt(log->n, LOG_MAX);
    log->line[log->n] = line;
    snprintf(log->msg[log->n], sizeof log->msg[0], "%s", message);
    log->n++;
}

static tally_rule_t rules[TALLY_TUNING_MAX_RULES + 8];
static report_log_t lg;

/* Parses text (strlen) into rules[], reports into lg. */
static size_t parse_len(const char *text, size_t len, size_t max)
{
    memset(&lg, 0, sizeof lg);
    memset(rules, 0xa5, sizeof rules);
    return tally_tuning_parse(text, len, rules, max, log_report, &lg);
}

static size_t parse(const char *text)
{
    return parse_len(text, strlen(text), TALLY_TUNING_MAX_RULES);
}

static void check_rule(const tally_rule_t *r, int r0, int r1, int n0, int n1, size_t b0, size_t b1,
                       const char *algo, size_t segment, unsigned line)
{
    ck_assert_int_eq(r->min_ranks, r0);
    ck_assert_int_eq(r->max_ranks, r1);
    ck_assert_int_eq(r->min_nodes, n0);
    ck_assert_int_eq(r->max_nodes, n1);
    ck_assert_uint_eq(r->min_bytes, b0);
    ck_assert_uint_eq(r->max_bytes, b1);
    ck_assert_str_eq(r->algo, algo);
    ck_assert_uint_eq(r->segment, segment);
    ck_assert_int_eq(r->source, TALLY_RULE_FILE);
    ck_assert_uint_eq(r->line, line);
    /* Zero after the name, so tables compare byte for byte across ranks. */
    for (size_t i = strlen(algo); i < TALLY_RULE_NAME_MAX; i++)
        ck_assert_int_eq(r->algo[i], 0);
}

static char *write_temp(const char *text, size_t len)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/tally-tuning-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* --- valid lines ----------------------------------------------------------- */

START_TEST(test_range_forms)
{
    const char *text = "# header\n"
                       "4 1 0-2048 mpi\n"                   /* N, N-M */
                       "2-8 * 2049-256K recursive_doubling\n" /* '*' */
                       "* * 256K-* ring 1M\n"               /* N-* */
                       "16- 2- 1G- ring 1G\n"               /* N- */
                       "\t5\t3-3\t7\tring\t-\n"             /* tabs, '-' segment */
                       "1 1 1k-2m ring 3m\n"                /* lower-case suffixes */
                       "* * * ring#glued comment\n"
                       "9 9 0 ring 4K # spaced comment\n";
    ck_assert_uint_eq(parse(text), 8);
    ck_assert_uint_eq(lg.n, 0);
    check_rule(&rules[0], 4, 4, 1, 1, 0, 2048, "mpi", 0, 2);
    check_rule(&rules[1], 2, 8, 1, INT_MAX, 2049, 256 << 10, "recursive_doubling", 0, 3);
    check_rule(&rules[2], 1, INT_MAX, 1, INT_MAX, 256 << 10, SIZE_MAX, "ring", 1 << 20, 4);
    check_rule(&rules[3], 16, INT_MAX, 2, INT_MAX, (size_t)1 << 30, SIZE_MAX, "ring", 1 << 30, 5);
    check_rule(&rules[4], 5, 5, 3, 3, 7, 7, "ring", 0, 6);
    check_rule(&rules[5], 1, 1, 1, 1, 1024, 2 << 20, "ring", 3 << 20, 7);
    check_rule(&rules[6], 1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "ring", 0, 8);
    check_rule(&rules[7], 9, 9, 9, 9, 0, 0, "ring", 4096, 9);
}
END_TEST

START_TEST(test_edges)
{
    char text[512];
    snprintf(text, sizeof text,
             "1 1 0 a\n"
             "2147483647 2147483647 0 b\n"
             "1-2147483647 1-2147483647 0 c\n"
             "0000000000000000000000003 007 0 d\n"
             "1 1 0 e 1\n"
             "1 1 0 f 1G\n"
             "1 1 0 g 1048576K\n"
             "1 1 0 h 1073741824\n"
             "1 1 %zu i\n"
             "1 1 %zu- j\n"
             "1 1 %zuG k\n"
             "1 1 0 %.*s\n",
             SIZE_MAX, SIZE_MAX, SIZE_MAX >> 30, TALLY_RULE_NAME_MAX - 1,
             "abcdefghijklmnopqrstuvwxyz0123456789_abcdefghijklmnopqrstuvwxyz0123456789");
    ck_assert_uint_eq(parse(text), 12);
    ck_assert_uint_eq(lg.n, 0);
    check_rule(&rules[0], 1, 1, 1, 1, 0, 0, "a", 0, 1);
    check_rule(&rules[1], INT_MAX, INT_MAX, INT_MAX, INT_MAX, 0, 0, "b", 0, 2);
    check_rule(&rules[2], 1, INT_MAX, 1, INT_MAX, 0, 0, "c", 0, 3);
    check_rule(&rules[3], 3, 3, 7, 7, 0, 0, "d", 0, 4);
    check_rule(&rules[4], 1, 1, 1, 1, 0, 0, "e", 1, 5);
    check_rule(&rules[5], 1, 1, 1, 1, 0, 0, "f", TALLY_SEGMENT_MAX, 6);
    check_rule(&rules[6], 1, 1, 1, 1, 0, 0, "g", TALLY_SEGMENT_MAX, 7);
    check_rule(&rules[7], 1, 1, 1, 1, 0, 0, "h", TALLY_SEGMENT_MAX, 8);
    check_rule(&rules[8], 1, 1, 1, 1, SIZE_MAX, SIZE_MAX, "i", 0, 9);
    check_rule(&rules[9], 1, 1, 1, 1, SIZE_MAX, SIZE_MAX, "j", 0, 10);
    check_rule(&rules[10], 1, 1, 1, 1, (SIZE_MAX >> 30) << 30, (SIZE_MAX >> 30) << 30, "k", 0,
               11);
    ck_assert_uint_eq(strlen(rules[11].algo), TALLY_RULE_NAME_MAX - 1);
#if SIZE_MAX == UINT64_MAX
    ck_assert_uint_eq(parse("* * 18446744073709551615 x\n* * 0-17179869183G y\n"), 2);
    ck_assert_uint_eq(rules[0].min_bytes, SIZE_MAX);
    ck_assert_uint_eq(rules[1].max_bytes, (size_t)17179869183u << 30);
    ck_assert_uint_eq(lg.n, 0);
#endif
}
END_TEST

START_TEST(test_overlaps_kept_in_order)
{
    /* Overlapping and even shadowed rows are the author's business: the
     * parser keeps them all, in file order; the first match wins later. */
    ck_assert_uint_eq(parse("* * 0-1M ring\n* * 0-1K mpi\n2-4 * * rabenseifner\n* * * ring\n"),
                      4);
    ck_assert_uint_eq(lg.n, 0);
    ck_assert_str_eq(rules[0].algo, "ring");
    ck_assert_str_eq(rules[1].algo, "mpi");
    ck_assert_str_eq(rules[2].algo, "rabenseifner");
    ck_assert_str_eq(rules[3].algo, "ring");
    for (unsigned i = 0; i < 4; i++)
        ck_assert_uint_eq(rules[i].line, i + 1);
}
END_TEST

START_TEST(test_unknown_names_kept)
{
    /* Whether an algorithm exists is the caller's business (it disables the
     * row with a warning), so one file works across versions. */
    ck_assert_uint_eq(parse("* * * ring_v2\n* * * 2d_torus\n* * * _\n"), 3);
    ck_assert_uint_eq(lg.n, 0);
    ck_assert_str_eq(rules[0].algo, "ring_v2");
    ck_assert_str_eq(rules[1].algo, "2d_torus");
    ck_assert_str_eq(rules[2].algo, "_");
}
END_TEST

START_TEST(test_empty_and_comments)
{
    ck_assert_uint_eq(parse(""), 0);
    ck_assert_uint_eq(lg.n, 0);
    ck_assert_uint_eq(tally_tuning_parse(NULL, 0, NULL, 0, NULL, NULL), 0);
    ck_assert_uint_eq(parse("# only\n\n   \t\n#comments # and # blanks\r\n  # indented"), 0);
    ck_assert_uint_eq(lg.n, 0);
    /* No callback: problems are dropped quietly. */
    ck_assert_uint_eq(tally_tuning_parse("x\n* * * ring\n", 12, rules, 4, NULL, NULL), 1);
}
END_TEST

START_TEST(test_crlf_and_last_line)
{
    ck_assert_uint_eq(parse("# c\r\n2 1 0-1K mpi\r\n\r\n* * * ring 1M\r\n"), 2);
    ck_assert_uint_eq(lg.n, 0);
    check_rule(&rules[0], 2, 2, 1, 1, 0, 1024, "mpi", 0, 2);
    check_rule(&rules[1], 1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "ring", 1 << 20, 4);

    ck_assert_uint_eq(parse("2 1 0-1K mpi\n* * * ring"), 2); /* no final newline */
    check_rule(&rules[1], 1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "ring", 0, 2);
    ck_assert_uint_eq(parse("* * * ring 4K\r"), 1); /* CR, then the end */
    ck_assert_uint_eq(rules[0].segment, 4096);
    ck_assert_uint_eq(lg.n, 0);

    /* The parser reads no further than len: the same bytes, cut short. */
    const char *text = "* * * ring 4K\n* * * mpi";
    ck_assert_uint_eq(parse_len(text, 12, 8), 1); /* "* * * ring 4" */
    ck_assert_uint_eq(rules[0].segment, 4);
    ck_assert_uint_eq(parse_len(text, strlen(text) - 1, 8), 2); /* "...mp" */
    ck_assert_str_eq(rules[1].algo, "mp");

    /* A CR inside a line is no blank. */
    ck_assert_uint_eq(parse("* * * ring\r\r\n* * * mpi\n"), 1);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_eq(lg.line[0], 1);
}
END_TEST

/* --- malformed lines ------------------------------------------------------- */

typedef struct bad_case {
    const char *text;
    size_t len; /* 0: strlen */
    const char *want; /* a substring of the message */
} bad_case_t;

#define BAD(t, w) {t, 0, w}
#define BADN(t, w) {t, sizeof t - 1, w}

static const bad_case_t bad_cases[] = {
    /* field count */
    BAD("2 1 0-1K", "too few fields (3)"),
    BAD("2", "too few fields (1)"),
    BAD("2 1 0-1K mpi 1M extra", "unknown field \"extra\""),
    BAD("2 1 0-1K mpi 1M extra more", "unknown field \"extra\""),
    BAD("2 1 0 - 1K mpi", "unknown field"),
    /* empty ranges */
    BAD("2 1 5-2 mpi", "bytes range \"5-2\" is empty"),
    BAD("8-2 1 * mpi", "ranks range \"8-2\" is empty"),
    BAD("* 3-2 * mpi", "nodes range \"3-2\" is empty"),
    BAD("* * 2K-1K mpi", "bytes range \"2K-1K\" is empty"),
    /* zero ranks and nodes */
    BAD("0 1 * mpi", "ranks range \"0\": ranks start at 1"),
    BAD("0-4 1 * mpi", "ranks start at 1"),
    BAD("0- 1 * mpi", "ranks start at 1"),
    BAD("* 0 * mpi", "nodes start at 1"),
    /* signs */
    BAD("-5 1 * mpi", "ranks range \"-5\": numbers take no sign"),
    BAD("+5 1 * mpi", "ranks range \"+5\": numbers take no sign"),
    BAD("* -1 * mpi", "nodes range \"-1\": numbers take no sign"),
    BAD("* * -3 mpi", "bytes range \"-3\": numbers take no sign"),
    BAD("* * +3 mpi", "numbers take no sign"),
    BAD("* * 0--3 mpi", "numbers take no sign"),
    BAD("* * 0-+3 mpi", "numbers take no sign"),
    BAD("* * * mpi -1", "segment \"-1\": numbers take no sign"),
    BAD("* * * mpi +1", "segment \"+1\": numbers take no sign"),
    /* not numbers */
    BAD("- 1 * mpi", "ranks range \"-\" is not '*', N, N-M or N-"),
    BAD("*-5 1 * mpi", "is not '*'"),
    BAD("** 1 * mpi", "is not '*'"),
    BAD("* * 0x10 mpi", "bytes range \"0x10\" is not"),
    BAD("* * 1T mpi", "bytes range \"1T\" is not"),
    BAD("* * 1KB mpi", "is not"),
    BAD("* * 1-2-3 mpi", "is not"),
    BAD("* * 1.5K mpi", "is not"),
    BAD("* * K mpi", "is not"),
    BAD("4K 1 * mpi", "ranks take no K, M or G suffix"),
    BAD("* 2M * mpi", "nodes take no K, M or G suffix"),
    BAD("* * * mpi 1.5M", "segment \"1.5M\" is not a byte count"),
    BAD("* * * mpi x", "is not a byte count"),
    BAD("* * * mpi --", "segment \"--\""),
    /* too large */
    BAD("2147483648 1 * mpi", "ranks range \"2147483648\" is above the maximum 2147483647"),
    BAD("1-2147483648 1 * mpi", "\"2147483648\" is above the maximum 2147483647"),
    BAD("* 99999999999999999999999 * mpi", "is above the maximum 2147483647"),
    BAD("* * 99999999999999999999999 mpi", "is above the maximum"),
#if SIZE_MAX == UINT64_MAX
    BAD("* * 18446744073709551616 mpi", "is above the maximum 18446744073709551615"),
    BAD("* * 17179869184G mpi", "\"17179869184G\" is above the maximum 18446744073709551615"),
    BAD("* * 0-16777216T mpi", "is not"),
    BAD("* * 17592186044416M mpi", "is above the maximum"),
    BAD("* * 18014398509481984K- mpi", "is above the maximum"),
#else
    BAD("* * 4294967296 mpi", "is above the maximum"),
    BAD("* * 4G mpi", "is above the maximum"),
#endif
    BAD("* * * mpi 0", "segment \"0\" is out of range (1 to 1G bytes)"),
    BAD("* * * mpi 1073741825", "is out of range"),
    BAD("* * * mpi 2G", "is out of range"),
    BAD("* * * mpi 17179869184G", "is out of range"),
    BAD("* * * mpi 99999999999999999999999", "is out of range"),
    /* names */
    BAD("* * * Ring", "algorithm name \"Ring\" may hold only a-z, 0-9 and _"),
    BAD("* * * ring-2", "may hold only"),
    BAD("* * * ring.so", "may hold only"),
    BAD("* * * r\xc3\xa9seau", "algorithm name \"r\\xc3\\xa9seau\""),
    BAD("* * * ring\x01", "\"ring\\x01\""),
    BAD("* * * ring\v", "may hold only"),
    BAD("* * * aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "is longer than 63 characters"),
    /* NUL bytes, in data or in a comment */
    BADN("* * * ri\0ng", "NUL byte in column 9"),
    BADN("\0", "NUL byte in column 1"),
    BADN("* * * ring # \0", "NUL byte in column 14"),
};

START_TEST(test_malformed_each)
{
    /* Each bad line sits between two good ones, after a comment and a blank
     * line: one report with the bad line's number, the neighbours kept. */
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case_t *c = &bad_cases[i];
        size_t blen = c->len ? c->len : strlen(c->text);
        char text[512];
        const char *head = "# header\n\n1 1 0 before\n";
        const char *tail = "\n* * * after\n";
        size_t h = strlen(head), t = strlen(tail);
        ck_assert_uint_lt(h + blen + t, sizeof text);
        memcpy(text, head, h);
        memcpy(text + h, c->text, blen);
        memcpy(text + h + blen, tail, t);
        size_t n = parse_len(text, h + blen + t, TALLY_TUNING_MAX_RULES);
        ck_assert_msg(n == 2 && lg.n == 1, "case %zu (%s): %zu rules, %zu reports", i, c->text, n,
                      lg.n);
        ck_assert_uint_eq(lg.line[0], 4);
        ck_assert_msg(strstr(lg.msg[0], c->want) != NULL, "case %zu (%s): got \"%s\", want \"%s\"",
                      i, c->text, lg.msg[0], c->want);
        check_rule(&rules[0], 1, 1, 1, 1, 0, 0, "before", 0, 3);
        check_rule(&rules[1], 1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "after", 0, 5);
        ck_assert_ptr_null(tuning_check(text, h + blen + t));
    }
}
END_TEST

START_TEST(test_many_malformed_line_numbers)
{
    ck_assert_uint_eq(parse("* * * a\n"
                            "x\n"
                            "# c\n"
                            "* * 5-2 b\n"
                            "\n"
                            "* * * c\n"
                            "-1 * * d\n"),
                      2);
    ck_assert_uint_eq(lg.n, 3);
    ck_assert_uint_eq(lg.line[0], 2);
    ck_assert_uint_eq(lg.line[1], 4);
    ck_assert_uint_eq(lg.line[2], 7);
    ck_assert_uint_eq(rules[0].line, 1);
    ck_assert_uint_eq(rules[1].line, 6);
}
END_TEST

START_TEST(test_line_length)
{
    /* TALLY_TUNING_MAX_LINE bytes, not counting "\n" or "\r\n", is fine;
     * one more is malformed, even when the excess is a comment. */
    static char text[3 * TALLY_TUNING_MAX_LINE];
    const char *row = "* * * ring #";
    size_t r = strlen(row);
    char *p = text;
    memcpy(p, row, r);
    memset(p + r, 'x', TALLY_TUNING_MAX_LINE - r);
    p += TALLY_TUNING_MAX_LINE;
    memcpy(p, "\r\n", 2);
    p += 2;
    memcpy(p, row, r);
    memset(p + r, 'y', TALLY_TUNING_MAX_LINE + 1 - r);
    p += TALLY_TUNING_MAX_LINE + 1;
    memcpy(p, "\n* * * mpi", 10);
    p += 10;
    ck_assert_uint_eq(parse_len(text, (size_t)(p - text), 8), 2);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_eq(lg.line[0], 2);
    ck_assert_ptr_nonnull(strstr(lg.msg[0], "line is longer than 1024 bytes"));
    ck_assert_str_eq(rules[0].algo, "ring");
    ck_assert_uint_eq(rules[1].line, 3);
    /* A long last line without a newline. */
    ck_assert_uint_eq(parse_len(text + TALLY_TUNING_MAX_LINE + 2, TALLY_TUNING_MAX_LINE + 1, 8),
                      0);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_eq(lg.line[0], 1);
}
END_TEST

START_TEST(test_long_field_quoted_short)
{
    static char text[1100];
    memset(text, 'A', 1000);
    memcpy(text + 1000, " 1 * mpi", 8);
    ck_assert_uint_eq(parse_len(text, 1008, 8), 0);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_lt(strlen(lg.msg[0]), 200);
    ck_assert_ptr_nonnull(strstr(lg.msg[0], "...\""));
}
END_TEST

START_TEST(test_more_than_max_rows)
{
    const char *text = "* * * a\n* * * b\n# c\n* * * c\n* * * d\nbad\n* * * e\n";
    ck_assert_uint_eq(parse_len(text, strlen(text), 3), 3);
    ck_assert_uint_eq(lg.n, 2);
    ck_assert_uint_eq(lg.line[0], 5);
    ck_assert_str_eq(lg.msg[0], "more than 3 rules (this line and all later rows)");
    ck_assert_uint_eq(lg.line[1], 6); /* later malformed lines still reported */
    ck_assert_str_eq(rules[2].algo, "c");
    /* Nothing written past max. */
    const unsigned char *tailb = (const unsigned char *)&rules[3];
    for (size_t i = 0; i < sizeof rules[3]; i++)
        ck_assert_uint_eq(tailb[i], 0xa5);

    ck_assert_uint_eq(parse_len(text, strlen(text), 0), 0);
    ck_assert_uint_eq(lg.n, 2);
    ck_assert_str_eq(lg.msg[0], "more than 0 rules (this line and all later rows)");
    ck_assert_uint_eq(lg.line[0], 1);

    /* TALLY_TUNING_MAX_RULES + 2 rows. */
    static char big[(TALLY_TUNING_MAX_RULES + 2) * 16];
    size_t len = 0;
    for (int i = 1; i <= TALLY_TUNING_MAX_RULES + 2; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "%d 1 * ring\n", i);
    ck_assert_uint_eq(parse_len(big, len, TALLY_TUNING_MAX_RULES), TALLY_TUNING_MAX_RULES);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_eq(lg.line[0], TALLY_TUNING_MAX_RULES + 1);
    ck_assert_str_eq(lg.msg[0], "more than 256 rules (this line and all later rows)");
    ck_assert_int_eq(rules[TALLY_TUNING_MAX_RULES - 1].min_ranks, TALLY_TUNING_MAX_RULES);
}
END_TEST

/* --- files ----------------------------------------------------------------- */

START_TEST(test_load_files)
{
    char err[512];
    size_t count = 77;

    /* Missing: false, the message names the file, count untouched. */
    const char *missing = "/nonexistent/tally/tuning.conf";
    strcpy(err, "");
    ck_assert(!tally_tuning_load(missing, rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 77);
    ck_assert_str_eq(err, "/nonexistent/tally/tuning.conf: No such file or directory");
    /* A directory opens but cannot be read. */
    ck_assert(!tally_tuning_load("/", rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "/: "));
    ck_assert_uint_eq(count, 77);
    /* Not regular files: refused at once, never read (a FIFO without a
     * writer, or /dev/stdin, once hung tally_comm_create here). */
    char fifo[] = "/tmp/tally-tuning-fifo-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(fifo));
    char fifo_path[sizeof fifo + 8];
    snprintf(fifo_path, sizeof fifo_path, "%s/fifo", fifo);
    ck_assert_int_eq(mkfifo(fifo_path, 0600), 0);
    const char *not_regular[] = {fifo_path, "/dev/null", "/dev/stdin"};
    for (size_t i = 0; i < sizeof not_regular / sizeof not_regular[0]; i++) {
        if (access(not_regular[i], R_OK) != 0)
            continue;
        ck_assert(!tally_tuning_load(not_regular[i], rules, 8, &count, log_report, &lg, err,
                                     sizeof err));
        ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
        ck_assert_uint_eq(count, 77);
    }
    unlink(fifo_path);
    rmdir(fifo);
    ck_assert(!tally_tuning_load("", rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 77);
    /* A tiny err buffer is still terminated; NULL err is allowed. */
    ck_assert(!tally_tuning_load(missing, rules, 8, &count, NULL, NULL, err, 5));
    ck_assert_str_eq(err, "/non");
    ck_assert(!tally_tuning_load(missing, rules, 8, &count, NULL, NULL, NULL, 0));

    /* Empty file. */
    char *path = write_temp("", 0);
    memset(&lg, 0, sizeof lg);
    ck_assert(tally_tuning_load(path, rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 0);
    ck_assert_uint_eq(lg.n, 0);
    unlink(path);

    /* Reports come through with their line numbers. */
    const char *text = "# t\n* * * ring 1M\nbad line\n2 1 0-1K mpi";
    path = write_temp(text, strlen(text));
    memset(&lg, 0, sizeof lg);
    ck_assert(tally_tuning_load(path, rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(lg.n, 1);
    ck_assert_uint_eq(lg.line[0], 3);
    check_rule(&rules[1], 2, 2, 1, 1, 0, 1024, "mpi", 0, 4);
    unlink(path);

    /* 1 MiB exactly is read; one byte more is refused. */
    size_t mib = (size_t)1 << 20;
    char *big = malloc(mib + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, '\n', mib + 1);
    memcpy(big, "* * * ring", 10);
    memcpy(big + mib - 10, "* * * last", 10);
    path = write_temp(big, mib);
    memset(&lg, 0, sizeof lg);
    ck_assert(tally_tuning_load(path, rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 2);
    ck_assert_str_eq(rules[1].algo, "last");
    ck_assert_uint_eq(rules[1].line, mib - 19); /* after mib - 20 newlines */
    unlink(path);
    path = write_temp(big, mib + 1);
    count = 77;
    ck_assert(!tally_tuning_load(path, rules, 8, &count, log_report, &lg, err, sizeof err));
    ck_assert_uint_eq(count, 77);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "larger than 1 MiB"));
    unlink(path);
    free(big);
}
END_TEST

/* --- writing --------------------------------------------------------------- */

static tally_rule_t mk(int r0, int r1, int n0, int n1, size_t b0, size_t b1, const char *algo,
                       size_t seg)
{
    tally_rule_t r;
    memset(&r, 0, sizeof r);
    r.min_ranks = r0;
    r.max_ranks = r1;
    r.min_nodes = n0;
    r.max_nodes = n1;
    r.min_bytes = b0;
    r.max_bytes = b1;
    snprintf(r.algo, sizeof r.algo, "%s", algo);
    r.segment = seg;
    r.source = TALLY_RULE_FILE;
    r.line = 1;
    return r;
}

START_TEST(test_format_lines)
{
    struct {
        tally_rule_t rule;
        const char *want;
    } cases[] = {
        {mk(4, 4, 1, 1, 0, 2048, "mpi", 0), "4        1      0-2K           mpi"},
        {mk(2, 8, 1, INT_MAX, 2049, 256 << 10, "recursive_doubling", 0),
         "2-8      *      2049-256K      recursive_doubling"},
        {mk(1, INT_MAX, 1, INT_MAX, 256 << 10, SIZE_MAX, "ring", 1 << 20),
         "*        *      256K-          ring                1M"},
        {mk(1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "ring", 0), "*        *      *              ring"},
        {mk(16, INT_MAX, 2, INT_MAX, (size_t)3 << 30, SIZE_MAX, "ring", 3072),
         "16-      2-     3G-            ring                3K"},
        {mk(1, 1, 1, 1, 1023, 1025, "x", 1000), "1        1      1023-1025      x                   1000"},
        {mk(1, 1, 1, 1, 0, 0, "a_very_long_algorithm_name_indeed", 1 << 30),
         "1        1      0              a_very_long_algorithm_name_indeed 1G"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[TALLY_TUNING_MAX_LINE];
        tally_tuning_format(&cases[i].rule, buf, sizeof buf);
        ck_assert_str_eq(buf, cases[i].want);
    }
    /* Truncation keeps the string terminated; len 0 writes nothing. */
    char small[8] = "zzzzzzz";
    tally_tuning_format(&cases[0].rule, small, 5);
    ck_assert_str_eq(small, "4   ");
    tally_tuning_format(&cases[0].rule, small, 0);
    ck_assert_str_eq(small, "4   ");
}
END_TEST

START_TEST(test_format_round_trip)
{
    const tally_rule_t set[] = {
        mk(1, 1, 1, 1, 0, 0, "a", 0),
        mk(1, INT_MAX, 1, INT_MAX, 0, SIZE_MAX, "ring", 0),
        mk(2, INT_MAX, 1, 1, 0, SIZE_MAX, "ring", 1),
        mk(INT_MAX, INT_MAX, INT_MAX, INT_MAX, SIZE_MAX, SIZE_MAX, "z", TALLY_SEGMENT_MAX),
        mk(3, 7, 2, 5, 1, SIZE_MAX - 1, "rabenseifner", 65536),
        mk(1, 2, 1, 2, 1024, 1024 * 1024 - 1, "recursive_doubling", 65537),
        mk(1, INT_MAX - 1, 1, INT_MAX - 1, (size_t)1 << 30, (SIZE_MAX >> 30) << 30, "m", 3 << 20),
        mk(5, 5, 1, 1, 2048, 2048, "x_y_z_0123456789_abcdefghijklmnopqrstuvwxyz_0123456789_abcdefg",
           7),
    };
    char text[4096];
    size_t len = 0;
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        char buf[TALLY_TUNING_MAX_LINE];
        tally_tuning_format(&set[i], buf, sizeof buf);
        len += (size_t)snprintf(text + len, sizeof text - len, "%s\n", buf);
    }
    ck_assert_uint_eq(parse_len(text, len, TALLY_TUNING_MAX_RULES), sizeof set / sizeof set[0]);
    ck_assert_uint_eq(lg.n, 0);
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
        tally_rule_t want = set[i];
        want.line = (unsigned)i + 1;
        ck_assert_msg(memcmp(&want, &rules[i], sizeof want) == 0, "rule %zu differs", i);
    }
    ck_assert_ptr_null(tuning_check(text, len));
}
END_TEST

/* --- the fuzz corpus and its invariants ------------------------------------ */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

START_TEST(test_fuzz_corpus)
{
    DIR *dir = opendir(CORPUS_DIR);
    ck_assert_msg(dir != NULL, "%s: %s", CORPUS_DIR, strerror(errno));
    size_t files = 0, valid = 0, invalid = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        size_t len, count = 0;
        char *text = read_all(path, &len);
        const char *why = tuning_check(text, len);
        ck_assert_msg(why == NULL, "%s: %s", e->d_name, why);
        memset(&lg, 0, sizeof lg);
        ck_assert_msg(tally_tuning_load(path, rules, TALLY_TUNING_MAX_RULES, &count, log_report,
                                        &lg, err, sizeof err),
                      "%s", err);
        /* valid-*: no report; invalid-*: at least one. */
        if (strncmp(e->d_name, "valid-", 6) == 0) {
            ck_assert_msg(lg.n == 0, "%s:%u: %s", e->d_name, lg.line[0], lg.msg[0]);
            valid++;
        } else if (strncmp(e->d_name, "invalid-", 8) == 0) {
            ck_assert_msg(lg.n > 0, "%s: no report", e->d_name);
            invalid++;
        }
        free(text);
        files++;
    }
    closedir(dir);
    ck_assert_uint_ge(valid, 3);
    ck_assert_uint_ge(invalid, 3);
    ck_assert_uint_eq(valid + invalid, files);
}
END_TEST

/* A few thousand deterministic mutations of the corpus and of bad_cases,
 * checked against the fuzz target's invariants: a poor man's fuzzer for
 * builds without clang. */
START_TEST(test_mutations_keep_invariants)
{
    static const char alphabet[] = "0123456789*-KMGkmg#\n\r\t \0+_azAZ.x";
    DIR *dir = opendir(CORPUS_DIR);
    ck_assert_ptr_nonnull(dir);
    char *seeds[64];
    size_t seed_len[64], nseeds = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && nseeds < 64) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        seeds[nseeds] = read_all(path, &seed_len[nseeds]);
        nseeds++;
    }
    closedir(dir);
    ck_assert_uint_gt(nseeds, 0);

    uint64_t x = 0x9e3779b97f4a7c15u;
    char *buf = malloc(8192);
    ck_assert_ptr_nonnull(buf);
    for (int iter = 0; iter < 4000; iter++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t s = x % nseeds;
        size_t len = seed_len[s] < 4096 ? seed_len[s] : 4096;
        memcpy(buf, seeds[s], len);
        int edits = 1 + (int)((x >> 8) % 8);
        for (int k = 0; k < edits; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = len ? (x >> 16) % len : 0;
            char c = alphabet[(x >> 40) % (sizeof alphabet - 1)];
            switch ((x >> 4) % 4) {
            case 0: /* replace */
                if (len)
                    buf[at] = c;
                break;
            case 1: /* insert */
                if (len < 8000) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
                break;
            case 2: /* delete */
                if (len) {
                    memmove(buf + at, buf + at + 1, len - at - 1);
                    len--;
                }
                break;
            default: /* cut */
                len = at;
                break;
            }
        }
        const char *why = tuning_check(buf, len);
        ck_assert_msg(why == NULL, "mutation %d: %s", iter, why);
    }
    free(buf);
    for (size_t i = 0; i < nseeds; i++)
        free(seeds[i]);
}
END_TEST

static Suite *tuning_suite(void)
{
    Suite *s = suite_create("tuning");
    TCase *tc = tcase_create("tuning");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_range_forms);
    tcase_add_test(tc, test_edges);
    tcase_add_test(tc, test_overlaps_kept_in_order);
    tcase_add_test(tc, test_unknown_names_kept);
    tcase_add_test(tc, test_empty_and_comments);
    tcase_add_test(tc, test_crlf_and_last_line);
    tcase_add_test(tc, test_malformed_each);
    tcase_add_test(tc, test_many_malformed_line_numbers);
    tcase_add_test(tc, test_line_length);
    tcase_add_test(tc, test_long_field_quoted_short);
    tcase_add_test(tc, test_more_than_max_rows);
    tcase_add_test(tc, test_load_files);
    tcase_add_test(tc, test_format_lines);
    tcase_add_test(tc, test_format_round_trip);
    tcase_add_test(tc, test_fuzz_corpus);
    tcase_add_test(tc, test_mutations_keep_invariants);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tuning_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
