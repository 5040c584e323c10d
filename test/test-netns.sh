#!/usr/bin/env bash
# Faults on a real network path (issue 5): two network namespaces joined by a
# veth pair, with loss, delay and reordering imposed in both directions; a
# cnet echo server (examples/echo-server --bench) in one, the cnet client
# test/helper-netns-echo.c in the other.
#
#   a. 1000 echo exchanges over 8 connections, each a message of a random
#      size (1 B .. 64 KiB, seeded: the seed is printed; the first is 1 B, the
#      second 64 KiB) that must come back byte-exact; then each connection
#      ends and gets the server's FIN. Within 45 s.
#   b. A connect to a black-holed address (on the veth subnet, with a
#      permanent neighbour entry whose MAC nobody has: the SYNs leave and
#      vanish) with cnet's connect_timeout option of 1500 ms: 'error'
#      ETIMEDOUT, then 'close', 1500 .. 2500 ms after connect().
#   c. The same, Node's way: socket.setTimeout(1500) (the connect option
#      timeout) -> 'timeout' -> destroy(): 'close' without 'connect' or
#      'error', 1500 .. 2500 ms after connect().
#
# Impairments. With sch_netem (most distribution kernels) each veth's egress
# gets `netem delay 5ms reorder 3% 50% loss 1%`. Where the kernel has no
# netem, the test builds what it can from what is there and says so:
#   loss     an HTB class whose FIFO holds 0 packets, and a classic-BPF
#            classifier (cls_bpf; `ld rand`, SKF_AD_RANDOM) that sends 1% of
#            the IP packets there at random: dropped.
#   delay    a 100 Mbit/s HTB bottleneck with a 200-packet FIFO: up to
#            ~24 ms of queueing delay when loaded (bulk transfer fills it),
#            none when idle. A fixed propagation delay needs netem: the test
#            prints that it could not apply one.
#   reorder  a second HTB class of higher priority, to which the same kind
#            of random classifier sends 3% of the packets: they overtake the
#            bottleneck's queue, as netem's `reorder` lets some packets skip
#            its delay.
# Every tc command that fails is printed with its error; the impairment it
# was for is listed as not applied, and the test runs with the rest. GSO is
# turned off on the veths (gso_max_segs 1), so the impairments act on real
# MTU-sized segments, not 64 KiB super-packets. After a, the TCP counters of
# both namespaces (retransmits, reordering the senders detected,
# out-of-order arrivals) and the drop counters of the qdiscs are printed:
# proof that the path was really impaired.
#
# Skips (prints `skip - REASON`, exits 0) when not root, without `ip`, or
# when `ip netns add` fails (no CAP_SYS_ADMIN, a container without netns).
# Namespaces are named cnet-PID-c / cnet-PID-s, the subnet is a random /29 in
# 10.200.0.0/16; the EXIT trap stops the server and deletes both namespaces.
#
# Registered in CTest as `netns`. Environment (set by CTest): CNET_BUILD_DIR
# (the helper), CNET_EXAMPLES_DIR (echo-server). CNET_NETNS_SEED fixes the
# seed. CNET_TEST_WRAPPER (e.g. "valgrind --error-exitcode=1
# --leak-check=full") runs the helper under that command, with longer
# deadlines. Prints `ok - ...` / `not ok - ...` per check and a final
# `N passed, M failed`; exits 1 if any check failed.
#
#   CNET_BUILD_DIR=build CNET_SOURCE_DIR=. bash test/test-netns.sh
set -uo pipefail

test_name=netns
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"

