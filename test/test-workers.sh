#!/usr/bin/env bash
# Workers test: `echo-server --workers N` runs N threads, each with its own
# loop and its own server on one TCP port (SO_REUSEPORT).
#
#   a. `echo-server 0 --bench --workers 2 --stats` prints `server bound` once
#      and `listening on PORT` once, and nothing else while it serves.
#   b. A Node client makes 240 connections to PORT: 200 of them 16 at a
#      time, then 40 at once. Each sends a payload of its own (random bytes,
#      1 B .. 64 KiB, no two alike; the first is 1 B, the second 64 KiB),
#      then FIN, and must get exactly those bytes back.
#   c. SIGTERM: exit 0 within 10 s, then one `worker I: C connections, B
#      bytes` line per worker: both accepted some (C > 0), the C add up to
#      the client's 240 connections and the B to the bytes it sent.
#      The kernel hashes each connection's 4-tuple (a random per-boot key;
#      a new source port each time) to one of the two sockets: all 240 on
#      one worker has probability 2 * 2^-240, about 1e-72.
#   d. `echo-server PATH --workers 4`: exit 2 with `--workers needs a TCP
#      port`, and no socket file made.
#   e. `--workers 0` is the single loop as before: `echo-server 0 --workers 0
#      --stats` greets nc (hello\r\nworld!\r\n), exits 0 on SIGTERM and
#      reports `worker 1: 1 connections, 8 bytes` (the greeting not counted).
#
# Registered in CTest as `workers`. Environment (set by CTest): CNET_NODE,
# CNET_EXAMPLES_DIR. CNET_TEST_WRAPPER (e.g. "valgrind --error-exitcode=1
# ...") runs the --workers server under that command, with longer waits.
# Prints `ok - ...` / `not ok - ...` per check and a final `N passed, M
# failed`; exits 1 if any check failed. Every wait is bounded (about 5 s in
# all without a wrapper); the cleanup trap stops any server left and removes
# the temp dir.
#
#   CNET_EXAMPLES_DIR=build/examples bash test/test-workers.sh
set -uo pipefail

test_name=workers
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

