/* log.h - leveled messages on stderr, prefixed "tally[rank]: LEVEL file:line". */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include "log_types.h"
#include "tally.h"

/* threshold: the configured level; rank: -1 when unknown. */
void tally_log_at(tally_log_level_t threshold, int rank, tally_log_level_t level,
                  const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Logs with the threshold and rank of a tally_comm_t *c (which may be NULL). */
#define TALLY_LOG(c, level, ...)                                               \
    tally_log_at(tally_comm_log_level(c), tally_comm_log_rank(c), (level),     \
                 __FILE__, __LINE__, __VA_ARGS__)

/* Defined with the communicator (comm.c), which log.c never needs: logging
 * stays a leaf. */
struct tally_comm;
tally_log_level_t tally_comm_log_level(const struct tally_comm *comm);
int tally_comm_log_rank(const struct tally_comm *comm);

/* Runs an MPI call; on failure logs it once with its MPI error string and
 * returns TALLY_ERR_MPI from the enclosing function. */
#define TALLY_MPI_CHECK(c, call)                                               \
    do {                                                                       \
        int tally_mpi_rc_ = (call);                                            \
        if (tally_mpi_rc_ != MPI_SUCCESS) {                                    \
            tally_log_mpi_error((c), tally_mpi_rc_, #call, __FILE__, __LINE__); \
            return TALLY_ERR_MPI;                                              \
        }                                                                      \
    } while (0)

/* Same, but stores the status in `st` and jumps to `label` (for cleanup). */
#define TALLY_MPI_CHECK_GOTO(c, call, st, label)                               \
    do {                                                                       \
        int tally_mpi_rc_ = (call);                                            \
        if (tally_mpi_rc_ != MPI_SUCCESS) {                                    \
            tally_log_mpi_error((c), tally_mpi_rc_, #call, __FILE__, __LINE__); \
            (st) = TALLY_ERR_MPI;                                              \
            goto label;                                                        \
        }                                                                      \
    } while (0)

/* Propagates a non-success status from a tally call. */
#define TALLY_CHECK(call)                                                      \
    do {                                                                       \
        tally_status_t tally_st_ = (call);                                     \
        if (tally_st_ != TALLY_SUCCESS)                                        \
            return tally_st_;                                                  \
    } while (0)

void tally_log_mpi_error(const struct tally_comm *comm, int mpi_rc,
                         const char *what, const char *file, int line);

#endif
