/* status.c - tally_strerror() and tally_version(). */
#include "tally.h"

const char *tally_strerror(tally_status_t status)
{
    switch (status) {
#define TALLY_STATUS_TEXT_(name, value, text) \
    case TALLY_##name:                        \
        return text;
        TALLY_STATUS_MAP(TALLY_STATUS_TEXT_)
#undef TALLY_STATUS_TEXT_
    }
    return "unknown tally status code";
}

unsigned tally_version(void)
{
    return TALLY_VERSION;
}
