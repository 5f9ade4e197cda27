/* tally.h - the whole public API of libtally: fast allreduce over MPI.
 *
 * Every function returns a tally_status_t; outputs are written only on
 * success.  A tally_comm_t wraps an MPI communicator; like an MPI
 * communicator, one tally_comm_t must not be used by two threads at once.
 * See tally(7) for the overview and every environment variable.
 */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdio.h>
#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TALLY_VERSION_MAJOR 0
#define TALLY_VERSION_MINOR 1
#define TALLY_VERSION_PATCH 0
/* TALLY_VERSION_MAJOR * 10000 + TALLY_VERSION_MINOR * 100 + TALLY_VERSION_PATCH */
#define TALLY_VERSION \
    (TALLY_VERSION_MAJOR * 10000 + TALLY_VERSION_MINOR * 100 + TALLY_VERSION_PATCH)

#if defined(__GNUC__)
#define TALLY_API __attribute__((visibility("default")))
#else
#define TALLY_API
#endif

/* Status codes, one list that makes both the enum and tally_strerror()'s
 * sentences: TALLY_SUCCESS is 0, every error is negative. */
#define TALLY_STATUS_MAP(X)                                                    \
    X(SUCCESS, 0, "success")                                                   \
    X(ERR_NULL_BUFFER, -1, "a buffer is NULL while count > 0")                 \
    X(ERR_INVALID_DTYPE, -2, "not a tally_dtype_t value")                      \
    X(ERR_INVALID_OP, -3, "not a tally_op_t value")                            \
    X(ERR_OP_DTYPE_MISMATCH, -4, "the op is not defined on this dtype "        \
      "(AVG needs a floating type, bitwise and logical ops an integer "        \
      "type)")                                                                 \
    X(ERR_ALIASED_BUFFERS, -5, "sendbuf and recvbuf overlap; pass "            \
      "TALLY_IN_PLACE as sendbuf to reduce in place")                          \
    X(ERR_NULL_COMM, -6, "the communicator is NULL or MPI_COMM_NULL")          \
    X(ERR_UNKNOWN_ALGORITHM, -7, "no algorithm of that name")                  \
    X(ERR_INVALID_CONFIG, -8, "a TALLY_* environment variable has a bad value") \
    X(ERR_CONFIG_MISMATCH, -9, "ranks hold different tally configurations")    \
    X(ERR_UNSUPPORTED, -10, "valid input that tally cannot serve")             \
    X(ERR_NO_MEMORY, -11, "out of memory")                                     \
    X(ERR_MPI, -12, "the MPI library returned an error")                       \
    X(ERR_INVALID_ARGUMENT, -13, "an argument is out of range")                \
    X(ERR_COUNT_TOO_LARGE, -14, "count times the element size overflows")       \
    X(ERR_CORRUPT_PAYLOAD, -15, "a compressed message failed validation")    \
    X(ERR_DEVICE, -16, "the device runtime (CUDA) reported an error")          \
    X(ERR_COMM_BROKEN, -17, "an earlier call failed partway on this communicator; " \
                            "destroy it")                                      \
    X(ERR_ARGS_MISMATCH, -18, "ranks passed different arguments to one call "  \
                              "(TALLY_CHECK)")                                 \
    X(ERR_TIMEOUT, -19, "a call waited longer than TALLY_TIMEOUT for its peers")

typedef enum tally_status {
#define TALLY_STATUS_ENUM_(name, value, text) TALLY_##name = value,
    TALLY_STATUS_MAP(TALLY_STATUS_ENUM_)
#undef TALLY_STATUS_ENUM_
} tally_status_t;

/* Element types.  FLOAT16 is IEEE binary16, BFLOAT16 is bfloat16; both are
 * reduced in float and rounded to nearest even after every operation.  New
 * values are only ever appended, so existing ones never change. */
typedef enum tally_dtype {
    TALLY_INT8,
    TALLY_UINT8,
    TALLY_INT32,
    TALLY_UINT32,
    TALLY_INT64,
    TALLY_UINT64,
    TALLY_FLOAT16,
    TALLY_BFLOAT16,
    TALLY_FLOAT32,
    TALLY_FLOAT64,
    TALLY_INT16,
    TALLY_UINT16
} tally_dtype_t;

/* Reduction operations.  Integer SUM and PROD wrap modulo 2^bits; AVG (the
 * sum divided by the communicator size) is defined on floating types only.
 * The bitwise (BAND, BOR, BXOR) and logical (LAND, LOR, LXOR) operations are
 * defined on integer types only; as in MPI, a logical result is 1 if true
 * and 0 if false, in the element type (LXOR: (a != 0) != (b != 0)).  New
 * values are only ever appended. */
