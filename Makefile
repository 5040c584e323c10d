# cnet front door (GNU make). The real build is CMake; this file only drives it.
#
#   make [all|build]   install missing tools (scripts/setup.sh), configure, build
#   make test          build, then run every CTest test
#   make demo          build, then run the echo server/client demo
#   make asan          ASan+UBSan Debug build in build-asan, run the tests there
#   make valgrind      run each test executable of the normal build under valgrind
#   make bench-memory  Release build in build-bench, then bench/idle-memory.sh:
#                      bytes per idle connection, cnet vs raw libuv vs Node
#   make bench         Release build in build-bench, then bench/run.sh: every
#                      echo server under bench/loadgen, one markdown table
#   make bench-instructions  the same build, then bench/instructions.sh:
#                      instructions per echo round trip under callgrind
#   make soak          RelWithDebInfo build in build-soak, then soak/run.sh:
#                      10 000 connections doing random things for
#                      SOAK_SECONDS against one cnet server (SOAK_ASAN=1:
#                      an ASan+UBSan server too, from build-soak-asan)
#   make fuzz          clang + libFuzzer build in build-fuzz, then run each
#                      fuzz target (fuzz/fuzz-*.c) for FUZZ_SECONDS
#   make install       build, then install into $(PREFIX)
#   make format        clang-format -i the C sources
#   make clean         remove build, build-asan, build-bench, build-fuzz and
#                      build-soak(-asan)
#
# Variables: BUILD (build dir, default build), PREFIX (default /usr/local),
# JOBS (default 2), CMAKE_ARGS (extra arguments for the first configure),
# BENCH_BUILD (default build-bench), BENCH_ARGS (e.g. BENCH_ARGS='-k 5000'),
# FUZZ_BUILD (default build-fuzz), FUZZ_SECONDS (per target, default 300),
# FUZZ_TARGETS (default all, e.g. FUZZ_TARGETS=fuzz-block-list), SOAK_BUILD
# (default build-soak), SOAK_SECONDS (default 60), SOAK_ASAN (default 0).

BUILD      ?= build
ASAN_BUILD := build-asan
BENCH_BUILD ?= build-bench
BENCH_ARGS ?=
FUZZ_BUILD ?= build-fuzz
SOAK_BUILD ?= build-soak
SOAK_SECONDS ?= 60
SOAK_ASAN ?= 0
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard fuzz/fuzz-*.c)))
PREFIX     ?= /usr/local
JOBS       ?= 2
CMAKE      ?= cmake
CTEST      ?= ctest
CMAKE_ARGS ?=

SHELL := /bin/bash
MAKEFLAGS += --no-print-directory

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

VALGRIND := valgrind --error-exitcode=1 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect --quiet

.PHONY: all build setup test demo asan valgrind bench-build bench-memory \
        bench bench-instructions soak-build soak-asan-build soak fuzz \
        install format clean

all: build

setup:
	bash scripts/setup.sh

