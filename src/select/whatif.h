/* whatif.h - a cluster we do not have, priced by the cost model: a spec
 * such as "nodes=64,ppn=8,latency=2us,bandwidth=100gbit" becomes a shape
 * (the entries tally_shape_create would have allgathered there), a model
 * (tally_model_defaults with the spec's figures) and a selector whose plan
 * is built as tally_comm_create would build it with the default
 * configuration (TALLY_MODEL on, no tuning file, no forced algorithm).
 * Nothing here needs MPI.  tally_model_explain(3) documents the grammar.
 *
 *   spec  := item ("," item)*
 *   item  := key "=" value | count      (a bare count continues ppn's list)
 *   nodes=N  ppn=N[,N...]  placement=slot|node  packages=N  cores=N
 *   latency=TIME  bandwidth=RATE  node_latency=TIME  node_bandwidth=RATE
 *   copy=RATE  reduce=RATE  barrier=TIME  cache=SIZE  chunk=SIZE
 *   TIME: a number and s, ms, us or ns; RATE: a number and gbit, mbit, kbit
 *   (bits per second, powers of 1000), GB/s, MB/s, kB/s (bytes per second)
 *   or GiB/s, MiB/s; SIZE: digits and K, M or G (powers of 1024).
 */
#ifndef TALLY_WHATIF_H
#define TALLY_WHATIF_H

#include <stddef.h>
#include "../core/config.h"
#include "../topo/model.h"
#include "../topo/shape.h"
#include "select.h"
#include "tally.h"

/* Most ranks a what-if cluster may have (planning prices every algorithm
 * at 41 sizes, each in time linear in the ranks). */
#define TALLY_WHATIF_MAX_RANKS (1 << 16)

/* Everything a what-if explanation reads.  sel points into the struct
 * itself: build it where it stays, never copy it. */
typedef struct tally_whatif {
    tally_shape_t shape;  /* as seen from rank 0 */
    tally_model_t model;
    tally_config_t config;
    tally_selector_t sel; /* plan built; shape and config point above */
} tally_whatif_t;

/* Parses `spec` and builds *w.  A spec that does not parse, or describes no
 * cluster, returns TALLY_ERR_INVALID_ARGUMENT with a sentence naming the
 * part that is wrong in err[errlen] (nothing logged); TALLY_ERR_NO_MEMORY
 * otherwise.  *w is set only on success; free it with tally_whatif_free. */
tally_status_t tally_whatif_build(const char *spec, tally_whatif_t *w, char *err,
                                  size_t errlen);
void tally_whatif_free(tally_whatif_t *w);

#endif
