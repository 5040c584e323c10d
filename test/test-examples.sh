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
#   f.  listen-retry (the docs' EADDRINUSE example) on a port a Node server
#       holds: prints `Address in use, retrying...` (twice, CNET_RETRY_MS=200:
#       close() + listen() again on a server whose listen failed), then
#       `listening on PORT` once the holder is gone, echoes, exits 0 on TERM.
#   g1. ipc-server on a stale socket file (a Node server killed with
#       SIGKILL): `removed stale socket PATH`, `listening on PATH`, echoes.
#   g2. A second ipc-server on the live path probes it, prints `another
#       server is running on PATH` and exits 1; the first keeps its file.
#   g3. SIGTERM to the first: exit 0, socket file gone.
#   g4. ipc-server on a regular file: refuses (exit 1), the file is kept.
#   h1. socket-activation started by test/node/socket-activate.js (fd 3, a
#       listening TCP socket; LISTEN_FDS=1, LISTEN_PID=its pid): prints
#       `listening on fd 3 (port N)` with the activator's port, echoes, and
#       exits 0 on SIGTERM.
#   h2. socket-activation with no LISTEN_FDS, or LISTEN_PID of another
#       process: exit 2 with a `systemd-socket-activate -l 8080 ...` hint.
#   i1. Two echo-servers with --reuse-port on one port: of 40 Node
#       connections each server prints some `client connected` lines.
#   i2. Without --reuse-port a second echo-server gets EADDRINUSE, exit 1.
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

# ------------------------------------------- helpers for the checks below --

# need EXAMPLE...: fail with a message unless every example is built.
need() {
  local ex ok=0
  for ex in "$@"; do
    [[ -x $examples/$ex ]] || { say "missing example $examples/$ex"; ok=1; }
  done
  return $ok
}

# wait_lines LOG REGEX N PID [SECONDS]: wait until LOG has N lines matching
# REGEX (ERE), up to SECONDS (10); fails early if PID exits.
wait_lines() {
  local log=$1 re=$2 n=$3 p=$4 secs=${5:-10} i
  for ((i = 0; i < secs * 10; i++)); do
    (($(grep -Ec -- "$re" "$log" 2>/dev/null) >= n)) && return 0
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  (($(grep -Ec -- "$re" "$log" 2>/dev/null) >= n)) && return 0
  say "wanted $n lines matching /$re/ within ${secs} s, got $(grep -Ec -- "$re" "$log")"
  show "$log"
  return 1
}

# signal_wait SIG PID: send SIG, wait up to 10 s for PID to exit and set $rc
# to its status. Fails (and kills it) if it is still running.
signal_wait() {
  local sig=$1 p=$2 i
  rc=
  kill -s "$sig" "$p" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    say "pid $p still running 10 s after SIG$sig"
    stop "$p"
    return 1
  fi
  wait "$p"
  rc=$?
}

# echo_through WHAT PORT|PATH: `ping\n` through nc comes back unchanged.
echo_through() {
  local what=$1 where=$2 out="$tmp/echo-$RANDOM.out" r
  printf 'ping\n' >"$tmp/ping.expected"
  if [[ $where =~ ^[0-9]+$ ]]; then
    printf 'ping\n' | timeout 10 nc -N 127.0.0.1 "$where" >"$out" 2>&1
  else
    printf 'ping\n' | timeout 10 nc -N -U "$where" >"$out" 2>&1
  fi
  r=$?
  if ((r != 0)); then say "nc to $what exited $r"; show "$out"; return 1; fi
  same_bytes "$out" "$tmp/ping.expected" "nc to $what"
}

# A Node one-liner holding a TCP port (printed as `listening on PORT`), or a
# Unix socket path (argv[1]; prints `ready`). Each gives up after 60 s.
node_hold_port='const s = require("net").createServer().listen(0, "127.0.0.1",
  () => console.log(`listening on ${s.address().port}`));
