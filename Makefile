# cnet front door (GNU make). The real build is CMake; this file only drives it.
#
#   make [all|build]   install missing tools (scripts/setup.sh), configure, build
#   make test          build, then run every CTest test
#   make demo          build, then run the echo server/client demo
#   make asan          ASan+UBSan Debug build in build-asan, run the tests there
#   make valgrind      run each test executable of the normal build under valgrind
#   make bench-memory  Release build in build-bench, then bench/idle-memory.sh:
#                      bytes per idle connection, cnet vs raw libuv vs Node
#   make install       build, then install into $(PREFIX)
#   make format        clang-format -i the C sources
#   make clean         remove build, build-asan and build-bench
#
# Variables: BUILD (build dir, default build), PREFIX (default /usr/local),
# JOBS (default 2), CMAKE_ARGS (extra arguments for the first configure),
# BENCH_BUILD (default build-bench), BENCH_ARGS (e.g. BENCH_ARGS='-k 5000').

BUILD      ?= build
ASAN_BUILD := build-asan
BENCH_BUILD ?= build-bench
BENCH_ARGS ?=
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
	  bench-idle-clients bench-uv-echo

bench-memory: bench-build
	CNET_BUILD_DIR="$$(cd $(BENCH_BUILD) && pwd)" bash bench/idle-memory.sh $(BENCH_ARGS)

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

format:
	@files=$$(find include src test examples bench -name '*.[ch]' 2>/dev/null; \
	          ls *.c *.h 2>/dev/null); \
	if [[ -n $$files ]]; then clang-format -i $$files; fi

clean:
	rm -rf build build-asan $(BENCH_BUILD)
