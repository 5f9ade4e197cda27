# tally - top-level Makefile.
#
#   make            build the library and tools (installs missing Debian
#                   packages and runs ./configure the first time)
#   make check      unit tests and MPI integration tests
#   make check-asan / check-valgrind   the unit and MPI tests under
#                   AddressSanitizer + UBSan, or under valgrind
#   make bench      tally-bench against the host MPI, 2 ranks, 8 B .. 64 MiB
#   make bench-cluster  the same on an emulated 2 x 2 cluster, 1 Gbit links
#   make plot PLOT_IN=FILE.json [PLOT_OUT=FILE.png]
#                   a tally-bench --json file or a TALLY_TRACE trace as a PNG
#                   (bench/tally-plot, needs gnuplot)
#   make install PREFIX=/usr/local   (make uninstall PREFIX=... removes it)
#
# ./configure writes build/config.mk; pass CONFIGURE_FLAGS=--without-cuda to
# build without CUDA.

BUILD := build
PREFIX ?= /usr/local
CONFIGURE_FLAGS ?=

NO_CONFIG_GOALS := clean distclean deps plot
ifeq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
else
-include $(BUILD)/config.mk
endif

# --- flags ------------------------------------------------------------------
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -fPIC -Iinclude $(HWLOC_CFLAGS) \
             -DTALLY_HAVE_CUDA=$(HAVE_CUDA)
# The reduce kernels are the hot loops: let the vectorizer work on them.
REDUCE_CFLAGS := -O3 -fno-math-errno -fno-trapping-math
# libtally.so links no CUDA library: device support is the plugin
# libtally-cuda.so (src/cuda/, src/mem/device.h), loaded at run time.
ifeq ($(HAVE_CUDA),1)
CUDA_CFLAGS := -I$(CUDA_HOME)/include
# libcuda (the driver) links against the toolkit's stub; the driver's own
# libcuda.so.1 is loaded at run time.
CUDA_LIBS   := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart \
               -L$(CUDA_HOME)/lib64/stubs -lcuda
DEVICE_PLUGIN := $(BUILD)/lib/libtally-cuda.so
# NCCL: its header at build time; libnccl.so.2 is opened at run time.
NCCL_CFLAGS := -DTALLY_HAVE_NCCL=$(HAVE_NCCL) -DTALLY_NCCL_LIBDIR='"$(NCCL_LIBDIR)"' \
               $(if $(filter 1,$(HAVE_NCCL)),-isystem $(NCCL_HOME)/include)
endif
LIB_LIBS   = $(HWLOC_LIBS) -ldl -lm -lpthread
# Programs find libtally next to them, wherever the tree is.
RPATH_LIB  = -Wl,-rpath,'$$ORIGIN/../lib'

# tally.pc's Requires: the MPI's own pkg-config name, so that
# `pkg-config --cflags --libs tally` finds mpi.h and libmpi too.
MPI_PC := $(if $(filter openmpi,$(MPI_FLAVOR)),ompi-c,mpich)

