#!/usr/bin/env bash
# Examples test: the programs in examples/ behave like the Node docs' ones.
#
#   a1. echo-server (TCP port 0) answers nc: `world!\r\n` -> `hello\r\nworld!\r\n`.
#   a2. The same over a Unix socket path with `nc -U`.
#   b.  A Node client (test/node/client.js) gets the same bytes from cnet's
#       echo-server as from the Node docs' server (test/node/echo-server.js),
#       and both servers print the same lines (the port line aside).
#   c.  echo-client against echo-server prints the documented lines and exits
#       0; the server prints `client connected` and `client disconnected`.
#   d1. goodbye-server prints `opened server on { address: ..., family: ...,
#       port: N }` as Node's util.inspect() would.
#   d2. goodbye-server answers nc with exactly `goodbye\n` and closes.
#   e1. SIGINT to echo-server on a path: exits 0, the socket file is gone.
#   e2. The same with SIGTERM.
#
# Registered in CTest as `examples`. Environment (set by CTest): CNET_NODE,
# CNET_EXAMPLES_DIR, CNET_SOURCE_DIR. Prints `ok - ...` / `not ok - ...` per
# check and a final `N passed, M failed`; exits 1 if any check failed.
#
#   CNET_EXAMPLES_DIR=build/examples bash test/test-examples.sh
set -uo pipefail

