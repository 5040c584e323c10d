#!/usr/bin/env bash
# Instructions per echo round trip, counted by valgrind's callgrind: a figure
# that a noisy or shared machine does not move, unlike time.
#
#   bash bench/instructions.sh [-s SERVERS] [-n N1,N2] [-c CONNS,...]
#                              [-W OPS] [-b BUILD] [-o DIR]
#
#   -s SERVERS  comma-separated (default cnet,uv-try,uv,epoll; also
#               node-pipe, node-data: slow and noisy under valgrind)
#   -n N1,N2    the two round-trip counts (default 5000,50000)
#   -c CONNS    connection counts, comma-separated (default 1,50)
#   -W OPS      loadgen's warm-up round trips before the counted ones
#               (default 200; the same in both runs, so they cancel)
#   -b BUILD    the Release build (default build-bench next to bench/)
#   -o DIR      where the callgrind files and the table go
#               (default BUILD/bench-results/instructions-<time>)
#
# Environment (options win): BENCH_BUILD, BENCH_OUT, BENCH_SERVER_CPU
# (default 0), BENCH_CLIENT_CPU (default 1), CNET_NODE.
#
# For each server, connection count C and count N, the server starts afresh
# under `valgrind --tool=callgrind` on port 0; `loadgen --mode ping-pong -c C
# -m 64 -W OPS -n N` (not under valgrind) makes exactly N echo round trips of
# 64 B after the warm-up, spread over C connections; the server gets
# SIGTERM, at which callgrind writes its totals (the servers exit cleanly or
# die by the default action; both dump). The figure is
#   (Ir(N2) - Ir(N1)) / (N2 - N1)
# instructions executed by the server per round trip: start-up, connecting,
# warm-up and shut-down are the same in both runs and cancel. One run per
# cell: with one connection the count is exact to the instruction; with 50,
# how many events one epoll_wait returns depends on timing, which moves the
# figure by well under 1%.
# Prints a markdown table; exits 1 if any measurement failed.
set -uo pipefail

prog=instructions
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# die, usage, parse_opts, the servers, starting and stopping them, the exit trap.
source "$here/lib.bash"
# callgrind writes its file on the way out, which takes a while: SIGKILL only
# after 30 s in a run, 10 s when interrupted.
stop_tenths=300
cleanup_tenths=100

build=${BENCH_BUILD:-$src/build-bench}
servers_opt=cnet,uv-try,uv,epoll
counts_opt=5000,50000
conns_opt=1,50
warm_ops=200
out_dir=${BENCH_OUT:-}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}

parse_opts '-s=servers_opt -n=counts_opt -c=conns_opt -W=warm_ops -b=build -o=out_dir' "$@"

