/* dtype.h - facts about tally_dtype_t and tally_op_t values.  The public
 * ones (names, sizes, parsers, tally_op_check) are declared in tally.h;
 * these are the library's own. */
#ifndef TALLY_DTYPE_H
#define TALLY_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include "tally.h"

#define TALLY_DTYPE_COUNT 12
#define TALLY_OP_COUNT 11

bool tally_dtype_valid(tally_dtype_t dtype);
bool tally_op_valid(tally_op_t op);
bool tally_dtype_is_float(tally_dtype_t dtype);
/* Whether op is defined on dtype: AVG on floating types only, the bitwise
 * and logical ops on integer types only, the rest on every type.  False if
 * either value is invalid. */
bool tally_op_defined_on(tally_op_t op, tally_dtype_t dtype);
/* Whether op is one of the bitwise or logical ops (integer types only). */
bool tally_op_needs_integer(tally_op_t op);

#endif
