/* entry.c - the internal entry: build the call object, run it (see entry.h). */
#include "entry.h"

#include <stdio.h>
#include <stdlib.h>

#include "../algo/algo.h"
#include "../select/select.h"
#include "comm.h"
#include "dtype.h"
#include "log.h"
#include "scratch.h"
#include "stats.h"
#include "trace.h"

_Static_assert(TALLY_KERNEL_DTYPES == TALLY_DTYPE_COUNT, "a kernel row per dtype");
_Static_assert(TALLY_KERNEL_OPS == TALLY_OP_COUNT, "a kernel column per op");

/* Why the selection's answer runs, for debug logs and statistics. */
static const char *choice_reason(const tally_comm_t *comm, const tally_choice_t *choice)
{
    if (comm->sel.forced == choice->algo)
        return "forced (TALLY_ALGO or tally_comm_set_algorithm)";
    if (comm->sel.forced)
        return "the forced algorithm cannot serve the call (TALLY_FALLBACK)";
    if (!choice->rule)
        return "no row's algorithm can serve the call: the first that can";
    switch (choice->rule->source) {
    case TALLY_RULE_FILE: return "a row of the tuning file";
    case TALLY_RULE_MODEL: return "the cost model's row";
    case TALLY_RULE_BUILTIN: return "a built-in row";
    }
    return "?";
}

/* The one memory type of the call (host for every kind the host reaches)
 * and its kernel table, or TALLY_ERR_UNSUPPORTED for a mix. */
static tally_status_t call_memtype(tally_call_t *call)
{
    const tally_comm_t *comm = call->comm;
    tally_memtype_t send = TALLY_MEM_HOST, recv = TALLY_MEM_HOST;
    if (comm->device.backend) {
        send = tally_mem_reach(tally_mem_classify(&comm->device, call->sendbuf));
        recv = tally_mem_reach(tally_mem_classify(&comm->device, call->recvbuf));
    }
    if (send != recv) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_allreduce: sendbuf is %s memory but recvbuf is %s memory",
                  tally_memtype_name(send), tally_memtype_name(recv));
        return TALLY_ERR_UNSUPPORTED;
    }
    call->memtype = send;
    call->kernels = send == TALLY_MEM_DEVICE
                        ? comm->device.backend->kernels(comm->device.ctx)
                        : tally_kernels_for(send);
    return TALLY_SUCCESS;
}

/* What TALLY_CHECK compares across ranks. */
typedef struct call_record {
    uint64_t seq, count;
    int32_t dtype, op, in_place, memtype, algo, status;
} call_record_t;

/* The registry index of algo; -1 for none. */
static int32_t algo_index(const tally_algo_t *algo)
{
    if (!algo)
        return -1;
    int32_t i = 0;
    for (const tally_algo_t *const *a = tally_algo_registry; *a && *a != algo; a++)
        i++;
    return i;
}

/* TALLY_CHECK: every rank's record against rank 0's; the first rank and
 * field that differ (or a rank that failed on its own, `local`) fail the
 * call on every rank, before any data moves. */