setTimeout(() => process.exit(3), 60000);'
node_hold_path='require("net").createServer().listen(process.argv[1],
  () => console.log("ready"));
setTimeout(() => process.exit(3), 60000);'

# f. listen-retry: EADDRINUSE, retry on the same server, then serve.
listen_retry() {
  need listen-retry || return 1
  local occ_log="$tmp/occupier.log" log="$tmp/retry.log" occ p bad=0 n
  start "$occ_log" "$nodejs" -e "$node_hold_port"
  occ=$pid
  wait_for "$occ_log" '^listening on [0-9]+' "$occ" || return 1
  port=$(tcp_port "$occ_log")
  start "$log" env CNET_RETRY_MS=200 "$examples/listen-retry" "$port"
  p=$pid
  # Two failures: the second one is a close() + listen() on a server whose
  # earlier listen() failed.
  wait_lines "$log" '^Address in use, retrying\.\.\.$' 2 "$p" 10 ||
    { stop "$occ"; stop "$p"; return 1; }
  if grep -q '^listening on' "$log"; then
    say "listening while the port is still taken"
    bad=1
  fi
  stop "$occ"
  wait_for "$log" '^listening on [0-9]+$' "$p" 5 || { stop "$p"; return 1; }
  if [[ $(tcp_port "$log") != "$port" ]]; then
    say "listening on $(tcp_port "$log"), expected $port"
    bad=1
  fi
  n=$(grep -c '^listening on' "$log")
  ((n == 1)) || { say "'listening on' printed $n times"; bad=1; }
  if grep -v -e '^Address in use, retrying\.\.\.$' -e '^listening on [0-9]*$' "$log" |
      grep -q .; then
    say "unexpected output lines"
    bad=1
  fi
  echo_through listen-retry "$port" || bad=1
  signal_wait TERM "$p" || { show "$log"; return 1; }
  ((rc == 0)) || { say "listen-retry exited $rc after SIGTERM"; bad=1; }
  if ((bad)); then show "$log"; return 1; fi
}

ipc_pid=
ipc_sock=

# g1. ipc-server removes a stale socket file, listens, echoes.
ipc_stale() {
  need ipc-server || return 1
  local sock="$tmp/ipc.sock" holder_log="$tmp/holder.log" log="$tmp/ipc.log" bad=0
  # A server killed with SIGKILL leaves its socket file behind.
  start "$holder_log" "$nodejs" -e "$node_hold_path" "$sock"
  wait_for "$holder_log" '^ready' "$pid" || return 1
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  [[ -S $sock ]] || { say "no stale socket file at $sock"; return 1; }
  start "$log" "$examples/ipc-server" "$sock"
  ipc_pid=$pid
  wait_for "$log" '^listening on ' "$ipc_pid" || return 1
  ipc_sock=$sock
  printf 'removed stale socket %s\nlistening on %s\n' "$sock" "$sock" >"$tmp/ipc.expected"
  cmp -s "$log" "$tmp/ipc.expected" ||
    { say "output differs from:"; show "$tmp/ipc.expected"; bad=1; }
  echo_through ipc-server "$sock" || bad=1
  if ((bad)); then show "$log"; return 1; fi
}

# g2. A second ipc-server finds the first one alive and leaves it alone.
ipc_second() {
  [[ -n $ipc_pid ]] || { say "no ipc-server running (g1 failed)"; return 1; }
  local log="$tmp/ipc2.log" r bad=0
  timeout 10 "$examples/ipc-server" "$ipc_sock" >"$log" 2>&1
  r=$?
  ((r == 1)) || { say "second ipc-server exited $r, expected 1"; bad=1; }
  grep -Fxq "another server is running on $ipc_sock" "$log" ||
    { say "no 'another server is running on $ipc_sock' line"; bad=1; }
  grep -q '^listening on' "$log" && { say "second ipc-server listened"; bad=1; }
  [[ -S $ipc_sock ]] || { say "the live server's socket file is gone"; bad=1; }
  kill -0 "$ipc_pid" 2>/dev/null || { say "the first ipc-server died"; bad=1; }
  echo_through "the first ipc-server" "$ipc_sock" || bad=1
  if ((bad)); then show "$log"; show "$tmp/ipc.log"; return 1; fi
}

