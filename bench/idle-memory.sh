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
# Each measurement starts the server afresh under `prlimit --nofile=K+64`,
# warms it up with 64 connections (opened, echoed, closed: one-time costs
# such as a loop's read buffer are not per connection), reads its RSS (Rss of
# /proc/PID/smaps_rollup), opens K connections with bench/idle-clients (each
# sends one byte and waits for its echo, so the server has accepted and set
# up every one), waits 1 s, reads the RSS again, and prints
# (after - before) / K. Kernel memory (socket buffers, the descriptor itself)
# is not in a process's RSS, so this is the user-space cost. Runs are
# interleaved (cnet libuv libuv-tw node cnet ...) and the median of RUNS
# (default 3) is the figure; every run is printed.
#
# Environment: CNET_BUILD_DIR (default ./build-bench, a Release build;
# `make bench-memory` sets it), CNET_NODE (default: node in PATH).
# K defaults to 10000 (needs K+64 descriptors per process: root, or a hard
# limit that high). --unix uses a Unix socket path instead of TCP.
set -uo pipefail

test_name=idle-memory
here_bench=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CNET_BUILD_DIR=${CNET_BUILD_DIR:-$(dirname "$here_bench")/build-bench}
source "$here_bench/../test/common.bash"
# Clean up in this shell only: a background child that a TERM reaches before
# it has exec'd its program would otherwise run the trap too.
trap '[[ $BASHPID == "$$" ]] && cleanup' EXIT
build=$CNET_BUILD_DIR

k=10000
runs=3
unix=0
servers=()
while (($#)); do
  case $1 in
  -k) k=$2; shift 2 ;;
  -r) runs=$2; shift 2 ;;
  --unix) unix=1; shift ;;
  -h | --help) sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d'; exit 0 ;;
  -*) echo "idle-memory: unknown option $1" >&2; exit 64 ;;
  *) servers+=("$1"); shift ;;
  esac
done

clients=$build/bench/idle-clients
nofile=$((k + 64))
[[ -x $clients ]] || { echo "idle-memory: $clients not built" >&2; exit 1; }

# server_cmd NAME: the command line of a server, on $where.
server_cmd() {
  case $1 in
  cnet) echo "$examples/echo-server $where --bench" ;;
  libuv) echo "$build/bench/uv-echo $where" ;;
  libuv-tw) echo "$build/bench/uv-echo --try-write $where" ;;
  node) echo "$nodejs $here_bench/node-echo.js $where" ;;
  esac
}

available() {
  case $1 in
  cnet) [[ -x $examples/echo-server ]] ;;
  libuv | libuv-tw) [[ -x $build/bench/uv-echo ]] ;;
  node) [[ -n $nodejs && -x $nodejs ]] ;;
  *) return 1 ;;
  esac
}

if ((${#servers[@]} == 0)); then
  for s in cnet libuv libuv-tw node; do
    if available "$s"; then servers+=("$s"); else echo "idle-memory: skipping $s (not built / not found)" >&2; fi
  done
fi
for s in "${servers[@]}"; do
  available "$s" || { echo "idle-memory: server '$s' unknown or not built" >&2; exit 1; }
done

# rss_kib PID: resident KiB (Rss of smaps_rollup; VmRSS if there is none).
rss_kib() {
  awk '/^Rss:/ { print $2; exit }' "/proc/$1/smaps_rollup" 2>/dev/null ||
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# hold N LOG: run idle-clients with N connections until "ready N"; sets $cpid.
hold() {
  local n=$1 log=$2 i
  : >"$log"
  prlimit --nofile="$nofile" "$clients" -k "$n" -t 120 "$target" \
    </dev/null >"$log" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  for ((i = 0; i < 1200; i++)); do
    grep -q "^ready $n\$" "$log" && return 0
    kill -0 "$cpid" 2>/dev/null || break
    sleep 0.1
  done
  echo "idle-memory: idle-clients did not get $n connections up:" >&2
  sed 's/^/  /' "$log" >&2
  return 1
}

# measure NAME: one run against one server; sets $bpc (bytes per connection).
measure() {
  local name=$1 before after
  local log="$tmp/$name.$r.log" warm="$tmp/warm.$name.$r.log"
  local clients_log="$tmp/clients.$name.$r.log"
  if ((unix)); then where="$tmp/$name.sock"; else where=0; fi
  # shellcheck disable=SC2046
  : >"$log"
  start "$log" prlimit --nofile="$nofile" $(server_cmd "$name")
  local spid=$pid
  if ((unix)); then
    wait_for "$log" '^(server bound|listening on)' "$spid" >&2 || return 1
    for _ in $(seq 50); do [[ -S $where ]] && break; sleep 0.1; done
    target=$where
  else
    wait_for "$log" '^listening on [0-9]+' "$spid" >&2 || return 1
    target=$(tcp_port "$log")
  fi
  hold 64 "$warm" || { stop "$spid"; return 1; }
  stop "$cpid"
  sleep 0.5
  before=$(rss_kib "$spid")
  hold "$k" "$clients_log" || { stop "$spid"; return 1; }
  sleep 1
  after=$(rss_kib "$spid")
  kill -0 "$spid" 2>/dev/null || { echo "idle-memory: $name died" >&2; return 1; }
  stop "$cpid"
  stop "$spid"
  ((unix)) && rm -f "$where"
  bpc=$(((after - before) * 1024 / k))
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
