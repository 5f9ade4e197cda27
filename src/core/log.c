/* log.c - leveled messages on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static const char *const level_names[] = {
    [TALLY_LOG_NONE] = "", [TALLY_LOG_ERROR] = "error", [TALLY_LOG_WARN] = "warning",
    [TALLY_LOG_INFO] = "info", [TALLY_LOG_DEBUG] = "debug", [TALLY_LOG_TRACE] = "trace",
};

void tally_log_at(tally_log_level_t threshold, int rank, tally_log_level_t level,
                  const char *file, int line, const char *fmt, ...)
{
    if (level == TALLY_LOG_NONE || level > threshold)
        return;
    /* One fprintf per message, so lines from several ranks do not interleave. */
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (rank >= 0)
        fprintf(stderr, "tally[%d]: %s: %s (%s:%d)\n", rank, level_names[level], text,
                base, line);
    else
        fprintf(stderr, "tally: %s: %s (%s:%d)\n", level_names[level], text, base, line);
}

void tally_log_mpi_error(const struct tally_comm *comm, int mpi_rc, const char *what,
                         const char *file, int line)
{
    char mpi_text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (PMPI_Error_string(mpi_rc, mpi_text, &len) != MPI_SUCCESS)
        snprintf(mpi_text, sizeof mpi_text, "MPI error %d", mpi_rc);
    tally_log_at(tally_comm_log_level(comm), tally_comm_log_rank(comm), TALLY_LOG_ERROR,
                 file, line, "%s failed: %s", what, mpi_text);
}