# g3. SIGTERM: exit 0 and the socket file removed.
ipc_sigterm() {
  [[ -n $ipc_pid ]] || { say "no ipc-server running (g1 failed)"; return 1; }
  local bad=0
  signal_wait TERM "$ipc_pid" || { show "$tmp/ipc.log"; return 1; }
  ((rc == 0)) || { say "ipc-server exited $rc after SIGTERM"; bad=1; }
  [[ -e $ipc_sock ]] && { say "socket file $ipc_sock still exists"; bad=1; }
  if ((bad)); then show "$tmp/ipc.log"; return 1; fi
}

# g4. A path that is not a socket is refused, not deleted.
ipc_not_socket() {
  need ipc-server || return 1
  local file="$tmp/not-a-socket" log="$tmp/ipc-file.log" r bad=0
  echo keep >"$file"
  timeout 10 "$examples/ipc-server" "$file" >"$log" 2>&1
  r=$?
  ((r == 1)) || { say "ipc-server exited $r, expected 1"; bad=1; }
  grep -Fxq "$file exists and is not a socket" "$log" ||
    { say "no '$file exists and is not a socket' line"; bad=1; }
  [[ $(cat "$file" 2>/dev/null) == keep ]] || { say "$file was changed or removed"; bad=1; }
  if ((bad)); then show "$log"; return 1; fi
}

# h1. socket-activation under a Node activator: echo on the passed socket.
activation() {
  need socket-activation || return 1
  local log="$tmp/activate.log" p bad=0 lport
  start "$log" "$nodejs" "$peers/socket-activate.js" "$examples/socket-activation"
  p=$pid
  wait_for "$log" '^activator: port [0-9]+' "$p" || { stop "$p"; return 1; }
  port=$(sed -n 's/^activator: port \([0-9]*\)$/\1/p' "$log")
  wait_for "$log" '^listening on fd 3 ' "$p" 5 || { stop "$p"; return 1; }
  lport=$(sed -n 's/^listening on fd 3 (port \([0-9]*\))$/\1/p' "$log")
  if [[ $lport != "$port" ]]; then
    say "expected 'listening on fd 3 (port $port)'"
    bad=1
  fi
  echo_through socket-activation "$port" || bad=1
  echo_through "socket-activation (again)" "$port" || bad=1
  # The activator passes SIGTERM on and exits with the child's status.
  signal_wait TERM "$p" || { show "$log"; return 1; }
  ((rc == 0)) || { say "activator exited $rc after SIGTERM"; bad=1; }
  grep -Fxq 'activator: child exited 0' "$log" ||
    { say "socket-activation did not exit 0"; bad=1; }
  if ((bad)); then show "$log"; return 1; fi
}

# h2. Without LISTEN_FDS (or with another process's LISTEN_PID): exit 2 and
# say how to run it.
activation_usage() {
  need socket-activation || return 1
  local log="$tmp/activate-usage.log" r bad=0 how
  for how in unset other-pid; do
    if [[ $how == unset ]]; then
      timeout 10 env -u LISTEN_FDS -u LISTEN_PID "$examples/socket-activation" \
        >"$log" 2>&1 </dev/null
    else
      timeout 10 env LISTEN_FDS=1 LISTEN_PID=1 "$examples/socket-activation" \
        >"$log" 2>&1 </dev/null
    fi
    r=$?
    ((r == 2)) || { say "($how) exited $r, expected 2"; show "$log"; bad=1; }
    grep -q 'systemd-socket-activate -l 8080' "$log" ||
      { say "($how) no 'systemd-socket-activate -l 8080 ...' hint"; show "$log"; bad=1; }
  done
  ((bad == 0))
}

