#!/usr/bin/env bash
# The echo benchmark suite: bench/loadgen against every echo server, one
# scenario at a time, runs interleaved, medians, one markdown table.
#
#   bash bench/run.sh [-r RUNS] [-t SECONDS] [-w SECONDS] [-s SERVERS]
#                     [-S SCENARIOS] [-k CONNS] [-b BUILD] [-o DIR]
#
#   -r RUNS       runs per scenario and server (default 5; 1 is a quick check)
#   -t SECONDS    measured seconds per run (default 3)
#   -w SECONDS    warm-up seconds per run, not measured (default 1)
#   -s SERVERS    comma-separated, in this order (default all that are built):
#                   epoll      bench/epoll-echo (plain epoll, no library)
#                   uv         bench/uv-echo (libuv's guide + backpressure)
#                   uv-try     bench/uv-echo --try-write (one read buffer per
#                              loop, uv_try_write)
#                   node-pipe  node bench/node-echo.js (c.pipe(c))
#                   node-data  node bench/node-echo.js --data
#                              (c.on('data', (d) => c.write(d)))
#                   cnet       examples/echo-server --bench (pipe(c, c))
#   -S SCENARIOS  comma-separated (default all, in this order):
#                   ping-pong  TCP, 50 connections, 64 B, one message in flight
#                   pipeline   TCP, 50 connections, 64 B, 16 in flight each
#                   bulk       TCP, 4 connections streaming (op = 1 MB echoed)
#                   churn      TCP, 50 connections at a time, each connects,
#                              echoes 64 B and closes (op = one connection)
#                   unix       Unix socket path, 50 connections, 64 B ping-pong
#                   idle       K idle connections (-k), bytes per connection
#   -k CONNS      connections of the idle scenario (default 10000)
#   -b BUILD      the Release build (default build-bench next to bench/)
#   -o DIR        where the raw lines and the table go
#                 (default BUILD/bench-results)
#
# Environment (options win): BENCH_BUILD, BENCH_RUNS, BENCH_SECONDS,
# BENCH_WARMUP, BENCH_SERVERS, BENCH_SCENARIOS, BENCH_IDLE_CONNS, BENCH_OUT,
# BENCH_SERVER_CPU (default 0), BENCH_CLIENT_CPU (default 1), CNET_NODE
# (default: node in PATH).
#
# For each scenario, for run 1..RUNS, for each server in order (A B C A B C
# ...), the server starts afresh pinned to one CPU (taskset), on port 0 or a
# fresh Unix path, with a descriptor limit to match (prlimit); loadgen runs
# pinned to the other CPU with --server-pid, which reads the server's
# utime+stime and RSS from /proc at the start and end of the measured window;
# then the server gets SIGTERM (SIGKILL 2 s later). The figure is the
# server's CPU time per op (us_per_op; bytes per connection for idle):
# throughput on a loopback is mostly the client's, CPU per op is the
# server's own cost. The median of the runs is reported with its spread,
# the median throughput and latency, and its ratio to the epoll server, to
# Node (node-pipe) and to the better of epoll and uv-try.
#
# The table goes to stdout and to DIR/table-<time>.md, every loadgen line to
# DIR/raw-<time>.txt. A failed run (loadgen exit != 0, a timeout, a server
# that died or never listened) is reported at once and in the table, the
# other runs go on, and the script exits 1 at the end. Needs bash,
# coreutils, a POSIX awk and util-linux (taskset, prlimit).
set -uo pipefail

prog=bench
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# die, usage, parse_opts, the servers, starting and stopping them, the exit trap.
source "$here/lib.bash"

build=${BENCH_BUILD:-$src/build-bench}
runs=${BENCH_RUNS:-5}
secs=${BENCH_SECONDS:-3}
warm=${BENCH_WARMUP:-1}
servers_opt=${BENCH_SERVERS:-}
scenarios_opt=${BENCH_SCENARIOS:-ping-pong,pipeline,bulk,churn,unix,idle}
idle_k=${BENCH_IDLE_CONNS:-10000}
out_dir=${BENCH_OUT:-}
server_cpu=${BENCH_SERVER_CPU:-0}
client_cpu=${BENCH_CLIENT_CPU:-1}

all_scenarios=(ping-pong pipeline bulk churn unix idle)

