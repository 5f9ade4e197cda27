/* spec.c - parsing a codec spec (grammar in codec.h and tally(7)):
 *   CODEC[:PARAM][,ef=on|off][,seed=N][,cols=N]
 * Every error names the part that is wrong. */
#include "codec.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_MAX 256
#define RANK_MAX 64

static tally_status_t fail(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return TALLY_ERR_INVALID_ARGUMENT;
}

/* A whole decimal number with no sign, or false. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

tally_status_t tally_codec_spec_parse(const char *text, tally_codec_spec_t *out, char *why,
                                      size_t why_len)
{
    if (!text || !*text)
        return fail(why, why_len, "empty codec spec: expected a codec name such as fp16");
    char buf[SPEC_MAX];
    if (strlen(text) >= sizeof buf)
        return fail(why, why_len, "codec spec longer than %d characters", SPEC_MAX - 1);
    strcpy(buf, text);

    tally_codec_spec_t spec = {.error_feedback = true, .seed = 0x7a11c0de};
    char *rest = strchr(buf, ',');
    if (rest)
        *rest++ = '\0';
    char *param = strchr(buf, ':');
    if (param)
        *param++ = '\0';
    spec.codec = tally_codec_find(buf);
    if (!spec.codec)
        return fail(why, why_len,
                    "unknown codec \"%s\" in \"%s\": expected none, fp16, bf16, int8, "
                    "topk:RATIO, sign or powersgd:RANK",
                    buf, text);
    const char *name = spec.codec->name;
    if (spec.codec->parameter && !param)
        return fail(why, why_len, "codec %s needs a %s: %s:%s", name, spec.codec->parameter,
                    name, spec.codec->parameter);
    if (!spec.codec->parameter && param)
        return fail(why, why_len, "codec %s takes no parameter, got \":%s\"", name, param);
    if (param && spec.codec->kind == TALLY_CODEC_SPARSE) {
        char *end;
        errno = 0;
        double r = strtod(param, &end);
        if (errno || end == param || *end || !(r > 0.0 && r <= 1.0))
            return fail(why, why_len, "topk ratio \"%s\": expected a number with 0 < RATIO <= 1",
                        param);
        spec.ratio = r;
    } else if (param) {
        uint64_t r;
        if (!parse_u64(param, &r) || r < 1 || r > RANK_MAX)
            return fail(why, why_len, "powersgd rank \"%s\": expected a whole number from 1 to %d",
                        param, RANK_MAX);
        spec.rank = (unsigned)r;
    }
    while (rest && *rest) {
        char *opt = rest;
        rest = strchr(rest, ',');
        if (rest)
            *rest++ = '\0';
        char *value = strchr(opt, '=');
        if (!value)
            return fail(why, why_len, "option \"%s\": expected KEY=VALUE (ef, seed or cols)", opt);
        *value++ = '\0';
        if (strcmp(opt, "ef") == 0) {
            if (strcmp(value, "on") == 0)
                spec.error_feedback = true;
            else if (strcmp(value, "off") == 0)
                spec.error_feedback = false;
            else
                return fail(why, why_len, "option ef=\"%s\": expected on or off", value);
        } else if (strcmp(opt, "seed") == 0) {
            if (!parse_u64(value, &spec.seed))
                return fail(why, why_len, "option seed=\"%s\": expected a whole number", value);
        } else if (strcmp(opt, "cols") == 0) {
            uint64_t c;
            if (spec.codec->kind != TALLY_CODEC_LOW_RANK)
                return fail(why, why_len, "option cols applies to powersgd only, not %s", name);
            if (!parse_u64(value, &c) || c < 1 || c > ((uint64_t)1 << 31))
                return fail(why, why_len, "option cols=\"%s\": expected a whole number from 1 "
                            "to 2^31", value);
            spec.cols = (size_t)c;
        } else {
            return fail(why, why_len, "unknown option \"%s\": expected ef, seed or cols", opt);
        }
    }
    if (rest)
        return fail(why, why_len, "empty option after a comma in \"%s\"", text);
    *out = spec;
    return TALLY_SUCCESS;
}