server="$examples/echo-server"
read -r -a wrapper <<<"${CNET_TEST_WRAPPER:-}"
slow=1 # wait multiplier
((${#wrapper[@]} == 0)) || slow=10

# node - PORT: the connections of b. Prints `connections N bytes B` (what
# it made and sent) and exits 0 if every echo came back whole.
node_client='const net = require("net"), crypto = require("crypto");
const port = Number(process.argv[1]), slow = Number(process.argv[2]);
const lanes = 16, laned = 200, burst = 40, total = laned + burst;
setTimeout(() => { console.log(`timeout: ${done} of ${total} done`); process.exit(2); },
           20000 * slow);
const payloads = [], seen = new Set();
while (payloads.length < total) {
  const n = payloads.length, size = n === 0 ? 1 : n === 1 ? 65536 :
            1 + crypto.randomInt(65536);
  const p = crypto.randomBytes(size), key = p.toString("base64");
  if (!seen.has(key)) { seen.add(key); payloads.push(p); }
}
let started = 0, done = 0, bad = 0, sent = 0;
function one() {
  const i = started++, msg = payloads[i], got = [];
  const c = net.connect(port, "127.0.0.1", () => c.end(msg));
  sent += msg.length;
  c.on("data", (d) => got.push(d));
  c.on("error", (e) => console.log(`connection ${i}: ${e.message}`));
  c.on("close", () => {
    const back = Buffer.concat(got);
    if (!back.equals(msg)) {
      bad++;
      console.log(`connection ${i}: ${back.length} bytes back of ${msg.length}` +
                  (back.length === msg.length ? " (different)" : ""));
    }
    if (++done === total) {
      console.log(`connections ${total} bytes ${sent}`);
      process.exit(bad ? 1 : 0);
    }
    if (done === laned) for (let k = 0; k < burst; k++) one();
    else if (started < laned) one();
  });
}
for (let k = 0; k < lanes; k++) one();'

pid=
log="$tmp/server.log"
client_conns=
client_bytes=

# a. The server starts and says so once.
start_workers() {
  start "$log" "${wrapper[@]}" "$server" 0 --bench --workers 2 --stats
  wait_for "$log" '^listening on [0-9]+' "$pid" $((5 * slow)) || return 1
  port=$(tcp_port "$log")
  local bound listening
  bound=$(grep -c '^server bound$' "$log")
  listening=$(grep -c '^listening on ' "$log")
  if ((bound != 1 || listening != 1)); then
    say "'server bound' $bound times, 'listening on' $listening times; expected once each"
    show "$log"
    return 1
  fi
}

# b. 240 connections, each echoed byte for byte.
echo_all() {
  local out="$tmp/client.out" r
  [[ -n ${port:-} ]] || return 1
  timeout $((25 * slow)) "$nodejs" -e "$node_client" "$port" "$slow" >"$out" 2>&1
  r=$?
  read -r client_conns client_bytes < <(sed -n 's/^connections \([0-9]*\) bytes \([0-9]*\)$/\1 \2/p' "$out")
  ((r == 0)) || { say "the client exited $r"; show "$out"; return 1; }
  [[ -n $client_conns ]] || { say "no 'connections N bytes B' line"; show "$out"; return 1; }
  say "client: $client_conns connections, $client_bytes bytes"
  if grep -v -e '^server bound$' -e '^listening on [0-9]*$' "$log" | grep -q .; then
    say "the --bench server printed more than its two lines"
    show "$log"
    return 1
  fi
}

# c. SIGTERM: exit 0, and the per-worker counts add up to the client's.
stop_and_count() {
  local i rc c b sum_c=0 sum_b=0 bad=0 line
  [[ -n $pid ]] || return 1
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100 * slow; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "echo-server still running $((10 * slow)) s after SIGTERM"
    stop "$pid"
    show "$log"
    return 1
  fi
  wait "$pid"
  rc=$?
  ((rc == 0)) || { say "echo-server exited $rc after SIGTERM"; bad=1; }
  for i in 1 2; do
    line=$(grep "^worker $i: " "$log")
    if [[ ! $line =~ ^worker\ $i:\ ([0-9]+)\ connections,\ ([0-9]+)\ bytes$ ]]; then
      say "no 'worker $i: C connections, B bytes' line"
      bad=1
      continue
    fi
    c=${BASH_REMATCH[1]} b=${BASH_REMATCH[2]}
    say "$line"
    ((c > 0)) || { say "worker $i accepted no connection"; bad=1; }
    sum_c=$((sum_c + c)) sum_b=$((sum_b + b))
  done
  (($(grep -c '^worker ' "$log") == 2)) || { say "not exactly 2 worker lines"; bad=1; }
  if [[ -n $client_conns ]] &&
      ((sum_c != client_conns || sum_b != client_bytes)); then
    say "workers: $sum_c connections, $sum_b bytes; the client: $client_conns, $client_bytes"
    bad=1
  fi
  [[ -n $client_conns ]] || { say "(no client counts to compare: b failed)"; bad=1; }
  if ((bad)); then show "$log"; return 1; fi
}

# d. --workers with a Unix socket path is refused.
path_refused() {
  local sock="$tmp/w.sock" out="$tmp/path.out" r bad=0
  timeout 10 "$server" "$sock" --workers 4 >"$out" 2>&1 </dev/null
  r=$?
  ((r == 2)) || { say "exited $r, expected 2"; bad=1; }
  grep -q -- '--workers needs a TCP port' "$out" ||
    { say "no '--workers needs a TCP port' message"; bad=1; }
  [[ -e $sock ]] && { say "$sock was created"; bad=1; }
  if ((bad)); then show "$out"; return 1; fi
}

# e. --workers 0: the single loop, and --stats counts it as worker 1.
single_loop() {
  local slog="$tmp/single.log" out="$tmp/single.out" p i rc bad=0
  start "$slog" "$server" 0 --workers 0 --stats
  p=$pid
  wait_for "$slog" '^listening on [0-9]+' "$p" 5 || return 1
  printf 'world!\r\n' | timeout 10 nc -N 127.0.0.1 "$(tcp_port "$slog")" >"$out" 2>&1
  printf 'hello\r\nworld!\r\n' >"$tmp/single.expected"
  same_bytes "$out" "$tmp/single.expected" "nc" || bad=1
  kill -TERM "$p"
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && { say "still running 10 s after SIGTERM"; stop "$p"; show "$slog"; return 1; }
  wait "$p"
  rc=$?
  ((rc == 0)) || { say "exited $rc after SIGTERM"; bad=1; }
  grep -Fxq 'worker 1: 1 connections, 8 bytes' "$slog" ||
    { say "no 'worker 1: 1 connections, 8 bytes' line"; bad=1; }
  if ((bad)); then show "$slog"; return 1; fi
}

if [[ -z $nodejs || ! -x $nodejs || ! -x $server ]] || ! command -v nc >/dev/null; then
  say "need node (CNET_NODE='$nodejs'), nc and $server"
  echo "not ok - prerequisites (node, nc and the built echo-server)"
  echo "0 passed, 5 failed"
  exit 1
fi

check "a. echo-server 0 --bench --workers 2 --stats: 'server bound' and 'listening on PORT' once" start_workers
check "b. 240 connections (16 at a time, then 40 at once), 1 B .. 64 KiB each, all echoed byte for byte" echo_all
check "c. SIGTERM: exit 0; both workers accepted some; connections and bytes add up to the client's" stop_and_count
check "d. --workers 4 with a Unix socket path: exit 2 with a message, no socket file" path_refused
check "e. --workers 0 is the single loop: greeting and echo, SIGTERM exits 0, 'worker 1: 1 connections, 8 bytes'" single_loop

echo "$passed passed, $failed failed"
((failed == 0))
