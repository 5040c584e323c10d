'use strict';
// Send random bytes to an echo server and check they come back unchanged.
//
//   node send-random.js PORT|PATH [BYTES] [--greeting=TEXT]
//
// PORT connects to 127.0.0.1:PORT, anything non-numeric is a Unix socket
// path. BYTES defaults to 8 MiB. The server's greeting (default `hello\r\n`,
// `--greeting=` for none) must arrive first; everything after it must be
// exactly the bytes sent (compared by length and sha256). The client writes in
// 64 KiB chunks honouring backpressure, and calls end() only once all the echo
// has arrived; it then expects 'end' and a clean 'close'. Exits 0 on success,
// 1 on a mismatch or error, 2 on its own 20 s timeout.
const net = require('node:net');
const crypto = require('node:crypto');

const args = process.argv.slice(2);
let greeting = Buffer.from('hello\r\n');
const pos = [];
for (const a of args) {
  if (a.startsWith('--greeting=')) greeting = Buffer.from(a.slice(11).replace(/\\r/g, '\r').replace(/\\n/g, '\n'));
  else pos.push(a);
}
if (pos.length < 1) {
  console.error('usage: send-random.js PORT|PATH [BYTES] [--greeting=TEXT]');
  process.exit(64);
}
const target = pos[0];
const size = pos[1] === undefined ? 8 * 1024 * 1024 : Number(pos[1]);
const payload = crypto.randomBytes(size);
const sentHash = crypto.createHash('sha256').update(payload).digest('hex');

function fail(msg) {
  console.error(`send-random: FAIL: ${msg}`);
  process.exit(1);
}

const timer = setTimeout(() => {
  console.error(`send-random: TIMEOUT: received ${received} of ${size} bytes` +
                ` (greeting ${greetingDone ? 'seen' : 'not seen'})`);
  process.exit(2);
}, 20000);

const opts = /^[0-9]+$/.test(target)
  ? { host: '127.0.0.1', port: Number(target) }
  : { path: target };
const sock = net.createConnection(opts);

let head = Buffer.alloc(0); // bytes before the greeting is complete
let greetingDone = greeting.length === 0;
let received = 0;
const hash = crypto.createHash('sha256');
let ended = false;
let sawEnd = false;

function onEcho(buf) {
  if (received + buf.length > size) fail(`server sent more than ${size} bytes back`);
  hash.update(buf);
  received += buf.length;
  if (received === size && !ended) {
    ended = true;
    const got = hash.digest('hex');
    if (got !== sentHash) fail(`sha256 mismatch: sent ${sentHash}, received ${got}`);
    console.log(`send-random: ${size} bytes echoed intact (sha256 ${got})`);
    sock.end();
  }
}

sock.on('data', (chunk) => {
  if (!greetingDone) {
    head = Buffer.concat([head, chunk]);
    if (head.length < greeting.length) {
      if (!greeting.subarray(0, head.length).equals(head))
        fail(`bad greeting: ${JSON.stringify(head.toString('latin1'))}`);
      return;
    }
    if (!head.subarray(0, greeting.length).equals(greeting))
      fail(`bad greeting: ${JSON.stringify(head.subarray(0, greeting.length).toString('latin1'))}`);
    greetingDone = true;
    const rest = head.subarray(greeting.length);
    head = null;
    if (rest.length) onEcho(rest);
    return;
  }
  onEcho(chunk);
});

sock.on('connect', () => {
  let off = 0;
  const CHUNK = 64 * 1024;
  function pump() {
    while (off < size) {
      const end = Math.min(off + CHUNK, size);
      const ok = sock.write(payload.subarray(off, end));
      off = end;
      if (!ok) {
        sock.once('drain', pump);
        return;
      }
    }
  }
  pump();
});

sock.on('end', () => {
  sawEnd = true;
  if (!ended) fail(`'end' after only ${received} of ${size} bytes`);
});
sock.on('error', (err) => fail(`socket error: ${err.code || ''} ${err.message}`));
sock.on('close', (hadError) => {
  clearTimeout(timer);
  if (hadError) fail("'close' with hadError");
  if (!sawEnd) fail("'close' without 'end'");
  process.exit(0);
});