typedef enum tally_op {
    TALLY_SUM,
    TALLY_PROD,
    TALLY_MIN,
    TALLY_MAX,
    TALLY_AVG,
    TALLY_BAND,
    TALLY_BOR,
    TALLY_BXOR,
    TALLY_LAND,
    TALLY_LOR,
    TALLY_LXOR
} tally_op_t;

/* Pass as sendbuf to reduce recvbuf in place. */
#define TALLY_IN_PLACE ((const void *)1)

typedef struct tally_comm tally_comm_t;

/* A constant English sentence for a status; never NULL. */
TALLY_API const char *tally_strerror(tally_status_t status);

/* TALLY_VERSION of the library actually loaded. */
TALLY_API unsigned tally_version(void);

/* Collective over comm: duplicates it, reads the TALLY_* configuration and
 * checks that every rank holds the same one. */
TALLY_API tally_status_t tally_comm_create(MPI_Comm comm, tally_comm_t **out);

/* Collective: frees everything tally_comm_create made. NULL is a no-op. */
TALLY_API tally_status_t tally_comm_destroy(tally_comm_t *comm);

/* Collective: recvbuf[i] = op over all ranks of sendbuf[i], for i < count. */
TALLY_API tally_status_t tally_allreduce(const void *sendbuf, void *recvbuf,
                                         size_t count, tally_dtype_t dtype,
                                         tally_op_t op, tally_comm_t *comm);

/* Forces an algorithm by name on this communicator ("auto" or NULL restores
 * tally's own choice).  Every rank must pass the same name. */
TALLY_API tally_status_t tally_comm_set_algorithm(tally_comm_t *comm,
                                                  const char *name);

/* The name of the algorithm tally_allreduce would run for these arguments
 * on comm (a static string, valid for the life of the library). */
TALLY_API tally_status_t tally_comm_get_algorithm(tally_comm_t *comm,
                                                  size_t count,
                                                  tally_dtype_t dtype,
                                                  tally_op_t op,
                                                  const char **name);

/* Not collective: predicted seconds of one call with `algorithm` forced, by
 * the communicator's cost model (see tally-info --explain).  Fails with
 * TALLY_ERR_UNKNOWN_ALGORITHM for a name tally does not have and
 * TALLY_ERR_UNSUPPORTED when the algorithm cannot serve dtype and op. */
TALLY_API tally_status_t tally_comm_predict(tally_comm_t *comm, const char *algorithm,
                                            size_t count, tally_dtype_t dtype,
                                            tally_op_t op, double *seconds);

/* Not collective: writes why tally_allreduce would run the algorithm it
 * runs for these arguments on comm (the deciding rule and its source, and
 * every candidate's predicted time) to stream. */
TALLY_API tally_status_t tally_comm_explain(tally_comm_t *comm, size_t count,
                                            tally_dtype_t dtype, tally_op_t op,
                                            FILE *stream);

/* No communicator and no MPI: writes what tally_comm_explain would write
 * for these arguments on a cluster described by `spec` (a what-if: nodes,
 * ranks per node, placement, network and node rates), priced by the cost
 * model with the default configuration, to stream.  The spec is
 * comma-separated key=value items, for example
 * "nodes=64,ppn=8,placement=slot,latency=2us,bandwidth=100gbit"; see
 * tally_model_explain(3).  A spec that does not parse fails with
 * TALLY_ERR_INVALID_ARGUMENT and a logged message naming the wrong part;
 * on error nothing is written. */
TALLY_API tally_status_t tally_model_explain(const char *spec, size_t count,
                                             tally_dtype_t dtype, tally_op_t op,
                                             FILE *stream);

/* No communicator and no MPI: writes the shape, cost model and rule table
 * of the what-if cluster `spec` (as tally_model_explain reads it), as
 * tally_comm_print does for a communicator. */
TALLY_API tally_status_t tally_model_print(const char *spec, FILE *stream);

/* Not collective: writes the communicator's shape (nodes, ranks per node,
 * placement), its cost model and its rule table to stream. */
TALLY_API tally_status_t tally_comm_print(tally_comm_t *comm, FILE *stream);

/* Writes a compact summary of what hwloc sees on this node (packages, NUMA
 * nodes, cores, PUs, caches, GPUs, NICs, this process's binding). */
TALLY_API tally_status_t tally_topology_print(FILE *stream);

/* Writes every TALLY_* environment variable with its default, its current
 * value and its documentation to stream. */
TALLY_API tally_status_t tally_config_print(FILE *stream);

/* Copies the current value of the TALLY_* variable `name` (the environment's,
 * or the default) into value[len], after checking that it parses. */