test_name=examples
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# eventually LOG REGEX [SECONDS]: poll LOG for REGEX up to SECONDS (5).
eventually() {
  local i
  for ((i = 0; i < ${3:-5} * 10; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# echo_server LOG PORT|PATH CMD...: start an echo server (CMD... PORT|PATH)
# and wait until it is bound; sets $pid, and $port for TCP.
echo_server() {
  local log=$1 where=$2; shift 2
  start "$log" "$@" "$where"
  wait_for "$log" '^server bound' "$pid" || return 1
  if [[ $where =~ ^[0-9]+$ ]]; then
    # `listening on <port>` may come right after `server bound`.
    eventually "$log" '^listening on [0-9]+' 2 ||
      { say "no 'listening on <port>' line"; show "$log"; return 1; }
    port=$(tcp_port "$log")
  fi
}

# ------------------------------------------------------------------ checks --

# a. nc against echo-server: TCP or Unix.
nc_echo() {
  local kind=$1 log="$tmp/nc-$1.log" out="$tmp/nc-$1.out" where rc bad=0
  if [[ $kind == tcp ]]; then where=0; else where="$tmp/nc.sock"; fi
  echo_server "$log" "$where" "$examples/echo-server" || return 1
  printf 'hello\r\nworld!\r\n' >"$tmp/nc.expected"
  if [[ $kind == tcp ]]; then
    printf 'world!\r\n' | timeout 10 nc -N 127.0.0.1 "$port" >"$out" 2>&1
  else
    printf 'world!\r\n' | timeout 10 nc -N -U "$where" >"$out" 2>&1
  fi
  rc=$?
  if ((rc != 0)); then say "nc exited $rc"; bad=1; fi
  same_bytes "$out" "$tmp/nc.expected" "nc" || bad=1
  stop "$pid"
  if ((bad)); then show "$log"; return 1; fi
}

# b. Node client: cnet echo-server vs the Node docs' server, byte for byte.
node_same_as_node() {
  local name bad=0 rc
  for name in cnet node; do
    local log="$tmp/b-$name.log"
    if [[ $name == cnet ]]; then
      echo_server "$log" 0 "$examples/echo-server" || return 1
    else
      echo_server "$log" 0 "$nodejs" "$peers/echo-server.js" || return 1
    fi
    timeout 15 "$nodejs" "$peers/client.js" "$port" 'world!\r\n' \
      >"$tmp/b-$name.out" 2>"$tmp/b-$name.err"
    rc=$?
    if ((rc != 0)); then
      say "client.js against the $name server exited $rc"
      show "$tmp/b-$name.err"
      bad=1
    fi
    eventually "$log" '^client disconnected' 5
    stop "$pid"
    grep -v '^listening on ' "$log" >"$tmp/b-$name.lines"
  done
  printf 'hello\r\nworld!\r\n' >"$tmp/b.expected"
  same_bytes "$tmp/b-node.out" "$tmp/b.expected" "from Node's server, Node" ||
    { say "(the reference server itself misbehaves)"; bad=1; }
  same_bytes "$tmp/b-cnet.out" "$tmp/b-node.out" "from cnet's server, Node" ||
    bad=1
  if ! cmp -s "$tmp/b-cnet.lines" "$tmp/b-node.lines"; then
    say "the servers printed different lines (port line aside):"
    show "$tmp/b-cnet.lines"
    show "$tmp/b-node.lines"
    bad=1
  fi
  ((bad == 0))
}

# c. echo-client against echo-server.
client_server() {
  local log="$tmp/c-server.log" out="$tmp/c-client.out" rc bad=0
  echo_server "$log" 0 "$examples/echo-server" || return 1
  timeout 10 "$examples/echo-client" "$port" >"$out" 2>&1
  rc=$?
  if ((rc != 0)); then say "echo-client exited $rc"; bad=1; fi
  # Documented order: connected, the data (hello), then disconnected.
  local first hello last
  first=$(grep -n -F -x 'connected to server!' "$out" | head -n 1 | cut -d: -f1)
  hello=$(grep -n '^hello' "$out" | head -n 1 | cut -d: -f1)
  last=$(grep -n -F -x 'disconnected from server' "$out" | head -n 1 | cut -d: -f1)
  if [[ -z $first || -z $hello || -z $last ]]; then
    say "echo-client output lacks a documented line"
    bad=1
  elif ! ((first < hello && hello < last)); then
    say "echo-client lines out of order"
    bad=1
  fi
  eventually "$log" '^client disconnected' 5 ||
    { say "server printed no 'client disconnected' within 5 s"; bad=1; }
  grep -q '^client connected' "$log" ||
    { say "server printed no 'client connected'"; bad=1; }
  stop "$pid"
  if ((bad)); then show "$out"; show "$log"; return 1; fi
}

goodbye_pid=
goodbye_port=
goodbye_line=

# d1. goodbye-server's address line.
goodbye_address() {
  local log="$tmp/goodbye.log"
  start "$log" "$examples/goodbye-server"
  goodbye_pid=$pid
  wait_for "$log" '^opened server on ' "$pid" || return 1
  goodbye_line=$(grep -m1 '^opened server on ' "$log")
  local re="^opened server on \{ address: '(::|0\.0\.0\.0)', family: 'IPv(4|6)', port: ([0-9]+) \}\$"
  if [[ ! $goodbye_line =~ $re ]]; then
    say "address line does not match: $goodbye_line"
    return 1
  fi
  goodbye_port=${BASH_REMATCH[3]}
  local fam=${BASH_REMATCH[2]} addr=${BASH_REMATCH[1]}
  if [[ ($addr == :: && $fam != 6) || ($addr == 0.0.0.0 && $fam != 4) ]]; then
    say "address and family disagree: $goodbye_line"
    return 1
  fi
  if ((goodbye_port < 1 || goodbye_port > 65535)); then
    say "bad port: $goodbye_line"
    return 1
  fi
}

# d2. goodbye-server answers `goodbye\n` and ends.
goodbye_answer() {
  local out="$tmp/goodbye.out" rc bad=0
  if [[ -z $goodbye_port ]]; then
    # d1 failed to parse the line; try to get a port anyway.
    goodbye_port=$(sed -n 's/.*port: \([0-9][0-9]*\).*/\1/p' "$tmp/goodbye.log" | head -n 1)
    [[ -n $goodbye_port ]] || { say "no port to connect to"; return 1; }
  fi
  timeout 10 nc -N 127.0.0.1 "$goodbye_port" </dev/null >"$out" 2>&1
  rc=$?
  if ((rc != 0)); then say "nc exited $rc"; bad=1; fi
  printf 'goodbye\n' >"$tmp/goodbye.expected"
  same_bytes "$out" "$tmp/goodbye.expected" "nc" || bad=1
  # A second client gets the same.
  timeout 10 nc -N 127.0.0.1 "$goodbye_port" </dev/null >"$out.2" 2>&1
  rc=$?
  if ((rc != 0)); then say "second nc exited $rc"; bad=1; fi
  same_bytes "$out.2" "$tmp/goodbye.expected" "second nc" || bad=1
  kill -0 "$goodbye_pid" 2>/dev/null || { say "goodbye-server died"; bad=1; }
  stop "$goodbye_pid"
  if ((bad)); then show "$tmp/goodbye.log"; return 1; fi
}

# e. A signal closes echo-server on a path: exit 0, socket file unlinked.
signal_close() {
  local sig=$1 sock="$tmp/sig-$1.sock" log="$tmp/sig-$1.log" rc i bad=0
  # Background jobs of a non-interactive shell start with SIGINT ignored;
  # give the server the default disposition, as an interactive shell would.
  start "$log" env --default-signal="$sig" "$examples/echo-server" "$sock"
  local p=$pid
  wait_for "$log" '^server bound' "$p" || return 1
  [[ -S $sock ]] || { say "no socket file at $sock after 'server bound'"; bad=1; }
  # One client connects and disconnects first, so the server has history.
  printf 'x' | timeout 10 nc -N -U "$sock" >/dev/null 2>&1
  kill -s "$sig" "$p"
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    say "echo-server still running 10 s after SIG$sig"
    stop "$p"
    show "$log"
    return 1
  fi
  wait "$p"
  rc=$?
  if ((rc != 0)); then say "echo-server exited $rc after SIG$sig"; bad=1; fi
  if [[ -e $sock ]]; then say "socket file $sock still exists"; bad=1; fi
  if ((bad)); then show "$log"; return 1; fi
}

# ------------------------------------------------------------------- main --

prereq() {
  local ok=1 ex
  [[ -n $nodejs && -x $nodejs ]] || { say "node not found (CNET_NODE='$nodejs')"; ok=0; }
  command -v nc >/dev/null || { say "nc (netcat-openbsd) not found"; ok=0; }
  for ex in echo-server echo-client goodbye-server; do
    [[ -x $examples/$ex ]] || { say "missing example $examples/$ex"; ok=0; }
  done
  ((ok))
}

if ! prereq; then
  echo "not ok - prerequisites (node, nc and the built examples)"
  echo "0 passed, 8 failed"
  exit 1
fi

check "a1. echo-server (TCP) answers nc: world!\\r\\n -> hello\\r\\nworld!\\r\\n" nc_echo tcp
check "a2. echo-server (Unix socket) answers nc -U the same" nc_echo unix
check "b. a Node client gets the same bytes and the servers print the same lines, cnet vs Node docs' server" node_same_as_node
check "c. echo-client against echo-server prints the documented lines; server logs connect/disconnect" client_server
check "d1. goodbye-server prints Node's 'opened server on { address, family, port }' line" goodbye_address
check "d2. goodbye-server answers nc with exactly goodbye\\n" goodbye_answer
check "e1. SIGINT closes echo-server on a path: exit 0, socket file removed" signal_close INT
check "e2. SIGTERM closes echo-server on a path: exit 0, socket file removed" signal_close TERM

echo "$passed passed, $failed failed"
((failed == 0))
