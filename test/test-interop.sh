#!/usr/bin/env bash
# Interop test: cnet and a real Node.js process as peers of each other.
#
#   a. Node client -> cnet echo-server (TCP): 8 MiB of random bytes echo back
#      intact after the `hello\r\n` greeting (sha256 compared in Node).
#   b. cnet echo-client -> Node echo server (test/node/echo-server.js, the Node
#      docs' server): the client prints the documented lines and exits 0.
#   c. Node client half-closes (end()) on the cnet echo-server: the server
#      prints `client disconnected`, Node gets the echo, 'end' and 'close'.
#   d. As a., over a Unix socket path.
#   e. nc -U -> cnet echo-server on a Unix socket path: `world!\r\n` comes
#      back after the greeting.
#   f. Node client, net.connect(path) -> cnet ipc-server (plain echo): 1 MiB
#      of random bytes back intact.
#   g. cnet echo-client with a path -> the Node docs' server on a Unix socket:
#      as b.
#
# Registered in CTest as `interop`. Environment (set by CTest): CNET_NODE,
# CNET_EXAMPLES_DIR, CNET_SOURCE_DIR. Prints `ok - ...` / `not ok - ...` per
# check and a final `N passed, M failed`; exits 1 if any check failed.
#
#   CNET_EXAMPLES_DIR=build/examples bash test/test-interop.sh
set -uo pipefail

test_name=interop
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

# cnet_echo_server LOG PORT|PATH: start examples/echo-server and wait until it
# is bound; sets $pid, and $port for TCP.
cnet_echo_server() {
  local log=$1 where=$2
  start "$log" "$examples/echo-server" "$where"
  wait_for "$log" '^server bound' "$pid" || return 1
  if [[ $where =~ ^[0-9]+$ ]]; then
    port=$(tcp_port "$log")
    [[ -n $port ]] || { say "no 'listening on <port>' line"; show "$log"; return 1; }
  fi
}

# ------------------------------------------------------------------ checks --

# a. / d.: 8 MiB of random bytes through the cnet echo server.
random_echo() {
  local kind=$1 log="$tmp/server-$1.log" out="$tmp/client-$1.out" where rc
  if [[ $kind == tcp ]]; then where=0; else where="$tmp/echo.sock"; fi
  cnet_echo_server "$log" "$where" || return 1
  local target=$port
  [[ $kind == tcp ]] || target=$where
  timeout 60 "$nodejs" "$peers/send-random.js" "$target" $((8 * 1024 * 1024)) \
    >"$out" 2>&1
  rc=$?
  stop "$pid"
  if ((rc != 0)); then
    say "send-random.js exited $rc"
    show "$out"; show "$log"
    return 1
  fi
}

# b. / g.: cnet echo-client against the Node docs' server, TCP or Unix.
client_vs_node() {
  local kind=$1 log="$tmp/node-server-$1.log" out="$tmp/echo-client-$1.out"
  local rc line where
  if [[ $kind == tcp ]]; then where=0; else where="$tmp/node-echo.sock"; fi
  start "$log" "$nodejs" "$peers/echo-server.js" "$where"
  wait_for "$log" '^server bound' "$pid" || return 1
  if [[ $kind == tcp ]]; then where=$(tcp_port "$log"); fi
  timeout 15 "$examples/echo-client" "$where" >"$out" 2>&1
  rc=$?
  local bad=0
  if ((rc != 0)); then say "echo-client exited $rc"; bad=1; fi
  for line in 'connected to server!' 'hello' 'disconnected from server'; do
    grep -Fq -- "$line" "$out" || { say "echo-client output lacks '$line'"; bad=1; }
  done
  # The Node server logs 'end' of the client as `client disconnected`.
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q '^client disconnected' "$log" && break
    sleep 0.1
  done
  grep -q '^client disconnected' "$log" ||
    { say "Node server never saw the client's end"; bad=1; }
  stop "$pid"
  if ((bad)); then show "$out"; show "$log"; return 1; fi
}

