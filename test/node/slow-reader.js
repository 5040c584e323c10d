'use strict';
// A fast writer that is a slow reader, against an echo server.
//
//   node slow-reader.js PORT|PATH [BYTES] [SLOW_SECONDS] [RATE]
//
// Sends BYTES (default 256 MiB) of random bytes as fast as the connection
// takes them (write() until it returns false, then wait for 'drain'), while
// reading the echo at RATE bytes/s (default 1 MiB/s) for the first
// SLOW_SECONDS (default 4) -- by pausing the socket, so the kernel's window
// pushes back -- then as fast as possible. Every byte must come back in
// order: length and sha256 of what came back equal those of what was sent.
// Then end(), and 'end' and a clean 'close' are expected.
//
// Prints, on stdout:
//   slow phase: S s, read R bytes, sent W bytes, writer blocked: true|false
//   ok BYTES bytes echoed intact in T s (sha256 ...)
// Exits 0 on success, 1 on a mismatch or error, 2 on its own 50 s timeout.
// PORT connects to 127.0.0.1:PORT; anything non-numeric is a Unix socket path.
const net = require('node:net');
const crypto = require('node:crypto');

const [target, bytesArg, slowArg, rateArg] = process.argv.slice(2);
if (target === undefined) {
  console.error('usage: slow-reader.js PORT|PATH [BYTES] [SLOW_SECONDS] [RATE]');
  process.exit(64);
}
const total = bytesArg === undefined ? 256 * 1024 * 1024 : Number(bytesArg);
const slowMs = (slowArg === undefined ? 4 : Number(slowArg)) * 1000;
const rate = rateArg === undefined ? 1024 * 1024 : Number(rateArg);
const CHUNK = 64 * 1024;

const sentHash = crypto.createHash('sha256');
const recvHash = crypto.createHash('sha256');
let sent = 0;
let received = 0;
let start = 0;
let slow = true;
let resumeTimer = null;
let done = false;
let sawEnd = false;

function fail(msg) {
  console.error(`slow-reader: FAIL: ${msg} (sent ${sent}, received ${received})`);
  process.exit(1);
}

const watchdog = setTimeout(() => {
  console.error(`slow-reader: TIMEOUT after 50 s: sent ${sent}, received ${received} of ${total}`);
  process.exit(2);
}, 50000);

const opts = /^[0-9]+$/.test(target)
  ? { host: '127.0.0.1', port: Number(target) }
  : { path: target };
const sock = net.createConnection(opts);

// Fresh random bytes for every chunk (OpenSSL's generator: about 0.1 s for
// 256 MiB here), hashed as they go, so nothing holds the whole stream.
function chunkAt(off) {
  return crypto.randomBytes(Math.min(CHUNK, total - off));
}

function pump() {
  while (sent < total) {
    const buf = chunkAt(sent);
    sentHash.update(buf);
    sent += buf.length;
    if (!sock.write(buf)) {
      sock.once('drain', pump);
      return;
    }
  }
}

function endSlowPhase() {
  if (!slow) return;
  slow = false;
  const secs = (Date.now() - start) / 1000;
  // Still waiting for 'drain': the writer had filled every buffer on the way
  // and was held back, so the server was under pressure the whole time.
  console.log(`slow phase: ${secs.toFixed(1)} s, read ${received} bytes, ` +
              `sent ${sent} bytes, writer blocked: ${sock.writableNeedDrain}`);
  if (resumeTimer !== null) clearTimeout(resumeTimer);
  resumeTimer = null;
  sock.resume();
}

sock.on('connect', () => {
  start = Date.now();
  setTimeout(endSlowPhase, slowMs);
  pump();
});

sock.on('data', (buf) => {
  if (received + buf.length > total) fail(`more than ${total} bytes came back`);
  recvHash.update(buf);
  received += buf.length;
  if (received === total) {
    const got = recvHash.digest('hex');
    const want = sentHash.digest('hex');
    if (got !== want) fail(`sha256 mismatch: sent ${want}, received ${got}`);
    done = true;
    const secs = (Date.now() - start) / 1000;
    console.log(`ok ${total} bytes echoed intact in ${secs.toFixed(1)} s (sha256 ${got})`);
    sock.end();
    return;
  }
  if (!slow) return;
  // Ahead of RATE? Stop reading until we are back on schedule.
  const aheadMs = (received / rate) * 1000 - (Date.now() - start);
  if (aheadMs > 0) {
    sock.pause();
    resumeTimer = setTimeout(() => {
      resumeTimer = null;
      if (slow) sock.resume();
    }, aheadMs);
  }
});

sock.on('end', () => {
  sawEnd = true;
  if (!done) fail(`'end' after only ${received} of ${total} bytes`);
});
sock.on('error', (err) => fail(`socket error: ${err.code || ''} ${err.message}`));
sock.on('close', (hadError) => {
  clearTimeout(watchdog);
  if (hadError) fail("'close' with hadError");
  if (!sawEnd) fail("'close' without 'end'");
  process.exit(0);
});
