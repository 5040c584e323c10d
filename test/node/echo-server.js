'use strict';
// The Node docs' net.createServer() example (doc/api/net.md), used as the
// reference peer for cnet's echo-client and as the "what Node does" baseline:
//
//   node echo-server.js [PORT|PATH]
//
// A numeric argument is a TCP port (0 = any free port), anything else a Unix
// socket path; default 8124. Prints `server bound` once listening, preceded by
// `listening on <port>` for TCP (so callers can use port 0). SIGINT/SIGTERM
// close the server and exit 0.
const net = require('node:net');

const arg = process.argv[2] === undefined ? '8124' : process.argv[2];
const target = /^[0-9]+$/.test(arg) ? Number(arg) : arg;

const server = net.createServer((c) => {
  // 'connection' listener.
  console.log('client connected');
  c.on('end', () => {
    console.log('client disconnected');
  });
  c.write('hello\r\n');
  c.pipe(c);
});
server.on('error', (err) => {
  console.error(`server error: ${err.code || ''} ${err.message}`);
  process.exit(1);
});
server.listen(target, () => {
  const a = server.address();
  if (typeof a === 'object' && a !== null) console.log(`listening on ${a.port}`);
  console.log('server bound');
});

function shutdown() {
  server.close(() => process.exit(0));
  // Open connections keep close() from completing; do not wait for them.
  setTimeout(() => process.exit(0), 500).unref();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
