#!/usr/bin/env bash
# Idle memory per connection: what an accepted, idle connection costs a
# server in user space, for cnet and for its peers.
#
#   bash bench/idle-memory.sh [-k K] [-r RUNS] [--unix] [SERVER...]
#
# SERVERs (default: all that are built / installed):
#   cnet   examples/echo-server --bench (a plain pipe(c, c) echo)
#   libuv  bench/uv-echo (raw libuv: libuv's guide plus backpressure; a
#          64 KiB malloc per read, freed when its write completes)
#   libuv-tw  bench/uv-echo --try-write (one read buffer per loop,
#          uv_try_write, a write request only for what the kernel refused)
#   node   node bench/node-echo.js (net.createServer((c) => c.pipe(c)))
#
# Each measurement starts the server afresh under `prlimit --nofile=K+64`
# and runs `bench/loadgen --mode idle -c K --idle-exit --server-pid PID`,
# which warms it up with 64 connections (opened, echoed, closed: one-time
# costs such as a loop's read buffer are not per connection), reads its RSS
# (Rss of /proc/PID/smaps_rollup), opens K connections (each sends one byte
# and waits for its echo, so the server has accepted and set up every one),
# waits 1 s, reads the RSS again, and prints (after - before) * 1024 / K
# (bytes_per_conn), the figure of the run. Kernel memory (socket buffers, the
# descriptor itself) is not in a process's RSS, so this is the user-space
# cost. Runs are interleaved (cnet libuv libuv-tw node cnet ...) and the
# median of RUNS (default 3) is the figure; every run is printed.
#
# Environment: CNET_BUILD_DIR (default ./build-bench, a Release build;
# `make bench-memory` sets it), CNET_NODE (default: node in PATH).
# K defaults to 10000 (needs K+64 descriptors per process: root, or a hard
# limit that high). --unix uses a Unix socket path instead of TCP.
set -uo pipefail

prog=idle-memory
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The servers, starting and stopping them, the exit trap (bench/lib.bash).
source "$here/lib.bash"
build=${CNET_BUILD_DIR:-$src/build-bench}

k=10000
runs=3
unix=0
servers=()
while (($#)); do
  case $1 in
  -k) need_arg "$@"; k=$2; shift 2 ;;
  -r) need_arg "$@"; runs=$2; shift 2 ;;
  --unix) unix=1; shift ;;
  -h | --help) usage; exit 0 ;;
  -*) echo "idle-memory: unknown option $1" >&2; exit 64 ;;
  *) servers+=("$1"); shift ;;
  esac
done

[[ $k =~ ^[1-9][0-9]*$ ]] || die "-k wants a whole number >= 1, not '$k'"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-r wants a whole number >= 1, not '$runs'"
find_build bench-memory
nofile=$((k + 64))
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnet-idle-memory.XXXXXX") || die "mktemp failed"

# lib_name NAME: lib.bash's name for one of this script's servers (whose
# names stay as they were, for the output and BENCH_ARGS).
lib_name() {
  case $1 in
  libuv) echo uv ;;
  libuv-tw) echo uv-try ;;
  node) echo node-pipe ;;
  *) echo "$1" ;;
  esac
}

if ((${#servers[@]} == 0)); then
  for s in cnet libuv libuv-tw node; do
    if available "$(lib_name "$s")"; then servers+=("$s"); else echo "idle-memory: skipping $s (not built / not found)" >&2; fi
  done
fi
for s in "${servers[@]}"; do
  [[ " cnet libuv libuv-tw node " == *" $s "* ]] && available "$(lib_name "$s")" ||
    { echo "idle-memory: server '$s' unknown or not built" >&2; exit 1; }
done

# measure NAME: one run against one server; sets $bpc (bytes per connection).
measure() {
  local name=$1 where spid target why rc line
  local log=$tmp/$name.$r.log out=$tmp/loadgen.$name.$r.out err=$tmp/loadgen.$name.$r.err
  if ((unix)); then where=$tmp/$name.sock; else where=0; fi
  start_server "$(lib_name "$name")" "$where" "$log" prlimit --nofile="$nofile"
  if ! wait_listening "$log" "$spid" "$where" 150; then
    echo "idle-memory: $name: $why:" >&2
    sed 's/^/  /' "$log" >&2
    stop "$spid"
    return 1
  fi
  # --timeout 120: the whole run, warm-up and K connections set up.
  run_client "$out" "$err" prlimit --nofile="$nofile" "$loadgen" --mode idle -c "$k" \
    --idle-exit --timeout 120 --server-pid "$spid" "$target"
  rc=$?
  line=$(grep '^mode=' "$out" | tail -n 1)
  bpc=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^bytes_per_conn=//p')
  if ((rc != 0)) || ! [[ $bpc =~ ^-?[0-9]+$ ]]; then
    echo "idle-memory: loadgen did not measure $name (exit $rc):" >&2
    sed 's/^/  /' "$err" "$out" >&2
    stop "$spid"
    return 1
  fi
  kill -0 "$spid" 2>/dev/null || { echo "idle-memory: $name died" >&2; return 1; }
  stop "$spid"
  ((unix)) && rm -f "$where"
  return 0
}

# median VALUES...
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "idle memory per connection: RSS delta over $k idle connections" \
     "($( ((unix)) && echo "Unix socket" || echo "TCP loopback"), $runs runs interleaved)"
declare -A results
for ((r = 1; r <= runs; r++)); do
  for s in "${servers[@]}"; do
    measure "$s" || { echo "idle-memory: run $r of $s failed" >&2; exit 1; }
    results[$s]+="$bpc "
    printf '  run %d  %-8s %6d B/connection\n' "$r" "$s" "$bpc"
  done
done

echo
printf '%-8s %8s   %s\n' server median "runs (bytes per connection)"
declare -A med
for s in "${servers[@]}"; do
  # shellcheck disable=SC2086
  med[$s]=$(median ${results[$s]})
  printf '%-8s %8d   %s\n' "$s" "${med[$s]}" "${results[$s]}"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if [[ -n ${med[cnet]:-} ]]; then
  echo
  [[ -n ${med[libuv]:-} ]] && echo "cnet / libuv:    $(ratio "${med[cnet]}" "${med[libuv]}")x"
  [[ -n ${med[libuv-tw]:-} ]] && echo "cnet / libuv-tw: $(ratio "${med[cnet]}" "${med[libuv-tw]}")x"
  [[ -n ${med[node]:-} ]] && echo "node / cnet:     $(ratio "${med[node]}" "${med[cnet]}")x"
  if ((med[cnet] < 1024)); then
    echo "cnet: ${med[cnet]} B per idle connection: under the 1 KiB goal (issue 8)"
  else
    echo "cnet: ${med[cnet]} B per idle connection: OVER the 1 KiB goal (issue 8)"
  fi
fi
exit 0