static tally_status_t check_agreement(const tally_call_t *call, bool in_place,
                                      tally_status_t local)
{
    const call_record_t mine = {call->seq, call->count, call->dtype, call->op, in_place,
                                call->memtype, algo_index(call->algo), local};
    call_record_t *all = malloc((size_t)call->size * sizeof *all);
    int have = all != NULL, everyone = 0;
    TALLY_MPI_CHECK(call->comm,
                    PMPI_Allreduce(&have, &everyone, 1, MPI_INT, MPI_LAND, call->mpi));
    if (!everyone) {
        free(all);
        TALLY_LOG(call->comm, TALLY_LOG_ERROR, "TALLY_CHECK: no memory to compare arguments");
        return TALLY_ERR_NO_MEMORY;
    }
    if (PMPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, call->mpi) !=
        MPI_SUCCESS) {
        free(all);
        return TALLY_ERR_MPI;
    }
    const call_record_t *ref = &all[0];
    tally_status_t st = local;
    for (int r = 0; r < call->size && st == TALLY_SUCCESS; r++) {
        const call_record_t *o = &all[r];
        char what[160] = "";
        if (o->status != TALLY_SUCCESS)
            snprintf(what, sizeof what, "failed on its own: %s",
                     tally_strerror((tally_status_t)o->status));
        else if (o->seq != ref->seq)
            snprintf(what, sizeof what, "is at call %llu, rank 0 at call %llu (a rank skipped "
                     "a call)", (unsigned long long)o->seq, (unsigned long long)ref->seq);
        else if (o->count != ref->count)
            snprintf(what, sizeof what, "passes count %llu, rank 0 count %llu",
                     (unsigned long long)o->count, (unsigned long long)ref->count);
        else if (o->dtype != ref->dtype)
            snprintf(what, sizeof what, "passes dtype %s, rank 0 %s",
                     tally_dtype_name((tally_dtype_t)o->dtype),
                     tally_dtype_name((tally_dtype_t)ref->dtype));
        else if (o->op != ref->op)
            snprintf(what, sizeof what, "passes op %s, rank 0 %s",
                     tally_op_name((tally_op_t)o->op), tally_op_name((tally_op_t)ref->op));
        else if (o->in_place != ref->in_place)
            snprintf(what, sizeof what, "%s in place, rank 0 %s", o->in_place ? "reduces" : "does not reduce",
                     ref->in_place ? "does" : "does not");
        else if (o->memtype != ref->memtype)
            snprintf(what, sizeof what, "passes %s memory, rank 0 %s memory",
                     tally_memtype_name((tally_memtype_t)o->memtype),
                     tally_memtype_name((tally_memtype_t)ref->memtype));
        else if (o->algo != ref->algo && o->algo >= 0 && ref->algo >= 0)
            snprintf(what, sizeof what, "chose algorithm %s, rank 0 %s",
                     tally_algo_registry[o->algo]->name, tally_algo_registry[ref->algo]->name);
        if (what[0]) {
            if (call->rank == 0 || call->rank == r)
                TALLY_LOG(call->comm, TALLY_LOG_ERROR, "TALLY_CHECK: call %llu: rank %d %s",
                          (unsigned long long)call->seq, r, what);
            st = TALLY_ERR_ARGS_MISMATCH;
        }
    }
    free(all);
    return st;
}

/* The call's memory type, kernels and algorithm (call_init's local part). */
static tally_status_t plan_call(tally_call_t *call)
{
    tally_comm_t *comm = call->comm;
    if (comm->broken) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_allreduce: call %llu on this communicator failed partway (%s); "
                  "every later call fails: destroy the communicator",
                  (unsigned long long)comm->broken_seq, tally_strerror(comm->broken_status));
        return TALLY_ERR_COMM_BROKEN;
    }
    TALLY_CHECK(call_memtype(call));
    tally_choice_t choice;
    TALLY_CHECK(tally_select(&comm->sel, call->count * call->elem_size, call->dtype, call->op,
                             call->memtype, false, &choice));
    if (!call->kernels) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "tally_allreduce: no kernels for %s memory in this build",
                  tally_memtype_name(call->memtype));
        return TALLY_ERR_UNSUPPORTED;
    }
    call->reduce = call->kernels->reduce[call->dtype][call->op];
    call->algo = choice.algo;
    call->segment_size = choice.segment_size;
    call->reason = choice_reason(comm, &choice);
    if (comm->sel.forced && comm->sel.forced != choice.algo && comm->stats)
        tally_stats_elsewhere(comm->stats, comm, comm->sel.forced->name, call->reason);
    return TALLY_SUCCESS;
}

/* A progress thread's flag (call.h), NULL on other threads: per thread,
 * set once by the thread itself, so the calls an algorithm makes on a
 * group's communicator inherit it without being told. */
static _Thread_local const bool *background_flag;

void tally_call_mark_background_thread(const bool *flag)
{
    background_flag = flag;
}

