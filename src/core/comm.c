/* comm.c - creating and destroying tally communicators (with everything
 * collective they set up), forcing an algorithm, and the per-call
 * resources a communicator hands out. */
#include "comm.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mem/mem.h"
#include "../topo/topo.h"
#include "../transport/ipc.h"
#include "hash.h"
#include "log.h"
#include "stats.h"
#include "trace.h"

/* Parses the configuration and resolves TALLY_ALGO on this rank alone. */
static tally_status_t load_local(tally_config_t *cfg, const tally_algo_t **forced)
{
    char err[256];
    tally_status_t st = tally_config_load(cfg, err, sizeof err);
    if (st != TALLY_SUCCESS) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "%s", err);
        return st;
    }
    *forced = NULL;
    if (strcmp(cfg->algo, "auto") != 0) {
        *forced = tally_algo_find(cfg->algo);
        if (!*forced) {
            TALLY_LOG(NULL, TALLY_LOG_ERROR,
                      "TALLY_ALGO=%s: no such algorithm (tally-info -c lists them)",
                      cfg->algo);
            return TALLY_ERR_UNKNOWN_ALGORITHM;
        }
    }
    return TALLY_SUCCESS;
}

tally_status_t tally_comm_agree(MPI_Comm comm, tally_status_t local, uint64_t hash,
                                const char *what, const char *mismatch)
{
    /* MAX of -status finds a failure; MAX of hash and of ~hash give the
     * largest and (complemented) smallest hash. */
    uint64_t mine[3] = {(uint64_t)(-(int64_t)local), hash, ~hash};
    uint64_t all[3];
    TALLY_MPI_CHECK(NULL, PMPI_Allreduce(mine, all, 3, MPI_UINT64_T, MPI_MAX, comm));
    if (local != TALLY_SUCCESS)
        return local;
    if (all[0] != 0) {
        tally_status_t theirs = (tally_status_t)(-(int64_t)all[0]);
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "another rank failed with its %s: %s", what,
                  tally_strerror(theirs));
        return theirs;
    }
    if (all[1] != ~all[2]) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "ranks hold different %s: %s", what, mismatch);
        return TALLY_ERR_CONFIG_MISMATCH;
    }
    return TALLY_SUCCESS;
}

/* Collective: the shape, the cost model (measured if TALLY_CALIBRATE=1,
 * or taken from `parent`) and the rule table, checked to be the same on
 * every rank. */
static tally_status_t describe_machine(tally_comm_t *c, const tally_comm_t *parent)
{
    c->sel.shape = &c->shape;
    c->sel.config = &c->config;
    c->sel.log = c;
    tally_status_t st = tally_shape_create(c->mpi, tally_topo_get(), &c->shape);
    TALLY_CHECK(tally_comm_agree(c->mpi, st, 0, "communicator shapes", ""));
    /* NCCL serves device buffers where every rank has a GPU of its own;
     * groups across nodes never see device buffers. */
    if (!parent)
        c->shape.nccl = tally_nccl_usable(&c->device, c->mpi, &c->shape, c->nccl.why,
                                          sizeof c->nccl.why);
    c->nccl.failed = !c->shape.nccl;
    tally_model_defaults(&c->model, &c->shape);
    c->model.shm_chunk = c->config.shm_chunk;
    if (parent && parent->model.calibrated) {
        for (int l = 0; l < TALLY_LEVEL_COUNT; l++)
            if (parent->model.measured[l])
                c->model.link[l] = parent->model.link[l];
        c->model.gamma = parent->model.gamma;
        c->model.copy = parent->model.copy;
    } else if (c->config.calibrate) {
        st = tally_model_calibrate(&c->model, c->mpi, &c->shape);
        if (st != TALLY_SUCCESS)
            goto fail_shape;
    }
    /* A group's rank 0 stays quiet about the tuning file: its parent's spoke. */
    st = tally_plan_build(&c->sel.plan, &c->config, &c->shape, &c->model, parent ? -1 : c->rank);
    st = tally_comm_agree(c->mpi, st, st == TALLY_SUCCESS ? c->sel.plan.hash : 0, "rule tables",
               "every rank must read identical TALLY_TUNING_FILE contents and see the "
               "same TALLY_MODEL and TALLY_CALIBRATE results (tally-info shows the table)");
    if (st != TALLY_SUCCESS)
        goto fail_plan;
    return TALLY_SUCCESS;

fail_plan:
    tally_plan_free(&c->sel.plan);
fail_shape:
    tally_shape_free(&c->shape);
    return st;
}

/* What only this process needs: statistics and the trace.  Not
 * collective; a failure here is agreed with the rest of creation. */
static tally_status_t open_observers(tally_comm_t *c)
{
    if (c->nested)
        snprintf(c->label, sizeof c->label, "group of %d (across nodes)", c->size);
    else
        snprintf(c->label, sizeof c->label, "%d rank%s", c->size, c->size == 1 ? "" : "s");
    if (c->config.stats || c->config.log_level >= TALLY_LOG_DEBUG)
        TALLY_CHECK(tally_stats_create(c->label, c->size, &c->stats));
    tally_status_t st = tally_trace_open(c->config.trace, &c->trace);
    if (st != TALLY_SUCCESS) {
        tally_stats_destroy(c->stats);
        c->stats = NULL;
    }
    return st;
}