build=${CNET_BUILD_DIR:-$src/build}
helper="$build/helper-netns-echo"
server="$examples/echo-server"
read -r -a wrapper <<<"${CNET_TEST_WRAPPER:-}"
slow=1
((${#wrapper[@]} == 0)) || slow=4

count=1000
conns=8
seed=${CNET_NETNS_SEED:-$(((RANDOM << 15 | RANDOM) + 1))}
hole_ms=1500
loss_pct=1      # per direction
reorder_pct=3   # per direction
delay_ms=5      # per direction, with netem
bottleneck_mbit=100
bottleneck=${bottleneck_mbit}mbit
queue_pkts=200

ns_c="cnet-$$-c" # the client's namespace
ns_s="cnet-$$-s" # the server's
made_ns=()

skip() {
  echo "skip - $1"
  echo "0 passed, 0 failed (skipped)"
  exit 0
}

netns_cleanup() {
  local ns
  [[ $BASHPID == "$cleanup_owner" ]] || return 0
  cleanup # common.bash: servers stopped, $tmp removed
  for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
trap netns_cleanup EXIT

((EUID == 0)) || skip "not root: network namespaces need CAP_SYS_ADMIN (run as root)"
command -v ip >/dev/null || skip "no 'ip' command (iproute2 is not installed)"
if ! err=$(ip netns add "$ns_c" 2>&1); then
  skip "'ip netns add' failed: $err"
fi
made_ns+=("$ns_c")
if ! err=$(ip netns add "$ns_s" 2>&1); then
  skip "'ip netns add' failed: $err"
fi
made_ns+=("$ns_s")

if [[ ! -x $helper || ! -x $server ]]; then
  say "need $helper and $server (build the tests and examples)"
  echo "not ok - prerequisites (the built helper-netns-echo and echo-server)"
  echo "0 passed, 3 failed"
  exit 1
fi

in_c() { ip netns exec "$ns_c" "$@"; }
in_s() { ip netns exec "$ns_s" "$@"; }

# A random /29 in 10.200.0.0/16: .1 the client, .2 the server, .3 the hole.
net="10.200.$((RANDOM % 256))"
base=$(((RANDOM % 32) * 8))
ip_c="$net.$((base + 1))"
ip_s="$net.$((base + 2))"
ip_hole="$net.$((base + 3))"

setup_failed=
# net_cmd NS CMD...: run CMD in NS; on failure say so and remember it.
net_cmd() {
  local ns=$1 out
  shift
  if ! out=$(ip netns exec "$ns" "$@" 2>&1); then
    say "FAILED: $* -> ${out:-exit status $?}"
    setup_failed=1
    return 1
  fi
}

net_cmd "$ns_c" ip link add va type veth peer name vb netns "$ns_s"
net_cmd "$ns_c" ip addr add "$ip_c/29" dev va
net_cmd "$ns_s" ip addr add "$ip_s/29" dev vb
for ns in "$ns_c" "$ns_s"; do
  net_cmd "$ns" ip link set lo up
done
# GSO off, so that tc sees the segments TCP really sends (MTU-sized).
gso_note="GSO off (gso_max_segs 1)"
ip -n "$ns_c" link set va gso_max_segs 1 2>/dev/null &&
  ip -n "$ns_s" link set vb gso_max_segs 1 2>/dev/null ||
  gso_note="GSO left on (gso_max_segs not settable): impairments act on GSO super-packets"
net_cmd "$ns_c" ip link set va up
net_cmd "$ns_s" ip link set vb up
# The hole: an address on the subnet whose MAC nobody has. The client sends
# its SYNs there (no ARP, which would fail with EHOSTUNREACH); vb drops them
# as meant for another host; nothing ever answers.
net_cmd "$ns_c" ip neigh replace "$ip_hole" lladdr 02:00:5e:00:53:01 dev va nud permanent
if [[ -n $setup_failed ]]; then
  echo "not ok - setup: namespaces $ns_c and $ns_s made, but the veth pair could not be set up"
  echo "0 passed, 1 failed"
  exit 1
fi

applied=()
not_applied=()
# tc_try NS CMD...: `tc CMD` in NS; prints the command and any error.
tc_try() {
  local ns=$1 out
  shift
  if out=$(ip netns exec "$ns" tc "$@" 2>&1); then
    say "tc $* (in ${ns##*-})"
    return 0
  fi
  say "FAILED: tc $* (in ${ns##*-}) -> ${out//$'\n'/ }"
  return 1
}

# rand_match PERCENT: classic BPF (tc's bytecode syntax) matching PERCENT %
# of packets at random: A = random u32 (ld [SKF_AD_OFF + SKF_AD_RANDOM]);
# if A >= threshold, no match (return 0), else match (return -1: the
# filter's classid).
rand_match() {
  local thr=$(($1 * 4294967296 / 100))
  echo "4,32 0 0 4294963256,53 0 1 $thr,6 0 0 0,6 0 0 4294967295"
}

# impair_netem NS DEV: netem, all three at once.
impair_netem() {
  tc_try "$1" qdisc add dev "$2" root netem limit 10000 delay "${delay_ms}ms" \
    reorder "${reorder_pct}%" 50% loss "${loss_pct}%"
}

# impair_fallback NS DEV: HTB, pfifo and cls_bpf (see the header). Sets
# ok_loss / ok_delay / ok_reorder to 0 where a piece failed.
impair_fallback() {
  local ns=$1 dev=$2
  if ! tc_try "$ns" qdisc add dev "$dev" root handle 1: htb default 10 r2q 1000; then
    ok_loss=0 ok_delay=0 ok_reorder=0
    return
  fi
  # The bottleneck (1:1) and its ordinary class (1:10) with a FIFO.
  tc_try "$ns" class add dev "$dev" parent 1: classid 1:1 htb rate "$bottleneck" ceil "$bottleneck" &&
    tc_try "$ns" class add dev "$dev" parent 1:1 classid 1:10 htb rate "$bottleneck" ceil "$bottleneck" prio 1 &&
    tc_try "$ns" qdisc add dev "$dev" parent 1:10 handle 10: pfifo limit "$queue_pkts" ||
    ok_delay=0
  # The fast lane that overtakes the bottleneck's queue.
  if ((ok_delay)); then
    tc_try "$ns" class add dev "$dev" parent 1:1 classid 1:20 htb rate 20mbit ceil "$bottleneck" prio 0 &&
      tc_try "$ns" qdisc add dev "$dev" parent 1:20 handle 20: pfifo limit 100 &&
      tc_try "$ns" filter add dev "$dev" parent 1: protocol ip prio 2 bpf \
        bytecode "$(rand_match "$reorder_pct")" classid 1:20 ||
      ok_reorder=0
  else
    say "(reordering needs the bottleneck's queue to overtake: not tried)"
    ok_reorder=0
  fi
  # The drop class: a FIFO that holds nothing.
  tc_try "$ns" class add dev "$dev" parent 1: classid 1:99 htb rate 10gbit &&
    tc_try "$ns" qdisc add dev "$dev" parent 1:99 handle 99: pfifo limit 0 &&
    tc_try "$ns" filter add dev "$dev" parent 1: protocol ip prio 1 bpf \
      bytecode "$(rand_match "$loss_pct")" classid 1:99 ||
    ok_loss=0
  return 0
}

impair_mode=none
if ! command -v tc >/dev/null; then
  not_applied+=("loss, delay, reordering: no 'tc' command (iproute2's tc is missing)")
elif out=$(in_c tc qdisc add dev va root netem delay 1ms 2>&1); then
  in_c tc qdisc del dev va root 2>/dev/null
  impair_mode=netem
  say "sch_netem is available: netem in both directions"
  if impair_netem "$ns_c" va && impair_netem "$ns_s" vb; then
    applied+=("loss ${loss_pct}% per direction (netem loss)"
              "delay ${delay_ms} ms per direction, RTT +$((2 * delay_ms)) ms (netem delay)"
              "reordering ${reorder_pct}% per direction, correlation 50% (netem reorder)")
  else
    not_applied+=("loss, delay, reordering: netem rejected the options (see above)")
  fi
else
  impair_mode=fallback
  say "no sch_netem here (tc: ${out//$'\n'/ }); building impairments from HTB, pfifo and cls_bpf"
  ok_loss=1 ok_delay=1 ok_reorder=1
  impair_fallback "$ns_c" va
  impair_fallback "$ns_s" vb
  if ((ok_loss)); then
    applied+=("loss ${loss_pct}% per direction (cls_bpf random classify into an HTB class with pfifo limit 0)")
  else
    not_applied+=("loss: the cls_bpf/HTB/pfifo commands failed (see above)")
  fi
  if ((ok_delay)); then
    applied+=("delay: queueing only, a ${bottleneck_mbit} Mbit/s HTB bottleneck with a ${queue_pkts}-packet FIFO (<= ~$((queue_pkts * 1514 * 8 / (bottleneck_mbit * 1000))) ms when loaded, 0 when idle)")
  else
    not_applied+=("delay (queueing): the HTB bottleneck commands failed (see above)")
  fi
  not_applied+=("delay (fixed, per packet): needs sch_netem, which this kernel lacks ($(uname -r))")
  if ((ok_reorder)); then
    applied+=("reordering: ${reorder_pct}% per direction at random to a higher-priority HTB class that overtakes the bottleneck's queue (when it has one)")
  else
    not_applied+=("reordering: the HTB fast lane could not be set up (see above)")
  fi
fi
applied+=("$gso_note")

echo "# path: $ns_c ($ip_c, va) <-> $ns_s ($ip_s, vb); hole $ip_hole; impairments: $impair_mode"
for a in "${applied[@]}"; do echo "#   applied: $a"; done
for a in "${not_applied[@]}"; do echo "#   NOT applied: $a"; done

# counters NS: TCP counters of the namespace, as "name value" lines.
counters() {
  ip netns exec "$1" awk '
    /^(Tcp|TcpExt):/ { if (!hdr[$1]) { hdr[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
                       for (i = 2; i <= NF; i++) print name[$1, i], $i }' \
    /proc/net/snmp /proc/net/netstat
}
# counter FILE NAME
counter() { awk -v n="$2" '$1 == n { print $2; exit }' "$1"; }

port=
pid=
server_pid=
slog="$tmp/server.log"

# sample_backlogs: every 50 ms, each qdisc's backlog on both ends, as
# "SIDE KIND HANDLE PACKETS" lines (until killed).
sample_backlogs() {
  while :; do
    tc -n "$ns_c" -s qdisc show dev va 2>/dev/null | awk '/^qdisc/ { q = $2 " " $3 } / backlog / { print "c", q, $3 + 0 }'
    tc -n "$ns_s" -s qdisc show dev vb 2>/dev/null | awk '/^qdisc/ { q = $2 " " $3 } / backlog / { print "s", q, $3 + 0 }'
    sleep 0.05
  done
}

start_server() {
  start "$slog" ip netns exec "$ns_s" "$server" 0 --bench --stats
  server_pid=$pid
  wait_for "$slog" '^listening on [0-9]+' "$pid" 10 || return 1
  port=$(tcp_port "$slog")
}

# a. 1000 exchanges, every byte checked.
echo_all() {
  local out="$tmp/echo.out" r line c
  [[ -n $port ]] || { say "no server port"; return 1; }
  say "seed $seed (CNET_NETNS_SEED=$seed to repeat)"
  counters "$ns_c" >"$tmp/c.before"
  counters "$ns_s" >"$tmp/s.before"
  start "$tmp/backlog" sample_backlogs
  local sampler=$pid
  timeout $((50 * slow)) ip netns exec "$ns_c" "${wrapper[@]}" "$helper" echo \
    "$ip_s" "$port" "$count" "$conns" "$seed" $((45000 * slow)) >"$out" 2>&1
  r=$?
  stop "$sampler"
  pid=$server_pid
  counters "$ns_c" >"$tmp/c.after"
  counters "$ns_s" >"$tmp/s.after"
  line=$(grep '^exchanges ' "$out")
  [[ -n $line ]] && say "$line"
  for c in c s; do
    local f=$tmp/$c
    local d=()
    for n in RetransSegs TCPSACKReorder TCPTSReorder TCPOFOQueue TCPLossProbes TCPTimeouts; do
      d+=("$n +$(($(counter "$f.after" "$n") - $(counter "$f.before" "$n")))")
    done
    say "tcp ($([[ $c == c ]] && echo client || echo server)): ${d[*]}"
  done
  for ns in "$ns_c" "$ns_s"; do
    ip netns exec "$ns" tc -s qdisc show dev "$([[ $ns == "$ns_c" ]] && echo va || echo vb)" 2>/dev/null |
      awk -v w="${ns##*-}" '/^qdisc/ { q = $2 " " $3 } / Sent / { print "qdisc (" w ") " q ": sent " $4 " pkts, dropped " $7 }' |
      tr -d ',' | while read -r l; do say "$l"; done
  done
  # The deepest queue seen (the delay a packet entering it waited).
  awk '{ k = $1 " " $2 " " $3; if (!(k in max) || $4 > max[k]) max[k] = $4 }
       END { for (k in max) print k, max[k] }' "$tmp/backlog" | sort |
    while read -r side kind handle n; do
      if [[ $kind == pfifo && $handle == 10: ]]; then
        say "deepest queue ($side) $kind $handle: $n packets, ~$((n * 1514 * 8 / (bottleneck_mbit * 1000))) ms of queueing delay at $bottleneck_mbit Mbit/s"
      else
        say "deepest queue ($side) $kind $handle: $n packets"
      fi
    done
  if ((r != 0)) || [[ -z $line ]]; then
    say "the client exited $r"
    show "$out"
    return 1
  fi
  [[ $line =~ ^exchanges\ $count\  ]] || { say "not $count exchanges"; return 1; }
  wrapped "$out"
}

# wrapped OUT: under CNET_TEST_WRAPPER, its summary lines (valgrind's), and
# failure if it reported errors.
wrapped() {
  ((${#wrapper[@]} > 0)) || return 0
  grep -E 'ERROR SUMMARY|in use at exit|definitely lost|indirectly lost' "$1" |
    sed 's/^==[0-9]*== *//' | while read -r l; do say "wrapper: $l"; done
  if grep -q 'ERROR SUMMARY: [1-9]' "$1"; then
    show "$1"
    return 1
  fi
}

# b, c. The black hole, ended by a timeout.
hole() {
  local how=$1 out="$tmp/hole-$1.out" r line
  timeout $((10 * slow)) ip netns exec "$ns_c" "${wrapper[@]}" "$helper" hole \
    "$ip_hole" 9 "$how" "$hole_ms" >"$out" 2>&1
  r=$?
  line=$(grep '^hole ' "$out")
  [[ -n $line ]] && say "$line"
  if ((r != 0)); then
    say "the client exited $r"
    show "$out"
    return 1
  fi
  wrapped "$out"
}

stop_server() {
  [[ -n $server_pid ]] || return 0
  stop "$server_pid"
  grep '^worker ' "$slog" | while read -r l; do say "server: $l"; done
}

start_server || { echo "not ok - the echo server did not start in $ns_s"; show "$slog"; }
check "a. $count echo exchanges over $conns connections, 1 B .. 64 KiB each (seed $seed), byte-exact through loss/delay/reordering" echo_all
check "b. connect to the black hole $ip_hole with connect_timeout $hole_ms ms: ETIMEDOUT after $hole_ms .. $((hole_ms + 1000)) ms" hole connect_timeout
check "c. connect to the black hole with setTimeout($hole_ms) -> 'timeout' -> destroy(): closed after $hole_ms .. $((hole_ms + 1000)) ms" hole timeout
stop_server
for a in "${not_applied[@]}"; do echo "# NOT applied: $a"; done

echo "$passed passed, $failed failed"
((failed == 0))
