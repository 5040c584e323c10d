# Shared helpers for test/test-examples.sh and test/test-interop.sh (not a
# test itself: no .sh suffix, so CMake does not register it). Source it after
# setting test_name (used in the temp dir name):
#
#   test_name=examples
#   source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
#
# Sets here, src, nodejs, examples, peers, tmp, pids, passed, failed; installs
# the cleanup trap (background servers killed, $tmp removed on exit).

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${CNET_SOURCE_DIR:-$(dirname "$here")}
nodejs=${CNET_NODE:-$(command -v node || true)}
examples=${CNET_EXAMPLES_DIR:-${CNET_BUILD_DIR:-$src/build}/examples}
peers="$src/test/node"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnet-${test_name:?}.XXXXXX")
pids=()

# Only the test's own shell cleans up: a background child that gets SIGTERM
# before it has exec'd its program still has these traps for a moment.
cleanup_owner=$BASHPID
cleanup() {
  local pid
  [[ $BASHPID == "$cleanup_owner" ]] || return 0
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0

# say LINES...: diagnostics, indented, on stdout next to the check lines.
say() { printf '#   %s\n' "$@"; }
# show FILE: a captured output file, indented, \r made visible.
show() {
  local f=$1
  if [[ ! -s $f ]]; then say "($(basename "$f") is empty)"; return; fi
  say "--- $(basename "$f"):"
  sed -e 's/\r/\\r/g' -e 's/^/#     /' "$f" | head -n 40
}
# bytes FILE: a file's bytes on one line, od -c style.
bytes() { od -An -c "$1" | tr -s ' \n' ' '; }
# same_bytes GOT EXPECTED WHAT: cmp, explaining a difference.
same_bytes() {
  cmp -s "$1" "$2" && return 0
  say "$3 got:     $(bytes "$1")" "$3 expected:$(bytes "$2")"
  return 1
}

# check DESCRIPTION FUNCTION [ARGS]: run one check, print its verdict.
check() {
  local desc=$1; shift
  if "$@"; then
    echo "ok - $desc"
    passed=$((passed + 1))
  else
    echo "not ok - $desc"
    failed=$((failed + 1))
  fi
}

# start LOG CMD...: run a server in the background, output to LOG; sets $pid.
start() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
}

# stop PID: SIGTERM, then SIGKILL after 2 s; reaps it.
stop() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
  return 0
}

# wait_for LOG REGEX PID [SECONDS]: poll LOG for a line matching REGEX (ERE)
# for up to SECONDS (10); fails early if PID exits.
wait_for() {
  local log=$1 re=$2 p=$3 secs=${4:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    grep -Eq -- "$re" "$log" 2>/dev/null && return 0
    if ! kill -0 "$p" 2>/dev/null; then
      grep -Eq -- "$re" "$log" 2>/dev/null && return 0
      say "server exited before printing /$re/"
      show "$log"
      return 1
    fi
    sleep 0.1
  done
  say "no line matching /$re/ within ${secs} s"
  show "$log"
  return 1
}

# tcp_port LOG: the port from a `listening on <port>` line.
tcp_port() { sed -n 's/.*listening on \([0-9][0-9]*\).*/\1/p' "$1" | head -n 1; }
