#!/usr/bin/env bash
# soak/run.sh BUILD_DIR -- run the soak: soak-server under soak-client's
# 10 000 connections for SOAK_SECONDS, then check and print the figures.
# Builds nothing: BUILD_DIR must hold soak-server and soak-client (in
# BUILD_DIR/soak/, where CMake puts them, or in BUILD_DIR itself).
#
# Environment (all optional):
#   SOAK_SECONDS     length of the client's run (default 60)
#   SOAK_CONNS       concurrent connections (default 10000)
#   SOAK_TIMEOUT_MS  the server's idle timeout; the client's gaps and
#                    pauses scale with it (default 5000)
#   SOAK_WARMUP      seconds after the client starts that end the warm-up
#                    (default a quarter of SOAK_SECONDS, at least 10)
#   SOAK_SAMPLE      seconds between RSS samples (default 2)
#   SOAK_SEED        seed for both programs (default: each picks one; both
#                    are printed, so any run can be replayed)
#   SOAK_CLIENT_ARGS extra soak-client options
#   SOAK_SERVER_ARGS extra soak-server options (e.g. --modes data,data_pauses)
#   SOAK_LOGS        where the logs go (default BUILD_DIR/soak-logs)
#   SOAK_ASAN=1      afterwards, run again with the server of an ASan+UBSan
#                    build (SOAK_ASAN_BUILD, default BUILD_DIR-asan; e.g.
#                    cmake -DCNET_SANITIZE=ON -DCNET_BUILD_SOAK=ON), for
#                    SOAK_ASAN_SECONDS (default SOAK_SECONDS): any ASan,
#                    UBSan or LeakSanitizer report fails it. Its RSS is not
#                    judged (ASan's quarantine and shadow memory).
#                    SOAK_ASAN_SERVER_ARGS replaces SOAK_SERVER_ARGS there.
#
# Checks (any failure: exit 1):
#   - soak-client exits 0: every echoed byte verified, no unexpected close,
#     reset, stall or early/missing timeout
#   - soak-server exits 0 after SIGTERM: cnet's and libuv's live heap back to
#     0 bytes at exit (its counting allocator), uv_loop_close() == 0, no
#     unexpected socket error
#   - RSS flat after warm-up: the last sample while the client still runs
#     is at most max(2 MiB, 10 %) above the sample at the end of warm-up.
#     Why that bound: glibc keeps freed memory, so RSS follows the heap's
#     high-water mark, which still creeps up by a few hundred KiB as rarer
#     peaks of queued data (pauses, 256 KiB echoes) come along -- noise. A
#     leak is not noise: the run opens ~100 000+ connections a minute, so
#     even 20 bytes kept per connection passes 2 MiB, and anything
#     proportional to traffic grows without bound.
#   - with every connection closed (at SIGTERM, before teardown) the live
#     heap is under 1 MiB: only the loop's 64 KiB read slab and libuv's
#     watcher array (its size follows the highest fd number) may remain.
#
# Output: progress, then a markdown table of the figures on stdout.
set -u

die() { echo "soak: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || die "usage: soak/run.sh BUILD_DIR"
BUILD=$(cd "$1" 2>/dev/null && pwd) || die "no build directory $1"

find_bin() { # find_bin DIR NAME
  local f
  for f in "$1/soak/$2" "$1/$2"; do
    [[ -x $f ]] && { echo "$f"; return 0; }
  done
  return 1
}

SERVER=$(find_bin "$BUILD" soak-server) || die "no soak-server in $BUILD"
CLIENT=$(find_bin "$BUILD" soak-client) || die "no soak-client in $BUILD"
SECONDS_RUN=${SOAK_SECONDS:-60}
CONNS=${SOAK_CONNS:-10000}
TIMEOUT_MS=${SOAK_TIMEOUT_MS:-5000}
WARMUP=${SOAK_WARMUP:-$(( SECONDS_RUN / 4 > 10 ? SECONDS_RUN / 4 : 10 ))}
SAMPLE=${SOAK_SAMPLE:-2}
SEED=${SOAK_SEED:-}
LOGS=${SOAK_LOGS:-$BUILD/soak-logs}
(( WARMUP < SECONDS_RUN )) || die "SOAK_WARMUP ($WARMUP) must be below SOAK_SECONDS ($SECONDS_RUN)"
mkdir -p "$LOGS" || die "cannot create $LOGS"

now() { echo "${EPOCHREALTIME/./}"; } # microseconds
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
kv() { # kv FILE LINE-PREFIX KEY: the value of KEY= on the first such line
  awk -v p="$2" -v k="$3" '$1 == p { for (i = 2; i <= NF; i++) {
      split($i, a, "="); if (a[1] == k) { print a[2]; exit } } }' "$1"
}

