// Memory held per INVITE server transaction waiting in Completed for its ACK
// (RFC 3261 §17.2.1: up to Timer H, 64·T1 = 32 s), the state every call's
// first INVITE is in after its 407 challenge.
//
//   node --expose-gc bench/invite-transaction-memory.mjs [--transactions 20000] [--snapshot DIR]
//
// In process, no sockets: the transaction layer of dist/ gets N parsed INVITEs
// (a SIPp-like INVITE with an SDP body, distinct branches) and the transaction
// user answers each with a 407 carrying a Proxy-Authenticate challenge at
// once, then lets go of it. Measured after a full GC, heap and external
// (ArrayBuffer) bytes per held transaction, for the two ways the layer can keep
// a completed INVITE transaction:
// - objects: the sender has no sendWire, so the transaction object stays,
//   with its request, parsed response and timers (how every INVITE
//   transaction was kept before CompletedInvite);
// - bytes only: key, response bytes and destination (CompletedInvite).
// --snapshot DIR writes a heap snapshot per mode (open in Chrome DevTools).
import { writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { TransactionLayer } from '../dist/transaction/transaction-layer.js';
import { parseMessage } from '../dist/sip/parser.js';
import { createResponse } from '../dist/sip/response.js';
import { silentLogger } from '../dist/log.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const N = Number(arg('transactions', 20000));
const SNAPSHOT = arg('snapshot', undefined);

const SDP = [
  'v=0', 'o=user1 53655765 2353687637 IN IP4 127.0.0.2', 's=-', 'c=IN IP4 127.0.0.2', 't=0 0',
  'm=audio 6000 RTP/AVP 0 8 101', 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', '',
].join('\r\n');

/** The datagram of INVITE number i, in memory of its own (so its bytes leave `external` exactly when dropped). */
function invite(i) {
  const text = inviteText(i);
  const own = Buffer.allocUnsafeSlow(text.length);
  text.copy(own);
  return own;
}

function inviteText(i) {
  return Buffer.from(
    [
      `INVITE sip:user${i % 1000}@127.0.0.1:5060 SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.2:5070;rport;branch=z9hG4bK-1234-${i}-0`,
      'Max-Forwards: 70',
      `From: <sip:caller${i % 1000}@127.0.0.1>;tag=1234SIPpTag00${i}`,
      `To: <sip:user${i % 1000}@127.0.0.1>`,
      `Call-ID: ${i}-1234@127.0.0.2`,
      'CSeq: 1 INVITE',
      `Contact: <sip:caller${i % 1000}@127.0.0.2:5070>`,
      'User-Agent: rtcedge-bench',
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(SDP)}`,
      '',
      SDP,
    ].join('\r\n'),
  );
}

const challenge = {
  name: 'Proxy-Authenticate',
  value: 'Digest realm="example.test", nonce="AAABjK7xW2gAAAAAAAAAAXq3yQm2fZ0h1c7r9Qm2fZ0h1c7r9Q", algorithm=MD5, qop="auth", opaque="abcdefghijklmnopqrstuv"',
};

async function measure(mode) {
  const sender = {
    send: async () => undefined,
    ...(mode === 'bytes only' && { sendWire: async () => undefined }),
  };
  const layer = new TransactionLayer(sender, { t1: 500, t2: 4000, t4: 5000 }, silentLogger);
  layer.tu = {
    onRequest: (req, st) => st.respond(createResponse(req, 407, { reason: 'Proxy Authentication Required', toTag: `t${st.key.length}`, headers: [challenge] })),
    onAck: () => {},
    onStrayResponse: () => {},
  };
  const source = { transport: 'udp', remoteAddress: '127.0.0.2', remotePort: 5070, localAddress: '127.0.0.1', localPort: 5060 };
  const datagrams = Array.from({ length: N }, (_, i) => invite(i));
  await new Promise((r) => setTimeout(r, 10));
  gc();
  gc();
  const before = process.memoryUsage();
  for (const d of datagrams) layer.handle({ msg: parseMessage(d), source });
  await new Promise((r) => setTimeout(r, 10));
  datagrams.length = 0;
  gc();
  gc();
  const after = process.memoryUsage();
  const held = layer.size().server;
  if (SNAPSHOT) {
    mkdirSync(SNAPSHOT, { recursive: true });
    writeHeapSnapshot(join(SNAPSHOT, `invite-${mode.replace(' ', '-')}.heapsnapshot`));
  }
  layer.close();
  const heap = (after.heapUsed - before.heapUsed) / held;
  // The datagrams (counted in `before`) were dropped: their bytes leave `external` and do not count against the layer.
  const external = (after.arrayBuffers - before.arrayBuffers + N * datagramsBytes) / held;
  return { mode, held, heap, external };
}

const datagramsBytes = invite(0).length;
const rows = [];
for (const mode of ['objects', 'bytes only']) rows.push(await measure(mode));
console.log(`${N} INVITE server transactions answered 407, held in Completed (waiting for the ACK)\n`);
console.log('| kept as | held | heap bytes per transaction | external bytes per transaction |');
console.log('| --- | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.mode} | ${r.held} | ${r.heap.toFixed(0)} | ${r.external.toFixed(0)} |`);
