/* introspect.c - the public introspection of tally.h: the algorithm
 * registry by index, the byte-count parser, and tally_config_get (which
 * reports a bad value; config.c itself never logs).  The dtype and op
 * tables' public functions are in dtype.c, next to the tables. */
#include <string.h>

#include "../algo/algo.h"
#include "config.h"
#include "log.h"
#include "tally.h"

int tally_algorithm_count(void)
{
    int n = 0;
    while (tally_algo_registry[n])
        n++;
    return n;
}

/* The registry entry at index i, or NULL. */
static const tally_algo_t *algorithm_at(int i)
{
    if (i < 0)
        return NULL;
    for (int k = 0; tally_algo_registry[k]; k++)
        if (k == i)
            return tally_algo_registry[k];
    return NULL;
}

const char *tally_algorithm_name(int i)
{
    const tally_algo_t *a = algorithm_at(i);
    return a ? a->name : NULL;
}

const char *tally_algorithm_summary(int i)
{
    const tally_algo_t *a = algorithm_at(i);
    return a ? a->summary : NULL;
}

tally_status_t tally_size_parse(const char *text, size_t *out)
{
    if (!text || !out)
        return TALLY_ERR_INVALID_ARGUMENT;
    size_t value;
    if (!tally_config_parse_size(text, &value))
        return TALLY_ERR_INVALID_ARGUMENT;
    *out = value;
    return TALLY_SUCCESS;
}

tally_status_t tally_config_get(const char *name, char *value, size_t len)
{
    char err[256];
    tally_status_t st = tally_config_lookup(name, value, len, err, sizeof err);
    if (st == TALLY_ERR_INVALID_CONFIG)
        tally_log_at(tally_config_log_level_from_env(), -1, TALLY_LOG_ERROR, __FILE__,
                     __LINE__, "%s", err);
    return st;
}
