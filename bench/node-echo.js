'use strict';
// Node's echo server, the peer cnet is compared with.
//
//   node node-echo.js [PORT|PATH] [--data]
//
// Default: net.createServer((c) => c.pipe(c)), the form cnet's
// examples/echo-server --bench mirrors. --data: c.on('data', (d) => c.write(d))
// with no backpressure at all -- a slow reader makes it buffer everything
// (test/test-slow-reader.sh uses it, by hand, to show its bound can fail).
// A number is a TCP port (0: any free one); anything else a Unix socket path.
// Prints "listening on PORT|PATH". Ends at SIGTERM/SIGINT (default action).
const net = require('node:net');

let where = '8124';
let data = false;
for (const a of process.argv.slice(2)) {
  if (a === '--data') data = true;
  else where = a;
}

const server = net.createServer((c) => {
  c.on('error', () => c.destroy());
  if (data) c.on('data', (d) => c.write(d));
  else c.pipe(c);
});
server.on('error', (err) => { throw err; });
const target = /^[0-9]+$/.test(where) ? Number(where) : where;
server.listen(target, 511, () => {
  const a = server.address();
  console.log(`listening on ${typeof a === 'string' ? a : a.port}`);
});
