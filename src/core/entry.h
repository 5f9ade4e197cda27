/* entry.h - the internal entry: builds a call object (call.h) and runs it.
 * The public functions reach the algorithms only through here, and so does
 * an algorithm's step on a group. */
#ifndef TALLY_ENTRY_H
#define TALLY_ENTRY_H

#include "call.h"
#include "tally.h"

struct tally_comm;
struct tally_algo;

/* Marks the calling thread as a progress thread (core/request.c) whose
 * calls run in the background while *flag is true (call.h). */
void tally_call_mark_background_thread(const bool *flag);

/* Builds the call: buffers, memory type, kernels, the algorithm (selection)
 * and a fresh tag; in the background on a marked thread.  The arguments
 * must already be valid (the public entry checked them; an internal caller
 * passes a sub-range of a checked call).  sendbuf may be TALLY_IN_PLACE.
 * Fails with TALLY_ERR_UNSUPPORTED when the buffers are of different
 * memory types or nothing can serve them. */
tally_status_t tally_call_init(tally_call_t *call, struct tally_comm *comm,
                               const void *sendbuf, void *recvbuf, size_t count,
                               tally_dtype_t dtype, tally_op_t op);

/* TALLY_CHECK for a call that ends before it is built: refused by the
 * argument checks (`local`, the status it returns) or of count 0.  The
 * ranks compare as for any call, so a rank that passes count 0, or fails
 * its own checks, while the others reduce makes every rank fail with the
 * difference named instead of leaving them waiting.  Returns `local`,
 * TALLY_ERR_ARGS_MISMATCH, or TALLY_SUCCESS when every rank agrees on a
 * call of count 0.  comm must be non-NULL, with TALLY_CHECK on. */
tally_status_t tally_call_check_unbuilt(struct tally_comm *comm, size_t count,
                                        tally_dtype_t dtype, tally_op_t op, bool in_place,
                                        tally_status_t local);

/* Runs the call's algorithm, with its trace span and statistics, and
 * gives its scratch back to the communicator. */
tally_status_t tally_call_execute(tally_call_t *call);

/* init + execute: the internal entry for every allreduce. */
tally_status_t tally_call_allreduce(struct tally_comm *comm, const void *sendbuf,
                                    void *recvbuf, size_t count, tally_dtype_t dtype,
                                    tally_op_t op);

/* A compressed allreduce: the call carries `codec`, whose tensor this
 * call's elements start at `offset` of; runs where tally_compressed_plan
 * says, exactly where it says nothing is compressed. */
tally_status_t tally_call_allreduce_coded(struct tally_comm *comm, const void *sendbuf,
                                          void *recvbuf, size_t count, tally_dtype_t dtype,
                                          tally_op_t op, struct tally_compressor *codec,
                                          size_t offset);

/* Runs `algo` instead of the call's algorithm (which cannot run, for
 * `reason`), counting it among the calls that ran elsewhere. */
tally_status_t tally_call_redirect(tally_call_t *call, const struct tally_algo *algo,
                                   const char *reason);

#endif