static void close_observers(tally_comm_t *c)
{
    tally_trace_close(c->trace);
    tally_stats_destroy(c->stats);
}

/* The collective rest of creation, once c's configuration is agreed:
 * a private duplicate of comm, the machine's description, and the
 * resources of the shared-memory algorithms. */
static tally_status_t finish_create(tally_comm_t *c, MPI_Comm comm, const tally_comm_t *parent)
{
    tally_status_t st = TALLY_SUCCESS;
    c->mpi = MPI_COMM_NULL;
    c->nested = parent != NULL;
    /* A private duplicate keeps tally's messages apart from the user's. */
    TALLY_MPI_CHECK(NULL, PMPI_Comm_dup(comm, &c->mpi));
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN), st,
                         fail_dup);
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Comm_rank(c->mpi, &c->rank), st, fail_dup);
    TALLY_MPI_CHECK_GOTO(NULL, PMPI_Comm_size(c->mpi, &c->size), st, fail_dup);
    if (parent) /* the parent's view, not a second load: the parent outlives its groups */
        tally_device_borrow(&c->device, &parent->device);
    else
        tally_device_open(&c->device, (tally_device_choice_t)c->config.device);
    if (!c->device.backend && !parent)
        TALLY_LOG(c, TALLY_LOG_INFO, "no device support: %s", c->device.why);
    st = tally_comm_agree(c->mpi, open_observers(c), 0, "statistics and trace", "");
    if (st != TALLY_SUCCESS)
        goto fail_observers;
    st = describe_machine(c, parent);
    if (st != TALLY_SUCCESS)
        goto fail_observers;
    tally_groups_create(c);
    TALLY_LOG(c, TALLY_LOG_INFO, "communicator of %d ranks on %d nodes, algorithm %s%s",
              c->size, c->shape.nodes, c->sel.forced ? c->sel.forced->name : "auto",
              parent ? " (a group across nodes)" : "");
    return TALLY_SUCCESS;

fail_observers:
    close_observers(c);
    tally_device_close(&c->device);
fail_dup:
    PMPI_Comm_free(&c->mpi);
    return st;
}

/* A misspelt TALLY_* variable does nothing: say so, once per process, on
 * the first communicator's rank 0 (the flag is the one piece of state a
 * process keeps beyond its communicators). */
static void warn_unknown_variables(MPI_Comm comm)
{
    static atomic_flag warned = ATOMIC_FLAG_INIT;
    int rank = 0;
    PMPI_Comm_rank(comm, &rank);
    char msg[256];
    if (rank == 0 && tally_config_unknown(msg, sizeof msg) && !atomic_flag_test_and_set(&warned))
        TALLY_LOG(NULL, TALLY_LOG_WARN, "%s", msg);
}

tally_status_t tally_comm_create(MPI_Comm comm, tally_comm_t **out)
{
    if (!out)
        return TALLY_ERR_INVALID_ARGUMENT;
    if (comm == MPI_COMM_NULL) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR, "tally_comm_create: comm is MPI_COMM_NULL");
        return TALLY_ERR_NULL_COMM;
    }
    int initialized = 0, finalized = 0;
    PMPI_Initialized(&initialized);
    PMPI_Finalized(&finalized);
    if (!initialized || finalized) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR,
                  "tally_comm_create: MPI is not initialized (or already finalized)");
        return TALLY_ERR_MPI;
    }
    int inter = 0;
    TALLY_MPI_CHECK(NULL, PMPI_Comm_test_inter(comm, &inter));
    if (inter) {
        TALLY_LOG(NULL, TALLY_LOG_ERROR,
                  "tally_comm_create: intercommunicators are not supported");
        return TALLY_ERR_UNSUPPORTED;
    }

    /* Everything that can fail on one rank alone happens before the
     * agreement, so that all ranks fail together or none does. */
    tally_config_t cfg;
    const tally_algo_t *forced = NULL;
    tally_status_t local = load_local(&cfg, &forced);
    warn_unknown_variables(comm);
    tally_comm_t *c = calloc(1, sizeof *c);
    if (!c && local == TALLY_SUCCESS)
        local = TALLY_ERR_NO_MEMORY;
    tally_status_t st = tally_comm_agree(comm, local, local == TALLY_SUCCESS ? tally_config_hash(&cfg) : 0,
                              "TALLY_* settings",
                              "every rank must see the same TALLY_ALGO, TALLY_SEGMENT_SIZE, "
                              "TALLY_PIPELINE_DEPTH, TALLY_SHM_CHUNK, TALLY_FALLBACK, "
                              "TALLY_MODEL, TALLY_CALIBRATE, TALLY_STAGE_CHUNK, TALLY_CHECK, "
                              "TALLY_COMPRESS and TALLY_COMPRESS_MIN_BYTES (mpirun -x NAME "
                              "passes a variable to every rank)");
    if (st != TALLY_SUCCESS)
        goto fail_free;
    c->config = cfg;
    c->sel.forced = forced;
    st = finish_create(c, comm, NULL);
    if (st != TALLY_SUCCESS)
        goto fail_free;
    *out = c;
    return TALLY_SUCCESS;