IFS=, read -ra counts <<<"$counts_opt"
IFS=, read -ra conns <<<"$conns_opt"
((${#counts[@]} == 2)) || die "-n wants two counts, N1,N2"
n1=${counts[0]} n2=${counts[1]}
[[ $n1 =~ ^[1-9][0-9]*$ && $n2 =~ ^[1-9][0-9]*$ ]] && ((n2 > n1)) || die "-n wants N1,N2 with 0 < N1 < N2"
[[ $warm_ops =~ ^[0-9]+$ ]] || die "-W wants a whole number"
for c in "${conns[@]}"; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "-c wants connection counts >= 1, not '$c'"; done
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
find_build bench-instructions
if (($(nproc) < 2)); then server_cpu=0 client_cpu=0; fi
pick_servers "$servers_opt"

stamp=$(date +%Y%m%d-%H%M%S)
out_dir=${out_dir:-$build/bench-results/instructions-$stamp}
mkdir -p "$out_dir" || die "cannot create $out_dir"

failures=()
# count SERVER CONNS N: the server's total Ir for N round trips; sets ir.
count() {
  local s=$1 c=$2 n=$3 spid target why rc
  local base=$out_dir/$s.c$c.n$n
  local cg=$base.callgrind log=$base.server.log lg=$base.loadgen.log
  ir=
  rm -f "$cg"
  start_server "$s" 0 "$log" taskset -c "$server_cpu" valgrind --tool=callgrind --callgrind-out-file="$cg"
  # 60 s: valgrind starts slowly, Node under it very slowly.
  if ! wait_listening "$log" "$spid" 0 600; then
    stop "$spid"
    failures+=("$s, $c conn(s), $n: the server never listened (see $log)")
    echo "instructions: *** FAILED: $s: the server never listened:" >&2
    tail -n 15 "$log" | sed 's/^/instructions:     /' >&2
    return 1
  fi
  run_client "$lg" "$lg" timeout -k 5 900 taskset -c "$client_cpu" "$loadgen" --mode ping-pong -c "$c" -m 64 \
    -W "$warm_ops" -n "$n" --server-pid "$spid" "$target"
  rc=$?
  stop "$spid"
  if ((rc != 0)); then
    failures+=("$s, $c conn(s), $n: loadgen exit $rc (see $lg)")
    echo "instructions: *** FAILED: $s, $c conn(s), $n round trips: loadgen exit $rc:" >&2
    tail -n 15 "$lg" | sed 's/^/instructions:     /' >&2
    return 1
  fi
  ir=$(awk '/^summary:/ { s = $2 } /^totals:/ { t = $2 } END { print (s != "" ? s : t) }' "$cg" 2>/dev/null)
  if [[ -z $ir ]]; then
    failures+=("$s, $c conn(s), $n: callgrind wrote no totals (see $log)")
    echo "instructions: *** FAILED: $s: callgrind wrote no totals to $cg" >&2
    tail -n 15 "$log" | sed 's/^/instructions:     /' >&2
    return 1
  fi
}

echo "instructions: ${#servers[@]} server(s) × ${#conns[@]} connection count(s) × 2 counts ($n1, $n2)" \
  "under callgrind; files in $out_dir" >&2
declare -A per
for s in "${servers[@]}"; do
  for c in "${conns[@]}"; do
    a='' b=''
    count "$s" "$c" "$n1" && a=$ir
    [[ -n $a ]] && count "$s" "$c" "$n2" && b=$ir
    if [[ -n $a && -n $b ]]; then
      per[$s,$c]=$(awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN { printf "%.1f", (b - a) / (n2 - n1) }')
      printf 'instructions:   %-9s %2d conn(s): Ir %s (%d) %s (%d): %s per round trip\n' \
        "$s" "$c" "$a" "$n1" "$b" "$n2" "${per[$s,$c]}" >&2
    fi
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b; else printf "–" }'; }
{
  echo "## Instructions per echo round trip (callgrind), $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')
  [[ -n $(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null) ]] && commit+=" + uncommitted changes"
  echo "- $(valgrind --version), libuv $(pkg-config --modversion libuv 2>/dev/null || echo '?')," \
    "gcc $(gcc -dumpfullversion 2>/dev/null || echo '?'), Linux $(uname -r); cnet $commit"
  echo "- (Ir($n2) - Ir($n1)) / ($n2 - $n1): the server's instructions per 64 B round trip" \
    "(ping-pong, $warm_ops warm-up round trips first)"
  echo
  hdr="| server |" sep="|---|"
  for c in "${conns[@]}"; do hdr+=" Ir/round trip, $c conn(s) |"; sep+="---:|"; done
  for c in "${conns[@]}"; do hdr+=" ÷ uv-try, $c conn(s) |"; sep+="---:|"; done
  echo "$hdr"
  echo "$sep"
  for s in "${servers[@]}"; do
    row="| $s |"
    for c in "${conns[@]}"; do row+=" ${per[$s,$c]:-FAILED} |"; done
    for c in "${conns[@]}"; do row+=" $(ratio "${per[$s,$c]:-}" "${per[uv-try,$c]:-}") |"; done
    echo "$row"
  done
} >"$out_dir/table.md"
echo >&2
cat "$out_dir/table.md"
if ((${#failures[@]})); then
  echo >&2
  echo "instructions: *** ${#failures[@]} measurement(s) FAILED:" >&2
  printf 'instructions: ***   %s\n' "${failures[@]}" >&2
  exit 1
fi
exit 0
