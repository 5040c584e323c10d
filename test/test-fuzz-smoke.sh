#!/usr/bin/env bash
# Fuzz smoke test: every libFuzzer target in fuzz/ (fuzz/fuzz-<name>.c) is
# built with clang and run over its seed corpus (fuzz/corpus/fuzz-<name>/),
# then on fresh inputs for FUZZ_SMOKE_SECONDS (default 8) each. Any crash,
# sanitizer report (ASan, UBSan), leak, hang (10 s per input) or oracle
# failure fails the check; libFuzzer's report is shown and the input kept in
# $CNET_BUILD_DIR/fuzz-artifacts/ (until the next run). `make fuzz` does the
# same for long runs.
#
# The targets need a clang build of the library, instrumented for libFuzzer,
# so this configures one of its own in $CNET_BUILD_DIR/fuzz (CC=clang,
# CNET_BUILD_FUZZ=ON, nothing else) and reuses it on later runs; a build dir
# configured with CNET_BUILD_FUZZ=ON (hence clang) is used as it is. Without
# clang or its libFuzzer runtime the test fails and says what to install
# (scripts/setup.sh does it): a fuzzer that cannot run must not look like
# one that found nothing.
#
# The targets run one after another, so the test keeps one core busy, like
# any other test: timing-sensitive tests running beside it under `ctest -j2`
# are not starved. Measured on 2 cores (shared, loaded): about 11 s to
# configure and build at -j1 (once; this script builds with -j2), then each
# target takes 1-2 s beyond its fuzzing time (seeds, leak check at exit):
# with 5 targets, 61 s at 10 s each, hence the default of 8 -- about 50 s,
# to keep the test under a minute.
#
# Registered in CTest as `fuzz-smoke`. Environment (set by CTest):
# CNET_BUILD_DIR, CNET_SOURCE_DIR. Prints `ok - ...` / `not ok - ...` per
# target and a final `N passed, M failed`; exits 1 if any check failed.
set -uo pipefail

test_name=fuzz-smoke
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

build=${CNET_BUILD_DIR:-$src/build}
seconds=${FUZZ_SMOKE_SECONDS:-8}
artifacts="$build/fuzz-artifacts"

# The tree that has (or will have) the fuzz targets.
if grep -qs '^CNET_BUILD_FUZZ:BOOL=ON$' "$build/CMakeCache.txt"; then
  tree=$build
else
  tree=$build/fuzz
fi

# clang, and a clang that can link libFuzzer: two different packages on
# Debian (clang, libclang-rt-dev), and the second is easy to miss.
prereq() {
  local probe="$tmp/probe.c"

  if ! command -v clang >/dev/null 2>&1; then
    say "clang not found: the fuzz targets need clang with libFuzzer." \
        "Install clang and libclang-rt-dev (bash scripts/setup.sh as root)."
    return 1
  fi
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {' \
    '  (void)d; (void)n; return 0; }' >"$probe"
  if ! clang -fsanitize=fuzzer,address,undefined "$probe" -o "$tmp/probe" \
      >"$tmp/probe.log" 2>&1; then
    say "clang cannot link -fsanitize=fuzzer,address,undefined:" \
        "install libclang-rt-dev (bash scripts/setup.sh as root)."
    show "$tmp/probe.log"
    return 1
  fi
}

build_targets() {
  local log="$tmp/build.log"

  if [[ ! -f $tree/CMakeCache.txt ]]; then
    if ! CC=clang cmake -S "$src" -B "$tree" -DCNET_BUILD_FUZZ=ON \
        -DCNET_BUILD_TESTS=OFF -DCNET_BUILD_EXAMPLES=OFF \
        -DCNET_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$log" 2>&1; then
      say "configuring $tree failed"
      show "$log"
      return 1
    fi
  fi
  if ! cmake --build "$tree" --target cnet-fuzzers -j2 >"$log" 2>&1; then
    say "building the fuzz targets in $tree failed"
    show "$log"
    return 1
  fi
}

# run_target NAME: the seeds, then fresh inputs for $seconds. New inputs go
# to a scratch corpus in $tmp (listed first: libFuzzer writes to the first
# directory only), so fuzz/corpus/ is never written.
run_target() {
  local name=$1 log="$tmp/$1.log" dict=() rc
  local exe="$tree/fuzz/$name"

  if [[ ! -x $exe ]]; then
    say "$exe was not built"
    return 1
  fi
  [[ ! -f $src/fuzz/$name.dict ]] || dict=("-dict=$src/fuzz/$name.dict")
  mkdir -p "$tmp/corpus-$name" "$artifacts"
  rm -f "$artifacts/$name-"* # the last run's; a new failure writes its own
  "$exe" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$name-" "${dict[@]}" \
    "$tmp/corpus-$name" "$src/fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  if ((rc != 0)); then
    say "$name exited with $rc; its report:"
    grep -E -A40 -m1 '==ORACLE FAILURE==|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:' \
      "$log" | head -n 60 | sed 's/^/#     /'
    say "artefacts (reproduce: $exe FILE):"
    printf '#     %s\n' "$artifacts/$name-"*
    return 1
  fi
  say "$name: $(sed -n 's/^stat::number_of_executed_units: *//p' "$log") runs, $(sed -n 's/^stat::average_exec_per_sec: *//p' "$log") exec/s"
}

if ! prereq || ! build_targets; then
  echo "not ok - build the fuzz targets with clang + libFuzzer"
  echo "0 passed, 1 failed"
  exit 1
fi

shopt -s nullglob
targets=("$src"/fuzz/fuzz-*.c)
if ((${#targets[@]} == 0)); then
  echo "not ok - no fuzz targets in $src/fuzz"
  exit 1
fi
for t in "${targets[@]}"; do
  name=$(basename "$t" .c)
  check "$name: seed corpus + ${seconds} s of fuzzing, no crash, leak or oracle failure" \
    run_target "$name"
done

echo "$passed passed, $failed failed"
((failed == 0))
