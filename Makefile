# dmaplane: every entry point. `make help` lists them.
#
# Kernel: the newest /lib/modules/<ver> that has a `build` link (never
# `uname -r`: the host's own kernel may have no headers). Override with
# KVER=<ver> or KDIR=<kernel build dir>.

KVER ?= $(shell ls -1d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1 | cut -d/ -f4)
KDIR ?= /lib/modules/$(KVER)/build
BUILD ?= build
# stock: the distribution kernel above. debug: vm/build-debug-kernel.sh's
# instrumented kernel (KASAN, lockdep, kmemleak, KUnit, gcov), built once
# and cached in ~/.cache/dmaplane.
KERNEL ?= stock

CC ?= cc
CFLAGS ?= -O2 -g
USER_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-Isrc/include/uapi -Isrc/lib $(CFLAGS)

LIB := $(BUILD)/lib/libdmaplane.a
TOOLS := $(BUILD)/tools/dmaplanectl
TEST_SUITES := core buffer numa dmabuf rdma verbs flow gpu privilege faults \
	lifecycle model kv_manifest kvxfer hostile
# Suites that need two hosts: run by the pair scenario, not run-guest.sh.
PAIR_SUITES := verbs_pair
TESTS := $(TEST_SUITES:%=$(BUILD)/tests/%_test) \
	$(PAIR_SUITES:%=$(BUILD)/tests/%_test)
TEST_COMMON := tests/ktap.c tests/testutil.c tests/verbsutil.c
USER_HEADERS := src/include/uapi/linux/dmaplane.h src/lib/libdmaplane.h \
	tests/ktap.h tests/testutil.h tests/verbsutil.h

.PHONY: all module user deps sim quick test kunit coverage faults _sim _quick \
	_test _kunit _coverage clean help hil bench _bench python fuzz _fuzz \
	soak _soak

all: module user python

help:
	@echo "make deps      install the Debian packages everything needs (root)"
	@echo "make           build dmaplane.ko ($(KVER)) and userspace"
	@echo "make sim       boot QEMU guests per topology, run every suite, ib_write_bw pair"
	@echo "make quick     build and run the suites in one 1-node guest (iteration)"
	@echo "make test      every ready test layer; ends with 'N passed, N failed'"
	@echo "make kunit     KUnit suites on the debug kernel (built and cached on first use)"
	@echo "make faults    allocation-failure injection suite on the debug kernel"
	@echo "make coverage  debug-kernel sim with lcov report in coverage/html"
	@echo "make bench     NUMA bandwidth matrices and hugepage mapping cost (figures, JSON in build/bench)"
	@echo "make hil       the suites on this host's hardware; HOSTS=a,b or INVENTORY=file: two hosts"
	@echo "make python    the Python package's extension, in place in python/dmaplane"
	@echo "make fuzz      the UAPI fuzzers in a debug-kernel guest: DURATION=s (300) SEED=n THREADS=n"
	@echo "make soak      streaming + KV-cache + dpfuzz at once on two debug-kernel guests: DURATION=s (300)"
	@echo "make install   libdmaplane (+ pkg-config), headers, dmaplanectl, udev rule (PREFIX, DESTDIR)"
	@echo "make uninstall remove what make install installed"
	@echo "KERNEL=debug   with sim/quick/module: use the debug kernel"
	@echo "make clean     remove build outputs"

# Objects go to $(BUILD)/modules/<kernel release>/, which the guests find
# with `uname -r`.
module:
ifeq ($(KERNEL),debug)
	@dir=$$(vm/build-debug-kernel.sh | tail -n 1) && \
	vm/build-modules.sh $$dir/build $(BUILD)/modules/$$(cat $$dir/kernelrelease)
else
	@test -d "$(KDIR)" || { echo "no kernel build dir '$(KDIR)': run 'make deps' or set KVER/KDIR" >&2; exit 1; }
	@vm/build-modules.sh $(KDIR) $(BUILD)/modules/$(KVER)
endif

# The disaggregated-inference demo's shared code (src/apps/): the model,
# the KV-cache layout and its wire format.
APP_LIB := $(BUILD)/apps/libdpapps.a
APP_OBJS := $(BUILD)/apps/model.o $(BUILD)/apps/kv_layout.o \
	$(BUILD)/apps/kv_manifest.o
APP_HEADERS := src/apps/model.h src/apps/kv_layout.h src/apps/kv_manifest.h

APPS := $(BUILD)/apps/dpinfer

# The CUDA side of gpu-bench (src/tools/gpu_bench_cuda.cu), built when nvcc
# is there: cudart static and no libcuda link, so the binary starts on any
# host and skips (exit 77) without a GPU.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_TOOLS := $(if $(wildcard $(NVCC)),$(BUILD)/tools/gpu_bench_cuda)