FAILED=0
fail() { echo "soak: FAIL: $*" >&2; FAILED=1; }

# run_one LABEL SERVER-BINARY JUDGE-RSS(0|1) SECONDS SERVER-ARGS
run_one() {
  local label=$1 server=$2 judge_rss=$3 secs=$4 sargs=$5
  local slog=$LOGS/$label-server.log serr=$LOGS/$label-server.err
  local clog=$LOGS/$label-client.log cerr=$LOGS/$label-client.err
  local samples=$LOGS/$label-rss.tsv
  local spid port crc src t0 sampler seed_args=() load0 load1

  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  [[ -n $SEED ]] && seed_args=(--seed "$SEED")
  # shellcheck disable=SC2086 # sargs: options, split on purpose
  "$server" --timeout "$TIMEOUT_MS" --warmup "$WARMUP" --sample-ms 5000 \
    "${seed_args[@]}" $sargs >"$slog" 2>"$serr" &
  spid=$!
  for _ in $(seq 300); do
    grep -q '^listening on' "$slog" 2>/dev/null && break
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  port=$(awk '/^listening on/ { print $3; exit }' "$slog")
  if [[ -z $port ]]; then
    kill -KILL "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
    cat "$serr" >&2
    fail "$label: the server did not start"
    return
  fi
  echo "soak[$label]: server pid $spid on port $port${sargs:+ ($sargs)}; $CONNS connections for ${secs} s (logs in $LOGS)"

  # RSS samples: seconds since the client started, then VmRSS in KiB. The
  # first one, at 0, is the idle server.
  t0=$(now)
  (
    while kill -0 "$spid" 2>/dev/null; do
      r=$(rss_of "$spid")
      [[ -n $r ]] && echo "$(( ($(now) - t0) / 1000 ))	$r"
      sleep "$SAMPLE"
    done
  ) >"$samples" &
  sampler=$!

  "$CLIENT" --port "$port" -c "$CONNS" --seconds "$secs" \
    --server-timeout "$TIMEOUT_MS" "${seed_args[@]}" ${SOAK_CLIENT_ARGS:-} \
    >"$clog" 2>"$cerr"
  crc=$?
  kill -TERM "$spid" 2>/dev/null
  for _ in $(seq 1200); do # a minute at most for a clean shutdown
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$spid" 2>/dev/null; then
    fail "$label: the server did not exit within 60 s of SIGTERM"
    kill -KILL "$spid" 2>/dev/null
  fi
  wait "$spid"
  src=$?
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  load1=$(cut -d' ' -f1-3 /proc/loadavg)

  grep -v '^soak-client: t=' "$cerr" | head -20 >&2
  [[ $crc -eq 0 ]] || fail "$label: soak-client exited $crc (see $cerr)"
  if [[ $src -ne 0 ]]; then
    head -40 "$serr" >&2
    fail "$label: soak-server exited $src (see $serr)"
  fi
  if [[ -s $serr ]] && grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$serr"; then
    fail "$label: sanitizer report in $serr"
  fi

  # ---- figures ------------------------------------------------------------
  local rss_idle rss_warm rss_end rss_peak t_warm t_end growth limit flat
  rss_idle=$(awk 'NR == 1 { print $2 }' "$samples")
  read -r t_warm rss_warm < <(awk -v w=$(( WARMUP * 1000 )) \
    '$1 >= w { print $1 / 1000, $2; exit }' "$samples")
  read -r t_end rss_end < <(awk -v e=$(( secs * 1000 )) \
    '$1 <= e { t = $1; r = $2 } END { print t / 1000, r }' "$samples")
  rss_peak=$(awk -v e=$(( secs * 1000 )) '$1 <= e && $2 > m { m = $2 } END { print m }' "$samples")
  growth=$(( ${rss_end:-0} - ${rss_warm:-0} ))
  limit=$(( ${rss_warm:-0} / 10 > 2048 ? ${rss_warm:-0} / 10 : 2048 ))
  flat="yes"
  if [[ -z ${rss_warm:-} || -z ${rss_end:-} ]]; then
    flat="no samples"
    [[ $judge_rss -eq 1 ]] && fail "$label: not enough RSS samples in $samples"
  elif (( growth > limit )); then
    flat="NO"
    [[ $judge_rss -eq 1 ]] && fail "$label: RSS grew $growth KiB after warm-up (limit $limit KiB)"
  fi
  [[ $judge_rss -eq 1 ]] || flat="$flat (not judged under ASan)"

  # The heap with every connection closed: only meaningful when the client
  # finished its drain (conns=0 at SIGTERM); a failed client leaves some.
  local heap_conns heap_closed conns_left
  heap_conns=$(kv "$slog" warmup heap_kb)
  heap_closed=$(kv "$slog" stop heap_kb)
  conns_left=$(kv "$slog" stop conns)
  if [[ ${conns_left:-1} == 0 && -n $heap_closed ]] && (( heap_closed >= 1024 )); then
    fail "$label: $heap_closed KiB of live heap with every connection closed"
  fi

  local r=$clog
  local mb
  mb=$(awk -v b="$(kv "$r" result bytes_verified)" 'BEGIN { printf "%.1f", b / 1e6 }')
  cat <<EOF

### soak figures ($label)

| figure | value |
|---|---|
| run | $(kv "$r" result seconds) s, $CONNS connections kept open (peak $(kv "$r" result peak_open)), server timeout $TIMEOUT_MS ms${sargs:+, server $sargs} |
| seeds | client $(kv "$r" result seed), server $(kv "$slog" config seed) |
| machine | $(nproc) cores, load average $load0 before, $load1 after |
| connections | $(kv "$r" result opened) opened by the client, $(kv "$slog" server accepted) accepted by the server |
| scripts done | $(kv "$r" result close) close, $(kv "$r" result half_close) half-close, $(kv "$r" result reset) reset, $(kv "$r" result timeout) timeout; $(kv "$r" result drained) drained at the end |
| echo steps | $(kv "$r" result steps) ($(kv "$r" result pauses) with a client pause); p99 under $(kv "$r" result step_p99_ms) ms, slowest $(kv "$r" result step_max_ms) ms |
| bytes echoed and verified | $(kv "$r" result bytes_verified) ($mb MB) |
| server modes | $(kv "$slog" server pipe) pipe, $(kv "$slog" server data) data, $(kv "$slog" server data_pauses) data+pauses; $(kv "$slog" server drain_waits) drain waits, $(kv "$slog" server timer_pauses) timer pauses |
| server events | $(kv "$slog" server timeouts) timeouts, $(kv "$slog" server half_closes) 'end's, $(kv "$slog" errors econnreset) ECONNRESET, $(kv "$slog" errors epipe) EPIPE, $(kv "$slog" errors other) other errors |
| server RSS idle (t=0) | ${rss_idle:-?} KiB |
| server RSS after warm-up (t=${t_warm:-?} s) | ${rss_warm:-?} KiB |
| server RSS at the end (t=${t_end:-?} s) | ${rss_end:-?} KiB |
| server RSS peak during the run | ${rss_peak:-?} KiB |
| RSS growth after warm-up | $growth KiB (limit $limit KiB): flat $flat |
| cnet+libuv live heap | $heap_conns KiB at warm-up, ${heap_closed:-?} KiB at SIGTERM (${conns_left:-?} connections open), $(kv "$slog" allocations live_bytes) bytes at exit |
| allocations | $(kv "$slog" allocations calls) calls, peak heap $(kv "$slog" allocations peak_heap_kb) KiB |
| CPU | server $(kv "$slog" cpu user_s) s user + $(kv "$slog" cpu sys_s) s sys; client $(awk '/cpu .* user/ { print $3 " s user + " $6 " s sys" }' "$r") |
| client errors | $(kv "$r" result errors) |
| exit status | client $crc, server $src |
EOF
}

run_one soak "$SERVER" 1 "$SECONDS_RUN" "${SOAK_SERVER_ARGS:-}"

if [[ ${SOAK_ASAN:-0} == 1 ]]; then
  ASAN_BUILD=${SOAK_ASAN_BUILD:-$BUILD-asan}
  ASAN_SERVER=$(find_bin "$ASAN_BUILD" soak-server) ||
    die "SOAK_ASAN=1: no soak-server in $ASAN_BUILD (set SOAK_ASAN_BUILD)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    run_one asan "$ASAN_SERVER" 0 "${SOAK_ASAN_SECONDS:-$SECONDS_RUN}" \
      "${SOAK_ASAN_SERVER_ARGS-${SOAK_SERVER_ARGS:-}}"
fi

if [[ $FAILED -ne 0 ]]; then
  echo "soak: FAILED" >&2
  exit 1
fi
echo
echo "soak: passed"
