#!/usr/bin/env bash
# Prefork test: examples/prefork-echo shares one listener among worker
# processes (a server sent over a channel), or with --exclusive gives each
# worker its own SO_REUSEPORT socket. For each of the two modes:
#
#   a. `prefork-echo --workers 2 --port 0` prints `worker K pid P` twice and
#      `listening on PORT (...)`; 40 Node clients (4 at a time) each send
#      2 KiB and get every byte back.
#   b. The primary's spread (SIGUSR1: `worker 1: N connections, worker 2:
#      M connections`) counts all of them, and both workers accepted some;
#      if the kernel gave all to one, 40 more, at most 5 rounds.
#   c. 8 connections are held open (each echoed once) and the spread tells
#      how many each worker holds. One worker (worker 1, or the one holding
#      none) gets SIGTERM; the primary reports `worker K pid P exited`. Then
#      every held connection of the other worker still echoes, and those of
#      the dead one are closed: no connection lost but the dead worker's.
#   d. 20 new connections all echo, all counted for the survivor.
#   e. SIGTERM to the primary: exit 0 within 10 s, a last spread line, and
#      no worker process left.
#   f. A new primary killed with SIGKILL: its workers exit by themselves
#      within 5 s (their channel closed). They are init's children by then,
#      so "exited" means gone or a zombie.
#
# Registered in CTest as `prefork`. Environment (set by CTest): CNET_NODE,
# CNET_EXAMPLES_DIR. Prints `ok - ...` / `not ok - ...` per check and a
# final `N passed, M failed`; exits 1 if any check failed. Every wait is
# bounded. The cleanup trap stops the primary, which stops its workers; a
# primary it has to SIGKILL leaves workers that exit by themselves (f).
#
#   CNET_EXAMPLES_DIR=build/examples bash test/test-prefork.sh
set -uo pipefail

test_name=prefork
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

prefork="$examples/prefork-echo"

# N echo connections to PORT, 4 at a time; each sends 2 KiB, then FIN,
# and must get exactly those bytes back. Exit 0 if all did.
node_echo='const net = require("net");
const port = Number(process.argv[1]), total = Number(process.argv[2]);
setTimeout(() => { console.log("timeout"); process.exit(2); }, 10000);
let started = 0, done = 0, bad = 0;
function one() {
  const i = started++;
  const msg = `connection ${i}: ${"0123456789abcdef".repeat(128)}\n`;
  let got = "";
  const c = net.connect(port, "127.0.0.1", () => c.end(msg));
  c.setEncoding("latin1");
  c.on("data", (d) => { got += d; });
  c.on("error", (e) => console.log(`connection ${i}: ${e.message}`));
  c.on("close", () => {
    if (got !== msg) {
      bad++;
      console.log(`connection ${i}: ${got.length} of ${msg.length} bytes back`);
    }
    if (++done === total) process.exit(bad ? 1 : 0);
    if (started < total) one();
  });
}
for (let k = 0; k < Math.min(4, total); k++) one();'

# Open N connections to PORT one after the other, echoing one line on each
# (so that both workers get some), then print `held N`. On SIGUSR2 echo a
# second line on each and print `alive A closed C timeout T`: how many
# answered, were closed, or said nothing in 3 s.
node_hold='const net = require("net");
const port = Number(process.argv[1]), n = Number(process.argv[2]);
setTimeout(() => { console.log("timeout"); process.exit(2); }, 15000);
function open() {
  const c = net.connect(port, "127.0.0.1");
  c.setEncoding("latin1");
  c.got = "";
  c.closed = false;
  c.on("data", (d) => { c.got += d; if (c.check) c.check(); });
  c.on("error", () => {});
  c.on("close", () => { c.closed = true; if (c.check) c.check(); });
  return c;
}
function echo(c, msg, ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { c.check = null; resolve("timeout"); }, ms);
    const settle = (r) => { clearTimeout(t); c.check = null; resolve(r); };
    c.got = "";
    c.check = () => {
      if (c.got === msg) settle("ok");
      else if (c.closed) settle("closed");
    };
    if (c.closed) settle("closed");
    else c.write(msg);
  });
}
const conns = [];
process.once("SIGUSR2", async () => {
  const r = await Promise.all(conns.map((c, i) => echo(c, `second ${i}\n`, 3000)));
  const count = (what) => r.filter((x) => x === what).length;
  console.log(`alive ${count("ok")} closed ${count("closed")} timeout ${count("timeout")}`);
  process.exit(0);
});
(async () => {
  for (let i = 0; i < n; i++) {
    conns.push(open());
    const r = await echo(conns[i], `first ${i}\n`, 5000);
    if (r !== "ok") { console.log(`connection ${i}: ${r}`); process.exit(1); }
  }
  console.log(`held ${n}`);
})();'