user: $(LIB) $(APP_LIB) $(TOOLS) $(APPS) $(TESTS) $(BUILD)/tests/dpfuzz \
	$(BUILD)/tests/trinity_shim.so $(CUDA_TOOLS)

$(BUILD)/apps/dpinfer: src/apps/dpinfer.c $(APP_LIB) $(LIB) $(APP_HEADERS) \
		$(USER_HEADERS)
	$(CC) $(USER_CFLAGS) -Isrc/apps -o $@ $< $(APP_LIB) $(LIB) -lm

$(BUILD)/apps/%.o: src/apps/%.c $(APP_HEADERS) $(USER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -Isrc/apps -c -o $@ $<

$(APP_LIB): $(APP_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/lib/libdmaplane.o: src/lib/libdmaplane.c $(USER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -c -o $@ $<

$(LIB): $(BUILD)/lib/libdmaplane.o
	$(AR) rcs $@ $^

TOOL_SRCS := src/tools/dmaplanectl.c src/tools/rdma_bench.c \
	src/tools/stream.c src/tools/stats.c src/tools/gpu_bench.c \
	src/tools/gpu_bar.c

$(BUILD)/tools/dmaplanectl: $(TOOL_SRCS) src/tools/dmaplanectl.h \
		src/tools/gpu_bar.h $(LIB) $(USER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ $(TOOL_SRCS) $(LIB)

$(BUILD)/tools/gpu_bar.o: src/tools/gpu_bar.c src/tools/gpu_bar.h $(USER_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -c -o $@ $<

$(BUILD)/tools/gpu_bench_cuda: src/tools/gpu_bench_cuda.cu src/tools/gpu_bar.h \
		$(BUILD)/tools/gpu_bar.o $(LIB) $(USER_HEADERS)
	@mkdir -p $(@D)
	$(NVCC) -O2 -std=c++17 -Xcompiler -Wall,-Wextra,-Werror -Isrc/include/uapi \
		-Isrc/lib -Isrc/tools -o $@ $< $(BUILD)/tools/gpu_bar.o $(LIB) -ldl

$(BUILD)/tests/%_test: tests/%_test.c $(TEST_COMMON) $(LIB) $(APP_LIB) \
		$(USER_HEADERS) $(APP_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -Itests -Isrc/apps -o $@ $< $(TEST_COMMON) \
		$(APP_LIB) $(LIB) -lm $(TEST_LIBS)

# The hostile peer speaks verbs itself, without the module.
$(BUILD)/tests/hostile_test: TEST_LIBS := -lrdmacm -libverbs

# The UAPI fuzzer (tests/fuzz/README.md). specgen checks tests/fuzz/uapi.spec
# against the header and ioctl.c's table and writes spec_check.c, which
# only compiles while they agree (and carries the spec's text into dpfuzz).
FUZZ_DIR := $(BUILD)/tests/fuzz
FUZZ_SRCS := tests/fuzz/dpfuzz.c tests/fuzz/gen.c tests/fuzz/ops.c \
	tests/fuzz/spec.c
FUZZ_HEADERS := tests/fuzz/dpfuzz.h tests/fuzz/spec.h

$(FUZZ_DIR)/specgen: tests/fuzz/specgen.c tests/fuzz/spec.c tests/fuzz/spec.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ tests/fuzz/specgen.c tests/fuzz/spec.c

$(FUZZ_DIR)/spec_check.c: $(FUZZ_DIR)/specgen tests/fuzz/uapi.spec \
		src/include/uapi/linux/dmaplane.h src/module/ioctl.c
	$(FUZZ_DIR)/specgen tests/fuzz/uapi.spec \
		src/include/uapi/linux/dmaplane.h src/module/ioctl.c >$@.tmp || \
		{ rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

$(BUILD)/tests/dpfuzz: $(FUZZ_SRCS) $(FUZZ_HEADERS) $(FUZZ_DIR)/spec_check.c \
		src/include/uapi/linux/dmaplane.h
	$(CC) $(USER_CFLAGS) -Itests/fuzz -o $@ $(FUZZ_SRCS) \
		$(FUZZ_DIR)/spec_check.c -lpthread

# trinity's preload (tests/fuzz/trinity.sh): the command list comes from
# the header, so it cannot miss a command.
$(FUZZ_DIR)/trinity_cmds.h: src/include/uapi/linux/dmaplane.h
	@mkdir -p $(@D)
	sed -n 's/^#define \(DMAPLANE_IOC_[A-Z0-9_]*\)[[:space:]]*\\$$/\t\1,/p' $< >$@

$(BUILD)/tests/trinity_shim.so: tests/fuzz/trinity_shim.c $(FUZZ_DIR)/trinity_cmds.h
	$(CC) $(USER_CFLAGS) -I$(FUZZ_DIR) -shared -fPIC -o $@ $< -ldl

# The Python package's native part (python/dmaplane/_native*.so), built
# in place with Debian's python3 (not a python3 earlier on PATH); its
# objects go to $(BUILD)/python.
PYTHON ?= /usr/bin/python3

python:
	cd python && CFLAGS=-Werror $(PYTHON) setup.py -q build_ext --inplace \
		--build-temp $(abspath $(BUILD))/python \
		--build-lib $(abspath $(BUILD))/python/lib

deps:
	@sh vm/deps.sh

# `make sim` and `make test` must work on a machine where deps are not yet
# installed, so KVER (found at parse time) is found again by a sub-make.
sim test quick kunit coverage fuzz soak: deps
	@$(MAKE) --no-print-directory _$@

_sim: all
	@KVER=$(KVER) sim/run.sh --kernel $(KERNEL)

_quick: all
	@KVER=$(KVER) sim/run.sh --kernel $(KERNEL) --topologies 1node --no-pair

_kunit: user
	@$(MAKE) --no-print-directory KERNEL=debug module
	@sim/run.sh --kunit-only

# The debug-kernel sim prints the lcov summary and writes coverage/html.
_coverage: user python
	@$(MAKE) --no-print-directory KERNEL=debug module
	@sim/run.sh --kernel debug

# Every ready layer: the stock-kernel sim, then on the debug kernel the
# KUnit suites and the userspace suites under the sanitizers.
_test: all
	@$(MAKE) --no-print-directory KERNEL=debug module
	@KVER=$(KVER) sim/run.sh --kernel stock --kernel debug

# The UAPI fuzzers alone in a debug-kernel guest (sim/scenarios/fuzz.sh):
# DURATION seconds, SEED to run a failed seed again, THREADS.
DURATION ?= 300
_fuzz: user
	@$(MAKE) --no-print-directory KERNEL=debug module
	@DP_FUZZ_SECONDS=$(DURATION) DP_FUZZ_SEED=$(SEED) \
		DP_FUZZ_THREADS=$(THREADS) sim/run.sh --fuzz-only

# The soak alone (sim/scenarios/soak.sh): DURATION seconds of streaming,
# KV-cache transfers and dpfuzz together on two debug-kernel guests.
_soak: user
	@$(MAKE) --no-print-directory KERNEL=debug module
	@DP_SOAK_SECONDS=$(DURATION) DP_FUZZ_SEED=$(SEED) sim/run.sh --soak-only

# Fault injection runs in every debug-kernel guest (tests/faults_test.c);
# this is the short way to just that.
faults: deps
	@$(MAKE) --no-print-directory user python KERNEL=debug module
	@sim/run.sh --kernel debug --topologies 1node --no-kunit --no-fuzz --no-soak
# Lab hardware (hil/README.md): this host's suites, or with HOSTS=a,b or
# INVENTORY=file the two-host suites over ssh; HIL_ARGS passes more options
# (--sync, --out DIR, --nic DEV).
hil:
	@DMAPLANE_BUILD=$(abspath $(BUILD)) hil/run.sh $(if $(HOSTS),--hosts $(HOSTS)) \
		$(if $(INVENTORY),--inventory $(INVENTORY)) $(HIL_ARGS)

# Userspace for lab hosts (the module: dkms.conf): the UAPI header,
# libdmaplane with its header and pkg-config file, dmaplanectl, and the udev
# rule that gives group dmaplane /dev/dmaplane.
PREFIX ?= /usr/local
UDEVRULESDIR ?= /etc/udev/rules.d
VERSION := $(shell sed -n 's/^.define DMAPLANE_MODULE_VERSION "\(.*\)"/\1/p' src/module/dmaplane.h)
INSTALLED := $(PREFIX)/include/linux/dmaplane.h $(PREFIX)/include/libdmaplane.h \
	$(PREFIX)/lib/libdmaplane.a $(PREFIX)/lib/pkgconfig/dmaplane.pc \
	$(PREFIX)/bin/dmaplanectl $(UDEVRULESDIR)/60-dmaplane.rules
.PHONY: install uninstall

install: $(LIB) $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/include/linux $(DESTDIR)$(PREFIX)/bin \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(UDEVRULESDIR)
	install -m 644 src/include/uapi/linux/dmaplane.h $(DESTDIR)$(PREFIX)/include/linux/
	install -m 644 src/lib/libdmaplane.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(TOOLS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 udev/60-dmaplane.rules $(DESTDIR)$(UDEVRULESDIR)/
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' \
		'libdir=$${prefix}/lib' '' 'Name: dmaplane' \
		'Description: userspace library for the dmaplane kernel module' \
		'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
		'Libs: -L$${libdir} -ldmaplane -lpthread' \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/dmaplane.pc

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
# Figures, not tests: NUMA bandwidth per fixture, hugepage mapping cost.
bench: deps
	@$(MAKE) --no-print-directory _bench

_bench: all
	@KVER=$(KVER) sim/bench.sh

clean:
	rm -rf $(BUILD) python/dmaplane/_native*.so