# Configure only once; CONFIGURE_DEPENDS globs re-run CMake when files appear.
build: setup
	@test -f $(BUILD)/CMakeCache.txt || \
	  $(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	$(CMAKE) --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && $(CTEST) --output-on-failure -j$(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

asan: setup
	@test -f $(ASAN_BUILD)/CMakeCache.txt || \
	  $(CMAKE) -S . -B $(ASAN_BUILD) -DCNET_SANITIZE=ON \
	    -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(ASAN_ENV) $(CTEST) --output-on-failure -j$(JOBS)

# The C test executables only (not the shell tests), one at a time, in the
# build dir and with the environment CTest would give them; stop at the first
# failure.
valgrind: build
	@set -e; \
	build=$$(cd $(BUILD) && pwd); src=$$(pwd); node=$$(command -v node || true); \
	n=0; \
	for t in "$$build"/test-*; do \
	  [[ -f $$t && -x $$t ]] || continue; \
	  echo "valgrind: $${t##*/}"; \
	  if ! (cd "$$build" && CNET_UNDER_VALGRIND=1 \
	        CNET_NODE="$$node" CNET_BUILD_DIR="$$build" \
	        CNET_SOURCE_DIR="$$src" CNET_EXAMPLES_DIR="$$build/examples" \
	        timeout 900 $(VALGRIND) "$$t"); then \
	    echo "valgrind: FAILED: $${t##*/}" >&2; exit 1; \
	  fi; \
	  n=$$((n + 1)); \
	done; \
	echo "valgrind: $$n test executable(s) clean"

# Benchmarks: a Release build of their own, never part of `make test`.
bench-build: setup
	@test -f $(BENCH_BUILD)/CMakeCache.txt || \
	  $(CMAKE) -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release \
	    -DCNET_BUILD_BENCH=ON $(CMAKE_ARGS)
	$(CMAKE) --build $(BENCH_BUILD) -j$(JOBS) --target example-echo-server \
	  bench-uv-echo bench-loadgen bench-epoll-echo

bench-memory: bench-build
	CNET_BUILD_DIR="$$(cd $(BENCH_BUILD) && pwd)" bash bench/idle-memory.sh $(BENCH_ARGS)

bench: bench-build
	$(CMAKE) --build $(BENCH_BUILD) -j$(JOBS) --target bench-loadgen bench-epoll-echo
	BENCH_BUILD="$$(cd $(BENCH_BUILD) && pwd)" bash bench/run.sh $(BENCH_ARGS)

bench-instructions: bench-build
	$(CMAKE) --build $(BENCH_BUILD) -j$(JOBS) --target bench-loadgen bench-epoll-echo
	BENCH_BUILD="$$(cd $(BENCH_BUILD) && pwd)" bash bench/instructions.sh $(BENCH_ARGS)

# Soak (issue 5): its own build, then soak/run.sh; fails on a wrong byte, a
# leak at exit, or RSS growth after warm-up. Other SOAK_* variables on the
# command line reach run.sh through the environment (soak/README.md).
soak-build: setup
	@test -f $(SOAK_BUILD)/CMakeCache.txt || \
	  $(CMAKE) -S . -B $(SOAK_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCNET_BUILD_SOAK=ON -DCNET_BUILD_TESTS=OFF -DCNET_BUILD_EXAMPLES=OFF \
	    -DCNET_BUILD_BENCH=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(SOAK_BUILD) -j$(JOBS) --target soak-server soak-client

soak-asan-build: setup
	@test -f $(SOAK_BUILD)-asan/CMakeCache.txt || \
	  $(CMAKE) -S . -B $(SOAK_BUILD)-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCNET_SANITIZE=ON -DCNET_BUILD_SOAK=ON -DCNET_BUILD_TESTS=OFF \
	    -DCNET_BUILD_EXAMPLES=OFF -DCNET_BUILD_BENCH=OFF $(CMAKE_ARGS)
	$(CMAKE) --build $(SOAK_BUILD)-asan -j$(JOBS) --target soak-server

soak: soak-build $(if $(filter 1,$(SOAK_ASAN)),soak-asan-build)
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_ASAN=$(SOAK_ASAN) \
	  bash soak/run.sh $(SOAK_BUILD)

# Fuzzing: a clang build of its own (the library instrumented for libFuzzer,
# with ASan + UBSan), then each target for FUZZ_SECONDS, one after another;
# the first crash, leak or oracle failure stops it, the input saved as
# $(FUZZ_BUILD)/artifacts/<target>-crash-*. Each target starts from a scratch
# copy of its seeds, $(FUZZ_BUILD)/corpus/<target>, which keeps growing over
# runs while fuzz/corpus/ stays small. To keep the new finds that add
# coverage, merge them into the seeds (libFuzzer copies only those):
#   build-fuzz/fuzz/fuzz-is-ip -merge=1 fuzz/corpus/fuzz-is-ip \
#     build-fuzz/corpus/fuzz-is-ip
# test/fuzz-smoke.sh runs the same targets for a few seconds in `make test`.
fuzz: setup
	@test -f $(FUZZ_BUILD)/CMakeCache.txt || \
	  CC=clang $(CMAKE) -S . -B $(FUZZ_BUILD) -DCNET_BUILD_FUZZ=ON \
	    -DCNET_BUILD_TESTS=OFF -DCNET_BUILD_EXAMPLES=OFF \
	    -DCNET_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	$(CMAKE) --build $(FUZZ_BUILD) -j$(JOBS) --target cnet-fuzzers
	@set -e; \
	mkdir -p $(FUZZ_BUILD)/artifacts; \
	for t in $(FUZZ_TARGETS); do \
	  corpus=$(FUZZ_BUILD)/corpus/$$t; \
	  mkdir -p "$$corpus"; cp fuzz/corpus/$$t/* "$$corpus"/; \
	  dict=; [[ ! -f fuzz/$$t.dict ]] || dict=-dict=fuzz/$$t.dict; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
	    $$dict "$$corpus"; \
	done

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

format:
	@files=$$(find include src test examples bench fuzz -name '*.[ch]' 2>/dev/null; \
	          ls *.c *.h 2>/dev/null); \
	if [[ -n $$files ]]; then clang-format -i $$files; fi

clean:
	rm -rf build build-asan $(BENCH_BUILD) $(FUZZ_BUILD) $(SOAK_BUILD) $(SOAK_BUILD)-asan
