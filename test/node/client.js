'use strict';
// A small Node client: connect, write MESSAGE, end() (half-close), and copy
// every byte received to stdout, raw. Events go to stderr, one line each:
// `event connect`, `event data <n>`, `event end`, `event close hadError=<b>`.
//
//   node client.js PORT|PATH [MESSAGE]
//
// PORT connects to 127.0.0.1:PORT, anything non-numeric is a Unix socket
// path. MESSAGE defaults to `world!\r\n` (\r and \n escapes are expanded).
// Exits 0 once 'end' and then 'close' (without error) were seen, 1 on an
// error or a close without 'end', 2 on its own 10 s timeout.
const net = require('node:net');

const target = process.argv[2];
if (target === undefined) {
  console.error('usage: client.js PORT|PATH [MESSAGE]');
  process.exit(64);
}
const message = (process.argv[3] === undefined ? 'world!\\r\\n' : process.argv[3])
  .replace(/\\r/g, '\r').replace(/\\n/g, '\n');

const timer = setTimeout(() => {
  console.error('event timeout');
  process.exit(2);
}, 10000);

const opts = /^[0-9]+$/.test(target)
  ? { host: '127.0.0.1', port: Number(target) }
  : { path: target };
const chunks = [];
let sawEnd = false;
const sock = net.createConnection(opts, () => {
  console.error('event connect');
  sock.write(message);
  sock.end();
});
sock.on('data', (d) => {
  console.error(`event data ${d.length}`);
  chunks.push(d);
});
sock.on('end', () => {
  sawEnd = true;
  console.error('event end');
});
sock.on('error', (err) => {
  console.error(`event error ${err.code || ''} ${err.message}`);
});
sock.on('close', (hadError) => {
  clearTimeout(timer);
  console.error(`event close hadError=${hadError}`);
  process.stdout.write(Buffer.concat(chunks), () => {
    process.exit(!hadError && sawEnd ? 0 : 1);
  });
});
