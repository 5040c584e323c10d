'use strict';
// A minimal systemd-style socket activator, for testing
// examples/socket-activation:
//
//   node socket-activate.js PROGRAM [ARGS...]
//
// Opens a listening TCP socket on 127.0.0.1, port 0, and starts PROGRAM
// with it as descriptor 3, LISTEN_FDS=1 and LISTEN_PID set to PROGRAM's own
// pid (sd_listen_fds(3)). That pid is known only once the child runs, so the
// child is a shell that exports LISTEN_PID=$$ and then execs PROGRAM, which
// keeps the pid. The launcher then closes its own copy of the socket and
// prints `activator: port N`. PROGRAM's stdout and stderr are the
// launcher's. SIGINT/SIGTERM are passed on to PROGRAM; the launcher prints
// `activator: child exited CODE` (or `... killed by SIG`) and exits with the
// child's code (128 + signal number if it was killed). After 60 s it kills
// the child, so nothing outlives a broken test.
const net = require('node:net');
const os = require('node:os');
const { spawn } = require('node:child_process');

const argv = process.argv.slice(2);
if (argv.length < 1) {
  console.error('usage: socket-activate.js PROGRAM [ARGS...]');
  process.exit(64);
}

const server = net.createServer();
server.on('error', (err) => {
  console.error(`activator: ${err.message}`);
  process.exit(1);
});
// The accept callback never runs: the child is started and our copy closed
// before anyone is told the port.
server.on('connection', (c) => c.destroy());

server.listen({ host: '127.0.0.1', port: 0 }, () => {
  const port = server.address().port;
  const fd = server._handle.fd;
  if (typeof fd !== 'number' || fd < 0) {
    console.error('activator: no descriptor for the listening socket');
    process.exit(1);
  }
  const child = spawn('/bin/sh',
    ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', ...argv], {
      stdio: ['ignore', 'inherit', 'inherit', fd],
      env: { ...process.env, LISTEN_FDS: '1' },
    });
  child.on('error', (err) => {
    console.error(`activator: spawn: ${err.message}`);
    process.exit(1);
  });
  server.close();
  console.log(`activator: port ${port}`);

  const guard = setTimeout(() => {
    console.error('activator: 60 s passed, killing the child');
    child.kill('SIGKILL');
  }, 60000);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    clearTimeout(guard);
    if (signal) {
      console.log(`activator: child killed by ${signal}`);
      process.exit(128 + os.constants.signals[signal]);
    }
    console.log(`activator: child exited ${code}`);
    process.exit(code);
  });
});
