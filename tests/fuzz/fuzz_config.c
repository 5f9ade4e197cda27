/* fuzz_config.c - libFuzzer target for the environment's values
 * (src/core/config.c): the first byte picks a variable (or a made-up
 * TALLY_* name, for the misspelling check), the rest is its value.  Every
 * value either loads, with every field in its documented range, or is
 * refused with a message naming the variable and the configuration
 * untouched; never a crash.  The introspection config.c lists algorithms
 * with is stubbed: the registry is not under test here. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

int tally_algorithm_count(void) { return 0; }
const char *tally_algorithm_name(int i) { (void)i; return NULL; }
const char *tally_algorithm_summary(int i) { (void)i; return NULL; }

static const char *const names[] = {
    "TALLY_ALGO", "TALLY_SEGMENT_SIZE", "TALLY_PIPELINE_DEPTH", "TALLY_FALLBACK",
    "TALLY_LOG_LEVEL", "TALLY_PRELOAD", "TALLY_COMPRESS", "TALLY_COMPRESS_MIN_BYTES",
    "TALLY_FUSION_BYTES", "TALLY_PROGRESS_THREAD", "TALLY_CHECK", "TALLY_TIMEOUT",
    "TALLY_DEVICE", "TALLY_STAGE_CHUNK", "TALLY_STATS", "TALLY_TRACE", "TALLY_TUNING_FILE",
    "TALLY_MODEL", "TALLY_CALIBRATE", "TALLY_SHM_CHUNK", "TALLY_DEBUG_FAIL_SETUP",
};
#define NAMES (sizeof names / sizeof names[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *value = malloc(size);
    if (!value)
        abort();
    memcpy(value, data + 1, size - 1);
    value[size - 1] = '\0';
    const size_t pick = data[0] % (NAMES + 1);
    char name[80];
    if (pick < NAMES)
        snprintf(name, sizeof name, "%s", names[pick]);
    else /* a made-up name: the value's first bytes, as a TALLY_* variable */
        snprintf(name, sizeof name, "TALLY_%.40s", value[0] && !strchr(value, '=') ? value : "X");
    if (setenv(name, value, 1) != 0) {
        free(value);
        return 0;
    }
    tally_config_t cfg, before;
    memset(&cfg, 0x5c, sizeof cfg);
    memcpy(&before, &cfg, sizeof cfg);
    char err[512] = "";
    const tally_status_t st = tally_config_load(&cfg, err, sizeof err);
    if (st == TALLY_SUCCESS) {
        if (cfg.segment_size < 1 || cfg.segment_size > ((size_t)1 << 30) ||
            cfg.pipeline_depth < 1 || cfg.pipeline_depth > 64 || cfg.timeout < 0 ||
            cfg.stage_chunk < 65536 || (cfg.check != 0 && cfg.check != 1) ||
            (cfg.stats != 0 && cfg.stats != 1) || cfg.device < 0 || cfg.device > 2) {
            fprintf(stderr, "fuzz_config: %s=\"%s\" loaded out of range\n", name, value);
            abort();
        }
    } else if (st != TALLY_ERR_INVALID_CONFIG || memcmp(&cfg, &before, sizeof cfg) != 0 ||
               strstr(err, "TALLY_") == NULL) {
        fprintf(stderr, "fuzz_config: %s=\"%s\": status %d, config written or no name in "
                        "\"%s\"\n", name, value, (int)st, err);
        abort();
    }
    char msg[256];
    (void)tally_config_unknown(msg, sizeof msg);
    unsetenv(name);
    free(value);
    return 0;
}