parse_opts '-r=runs -t=secs -w=warm -s=servers_opt -S=scenarios_opt -k=idle_k -b=build -o=out_dir' "$@"

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-r wants a whole number >= 1, not '$runs'"
[[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] && [[ $secs != 0 ]] || die "-t wants seconds > 0, not '$secs'"
[[ $warm =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "-w wants seconds, not '$warm'"
[[ $idle_k =~ ^[1-9][0-9]*$ ]] || die "-k wants a whole number >= 1, not '$idle_k'"
find_build bench
out_dir=${out_dir:-$build/bench-results}

if (($(nproc) < 2)) && [[ $server_cpu != "$client_cpu" ]]; then
  echo "bench: one CPU only: server and loadgen share CPU 0" >&2
  server_cpu=0 client_cpu=0
fi

pick_servers "$servers_opt"
IFS=, read -ra scenarios <<<"$scenarios_opt"
for sc in "${scenarios[@]}"; do
  [[ " ${all_scenarios[*]} " == *" $sc "* ]] || die "unknown scenario '$sc' (one of: ${all_scenarios[*]})"
done
((${#servers[@]} > 0)) || die "no server to measure"
((${#scenarios[@]} > 0)) || die "no scenario to run"

# scenario NAME: sets transport, label and largs (loadgen's arguments but
# the target and --server-pid).
scenario() {
  transport=tcp
  case $1 in
  ping-pong)
    label="ping-pong 64 B × 50 conns"
    largs=(--mode ping-pong -c 50 -m 64) ;;
  pipeline)
    label="pipeline 16 × 64 B × 50 conns"
    largs=(--mode pipeline -c 50 -m 64 -d 16) ;;
  bulk)
    label="bulk 4 conns (op = 1 MB)"
    largs=(--mode bulk -c 4) ;;
  churn)
    label="churn 50 conns, 64 B (op = 1 connection)"
    largs=(--mode churn -c 50 -m 64 --sources 16) ;;
  unix)
    transport=unix
    label="Unix ping-pong 64 B × 50 conns"
    largs=(--mode ping-pong -c 50 -m 64) ;;
  idle)
    label="idle $idle_k conns (B/conn)"
    largs=(--mode idle -c "$idle_k" --idle-exit) ;;
  esac
  if [[ $1 != idle ]]; then largs+=(-t "$secs" -w "$warm"); fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnet-bench.XXXXXX") || die "mktemp failed"

failures=()
# fail SCEN SERVER RUN WHY LOGS...: report a failed run loudly, keep its logs.
fail() {
  local sc=$1 s=$2 r=$3 f
  shift 3
  local why=$1
  shift
  failures+=("$sc/$s run $r: $why")
  echo "scenario=$sc server=$s run=$r status=FAILED why=${why// /_}" >>"$raw"
  {
    echo "bench: *** FAILED: $sc, $s, run $r: $why"
    for f in "$@"; do
      [[ -s $f ]] || continue
      echo "bench:     --- ${f##*/}:"
      tail -n 15 "$f" | sed 's/^/bench:     /'
    done
  } >&2
}

# measure SCEN SERVER RUN: one run; appends its line to $raw and sets result.
# Runs in this shell (not $(...)), so that the cleanup trap knows the server.
measure() {
  local sc=$1 s=$2 r=$3 where nofile spid rc line lim
  local slog=$tmp/$sc.$s.$r.server.log out=$tmp/$sc.$s.$r.loadgen.out
  local err=$tmp/$sc.$s.$r.loadgen.err
  scenario "$sc"
  if [[ $transport == unix ]]; then where=$tmp/$s.$r.sock; else where=0; fi
  if [[ $sc == idle ]]; then nofile=$((idle_k + 256)); lim=600; else nofile=4096; lim=$(awk -v a="$secs" -v b="$warm" 'BEGIN { printf "%d", a + b + 90 }'); fi
  start_server "$s" "$where" "$slog" taskset -c "$server_cpu" prlimit --nofile="$nofile:$nofile"
  if ! wait_listening "$slog" "$spid" "$where" 150; then
    stop "$spid"
    fail "$sc" "$s" "$r" "$why" "$slog"
    return 1
  fi
  run_client "$out" "$err" timeout -k 5 "$lim" taskset -c "$client_cpu" prlimit --nofile="$nofile:$nofile" \
    "$loadgen" "${largs[@]}" --server-pid "$spid" "$target"
  rc=$?
  line=$(grep '^mode=' "$out" | tail -n 1)
  if ! kill -0 "$spid" 2>/dev/null; then
    wait "$spid" 2>/dev/null
    local st=$?
    forget "$spid"
    ((st > 128)) && st="$st, signal $(kill -l $((st - 128)) 2>/dev/null || echo $((st - 128)))"
    fail "$sc" "$s" "$r" "the server died during the run (exit $st; loadgen exit $rc)" "$slog" "$err" "$out"
    return 1
  fi
  stop "$spid"
  if ((rc == 124)); then
    fail "$sc" "$s" "$r" "loadgen timed out after $lim s" "$err" "$out" "$slog"
    return 1
  elif ((rc != 0)) || [[ -z $line ]]; then
    fail "$sc" "$s" "$r" "loadgen exit $rc$([[ -n $line ]] || echo ', no result line')" "$err" "$out" "$slog"
    return 1
  fi
  echo "scenario=$sc server=$s run=$r status=0 $line" >>"$raw"
  result=$line
}

# field NAME LINE: the value of NAME=... in a result line.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

mkdir -p "$out_dir" || die "cannot create $out_dir"
stamp=$(date +%Y%m%d-%H%M%S)
raw=$out_dir/raw-$stamp.txt
table=$out_dir/table-$stamp.md

# The machine, for the header.
load0=$(cut -d" " -f1 /proc/loadavg 2>/dev/null)
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
libuv_v=$(pkg-config --modversion libuv 2>/dev/null || echo '?')
node_v=$([[ -n $nodejs ]] && "$nodejs" --version 2>/dev/null || echo 'none')
gcc_v=$(gcc -dumpfullversion 2>/dev/null || echo '?')
glibc_v=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //')
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')
if [[ $commit != '?' ]] && [[ -n $(git -C "$src" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit + uncommitted changes"
fi
{
  echo "# cnet bench/run.sh $stamp"
  echo "# date=$(date -u '+%Y-%m-%dT%H:%M:%SZ') nproc=$(nproc) cpu=${cpu_model// /_} kernel=$(uname -r)"
  echo "# libuv=$libuv_v node=$node_v gcc=$gcc_v glibc=${glibc_v:-?} commit=${commit// /_}"
  echo "# runs=$runs seconds=$secs warmup=$warm idle_conns=$idle_k server_cpu=$server_cpu client_cpu=$client_cpu loadavg=$load0"
  echo "# servers=${servers[*]} scenarios=${scenarios[*]}"
} >"$raw"

total=$((${#scenarios[@]} * runs * ${#servers[@]}))
echo "bench: ${#scenarios[@]} scenario(s) × $runs run(s) × ${#servers[@]} server(s) = $total runs" \
  "of ${secs} s (+${warm} s warm-up); raw lines in $raw" >&2
n=0
for sc in "${scenarios[@]}"; do
  scenario "$sc"
  echo "bench: == $label" >&2
  for ((r = 1; r <= runs; r++)); do
    for s in "${servers[@]}"; do
      n=$((n + 1))
      if measure "$sc" "$s" "$r"; then
        line=$result
        if [[ $sc == idle ]]; then
          printf 'bench:   [%d/%d] run %d %-9s %s B/conn  rss %s -> %s kB\n' "$n" "$total" "$r" "$s" \
            "$(field bytes_per_conn "$line")" "$(field rss_before_kb "$line")" "$(field rss_after_kb "$line")" >&2
        else
          printf 'bench:   [%d/%d] run %d %-9s %8s us/op  %10s ops/s  %8s MB/s  p50 %s us  p99 %s us\n' \
            "$n" "$total" "$r" "$s" "$(field us_per_op "$line")" "$(field ops_per_sec "$line")" \
            "$(field mb_per_sec "$line")" "$(field p50_us "$line")" "$(field p99_us "$line")" >&2
        fi
      fi
    done
  done
done

# The table.
labels=""
for sc in "${scenarios[@]}"; do
  scenario "$sc"
  labels+="$sc=$label|"
done
{
  echo "## Echo servers, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs (${cpu_model:-?}), Linux $(uname -r), glibc ${glibc_v:-?};" \
    "load average $load0 at the start, $(cut -d" " -f1 /proc/loadavg 2>/dev/null) at the end"
  echo "- libuv $libuv_v, Node $node_v, gcc $gcc_v; cnet $commit"
  echo "- $runs run(s) × $secs s (after $warm s of warm-up) per scenario and server, interleaved;" \
    "server pinned to CPU $server_cpu, loadgen to CPU $client_cpu; medians"
  echo "- CPU µs/op: the server's utime+stime per op over the measured window (bulk: per MB echoed;" \
    "churn: per connection; idle: bytes of RSS per connection instead); spread: min–max over the runs;" \
    "÷: the median over that server's median (best = the lower of epoll and uv-try)"
  echo
  awk -v scenarios="${scenarios[*]}" -v servers="${servers[*]}" -v labels="$labels" -v runs="$runs" '
    function sortv(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
      }
    }
    # stat(K, M, WHAT): median, min or max of metric M of scenario/server K.
    function stat(k, m, what,   n, i, a) {
      n = cnt[k, m]
      if (n == 0) return ""
      for (i = 1; i <= n; i++) a[i] = val[k, m, i] + 0
      sortv(a, n)
      if (what == "min") return a[1]
      if (what == "max") return a[n]
      if (n % 2) return a[(n + 1) / 2]
      return (a[n / 2] + a[n / 2 + 1]) / 2
    }
    # fmt(V, D): D decimals; D "a": three significant digits or more.
    function fmt(v, d) {
      if (v == "") return "–"
      if (d != "a") return sprintf("%." d "f", v)
      v += 0
      return sprintf(v < 1 ? "%.3f" : v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v)
    }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b) }
    BEGIN {
      nl = split(labels, l, "|")
      for (i = 1; i <= nl; i++) { p = index(l[i], "="); if (p) label[substr(l[i], 1, p - 1)] = substr(l[i], p + 1) }
    }
    /^#/ { next }
    {
      sc = ""; sv = ""; st = ""
      for (i = 1; i <= NF; i++) {
        p = index($i, "="); if (!p) continue
        k = substr($i, 1, p - 1); v = substr($i, p + 1)
        if (k == "scenario") sc = v
        else if (k == "server") sv = v
        else if (k == "status") st = v
        else f[k] = v
      }
      tried[sc, sv]++
      if (st != "0") { delete f; next }
      ok[sc, sv]++
      for (k in f) { if (f[k] == "-" || f[k] == "") continue; n = ++cnt[sc SUBSEP sv, k]; val[sc SUBSEP sv, k, n] = f[k] }
      delete f
    }
    END {
      ns = split(scenarios, S, " "); nv = split(servers, V, " ")
      print "| scenario | server | CPU µs/op | spread | throughput | p50 µs | p99 µs | ÷ epoll | ÷ node | ÷ best | runs ok |"
      print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (i = 1; i <= ns; i++) {
        sc = S[i]; idle = (sc == "idle"); fig = idle ? "bytes_per_conn" : "us_per_op"; d = idle ? 0 : "a"
        e = stat(sc SUBSEP "epoll", fig, "med"); u = stat(sc SUBSEP "uv-try", fig, "med")
        nd = stat(sc SUBSEP "node-pipe", fig, "med")
        best = e; if (best == "" || (u != "" && u + 0 < best + 0)) best = u
        for (j = 1; j <= nv; j++) {
          k = sc SUBSEP V[j]
          m = stat(k, fig, "med")
          spread = m == "" ? "–" : fmt(stat(k, fig, "min"), d) "–" fmt(stat(k, fig, "max"), d)
          if (idle) tput = m == "" ? "–" : sprintf("%d → %d kB RSS", stat(k, "rss_before_kb", "med"), stat(k, "rss_after_kb", "med"))
          else if (sc == "bulk") tput = m == "" ? "–" : sprintf("%.0f MB/s", stat(k, "mb_per_sec", "med"))
          else tput = m == "" ? "–" : sprintf("%.0f ops/s", stat(k, "ops_per_sec", "med"))
          okr = (ok[k] + 0) "/" (tried[k] + 0)
          if (ok[k] + 0 < tried[k] + 0) okr = "**" okr " FAILED**"
          printf "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s | %s |\n", \
            (j == 1 ? label[sc] : ""), V[j], fmt(m, d), (idle && m != "" ? " B/conn" : ""), spread, tput, \
            (idle ? "–" : fmt(stat(k, "p50_us", "med"), 0)), (idle ? "–" : fmt(stat(k, "p99_us", "med"), 0)), \
            ratio(m, e), ratio(m, nd), ratio(m, best), okr
        }
      }
    }' "$raw"
  echo
  echo "Servers: epoll = bench/epoll-echo (plain epoll); uv = bench/uv-echo (libuv's guide + backpressure);" \
    "uv-try = uv-echo --try-write (one read buffer per loop, uv_try_write); node-pipe = bench/node-echo.js" \
    "(c.pipe(c)); node-data = node-echo.js --data (c.on('data', d => c.write(d))); cnet = examples/echo-server --bench."
} >"$table"

echo >&2
cat "$table"
echo >&2
echo "bench: table saved as $table" >&2
echo "bench: raw result lines in $raw" >&2
if ((${#failures[@]})); then
  echo "bench: *** ${#failures[@]} run(s) FAILED:" >&2
  printf 'bench: ***   %s\n' "${failures[@]}" >&2
  exit 1
fi
exit 0
