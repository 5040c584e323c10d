'use strict';
// Node's answers for test/test-encoding.c's differential cases.
//
//   node decoder-diff.js decode ENCODING FILE
//   node decoder-diff.js encode ENCODING FILE
//   node decoder-diff.js names - FILE
//
// FILE has one case per line, everything in hex (so any byte can appear):
//
//   decode: the chunks of one stream, separated by ',' (a chunk may be
//           empty). Prints, per stream, new StringDecoder(ENCODING)'s
//           write() result for each chunk and then end()'s, each as the hex
//           of Buffer.from(string, 'utf8'), separated by ','.
//   encode: bytes taken as UTF-8 text (buf.toString('utf8'), so invalid
//           UTF-8 becomes U+FFFD). Prints the hex of
//           Buffer.from(text, ENCODING).
//   names:  an encoding name. Prints new StringDecoder(name).encoding, or
//           '!' and the error's code and message if it throws.
//
// The first line of the output is process.version; then one line per case.
// Exits 0, or 1 (with a message on stderr) on a usage error.
const { StringDecoder } = require('node:string_decoder');
const fs = require('node:fs');

const [mode, encoding, file] = process.argv.slice(2);
if (!['decode', 'encode', 'names'].includes(mode) || file === undefined) {
  process.stderr.write('usage: decoder-diff.js decode|encode|names ENCODING FILE\n');
  process.exit(1);
}

const lines = fs.readFileSync(file, 'latin1').split('\n');
if (lines[lines.length - 1] === '') lines.pop();

const utf8hex = (s) => Buffer.from(s, 'utf8').toString('hex');
const out = [process.version];

for (const line of lines) {
  if (mode === 'decode') {
    const d = new StringDecoder(encoding);
    const res = line.split(',').map((h) => utf8hex(d.write(Buffer.from(h, 'hex'))));
    res.push(utf8hex(d.end()));
    out.push(res.join(','));
  } else if (mode === 'encode') {
    const text = Buffer.from(line, 'hex').toString('utf8');
    out.push(Buffer.from(text, encoding).toString('hex'));
  } else {
    const name = Buffer.from(line, 'hex').toString('utf8');
    try {
      out.push(new StringDecoder(name).encoding);
    } catch (e) {
      out.push(`!${e.code} ${e.message}`);
    }
  }
}
process.stdout.write(out.join('\n') + '\n');