# Per mode: the primary, its log, the workers' pids, the port, and how many
# connections the test has made so far.
mode=
primary=
log=
port=
wpid=()
total=0
sp=() # the last spread read: sp[1], sp[2]

# echo_round N: N echo connections; all must come back whole.
echo_round() {
  local n=$1 out="$tmp/echo-$RANDOM.out" r
  timeout 15 "$nodejs" -e "$node_echo" "$port" "$n" >"$out" 2>&1
  r=$?
  total=$((total + n))
  ((r == 0)) || { say "the echo client exited $r"; show "$out"; return 1; }
}

# spread: ask the primary (SIGUSR1) until its spread line counts $total
# connections, up to 3 s (a worker's report may trail its echo); sets sp.
spread() {
  local i line k n
  for ((i = 0; i < 15; i++)); do
    n=$(grep -c '^worker 1: ' "$log")
    kill -USR1 "$primary" 2>/dev/null || { say "primary gone"; show "$log"; return 1; }
    for ((k = 0; k < 10; k++)); do
      (($(grep -c '^worker 1: ' "$log") > n)) && break
      sleep 0.05
    done
    line=$(grep '^worker 1: ' "$log" | tail -n 1)
    sp=(-)
    for k in 1 2; do
      sp[k]=$(sed -n "s/.*worker $k: \\([0-9]*\\) connection.*/\\1/p" <<<"$line")
    done
    [[ -n ${sp[1]} && -n ${sp[2]} ]] && ((sp[1] + sp[2] == total)) && return 0
    sleep 0.2
  done
  say "the spread never counted all $total connections; last: '$line'"
  show "$log"
  return 1
}

# a. Start the primary and echo through it.
start_and_echo() {
  local k
  start "$log" "$prefork" --workers 2 --port 0 "$@"
  primary=$pid
  wait_for "$log" '^listening on [0-9]+' "$primary" 10 || return 1
  port=$(tcp_port "$log")
  wpid=(-)
  for k in 1 2; do
    wpid[k]=$(sed -n "s/^worker $k pid \\([0-9]*\\)\$/\\1/p" "$log")
    [[ -n ${wpid[k]} ]] || { say "no 'worker $k pid P' line"; show "$log"; return 1; }
  done
  echo_round 40
}

# b. Both workers accepted some of the connections.
both_accepted() {
  local round
  [[ -n $port ]] || return 1
  for ((round = 1; round <= 5; round++)); do
    spread || return 1
    say "$mode: after $total connections: worker 1 ${sp[1]}, worker 2 ${sp[2]}"
    ((sp[1] > 0 && sp[2] > 0)) && return 0
    echo_round 40 || return 1
  done
  say "one worker got every connection in 5 rounds"
  return 1
}

# hold: 8 held connections (a node_hold in the background: $holder, its
# output $hold); sets h[1], h[2] to how many each worker holds.
hold() {
  local b1 b2
  spread || return 1
  b1=${sp[1]} b2=${sp[2]}
  hold="$tmp/hold-$RANDOM.out"
  "$nodejs" -e "$node_hold" "$port" 8 >"$hold" 2>&1 &
  holder=$!
  pids+=("$holder")
  wait_for "$hold" '^held 8$' "$holder" 10 || return 1
  total=$((total + 8))
  spread || return 1
  h=(- $((sp[1] - b1)) $((sp[2] - b2)))
}

