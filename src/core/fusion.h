/* fusion.h - tally_allreduce_multi: many tensors of one dtype in few calls,
 * packed into the communicator's persistent fusion buffer
 * (TALLY_FUSION_BYTES), reduced, unpacked (Horovod's fusion buffer). */
#ifndef TALLY_FUSION_H
#define TALLY_FUSION_H

#include <stddef.h>

#include "tally.h"

struct tally_comm;

/* The checks of tally_allreduce_multi on every tensor; `fn` names the
 * caller in the message. */
tally_status_t tally_fusion_check(const char *fn, const tally_buffer_t *bufs, size_t n,
                                  tally_dtype_t dtype, tally_op_t op,
                                  const struct tally_comm *comm);

/* Runs the checked call: consecutive tensors that fit together go through
 * the buffer as one allreduce; a tensor that fills the buffer alone runs
 * alone.  With a compressor (NULL: exact), the tensors are its tensor laid
 * end to end, so each keeps its own error-feedback state. */
tally_status_t tally_fusion_run(struct tally_comm *comm, const tally_buffer_t *bufs, size_t n,
                                tally_dtype_t dtype, tally_op_t op,
                                struct tally_compressor *codec);

#endif