# i1. Two echo-servers share a port with --reuse-port; both get clients.
reuse_port() {
  local log1="$tmp/reuse1.log" log2="$tmp/reuse2.log" p1 p2 out="$tmp/reuse.out"
  local r n1 n2 bad=0
  echo_server "$log1" 0 "$examples/echo-server" --reuse-port || return 1
  p1=$pid
  start "$log2" "$examples/echo-server" --reuse-port "$port"
  p2=$pid
  wait_for "$log2" '^server bound' "$p2" || { stop "$p1"; return 1; }
  timeout 30 "$nodejs" -e '
    const net = require("net");
    const port = Number(process.argv[1]);
    let n = 0, bad = 0;
    setTimeout(() => { console.error("timeout"); process.exit(2); }, 25000);
    (function next() {
      if (n === 40) process.exit(bad ? 1 : 0);
      const i = ++n;
      let got = "";
      const c = net.connect(port, "127.0.0.1", () => c.end("x\n"));
      c.setEncoding("latin1");
      c.on("data", (d) => { got += d; });
      c.on("error", (e) => console.error(`connection ${i}: ${e.message}`));
      c.on("close", () => {
        if (got !== "hello\r\nx\n") {
          bad++;
          console.error(`connection ${i} got ${JSON.stringify(got)}`);
        }
        next();
      });
    })();' "$port" >"$out" 2>&1
  r=$?
  ((r == 0)) || { say "the Node client exited $r"; show "$out"; bad=1; }
  n1=$(grep -c '^client connected' "$log1")
  n2=$(grep -c '^client connected' "$log2")
  ((n1 + n2 == 40)) || { say "$n1 + $n2 connections seen, expected 40"; bad=1; }
  ((n1 > 0 && n2 > 0)) ||
    { say "one server got them all: $n1 and $n2 connections"; bad=1; }
  stop "$p1"
  stop "$p2"
  if ((bad)); then show "$log1"; show "$log2"; return 1; fi
}

# i2. Without --reuse-port the second one gets EADDRINUSE.
reuse_port_needed() {
  local log1="$tmp/noreuse1.log" log2="$tmp/noreuse2.log" p1 r bad=0
  echo_server "$log1" 0 "$examples/echo-server" --reuse-port || return 1
  p1=$pid
  timeout 10 "$examples/echo-server" "$port" >"$log2" 2>&1
  r=$?
  ((r == 1)) || { say "second echo-server exited $r, expected 1"; bad=1; }
  grep -q 'EADDRINUSE' "$log2" || { say "no EADDRINUSE message"; bad=1; }
  stop "$p1"
  if ((bad)); then show "$log2"; return 1; fi
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
  echo "0 passed, 17 failed"
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
check "f. listen-retry: 'Address in use, retrying...' while the port is taken, then listens on it and echoes; SIGTERM exits 0" listen_retry
check "g1. ipc-server removes a stale socket file, prints 'listening on PATH', echoes over nc -U" ipc_stale
check "g2. a second ipc-server on the same path: 'another server is running', exit 1, the first unharmed" ipc_second
check "g3. SIGTERM to ipc-server: exit 0, socket file removed" ipc_sigterm
check "g4. ipc-server refuses a path that is not a socket (exit 1, file kept)" ipc_not_socket
check "h1. socket-activation on fd 3 from a Node activator: 'listening on fd 3 (port N)', echoes; SIGTERM exits 0" activation
check "h2. socket-activation without LISTEN_FDS/LISTEN_PID for it: exit 2 with a how-to-run hint" activation_usage
check "i1. two echo-servers --reuse-port on one port: 40 connections, both accept some" reuse_port
check "i2. without --reuse-port the second echo-server fails with EADDRINUSE" reuse_port_needed

echo "$passed passed, $failed failed"
((failed == 0))