# c. Stop one worker while connections are held on both (or one).
victim=
survivor=
stop_one_worker() {
  local hold holder h i line want
  victim=
  [[ -n $port ]] || return 1
  # Held on both workers, so that the kill has something to spare, and
  # something to lose; the third try is used whatever it gives.
  for i in 1 2 3; do
    hold || return 1
    ((h[1] > 0 && h[2] > 0 || i == 3)) && break
    say "$mode: held: worker 1 ${h[1]}, worker 2 ${h[2]}; again"
    stop "$holder"
  done
  # Kill worker 1 unless it holds all 8: the survivor must hold some.
  if ((h[2] > 0)); then victim=1 survivor=2; else victim=2 survivor=1; fi
  say "$mode: held: worker 1 ${h[1]}, worker 2 ${h[2]}; stopping worker $victim"
  kill -TERM "${wpid[victim]}"
  wait_for "$log" "^worker $victim pid ${wpid[victim]} exited" "$primary" 5 ||
    return 1
  kill -USR2 "$holder"
  for ((i = 0; i < 100; i++)); do kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
  wait "$holder" 2>/dev/null
  line=$(grep '^alive ' "$hold")
  want="alive ${h[survivor]} closed ${h[victim]} timeout 0"
  if [[ $line != "$want" ]]; then
    say "held connections after the kill: '$line', expected '$want'"
    show "$hold"
    show "$log"
    return 1
  fi
  kill -0 "$primary" 2>/dev/null || { say "the primary died"; show "$log"; return 1; }
}

# d. The survivor takes every new connection.
survivor_serves() {
  local before
  [[ -n $victim ]] || return 1
  spread || return 1
  before=("${sp[@]}")
  echo_round 20 || return 1
  spread || return 1
  if ((sp[victim] != before[victim] || sp[survivor] != before[survivor] + 20)); then
    say "spread ${sp[1]}/${sp[2]}, was ${before[1]}/${before[2]}; expected 20 more for worker $survivor"
    return 1
  fi
}

# e. SIGTERM: the primary stops the workers and exits 0, leaving no child.
stop_primary() {
  local k bad=0
  [[ -n $primary ]] || return 1
  signal_wait TERM "$primary" || { show "$log"; return 1; }
  ((rc == 0)) || { say "the primary exited $rc after SIGTERM"; bad=1; }
  for k in 1 2; do
    if kill -0 "${wpid[k]}" 2>/dev/null; then
      say "worker $k (pid ${wpid[k]}) still running"
      kill -KILL "${wpid[k]}"
      bad=1
    fi
  done
  tail -n 1 "$log" | grep -q '^worker 1: .*, worker 2: ' ||
    { say "no spread line at the end"; bad=1; }
  if ((bad)); then show "$log"; return 1; fi
}

# signal_wait SIG PID: send SIG, wait up to 10 s for PID to exit; sets $rc.
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

# f. Orphaned workers exit when their channel closes.
orphans_exit() {
  local k i left p
  primary=''
  log="$tmp/$mode-orphans.log"
  start "$log" "$prefork" --workers 2 --port 0 "$@"
  p=$pid
  wait_for "$log" '^listening on [0-9]+' "$p" 10 || return 1
  for k in 1 2; do
    wpid[k]=$(sed -n "s/^worker $k pid \\([0-9]*\\)\$/\\1/p" "$log")
  done
  kill -KILL "$p"
  wait "$p" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    left=
    for k in 1 2; do
      # Field 3 of /proc/PID/stat is the state; Z: exited, not yet reaped.
      [[ $(awk '{print $3}' "/proc/${wpid[k]}/stat" 2>/dev/null) =~ ^(Z|)$ ]] ||
        left+=" ${wpid[k]}"
    done
    [[ -z $left ]] && return 0
    sleep 0.1
  done
  say "workers still running 5 s after the primary died:$left"
  kill -KILL $left # a list of pids
  show "$log"
  return 1
}

run_mode() {
  mode=$1
  shift
  primary='' port='' victim='' total=0 log="$tmp/$mode.log"
  check "$mode a. 2 workers start, 'listening on PORT'; 40 connections echo every byte" start_and_echo "$@"
  check "$mode b. the primary's spread counts them all, and both workers accepted some" both_accepted
  check "$mode c. a worker stopped (SIGTERM): held connections on the other still echo, the primary reports the exit" stop_one_worker
  check "$mode d. 20 new connections echo, all on the surviving worker" survivor_serves
  check "$mode e. SIGTERM to the primary: exit 0, a final spread, no worker left" stop_primary
  if [[ -n $primary ]] && kill -0 "$primary" 2>/dev/null; then stop "$primary"; fi
  check "$mode f. the primary killed (SIGKILL): its workers exit by themselves" orphans_exit "$@"
}

if [[ -z $nodejs || ! -x $nodejs || ! -x $prefork ]]; then
  say "need node (CNET_NODE='$nodejs') and $prefork"
  echo "not ok - prerequisites (node and the built prefork-echo)"
  echo "0 passed, 12 failed"
  exit 1
fi

run_mode shared
run_mode exclusive --exclusive

echo "$passed passed, $failed failed"
((failed == 0))
