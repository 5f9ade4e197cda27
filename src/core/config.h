/* config.h - the one configuration table: every TALLY_* variable, its
 * default, its documentation, its parser and the field it fills.  Config
 * never logs (it needs only the log level's type): errors come back as a
 * status and a sentence. */
#ifndef TALLY_CONFIG_H
#define TALLY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "log_types.h"
#include "tally.h"
typedef enum tally_fallback {
    TALLY_FALLBACK_ERROR,  /* a forced algorithm that does not fit: fail */
    TALLY_FALLBACK_WARN,   /* ... run tally's own choice, warn once */
    TALLY_FALLBACK_SILENT  /* ... run tally's own choice quietly */
} tally_fallback_t;

#define TALLY_ALGO_NAME_MAX 64
#define TALLY_PATH_MAX 4096

typedef struct tally_config {
    char algo[TALLY_ALGO_NAME_MAX]; /* "auto" or an algorithm name */
    size_t segment_size;            /* bytes per pipelined message */
    unsigned pipeline_depth;        /* segments in flight per peer */
    tally_fallback_t fallback;
    tally_log_level_t log_level;
    int preload;                    /* libtally-preload.so: 1 on, 0 off */
    unsigned stats;                 /* 1 prints a table at destroy / MPI_Finalize */
    unsigned check;                 /* 1: ranks compare every call's arguments first */
    double timeout;                 /* seconds a call may wait for its peers; 0: forever */
    char tuning_file[TALLY_PATH_MAX]; /* "" or a tally-tuning(5) file */
    int model;                      /* 1: rules from the cost model; 0: built-in rules */
    unsigned calibrate;             /* 1: measure the model's costs at creation */
    size_t shm_chunk;               /* bytes per shared-memory pipeline chunk */
    char trace[TALLY_PATH_MAX];     /* "" or the prefix of the Chrome trace files */
    char compress[TALLY_ALGO_NAME_MAX]; /* libtally-preload.so: "" or a codec spec */
    size_t compress_min_bytes;      /* ... for calls of at least this many bytes */
    size_t fusion_bytes;            /* tally_allreduce_multi's buffer, at most */
    int device;                     /* TALLY_DEVICE: a tally_device_choice_t (mem.h) */
    size_t stage_chunk;             /* bytes per chunk of the staged algorithm */
    unsigned progress_thread;       /* 1: non-blocking calls run on a thread where possible */
    int fail_setup_rank;            /* tests: this rank's set-up fails; -1: none */
} tally_config_t;

/* Fills *cfg from the environment through the table.  On a bad value returns
 * TALLY_ERR_INVALID_CONFIG, writes a sentence naming the variable into
 * err (size errlen) and leaves *cfg untouched. */
tally_status_t tally_config_load(tally_config_t *cfg, char *err, size_t errlen);

/* Fills *cfg with every variable's default, ignoring the environment (the
 * configuration a what-if cluster is priced with, tally_model_explain).
 * TALLY_ERR_INVALID_CONFIG only if a default does not parse (a bug). */
tally_status_t tally_config_defaults(tally_config_t *cfg);

/* The threshold for messages when no communicator is at hand. */
tally_log_level_t tally_config_log_level_from_env(void);

/* Whether the environment holds a TALLY_* variable that is no setting of
 * tally's (a misspelling such as TALLY_ALGORITHM); msg then says which,
 * with the closest name. */
bool tally_config_unknown(char *msg, size_t len);

/* A hash of every parsed value, equal on ranks with equal configurations. */
uint64_t tally_config_hash(const tally_config_t *cfg);

/* Every variable: name, default, current value and doc; after TALLY_ALGO's
 * doc, every registered algorithm with its summary. */
void tally_config_write(FILE *stream);

/* tally_config_get without a message: on TALLY_ERR_INVALID_CONFIG writes a
 * sentence naming the variable and what it expects into err (size errlen)
 * for the caller to report. */
tally_status_t tally_config_lookup(const char *name, char *value, size_t len, char *err,
                                   size_t errlen);

/* The one parser of byte counts (TALLY_SEGMENT_SIZE, tally_size_parse):
 * digits and an optional K, M or G; true on success. */
bool tally_config_parse_size(const char *text, size_t *out);
/* Parser, exposed for unit tests: true on success. */
bool tally_config_parse_unsigned(const char *text, unsigned *out);

#endif