# c. Node client half-closes; cnet server sees 'end'; Node sees echo + end.
half_close() {
  local log="$tmp/server-half.log" out="$tmp/half.out" err="$tmp/half.err" rc bad=0
  cnet_echo_server "$log" 0 || return 1
  timeout 15 "$nodejs" "$peers/client.js" "$port" 'ping\n' >"$out" 2>"$err"
  rc=$?
  if ((rc != 0)); then say "client.js exited $rc"; bad=1; fi
  printf 'hello\r\nping\n' >"$tmp/half.expected"
  if ! cmp -s "$out" "$tmp/half.expected"; then
    say "Node received:$(od -An -c "$out" | tr -s ' \n' ' ')" \
        "expected:     $(od -An -c "$tmp/half.expected" | tr -s ' \n' ' ')"
    bad=1
  fi
  grep -q '^event end$' "$err" || { say "Node saw no 'end'"; bad=1; }
  grep -q '^event close hadError=false$' "$err" ||
    { say "Node saw no clean 'close'"; bad=1; }
  local i
  for ((i = 0; i < 50; i++)); do
    grep -q '^client disconnected' "$log" && break
    sleep 0.1
  done
  grep -q '^client connected' "$log" || { say "server printed no 'client connected'"; bad=1; }
  grep -q '^client disconnected' "$log" ||
    { say "server printed no 'client disconnected' within 5 s"; bad=1; }
  stop "$pid"
  if ((bad)); then show "$err"; show "$log"; return 1; fi
}

# e. nc -U talks to the cnet echo-server on a Unix socket path.
nc_unix() {
  local sock="$tmp/nc.sock" log="$tmp/server-nc.log" out="$tmp/nc.out" rc bad=0
  command -v nc >/dev/null || { say "nc (netcat-openbsd) not found"; return 1; }
  cnet_echo_server "$log" "$sock" || return 1
  printf 'world!\r\n' | timeout 10 nc -N -U "$sock" >"$out" 2>&1
  rc=$?
  if ((rc != 0)); then say "nc -U exited $rc"; bad=1; fi
  printf 'hello\r\nworld!\r\n' >"$tmp/nc.expected"
  same_bytes "$out" "$tmp/nc.expected" "nc -U" || bad=1
  stop "$pid"
  if ((bad)); then show "$log"; return 1; fi
}

# f. Node's net.connect(path) sends 1 MiB of random bytes to the cnet IPC
# echo server (examples/ipc-server: no greeting) and gets them back exactly.
ipc_random() {
  local sock="$tmp/ipc.sock" log="$tmp/server-ipc.log" out="$tmp/client-ipc.out" rc
  [[ -x $examples/ipc-server ]] || { say "missing example $examples/ipc-server"; return 1; }
  start "$log" "$examples/ipc-server" "$sock"
  wait_for "$log" '^listening on ' "$pid" || return 1
  timeout 30 "$nodejs" "$peers/send-random.js" "$sock" $((1024 * 1024)) \
    --greeting= >"$out" 2>&1
  rc=$?
  stop "$pid"
  if ((rc != 0)); then
    say "send-random.js exited $rc"
    show "$out"; show "$log"
    return 1
  fi
}

# ------------------------------------------------------------------- main --

prereq() {
  local ok=1
  [[ -n $nodejs && -x $nodejs ]] || { say "node not found (CNET_NODE='$nodejs')"; ok=0; }
  local ex
  for ex in echo-server echo-client; do
    [[ -x $examples/$ex ]] || { say "missing example $examples/$ex"; ok=0; }
  done
  ((ok))
}

if ! prereq; then
  echo "not ok - prerequisites (node and the built examples)"
  echo "0 passed, 7 failed"
  exit 1
fi

check "a. Node client sends 8 MiB random bytes to cnet echo-server (TCP), gets them back intact" random_echo tcp
check "b. cnet echo-client talks to the Node docs' echo server" client_vs_node tcp
check "c. Node client's end() is 'end' to the cnet server; Node gets echo, 'end', 'close'" half_close
check "d. Node client sends 8 MiB random bytes to cnet echo-server (Unix socket), gets them back intact" random_echo unix
check "e. nc -U talks to cnet echo-server on a Unix socket path" nc_unix
check "f. Node net.connect(path) sends 1 MiB random bytes to cnet ipc-server, gets them back intact" ipc_random
check "g. cnet echo-client with a path talks to the Node docs' echo server on a Unix socket" client_vs_node unix

echo "$passed passed, $failed failed"
((failed == 0))
