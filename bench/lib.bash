# shellcheck shell=bash disable=SC2034,SC2154 # the scripts set what it reads, read what it sets
# Shared by bench/run.sh, bench/instructions.sh and bench/idle-memory.sh
# (sourced, not run; no .sh suffix, so CMake's test glob never sees it): the
# echo servers by name, starting one and waiting for its listening line,
# running a client, stopping them, the exit trap that stops what is left;
# and die, usage and option parsing.
#
#   prog=bench                                  # the prefix of messages
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$here/lib.bash"
#
# Sets src, nodejs (CNET_NODE, else node in PATH), all_servers, pids, and
# stop_tenths / cleanup_tenths: how long stop and the exit trap wait after
# SIGTERM before SIGKILL, in tenths of a second (20 each; a script may change
# them). The server functions use build (the Release build, made absolute by
# find_build); the exit trap removes tmp if the script has set it.

src=$(dirname "$here")
nodejs=${CNET_NODE:-$(command -v node || true)}
all_servers=(epoll uv uv-try node-pipe node-data cnet)
stop_tenths=20
cleanup_tenths=20

die() { echo "$prog: $*" >&2; exit 2; }
# usage: the script's header comment, from line 2 to its `set -uo`.
usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[-1]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
need_arg() { (($# >= 2)) && [[ -n $2 ]] || die "option $1 needs a value"; }

# parse_opts 'OPT=VAR ...' ARGS...: every OPT takes a value, stored in VAR;
# -h or --help prints the usage and exits; anything else is an error.
parse_opts() {
  local spec=$1 pair var
  shift
  while (($#)); do
    case $1 in -h | --help) usage; exit 0 ;; esac
    var=
    for pair in $spec; do [[ $1 == "${pair%%=*}" ]] && var=${pair#*=} && break; done
    [[ -n $var ]] || die "unknown argument '$1' (-h for help)"
    need_arg "$@"
    printf -v "$var" '%s' "$2"
    shift 2
  done
}

# find_build MAKE_TARGET: checks build and loadgen, makes build absolute,
# sets loadgen; MAKE_TARGET is the make target that builds loadgen.
find_build() {
  [[ -d $build ]] || die "no build directory $build (run 'make bench-build' first)"
  build=$(cd "$build" && pwd)
  loadgen=$build/bench/loadgen
  [[ -x $loadgen ]] || die "$loadgen is not built (run 'make $1', which builds it)"
}

# server_cmd NAME WHERE: the server's command line in the array cmd.
server_cmd() {
  case $1 in
  epoll) cmd=("$build/bench/epoll-echo" "$2") ;;
  uv) cmd=("$build/bench/uv-echo" "$2") ;;
  uv-try) cmd=("$build/bench/uv-echo" --try-write "$2") ;;
  node-pipe) cmd=("$nodejs" "$here/node-echo.js" "$2") ;;
  node-data) cmd=("$nodejs" "$here/node-echo.js" "$2" --data) ;;
  cnet) cmd=("$build/examples/echo-server" "$2" --bench) ;;
  esac
}

available() {
  case $1 in
  epoll) [[ -x $build/bench/epoll-echo ]] ;;
  uv | uv-try) [[ -x $build/bench/uv-echo ]] ;;
  node-pipe | node-data) [[ -n $nodejs && -x $nodejs ]] ;;
  cnet) [[ -x $build/examples/echo-server ]] ;;
  *) return 1 ;;
  esac
}

# pick_servers LIST: the comma-separated LIST, each checked, in the array
# servers; an empty LIST: every server that is built, the others skipped.
pick_servers() {
  local s
  servers=()
  if [[ -z $1 ]]; then
    for s in "${all_servers[@]}"; do
      if available "$s"; then servers+=("$s"); else echo "$prog: skipping $s (not built / not found)" >&2; fi
    done
    return 0
  fi
  IFS=, read -ra servers <<<"$1"
  for s in "${servers[@]}"; do
    [[ " ${all_servers[*]} " == *" $s "* ]] || die "unknown server '$s' (one of: ${all_servers[*]})"
    available "$s" || die "server '$s' is not built / not found"
  done
}

pids=()
owner=$BASHPID
# Only the script's own shell cleans up: a background child that gets SIGTERM
# before it has exec'd its program still has these traps for a moment.
cleanup() {
  local p
  [[ $BASHPID == "$owner" ]] || return 0
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq "$cleanup_tenths"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  [[ -z ${tmp:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME WHERE LOG [WRAPPER...]: the server NAME on WHERE (0: a
# free TCP port; else a Unix path) under WRAPPER (taskset, prlimit,
# valgrind...), output to LOG; sets spid.
start_server() {
  local name=$1 where=$2 log=$3
  shift 3
  server_cmd "$name" "$where"
  : >"$log"
  # SIGPIPE ignored, as cnet, Node and epoll-echo set it themselves: uv-echo
  # does not, and dies of it when a client closes with an echo in flight.
  (trap "" PIPE; exec "$@" "${cmd[@]}") </dev/null >"$log" 2>&1 &
  spid=$!
  pids+=("$spid")
}

# wait_listening LOG PID WHERE TENTHS: up to TENTHS tenths of a second for
# the server's listening line (and, for a path, the socket file); sets target
# (the port, or the path), or why on failure.
wait_listening() {
  local log=$1 p=$2 where=$3 tenths=$4 i
  for ((i = 0; i < tenths; i++)); do
    if [[ $where =~ ^[0-9]+$ ]]; then
      target=$(sed -n 's/^listening on \([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
      [[ -n $target ]] && return 0
    elif grep -Eq '^(server bound|listening on)' "$log" && [[ -S $where ]]; then
      target=$where
      return 0
    fi
    kill -0 "$p" 2>/dev/null || { why="server exited before listening"; return 1; }
    sleep 0.1
  done
  why="server not listening after $((tenths / 10)) s"
  return 1
}

# run_client OUT ERR CMD...: CMD with stdout to OUT, stderr to ERR (the same
# file may be both); returns its exit status. In the background and waited
# for, so that INT or TERM reach the traps at once and the exit trap knows it.
run_client() {
  local out=$1 err=$2 p rc
  shift 2
  if [[ $out == "$err" ]]; then
    "$@" </dev/null >"$out" 2>&1 &
  else
    "$@" </dev/null >"$out" 2>"$err" &
  fi
  p=$!
  pids+=("$p")
  wait "$p"
  rc=$?
  forget "$p"
  return "$rc"
}

# stop PID: SIGTERM, SIGKILL after stop_tenths, reaped.
stop() {
  local p=$1
  if kill -TERM "$p" 2>/dev/null; then
    for _ in $(seq "$stop_tenths"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null
  forget "$p"
}

# forget PID: drop PID from the ones the exit trap stops.
forget() {
  local keep=() q
  for q in "${pids[@]}"; do [[ $q == "$1" ]] || keep+=("$q"); done
  pids=("${keep[@]}")
}
