/* dtype.h - facts about tally_dtype_t and tally_op_t values. */
#ifndef TALLY_DTYPE_H
#define TALLY_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include "tally.h"

#define TALLY_DTYPE_COUNT 12
#define TALLY_OP_COUNT 11

bool tally_dtype_valid(tally_dtype_t dtype);
bool tally_op_valid(tally_op_t op);
/* Bytes per element; 0 for an invalid dtype. */
size_t tally_dtype_size(tally_dtype_t dtype);
bool tally_dtype_is_float(tally_dtype_t dtype);
/* Whether op is defined on dtype: AVG on floating types only, the bitwise
 * and logical ops on integer types only, the rest on every type.  False if
 * either value is invalid. */
bool tally_op_defined_on(tally_op_t op, tally_dtype_t dtype);
/* Whether op is one of the bitwise or logical ops (integer types only). */
bool tally_op_needs_integer(tally_op_t op);
/* "float32", "sum", ...; "?" for invalid values. */
const char *tally_dtype_name(tally_dtype_t dtype);
const char *tally_op_name(tally_op_t op);
/* Parses the names above; false if unknown. */
bool tally_dtype_parse(const char *name, tally_dtype_t *out);
bool tally_op_parse(const char *name, tally_op_t *out);

#endif
