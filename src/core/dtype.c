/* dtype.c - sizes and names of tally's element types and operations: the
 * one table of each, behind the public tally_dtype_* and tally_op_*. */
#include "dtype.h"

#include <string.h>

typedef struct dtype_info {
    const char *name;
    size_t size;
    bool is_float;
} dtype_info_t;

/* Indexed by tally_dtype_t. */
static const dtype_info_t dtype_table[TALLY_DTYPE_COUNT] = {
    [TALLY_INT8] = {"int8", 1, false},       [TALLY_UINT8] = {"uint8", 1, false},
    [TALLY_INT32] = {"int32", 4, false},     [TALLY_UINT32] = {"uint32", 4, false},
    [TALLY_INT64] = {"int64", 8, false},     [TALLY_UINT64] = {"uint64", 8, false},
    [TALLY_FLOAT16] = {"float16", 2, true},  [TALLY_BFLOAT16] = {"bfloat16", 2, true},
    [TALLY_FLOAT32] = {"float32", 4, true},  [TALLY_FLOAT64] = {"float64", 8, true},
    [TALLY_INT16] = {"int16", 2, false},     [TALLY_UINT16] = {"uint16", 2, false},
};

/* Indexed by tally_op_t. */
static const char *const op_names[TALLY_OP_COUNT] = {
    [TALLY_SUM] = "sum", [TALLY_PROD] = "prod", [TALLY_MIN] = "min",
    [TALLY_MAX] = "max", [TALLY_AVG] = "avg",   [TALLY_BAND] = "band",
    [TALLY_BOR] = "bor", [TALLY_BXOR] = "bxor", [TALLY_LAND] = "land",
    [TALLY_LOR] = "lor", [TALLY_LXOR] = "lxor",
};

bool tally_dtype_valid(tally_dtype_t dtype)
{
    return (unsigned)dtype < TALLY_DTYPE_COUNT;
}

bool tally_op_valid(tally_op_t op)
{
    return (unsigned)op < TALLY_OP_COUNT;
}

size_t tally_dtype_size(tally_dtype_t dtype)
{
    return tally_dtype_valid(dtype) ? dtype_table[dtype].size : 0;
}

bool tally_dtype_is_float(tally_dtype_t dtype)
{
    return tally_dtype_valid(dtype) && dtype_table[dtype].is_float;
}

bool tally_op_needs_integer(tally_op_t op)
{
    switch (op) {
    case TALLY_BAND: case TALLY_BOR: case TALLY_BXOR:
    case TALLY_LAND: case TALLY_LOR: case TALLY_LXOR:
        return true;
    case TALLY_SUM: case TALLY_PROD: case TALLY_MIN: case TALLY_MAX: case TALLY_AVG:
        break;
    }
    return false;
}

bool tally_op_defined_on(tally_op_t op, tally_dtype_t dtype)
{
    if (!tally_op_valid(op) || !tally_dtype_valid(dtype))
        return false;
    if (op == TALLY_AVG)
        return tally_dtype_is_float(dtype);
    if (tally_op_needs_integer(op))
        return !tally_dtype_is_float(dtype);
    return true;
}

const char *tally_dtype_name(tally_dtype_t dtype)
{
    return tally_dtype_valid(dtype) ? dtype_table[dtype].name : "?";
}

const char *tally_op_name(tally_op_t op)
{
    return tally_op_valid(op) ? op_names[op] : "?";
}

int tally_dtype_count(void)
{
    return TALLY_DTYPE_COUNT;
}

int tally_op_count(void)
{
    return TALLY_OP_COUNT;
}

tally_status_t tally_dtype_parse(const char *name, tally_dtype_t *out)
{
    if (!name || !out)
        return TALLY_ERR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < TALLY_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (tally_dtype_t)i;
            return TALLY_SUCCESS;
        }
    }
    return TALLY_ERR_INVALID_DTYPE;
}

tally_status_t tally_op_parse(const char *name, tally_op_t *out)
{
    if (!name || !out)
        return TALLY_ERR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < TALLY_OP_COUNT; i++) {
        if (strcmp(name, op_names[i]) == 0) {
            *out = (tally_op_t)i;
            return TALLY_SUCCESS;
        }
    }
    return TALLY_ERR_INVALID_OP;
}

tally_status_t tally_op_check(tally_op_t op, tally_dtype_t dtype)
{
    if (!tally_dtype_valid(dtype))
        return TALLY_ERR_INVALID_DTYPE;
    if (!tally_op_valid(op))
        return TALLY_ERR_INVALID_OP;
    return tally_op_defined_on(op, dtype) ? TALLY_SUCCESS : TALLY_ERR_OP_DTYPE_MISMATCH;
}
