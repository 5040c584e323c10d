'use strict';
// Node's answers for the differential cases of test/test-block-list.c and
// test/test-socket-address.c.
//
//   node blocklist-diff.js FILE
//
// FILE has one operation per line, a JSON array. `fam` is cnet's family
// argument: 0 is Node's default (the argument left out), 4 'ipv4', 6 'ipv6';
// any other number n is passed to SocketAddress as the number n and to
// BlockList.check() as the string 'ipv<n>'.
//
//   ["new"]                          a new BlockList            -> ok
//   ["addr", fam, address]           blockList.addAddress()     -> ok | !err
//   ["range", fam, start, end]       blockList.addRange()       -> ok | !err
//   ["subnet", fam, network, prefix] blockList.addSubnet()      -> ok | !err
//   ["check", fam, address]          blockList.check()          -> true|false
//   ["rules"]                        JSON of blockList.rules
//   ["sa", fam, address|null, port, flowlabel]
//                                    new SocketAddress()  -> JSON | !err
//   ["parse", input]                 SocketAddress.parse() as Node v22.13+
//                                    defines it, with the explicit-port fix
//                                    (see below)          -> JSON | undefined
//
// !err is '!' CODE ' ' JSON.stringify(message). The first output line is
// process.version; then one line per operation. Exits 0, or 1 (with a
// message on stderr) on a usage error.
const { BlockList, SocketAddress } = require('node:net');
const fs = require('node:fs');

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write('usage: blocklist-diff.js FILE\n');
  process.exit(1);
}

function familyArg(fam, forCheck) {
  if (fam === 0) return undefined;
  if (fam === 4) return 'ipv4';
  if (fam === 6) return 'ipv6';
  return forCheck ? `ipv${fam}` : fam;
}

function attempt(fn) {
  try {
    const r = fn();
    return r === undefined ? 'ok' : r;
  } catch (e) {
    return `!${e.code} ${JSON.stringify(e.message)}`;
  }
}

// SocketAddress.parse() is Node v22.13+; this is its definition on top of
// v20's URL: new URL('http://' + input)'s hostname and port, then a
// SocketAddress of them, undefined for anything that throws. A URL drops
// the scheme's default port, which nodejs/node#62906 reports as a bug and
// Node's test expects kept ('127.0.0.1:80' has port 80): when http: gave no
// port, https: (whose default is 443) tells an explicit ':80' apart.
function parse(input) {
  let url;
  let port;
  try {
    url = new URL(`http://${input}`);
    port = url.port !== '' ? url.port : new URL(`https://${input}`).port;
  } catch {
    return undefined;
  }
  const host = url.hostname;
  try {
    if (host.startsWith('[') && host.endsWith(']')) {
      return new SocketAddress({
        address: host.slice(1, -1), port: +port, family: 'ipv6',
      });
    }
    return new SocketAddress({ address: host, port: +port });
  } catch {
    return undefined;
  }
}

const lines = fs.readFileSync(file, 'utf8').split('\n');
if (lines[lines.length - 1] === '') lines.pop();

const out = [process.version];
let list = new BlockList();

for (const line of lines) {
  const [op, ...a] = JSON.parse(line);
  switch (op) {
    case 'new':
      list = new BlockList();
      out.push('ok');
      break;
    case 'addr':
      out.push(attempt(() => list.addAddress(a[1], familyArg(a[0]))));
      break;
    case 'range':
      out.push(attempt(() => list.addRange(a[1], a[2], familyArg(a[0]))));
      break;
    case 'subnet':
      out.push(attempt(() => list.addSubnet(a[1], a[2], familyArg(a[0]))));
      break;
    case 'check':
      out.push(String(list.check(a[1], familyArg(a[0], true))));
      break;
    case 'rules':
      out.push(JSON.stringify(list.rules));
      break;
    case 'sa': {
      const options = { port: a[2], flowlabel: a[3] };
      if (a[0] !== 0) options.family = familyArg(a[0]);
      if (a[1] !== null) options.address = a[1];
      out.push(attempt(() => JSON.stringify(new SocketAddress(options))));
      break;
    }
    case 'parse': {
      const sa = parse(a[0]);
      out.push(sa === undefined ? 'undefined' : JSON.stringify(sa));
      break;
    }
    default:
      process.stderr.write(`blocklist-diff.js: unknown operation ${op}\n`);
      process.exit(1);
  }
}
process.stdout.write(out.join('\n') + '\n');