TALLY_API tally_status_t tally_config_get(const char *name, char *value, size_t len);

/* ------------------------------------------------------------------------
 * Introspection: the names and sizes tally knows, from the same tables the
 * library runs on, so that tools, tests and bindings never keep lists of
 * their own.  None of these needs MPI or a communicator; all may be called
 * from any thread at any time.  Returned strings are static and valid for
 * the life of the library.
 */

/* How many algorithms this library has; their indices are 0 to count - 1,
 * in the order of its registry. */
TALLY_API int tally_algorithm_count(void);

/* The name of algorithm i ("ring"), as TALLY_ALGO, tally_comm_set_algorithm
 * and tuning files spell it; NULL when i is out of range. */
TALLY_API const char *tally_algorithm_name(int i);

/* One line on what algorithm i does; NULL when i is out of range. */
TALLY_API const char *tally_algorithm_summary(int i);

/* How many tally_dtype_t and tally_op_t values this library has: the
 * valid values are 0 to count - 1 (the enumerations only grow). */
TALLY_API int tally_dtype_count(void);
TALLY_API int tally_op_count(void);

/* "float32", "sum", ...; "?" for a value that is not one. */
TALLY_API const char *tally_dtype_name(tally_dtype_t dtype);
TALLY_API const char *tally_op_name(tally_op_t op);

/* Bytes per element; 0 for a value that is not a tally_dtype_t. */
TALLY_API size_t tally_dtype_size(tally_dtype_t dtype);

/* The value whose tally_dtype_name / tally_op_name is `name` (exact,
 * lower-case), into *out. */
TALLY_API tally_status_t tally_dtype_parse(const char *name, tally_dtype_t *out);
TALLY_API tally_status_t tally_op_parse(const char *name, tally_op_t *out);

/* Whether tally_allreduce accepts op on dtype: the status it would return
 * for them (TALLY_SUCCESS, TALLY_ERR_INVALID_DTYPE, TALLY_ERR_INVALID_OP or
 * TALLY_ERR_OP_DTYPE_MISMATCH). */
TALLY_API tally_status_t tally_op_check(tally_op_t op, tally_dtype_t dtype);

/* A byte count as TALLY_SEGMENT_SIZE takes it: digits with an optional K,
 * M or G (powers of 1024, either case), nothing else, into *out. */
TALLY_API tally_status_t tally_size_parse(const char *text, size_t *out);

/* --- Non-blocking calls and fusion (tally(7), NON-BLOCKING CALLS) -----------
 * A started call runs in the background (a progress thread per
 * communicator where the MPI grants MPI_THREAD_MULTIPLE, else inside
 * tally_test and tally_wait); its buffers must not be touched until it
 * completes.  Calls on one communicator, blocking or not, run in the order
 * they were started; start them in the same order on every rank, as MPI
 * requires for collectives. */
typedef struct tally_request tally_request_t;

TALLY_API tally_status_t tally_iallreduce(const void *sendbuf, void *recvbuf, size_t count,
                                          tally_dtype_t dtype, tally_op_t op,
                                          tally_comm_t *comm, tally_request_t **req);
/* Waits until the call completes, frees the request, sets *req = NULL and
 * returns the call's status. */
TALLY_API tally_status_t tally_wait(tally_request_t **req);
/* *done = 1 (and as tally_wait) when complete, else *done = 0. */
TALLY_API tally_status_t tally_test(tally_request_t **req, int *done);
/* Waits for every non-NULL request; the first failure's status. */
TALLY_API tally_status_t tally_waitall(size_t n, tally_request_t **reqs);

/* One tensor of tally_allreduce_multi: sendbuf may be TALLY_IN_PLACE. */
typedef struct tally_buffer {
    const void *sendbuf;
    void *recvbuf;
    size_t count;
} tally_buffer_t;

/* Collective: every tensor allreduced, consecutive ones packed into the
 * communicator's fusion buffer (TALLY_FUSION_BYTES) and reduced together. */
TALLY_API tally_status_t tally_allreduce_multi(const tally_buffer_t *bufs, size_t n,
                                               tally_dtype_t dtype, tally_op_t op,
                                               tally_comm_t *comm);
TALLY_API tally_status_t tally_iallreduce_multi(const tally_buffer_t *bufs, size_t n,
                                                tally_dtype_t dtype, tally_op_t op,
                                                tally_comm_t *comm, tally_request_t **req);

/* --- Gradient compression (tally(7), COMPRESSION) ---------------------------
 * A compressor serves one tensor (count elements of a floating dtype) across
 * the steps of a training run and owns its error-feedback state: what a
 * lossy codec did not send is added to the next call's input.  tally
 * compresses only the steps that cross nodes; on one node it runs the
 * exact allreduce. */
