#!/usr/bin/env bash
# Demo: the Node docs' echo server and client, in C.
#
#   bash scripts/demo.sh [BUILD]        (BUILD defaults to "build")
#
# Starts BUILD/examples/echo-server on a free port, waits for "server bound",
# runs BUILD/examples/echo-client against it, stops the server with SIGINT and
# prints both outputs. Exits 0 only if the client exited 0 having printed
# "connected to server!" and "disconnected from server", and the server exited
# 0 after SIGINT. Every step is bounded in time.
set -uo pipefail

build=${1:-build}
server="$build/examples/echo-server"
client="$build/examples/echo-client"
for exe in "$server" "$client"; do
  [[ -x $exe ]] || { echo "demo: $exe not built (run make)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cnet-demo.XXXXXX")
srv_pid=
cleanup() {
  if [[ -n $srv_pid ]] && kill -0 "$srv_pid" 2>/dev/null; then
    kill -KILL "$srv_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Ask the OS for a free port (bind port 0 and read it back).
port=$(timeout 10 node -e \
  "const s=require('net').createServer().listen(0,()=>{console.log(s.address().port);s.close()})")
[[ $port =~ ^[0-9]+$ ]] || { echo "demo: could not find a free port" >&2; exit 1; }

# The server runs at most 60 s; timeout forwards our SIGINT to it.
timeout -k 5 60 "$server" "$port" >"$tmp/server.out" 2>&1 &
srv_pid=$!

# Wait up to 10 s for "server bound".
bound=0
for _ in $(seq 100); do
  if grep -q "server bound" "$tmp/server.out"; then bound=1; break; fi
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done

cli_rc=1
if ((bound)); then
  timeout -k 5 20 "$client" "$port" >"$tmp/client.out" 2>&1
  cli_rc=$?
else
  echo "demo: server did not print 'server bound' within 10 s" >&2
  : >"$tmp/client.out"
fi

# Stop the server with SIGINT; give it 10 s to exit, then kill it.
kill -INT "$srv_pid" 2>/dev/null
for _ in $(seq 100); do
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$srv_pid" 2>/dev/null; then
  echo "demo: server ignored SIGINT for 10 s; killing it" >&2
  kill -KILL "$srv_pid" 2>/dev/null
fi
wait "$srv_pid"
srv_rc=$?
srv_pid=

echo "--- server ---"
cat "$tmp/server.out"
echo "--- client ---"
cat "$tmp/client.out"
echo "---"

ok=1
if ((cli_rc != 0)); then echo "demo: client exited $cli_rc" >&2; ok=0; fi
for want in "connected to server!" "disconnected from server"; do
  if ! grep -qF "$want" "$tmp/client.out"; then
    echo "demo: client output lacks '$want'" >&2
    ok=0
  fi
done
if ((srv_rc != 0)); then echo "demo: server exited $srv_rc" >&2; ok=0; fi

if ((ok)); then
  echo "demo: ok (port $port)"
  exit 0
fi
echo "demo: FAILED" >&2
exit 1