fail_free:
    free(c);
    return st;
}

tally_status_t tally_comm_create_nested(MPI_Comm mpi, const tally_comm_t *parent,
                                        tally_status_t local, tally_comm_t **out)
{
    tally_comm_t *c = local == TALLY_SUCCESS ? calloc(1, sizeof *c) : NULL;
    if (!c && local == TALLY_SUCCESS)
        local = TALLY_ERR_NO_MEMORY;
    tally_status_t st = tally_comm_agree(mpi, local, 0, "group set-up", "");
    if (st != TALLY_SUCCESS) {
        free(c);
        return st;
    }
    c->config = parent->config;
    snprintf(c->config.algo, sizeof c->config.algo, "auto");
    st = finish_create(c, mpi, parent);
    if (st != TALLY_SUCCESS) {
        free(c);
        return st;
    }
    *out = c;
    return TALLY_SUCCESS;
}

tally_status_t tally_comm_destroy(tally_comm_t *comm)
{
    if (!comm)
        return TALLY_SUCCESS;
    tally_status_t st = TALLY_SUCCESS;
    if (comm->progress_free) /* runs what is queued, then stops the thread */
        comm->progress_free(comm);
    if (comm->stats && comm->config.stats && !comm->nested && comm->rank == 0)
        tally_stats_print(comm->stats, stderr);
    /* Resources of the backend closed below. */
    tally_nccl_free(&comm->nccl, &comm->device);
    tally_ipc_cache_free(comm->ipc, &comm->device);
    /* A broken communicator's buffers may still be read by the MPI: they
     * are left allocated (tally_allreduce(3), "After a failure"). */
    if (comm->fusion[1].buf && !comm->broken) /* device memory, of the backend closed below */
        comm->device.backend->free(comm->device.ctx, comm->fusion[1].buf);
    if (comm->broken)
        comm->device.stage = NULL;
    tally_groups_destroy(comm);
    tally_plan_free(&comm->sel.plan);
    tally_shape_free(&comm->shape);
    close_observers(comm);
    tally_device_close(&comm->device);
    if (PMPI_Comm_free(&comm->mpi) != MPI_SUCCESS)
        st = TALLY_ERR_MPI;
    if (!comm->broken) {
        tally_scratch_pool_free(&comm->scratch);
        free(comm->fusion[0].buf);
    }
    free(comm);
    return st;
}

void tally_comm_break(tally_comm_t *comm, uint64_t seq, tally_status_t status)
{
    if (comm->broken)
        return;
    comm->broken = true;
    comm->broken_seq = seq;
    comm->broken_status = status;
    comm->direct.valid = false; /* the fast path would bypass the check */
    TALLY_LOG(comm, TALLY_LOG_ERROR,
              "call %llu failed partway (%s): the communicator is broken, every later call "
              "fails with TALLY_ERR_COMM_BROKEN until tally_comm_destroy",
              (unsigned long long)seq, tally_strerror(status));
}

tally_status_t tally_comm_set_algorithm(tally_comm_t *comm, const char *name)
{
    if (!comm)
        return TALLY_ERR_NULL_COMM;
    tally_comm_drain(comm); /* the calls started before it run as they were chosen */
    const bool automatic = !name || strcmp(name, "auto") == 0;
    const tally_algo_t *algo = automatic ? NULL : tally_algo_find(name);
    tally_status_t local = TALLY_SUCCESS;
    if (!automatic && !algo) {
        TALLY_LOG(comm, TALLY_LOG_ERROR,
                  "tally_comm_set_algorithm: no algorithm named \"%s\"", name);
        local = TALLY_ERR_UNKNOWN_ALGORITHM;
    }
    /* Collective: ranks running different algorithms would deadlock. */
    const char *agreed = automatic ? "auto" : name;
    uint64_t hash = tally_hash_fnv1a(TALLY_HASH_INIT, agreed, strlen(agreed));
    TALLY_CHECK(tally_comm_agree(comm->mpi, local, hash, "algorithm names",
                      "tally_comm_set_algorithm needs the same name on every rank"));
    comm->sel.forced = algo;
    comm->direct.valid = false;
    return TALLY_SUCCESS;
}

/* For TALLY_LOG (log.h): the communicator's threshold and rank. */
tally_log_level_t tally_comm_log_level(const tally_comm_t *comm)
{
    return comm ? comm->config.log_level : tally_config_log_level_from_env();
}

int tally_comm_log_rank(const tally_comm_t *comm)
{
    return comm ? comm->rank : -1;
}