tally_status_t tally_call_init(tally_call_t *call, tally_comm_t *comm, const void *sendbuf,
                               void *recvbuf, size_t count, tally_dtype_t dtype,
                               tally_op_t op)
{
    /* Every rank numbers its calls alike, failed ones too. */
    const uint64_t seq = comm->next_seq++;
    *call = (tally_call_t){
        .sendbuf = sendbuf == TALLY_IN_PLACE ? recvbuf : sendbuf,
        .recvbuf = recvbuf,
        .count = count,
        .elem_size = tally_dtype_size(dtype),
        .dtype = dtype,
        .op = op,
        .comm = comm,
        .mpi = comm->mpi,
        .rank = comm->rank,
        .size = comm->size,
        .shape = &comm->shape,
        .pipeline_depth = comm->config.pipeline_depth,
        .background = background_flag,
        .seq = seq,
        .tag = TALLY_TAG_BASE + (int)(seq % TALLY_TAG_SPAN) * TALLY_TAG_LANES,
        .pool = &comm->scratch,
        .trace = comm->trace,
        .comm_label = comm->label,
    };
    const tally_status_t st = plan_call(call);
    /* TALLY_CHECK: the ranks compare, a local failure included, so that a
     * rank failing alone does not leave the others waiting. */
    if (comm->config.check)
        return check_agreement(call, sendbuf == TALLY_IN_PLACE, st);
    return st;
}

tally_status_t tally_call_check_unbuilt(tally_comm_t *comm, size_t count, tally_dtype_t dtype,
                                        tally_op_t op, bool in_place, tally_status_t local)
{
    /* No algorithm (not compared) and host memory: a count mismatch is
     * named before the memory type. */
    const tally_call_t call = {.count = count, .dtype = dtype, .op = op, .comm = comm,
                               .mpi = comm->mpi, .rank = comm->rank, .size = comm->size,
                               .seq = comm->next_seq++, .memtype = TALLY_MEM_HOST};
    return check_agreement(&call, in_place, local);
}

extern const tally_algo_t tally_algo_mpi;

/* Remembers a call that was one PMPI_Allreduce, for the fast path. */
static void remember_direct(tally_comm_t *comm, const tally_call_t *call)
{
    tally_direct_t d = {.valid = true, .count = call->count,
                        .bytes = call->count * call->elem_size, .dtype = call->dtype,
                        .op = call->op};
    if (call->memtype == TALLY_MEM_HOST && !comm->device.backend &&
        tally_algo_mpi_direct(call, &d.type, &d.mpi_op))
        comm->direct = d;
}

tally_status_t tally_call_execute(tally_call_t *call)
{
    tally_comm_t *comm = call->comm;
    const bool observed = call->trace || comm->stats;
    if (observed)
        call->t_start = tally_trace_now();
    else if (call->algo == &tally_algo_mpi && !comm->config.check && comm->config.timeout == 0)
        remember_direct(comm, call); /* the fast path would skip TALLY_CHECK and the timeout */
    /* TALLY_TIMEOUT: the waits give up at the deadline (call.h). */
    tally_watch_t watch = {.peer = -1};
    if (comm->config.timeout > 0) {
        watch.deadline = tally_trace_now() + comm->config.timeout;
        call->watch = &watch;
    }
    tally_status_t st = call->algo->run(call);
    if (watch.expired) {
        char peer[48] = "";
        if (watch.peer >= 0)
            snprintf(peer, sizeof peer, " (%s %d)", watch.local_peer ? "node-local rank" : "rank",
                     watch.peer);
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "TALLY_TIMEOUT: %s: call %llu (%s, %zu x %s) waited more than %g s for %s%s",
                  comm->label, (unsigned long long)call->seq, call->algo->name, call->count,
                  tally_dtype_name(call->dtype), comm->config.timeout, watch.waiting, peer);
        st = TALLY_ERR_TIMEOUT;
    }
    call->watch = NULL;
    /* A refusal (TALLY_ERR_UNSUPPORTED) comes before any message; any
     * other failure may leave messages in flight that the MPI cannot
     * cancel, reading this call's buffers: the communicator is broken,
     * and the scratch stays out of the pool (never reused nor freed). */
    if (st != TALLY_SUCCESS && st != TALLY_ERR_UNSUPPORTED)
        tally_comm_break(comm, call->seq, st);
    else
        tally_scratch_give(call->scratch);
    call->scratch = NULL;
    if (observed) {
        double t1 = tally_trace_now();
        if (comm->stats)
            tally_stats_record(comm->stats, call, t1 - call->t_start, st);
        if (call->trace)
            tally_trace_call(call, t1, st);
    }
    return st;
}