# --- sources ----------------------------------------------------------------
LIB_SRCS  := $(wildcard src/core/*.c src/algo/*.c src/select/*.c src/topo/*.c \
                        src/transport/*.c src/reduce/*.c src/mem/*.c src/compress/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TOOLS     := tally-bench tally-info tally-tune
# Python 3 tools (standard library only), copied next to the others.
SCRIPTS   := tally-trace-merge tally-plot tally-compare
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
MPI_SRCS  := $(wildcard tests/mpi/test_*.c)
MPI_BINS  := $(MPI_SRCS:tests/mpi/%.c=$(BUILD)/tests/mpi/%)
TEST_COMMON := tests/common/tally_test.c

LIBTALLY  := $(BUILD)/lib/libtally.so
PRELOAD   := $(BUILD)/lib/libtally-preload.so
PRELOAD_SRCS := $(wildcard src/preload/*.c)
MPIFC     ?= mpif90
# Ordinary MPI programs (they know nothing of tally) for the drop-in tests.
PRELOAD_TESTS := $(addprefix $(BUILD)/tests/preload/,preload_c loop8 preload_fh preload_usempi preload_compress preload_threads)
LIBTALLY_A := $(BUILD)/lib/libtally_internal.a

.PHONY: uninstall check-asan check-valgrind mismatch-matrix
.PHONY: all deps check bench bench-cluster bench-bound bench-overhead bench-codec bench-fusion bench-overlap bench-device ddp-bench train-cluster install clean distclean vec-report plot
all: $(LIBTALLY) $(DEVICE_PLUGIN) $(PRELOAD) $(TOOLS:%=$(BUILD)/bin/%) $(SCRIPTS:%=$(BUILD)/bin/%) $(BUILD)/examples/train

deps:
	@build-aux/install-deps.sh

configure: configure.ac
	autoconf -o $@ $<
	@rm -rf autom4te.cache

$(BUILD)/config.mk: configure build-aux/config.mk.in
	@build-aux/install-deps.sh
	./configure $(CONFIGURE_FLAGS)

$(BUILD)/obj/src/reduce/%.o: src/reduce/%.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(REDUCE_CFLAGS) -fvisibility=hidden -MMD -MP -c $< -o $@

# The codecs' loops too: the same flags, so they vectorize and stay exact.
$(BUILD)/obj/src/compress/%.o: src/compress/%.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(REDUCE_CFLAGS) -fvisibility=hidden -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -MMD -MP -c $< -o $@

$(LIBTALLY): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libtally.so.0 -o $@ $^ $(LIB_LIBS)
	ln -sf libtally.so $(@D)/libtally.so.0

# The device plugin: the only object linked against the CUDA runtime.  The
# kernels are built for Ampere and Hopper, with PTX for later devices; the
# host compiler is mpicc because tally.h includes mpi.h.
NVCC_ARCH  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCC_FLAGS ?= -std=c++17 -O3 --fmad=false $(NVCC_ARCH)
$(BUILD)/obj/src/cuda/kernels.o: src/cuda/kernels.cu src/cuda/kernels.h src/reduce/convert.h \
                                 src/reduce/reduce.h include/tally.h $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -ccbin $(CC) -Xcompiler -fPIC,-fvisibility=hidden -Iinclude -c $< -o $@

$(BUILD)/lib/libtally-cuda.so: $(wildcard src/cuda/*.c src/cuda/*.h) src/mem/device.h \
                               $(BUILD)/obj/src/cuda/kernels.o $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CUDA_CFLAGS) $(NCCL_CFLAGS) -fvisibility=hidden -shared -o $@ \
	    $(filter %.c %.o,$^) \
	    $(CUDA_LIBS) -lstdc++

# The drop-in: the public API only (no -Isrc), linked to the libtally.so
# next to it.
$(PRELOAD): $(PRELOAD_SRCS) include/tally.h $(LIBTALLY)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -fPIC -fvisibility=hidden -Iinclude -shared \
	    -Wl,-soname,libtally-preload.so -o $@ $(PRELOAD_SRCS) \
	    -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN' -lpthread

$(BUILD)/tests/preload/%: tests/preload/%.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -o $@ $< -lpthread -lm

$(BUILD)/tests/preload/%: tests/preload/%.f90 tests/preload/preload_f.inc $(BUILD)/config.mk
	@mkdir -p $(@D)/mod-$*
	$(MPIFC) -O2 -g -Wall $(FFLAGS_$*) -J $(@D)/mod-$* -o $@ $<

# mpif.h declares no interfaces, so one buffer argument takes several types:
# gfortran >= 10 needs -fallow-argument-mismatch, which warns on each (-w).
FFLAGS_preload_fh := -fallow-argument-mismatch -w

# A CUDA-aware MPI program for the GPU script (tests/gpu/run.sh): device
# pointers to MPI_Allreduce, served through the preload.
GPU_TESTS := $(if $(DEVICE_PLUGIN),$(BUILD)/tests/gpu/preload_device)
$(BUILD)/tests/gpu/preload_device: tests/gpu/preload_device.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(CUDA_CFLAGS) -o $@ $< $(CUDA_LIBS)

# The same objects, for unit tests that reach internal functions.
$(LIBTALLY_A): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: bench/%.c bench/bench_common.c bench/bench_common.h $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< bench/bench_common.c -L$(BUILD)/lib -ltally $(RPATH_LIB) -lm

$(SCRIPTS:%=$(BUILD)/bin/%): $(BUILD)/bin/%: bench/%
	@mkdir -p $(@D)
	install -m 755 $< $@

$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(TEST_COMMON) $(LIBTALLY_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc -Itests/common -DTALLY_SOURCE_DIR='"$(CURDIR)"' \
	    -o $@ $< $(TEST_COMMON) $(LIBTALLY_A) $(CHECK_LIBS) $(LIB_LIBS)

$(BUILD)/tests/mpi/test_%: tests/mpi/test_%.c $(TEST_COMMON) $(wildcard tests/mpi/*.h) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/common -o $@ $< $(TEST_COMMON) \
	    -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../../lib' $(CHECK_LIBS) -lm

# MPI tests that reach the call object link the internal archive.
$(BUILD)/tests/mpi/test_calls: tests/mpi/test_calls.c $(TEST_COMMON) $(LIBTALLY_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Isrc -Itests/common -o $@ $< $(TEST_COMMON) \
	    $(LIBTALLY_A) $(CHECK_LIBS) $(LIB_LIBS)

# Runs every test; the last line says how many passed and failed.
check: deps all $(UNIT_BINS) $(MPI_BINS) $(PRELOAD_TESTS) $(GPU_TESTS)
	@MPIRUN="$(MPIRUN)" BUILD="$(BUILD)" tests/run-tests.sh

# The unit and MPI tests (np 1-3) of a build with AddressSanitizer and
# UBSan, in build-asan/, and the same under valgrind on the normal build
# (tests/run-sanitized.sh; Open MPI's noise in tests/valgrind/openmpi.supp).
ASAN_CFLAGS ?= -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
check-asan: deps
	@mkdir -p build-asan && cp $(BUILD)/config.mk build-asan/config.mk
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_CFLAGS)" build-asan/lib/libtally.so \
	    $(UNIT_SRCS:tests/unit/%.c=build-asan/tests/unit/%) \
	    $(MPI_SRCS:tests/mpi/%.c=build-asan/tests/mpi/%)
	BUILD=build-asan tests/run-sanitized.sh

check-valgrind: deps all $(UNIT_BINS) $(MPI_BINS)
	BUILD=$(BUILD) VALGRIND=1 tests/run-sanitized.sh

# The main job: every algorithm and tally's choice against the host MPI.
BENCH_NP    ?= 2
BENCH_ARGS  ?= -b 8 -e 64M -f 2 -n 20 -w 5 -R 5 -c 1 -a auto,mpi,ring,rabenseifner,recursive_doubling,shm
bench: deps all
	tests/mpirun.sh $(BENCH_NP) 900 $(BUILD)/bin/tally-bench $(BENCH_ARGS)

# The same on an emulated cluster (tests/cluster/cluster.sh, as root):
# CLUSTER_HOSTS hosts x CLUSTER_SLOTS ranks (a number, or one per host such
# as 2,1,2) joined by CLUSTER_RATE links, ranks placed by each CLUSTER_MAP
# in turn (slot: consecutive; node: round-robin).
CLUSTER_HOSTS ?= 2
CLUSTER_SLOTS ?= 2
CLUSTER_RATE  ?= 1gbit
CLUSTER_MAP   ?= slot node
CLUSTER_ARGS  ?= -b 4M -e 64M -f 2 -n 3 -w 1 -R 5 -c 1 -a auto,mpi,ring,rabenseifner,hier,hier_leader
bench-cluster: deps all
	@np=0; case "$(CLUSTER_SLOTS)" in \
	    *,*) for s in $$(echo "$(CLUSTER_SLOTS)" | tr , ' '); do np=$$((np + s)); done ;; \
	    *) np=$$(($(CLUSTER_HOSTS) * $(CLUSTER_SLOTS))) ;; esac; \
	for map in $(CLUSTER_MAP); do \
	    echo "== $(CLUSTER_HOSTS) hosts x $(CLUSTER_SLOTS) ranks, $(CLUSTER_RATE) links, --map-by $$map"; \
	    sh tests/cluster/cluster.sh -r $(CLUSTER_RATE) -t 1800 $(CLUSTER_HOSTS) $(CLUSTER_SLOTS) -- \
	        --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 --map-by $$map \
	        -np $$np $(BUILD)/bin/tally-bench $(CLUSTER_ARGS) || exit 1; \
	done

# A tally-bench --json file (busbw against bytes, per algorithm) or a trace
# (TALLY_TRACE's PATH, a PATH.R.json file or tally-trace-merge's output: a
# row of spans per rank) as a PNG, with gnuplot (Debian: gnuplot-nox).
PLOT_IN  ?=
PLOT_OUT ?= $(basename $(PLOT_IN)).png
plot:
	@test -n "$(PLOT_IN)" || { echo "usage: make plot PLOT_IN=FILE.json [PLOT_OUT=FILE.png]" >&2; exit 2; }
	bench/tally-plot -o "$(PLOT_OUT)" "$(PLOT_IN)"

# What bounds a 2-rank point-to-point allreduce here (bench/bound.c).
$(BUILD)/bench/bound: bench/bound.c $(BUILD)/config.mk
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $<

bench-bound: deps $(BUILD)/bench/bound
	tests/mpirun.sh 2 300 $(BUILD)/bench/bound

# What tally adds to an 8-byte call it passes to the MPI (bench/overhead.c),
# on 2 ranks and on 4 (oversubscribed here).
$(BUILD)/bench/overhead: bench/overhead.c $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib'

bench-overhead: deps $(BUILD)/bench/overhead
	tests/mpirun.sh 2 300 $(BUILD)/bench/overhead
	tests/mpirun.sh 4 300 $(BUILD)/bench/overhead 2000

# The data-parallel trainer (examples/train.c) and the codecs' training
# comparison on the emulated 2 x 2 cluster at 1 Gbit (bench/train-compare).
$(BUILD)/examples/train: examples/train.c $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O2 -o $@ $< -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib' -lm

TRAIN_CODECS ?= none fp16 bf16 int8 topk:0.01 sign powersgd:4 sign,no-ef topk:0.01,no-ef
TRAIN_ARGS   ?= --model mlp --epochs 4
TRAIN_OUT    ?= $(BUILD)/train
train-cluster: deps all $(BUILD)/examples/train
	bench/train-compare --build $(BUILD) --out $(TRAIN_OUT) --codecs "$(TRAIN_CODECS)" -- $(TRAIN_ARGS)

# What fusion and non-blocking calls buy for many small tensors (bench/fusion.c).
$(BUILD)/bench/fusion: bench/fusion.c $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib'

bench-fusion: deps $(BUILD)/bench/fusion
	for fb in 1M 4M 16M 64M; do \
	    TALLY_FUSION_BYTES=$$fb tests/mpirun.sh 2 300 -x TALLY_FUSION_BYTES $(BUILD)/bench/fusion 2000 16384; done

# How much of an allreduce a started call hides behind computation
# (bench/overlap.c), on 2 ranks and on emulated clusters at 1 Gbit: 2 x 1,
# where each node has a core of its own and the wire is the cost, and
# 2 x 2, where four ranks computing fill both cores of this machine.
$(BUILD)/bench/overlap: bench/overlap.c $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib'

bench-overlap: deps $(BUILD)/bench/overlap
	tests/mpirun.sh 2 300 $(BUILD)/bench/overlap
	if sh tests/cluster/cluster.sh check; then \
	    for ppn in 1 2; do sh tests/cluster/cluster.sh -r 1gbit -t 600 2 $$ppn -- \
	        --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np $$((2 * ppn)) \
	        $(BUILD)/bench/overlap || exit 1; done; fi

# PyTorch DDP: gloo's allreduce, tally's comm hook and the hook compressed,
# step time and time to a loss (bench/ddp-compare, examples/ddp_digits.py;
# needs python3-torch and python3-sklearn).
DDP_ARGS ?= --steps 200 --lr 0.2
ddp-bench: deps all
	bench/ddp-compare --shape local:2 -- $(DDP_ARGS)
	if sh tests/cluster/cluster.sh check; then \
	    bench/ddp-compare --shape cluster:2x2 --rate 1gbit -- $(DDP_ARGS); fi

# How fast each codec encodes and decodes here (bench/codec.c).
$(BUILD)/bench/codec: bench/codec.c $(LIBTALLY_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIBTALLY_A) $(LIB_LIBS)

bench-codec: deps $(BUILD)/bench/codec
	$(BUILD)/bench/codec

# The device backend's kernels against its copies, and classification's
# cost per call (bench/device.c; TALLY_DEVICE=emulated runs it without a GPU).
$(BUILD)/bench/device: bench/device.c $(LIBTALLY_A)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIBTALLY_A) $(LIB_LIBS) -Wl,-rpath,'$$ORIGIN/../lib'

bench-device: deps $(BUILD)/bench/device $(DEVICE_PLUGIN)
	$(BUILD)/bench/device

# What erroneous programs whose ranks disagree get, without and with
# TALLY_CHECK (bench/mismatch.c, bench/mismatch-matrix).
$(BUILD)/bench/mismatch: bench/mismatch.c $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< -L$(BUILD)/lib -ltally -Wl,-rpath,'$$ORIGIN/../lib'

mismatch-matrix: deps $(BUILD)/bench/mismatch
	BUILD=$(BUILD) bench/mismatch-matrix 2

vec-report: $(BUILD)/config.mk
	$(CC) $(ALL_CFLAGS) $(REDUCE_CFLAGS) -fopt-info-vec-optimized -c src/reduce/reduce.c -o /dev/null

# The tuning-file parser alone under libFuzzer (tests/fuzz/); clang only.
# tests/fuzz/run-fuzz.sh builds the same and runs it (make check does).
FUZZ_CC     ?= clang
FUZZ_CFLAGS ?= -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_tuning
$(BUILD)/fuzz/fuzz_tuning: tests/fuzz/fuzz_tuning.c tests/fuzz/tuning_check.h src/select/tuning.c src/select/tuning.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -Isrc/select -o $@ tests/fuzz/fuzz_tuning.c src/select/tuning.c

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(LIBTALLY) $(DESTDIR)$(PREFIX)/lib/libtally.so.0
	install -m 755 $(PRELOAD) $(DESTDIR)$(PREFIX)/lib/libtally-preload.so
	$(if $(DEVICE_PLUGIN),install -m 755 $(DEVICE_PLUGIN) $(DESTDIR)$(PREFIX)/lib/)
	ln -sf libtally.so.0 $(DESTDIR)$(PREFIX)/lib/libtally.so
	install -m 644 include/tally.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(TOOLS:%=$(BUILD)/bin/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(SCRIPTS:%=bench/%) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 man/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@MPI_PC@|$(MPI_PC)|' build-aux/tally.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tally.pc
	install -d $(DESTDIR)$(PREFIX)/lib/cmake/tally
	install -m 644 build-aux/tallyConfig.cmake build-aux/tallyConfigVersion.cmake \
	    $(DESTDIR)$(PREFIX)/lib/cmake/tally/

# Everything install put there, and nothing else.
INSTALLED = lib/libtally.so.0 lib/libtally.so lib/libtally-preload.so lib/libtally-cuda.so \
            include/tally.h lib/pkgconfig/tally.pc lib/cmake/tally/tallyConfig.cmake \
            lib/cmake/tally/tallyConfigVersion.cmake $(TOOLS:%=bin/%) $(SCRIPTS:%=bin/%) \
            $(patsubst man/%.1,share/man/man1/%.1,$(wildcard man/*.1)) \
            $(patsubst man/%.3,share/man/man3/%.3,$(wildcard man/*.3)) \
            $(patsubst man/%.5,share/man/man5/%.5,$(wildcard man/*.5)) \
            $(patsubst man/%.7,share/man/man7/%.7,$(wildcard man/*.7))
uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)$(PREFIX)/%)

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf configure config.log config.status autom4te.cache

-include $(LIB_OBJS:.o=.d)