typedef struct tally_compressor tally_compressor_t;

/* Collective over comm.  spec: a codec and its parameters,
 * CODEC[:PARAM][,ef=on|off][,seed=N][,cols=N] with CODEC one of none,
 * fp16, bf16, int8, topk:RATIO, sign, powersgd:RANK.  Every rank must pass
 * the same spec, count and dtype.  A bad spec is TALLY_ERR_INVALID_ARGUMENT
 * with a logged message naming the wrong part, and nothing is created. */
TALLY_API tally_status_t tally_compressor_create(tally_comm_t *comm, const char *spec,
                                                 size_t count, tally_dtype_t dtype,
                                                 tally_compressor_t **out);

/* Collective.  Like tally_allreduce on the compressor's communicator, with
 * op TALLY_SUM or TALLY_AVG, count and dtype equal to the compressor's;
 * updates its error-feedback state.  Every rank gets the same bits. */
TALLY_API tally_status_t tally_allreduce_compressed(const void *sendbuf, void *recvbuf,
                                                    size_t count, tally_dtype_t dtype,
                                                    tally_op_t op, tally_compressor_t *c);

/* tally_allreduce_compressed, started (see tally_iallreduce). */
TALLY_API tally_status_t tally_iallreduce_compressed(const void *sendbuf, void *recvbuf,
                                                     size_t count, tally_dtype_t dtype,
                                                     tally_op_t op, tally_compressor_t *c,
                                                     tally_request_t **req);

/* Collective: tally_allreduce_multi through compressor c, whose tensor is
 * the n tensors laid end to end (c's count = the sum of their counts, the
 * same dtype, in the same order every call), so that each tensor keeps its
 * own error-feedback state.  op TALLY_SUM or TALLY_AVG. */
TALLY_API tally_status_t tally_allreduce_multi_compressed(const tally_buffer_t *bufs, size_t n,
                                                          tally_dtype_t dtype, tally_op_t op,
                                                          tally_compressor_t *c);

/* Collective over the compressor's communicator.  NULL is a no-op. */
TALLY_API tally_status_t tally_compressor_destroy(tally_compressor_t *c);

/* Bytes this rank sent across nodes over the compressor's life, and what
 * the same steps would have sent uncompressed (both 0 while every call ran
 * on one node). */
TALLY_API tally_status_t tally_compressor_bytes(const tally_compressor_t *c, size_t *wire,
                                                size_t *uncompressed);

/* --- Device buffers (tally(7), DEVICE BUFFERS) ------------------------------
 * tally_allreduce and its kin take device memory as they take host memory:
 * each buffer is classified per call.  Every rank of a call must pass the
 * same kind of memory (all host or all device), as with NCCL.  Device
 * support is loaded at run time (libtally-cuda.so beside libtally.so); see
 * TALLY_DEVICE.  These functions let tools and tests handle device memory
 * without linking a device runtime of their own. */
typedef enum tally_memtype {
    TALLY_MEM_HOST,    /* pageable host memory */
    TALLY_MEM_PINNED,  /* page-locked host memory */
    TALLY_MEM_MANAGED, /* reachable from the host and the device */
    TALLY_MEM_DEVICE   /* device memory: the host must not touch it */
} tally_memtype_t;

/* Not collective: what kind of memory ptr is, as comm's device backend sees
 * it (TALLY_MEM_HOST where comm has none). */
TALLY_API tally_status_t tally_mem_type(tally_comm_t *comm, const void *ptr,
                                        tally_memtype_t *type);

/* tally_comm_get_algorithm for buffers of memory type `memtype`
 * (TALLY_ERR_UNSUPPORTED for device memory where comm has no backend). */
TALLY_API tally_status_t tally_comm_get_algorithm_on(tally_comm_t *comm, tally_memtype_t memtype,
                                                     size_t count, tally_dtype_t dtype,
                                                     tally_op_t op, const char **name);

/* Not collective: bytes of TALLY_MEM_DEVICE or TALLY_MEM_PINNED memory from
 * comm's device backend (TALLY_ERR_UNSUPPORTED where comm has none, with
 * the reason logged).  Free it with tally_mem_free on the same comm. */
TALLY_API tally_status_t tally_mem_alloc(tally_comm_t *comm, tally_memtype_t type,
                                         size_t bytes, void **ptr);
TALLY_API tally_status_t tally_mem_free(tally_comm_t *comm, void *ptr);

/* Not collective: copies bytes from src to dst, either on the host or the
 * device, and returns when the copy is complete. */
TALLY_API tally_status_t tally_mem_copy(tally_comm_t *comm, void *dst, const void *src,
                                        size_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* TALLY_H */
