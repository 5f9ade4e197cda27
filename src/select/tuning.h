/* tuning.h - rule rows and the tuning-file format (tally-tuning(5)).
 *
 * A rule maps (communicator size range, node count range, byte range) to an
 * algorithm name and optionally a segment size; the first matching row
 * wins.  This header depends on nothing but libc so that the parser can be
 * built alone (the fuzz target in tests/fuzz/).
 *
 * Line format, fields separated by blanks, '#' starts a comment:
 *
 *     # ranks  nodes  bytes          algorithm           [segment]
 *     4        1      0-2048         mpi
 *     2-8      *      2049-256K      recursive_doubling
 *     *        *      256K-*         ring                1M
 *
 * RANGE is '*', N, N-M or N- (inclusive; N- and '*' have no upper end;
 * N-* as in the example above means N-).  Ranks and nodes are decimal
 * integers >= 1 and <= INT_MAX; bytes and the segment take K, M, G suffixes
 * (powers of 1024; k, m, g also accepted), bytes up to SIZE_MAX.  No signs,
 * no blanks inside a field.  The segment is 1 byte to 1 GiB, or '-' (or
 * absent) for TALLY_SEGMENT_SIZE.  Blanks are spaces and tabs; a line is
 * at most TALLY_TUNING_MAX_LINE bytes without its "\n" or "\r\n".
 */
#ifndef TALLY_TUNING_H
#define TALLY_TUNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TALLY_RULE_NAME_MAX 64     /* equals TALLY_ALGO_NAME_MAX */
#define TALLY_TUNING_MAX_RULES 256 /* rows kept from one file */
#define TALLY_TUNING_MAX_LINE 1024 /* longer lines are malformed */
#define TALLY_SEGMENT_MAX ((size_t)1 << 30)

/* Where a row came from, highest precedence first. */
typedef enum tally_rule_source {
    TALLY_RULE_FILE,    /* TALLY_TUNING_FILE */
    TALLY_RULE_MODEL,   /* generated from the cost model */
    TALLY_RULE_BUILTIN  /* compiled in */
} tally_rule_source_t;

typedef struct tally_rule {
    int min_ranks, max_ranks;     /* inclusive; INT_MAX: no upper end */
    int min_nodes, max_nodes;     /* inclusive; INT_MAX: no upper end */
    size_t min_bytes, max_bytes;  /* inclusive; SIZE_MAX: no upper end */
    size_t segment;               /* bytes; 0: TALLY_SEGMENT_SIZE */
    char algo[TALLY_RULE_NAME_MAX];
    tally_rule_source_t source;
    unsigned line;                /* TALLY_RULE_FILE: line number, from 1 */
} tally_rule_t;

/* Called once per problem: a malformed line (the rule is dropped) or rows
 * beyond `max` (once, for the first row that does not fit).  `line` counts
 * from 1; message has no file name and no trailing newline (the caller
 * prefixes "path:line: ").  report may be NULL. */
typedef void (*tally_tuning_report_fn)(void *ctx, unsigned line, const char *message);

/* Parses `len` bytes of `text` (need not be NUL-terminated; a NUL byte
 * makes its line malformed).  Appends well-formed rows to rules[0..max),
 * source TALLY_RULE_FILE, and returns how many.  Never fails as a whole:
 * every malformed line is reported and skipped.  Algorithm names are only
 * checked for spelling ([a-z0-9_]+); whether they exist is the caller's
 * business. */
size_t tally_tuning_parse(const char *text, size_t len, tally_rule_t *rules, size_t max,
                          tally_tuning_report_fn report, void *ctx);

/* Reads and parses the file at path.  Returns false, with a sentence naming
 * the file and the reason in err, when it cannot be opened or read (or is
 * larger than 1 MiB); *count is then untouched.  err reads "PATH: REASON",
 * e.g. "/x/y: No such file or directory"; the caller adds its own prefix
 * such as "TALLY_TUNING_FILE ".  An empty file gives true and *count 0. */
bool tally_tuning_load(const char *path, tally_rule_t *rules, size_t max, size_t *count,
                       tally_tuning_report_fn report, void *ctx, char *err, size_t errlen);

/* Writes one rule as a line of the format above (no trailing comment, no
 * newline; TALLY_TUNING_MAX_LINE bytes always suffice); tally_tuning_parse
 * reads it back as the same rule, apart from `line`, for any rule it could
 * have produced. */
void tally_tuning_format(const tally_rule_t *rule, char *buf, size_t len);

#endif
