/* log_types.h - the log level type alone, for headers that store a level
 * (config.h) without logging; log.h has the functions. */
#ifndef TALLY_LOG_TYPES_H
#define TALLY_LOG_TYPES_H

/* Each level adds to the ones before it. */
typedef enum tally_log_level {
    TALLY_LOG_NONE,
    TALLY_LOG_ERROR,
    TALLY_LOG_WARN,
    TALLY_LOG_INFO,
    TALLY_LOG_DEBUG, /* each choice, once per communicator, algorithm and size class */
    TALLY_LOG_TRACE  /* every call */
} tally_log_level_t;

#endif