tally_status_t tally_call_allreduce(tally_comm_t *comm, const void *sendbuf, void *recvbuf,
                                    size_t count, tally_dtype_t dtype, tally_op_t op)
{
    tally_call_t call;
    TALLY_CHECK(tally_call_init(&call, comm, sendbuf, recvbuf, count, dtype, op));
    return tally_call_execute(&call);
}

/* A compressed call on device buffers that would compress: the codecs and
 * their error feedback run on host memory, so the tensor goes down into a
 * pinned buffer of the communicator, through the compressed host path (the
 * same compressor, so the same bits as on host buffers), and back up. */
static tally_status_t coded_through_host(const tally_call_t *call,
                                         struct tally_compressor *codec, size_t offset)
{
    tally_comm_t *comm = call->comm;
    tally_device_t *dev = &comm->device;
    const size_t bytes = call->count * call->elem_size;
    const char *why = NULL;
    void *host = tally_stage_whole(dev, call->mpi, bytes, &why);
    if (!host) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "compressed call on device buffers: no pinned buffer "
                  "of %zu bytes: %s", bytes, why);
        return TALLY_ERR_NO_MEMORY;
    }
    const char *err = dev->backend->copy(dev->ctx, host, call->sendbuf, bytes);
    tally_status_t st = TALLY_ERR_DEVICE;
    if (!err) {
        st = tally_call_allreduce_coded(comm, TALLY_IN_PLACE, host, call->count, call->dtype,
                                        call->op, codec, offset);
        if (st == TALLY_SUCCESS)
            err = dev->backend->copy(dev->ctx, call->recvbuf, host, bytes);
    }
    if (err) {
        TALLY_LOG(comm, TALLY_LOG_ERROR, "compressed call on device buffers: %s backend: %s",
                  dev->backend->name, err);
        return TALLY_ERR_DEVICE;
    }
    return st;
}

tally_status_t tally_call_allreduce_coded(tally_comm_t *comm, const void *sendbuf,
                                          void *recvbuf, size_t count, tally_dtype_t dtype,
                                          tally_op_t op, struct tally_compressor *codec,
                                          size_t offset)
{
    tally_call_t call;
    TALLY_CHECK(tally_call_init(&call, comm, sendbuf, recvbuf, count, dtype, op));
    call.codec = codec;
    call.codec_offset = offset;
    if (call.memtype == TALLY_MEM_DEVICE) { /* would the same call on host memory compress? */
        tally_call_t host = call;
        host.memtype = TALLY_MEM_HOST;
        const char *unused;
        if (tally_compressed_plan(&host, &unused))
            return coded_through_host(&call, codec, offset);
    }
    const char *reason;
    const tally_algo_t *algo = tally_compressed_plan(&call, &reason);
    if (algo) {
        call.algo = algo;
    } else {
        call.codec = NULL;
        if (comm->stats) /* TALLY_STATS: asked to compress, ran exactly */
            tally_stats_elsewhere(comm->stats, comm, "compressed", reason);
    }
    call.reason = reason;
    return tally_call_execute(&call);
}

tally_status_t tally_call_redirect(tally_call_t *call, const struct tally_algo *algo,
                                   const char *reason)
{
    if (call->comm->stats)
        tally_stats_elsewhere(call->comm->stats, call->comm, call->algo->name, reason);
    call->algo = algo;
    call->reason = reason;
    return algo->run(call);
}
