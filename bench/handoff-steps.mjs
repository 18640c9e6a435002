// CPU of each step a message of a stream connection takes on the worker that reads it when another worker
// owns its Call-ID (docs/ARCHITECTURE.md, "Workers"), timed in one process over 100 REGISTER-sized messages
// read in one chunk: framing (Content-Length), the Call-ID scan, the hand-off frame (`sip.in`), reading and
// decoding the owner's answer (`flow.write`), and for comparison a full parse (what the owner does).
// µs per message, the median of --rounds rounds of --n chunks. A build whose worker-mesh.js exports
// isTextAndBytes is timed with its text-and-bytes payloads, an older one with { data, source } and
// { flowId, data }.
//
//   node bench/handoff-steps.mjs [--root /path/to/build] [--n 2000] [--rounds 5]
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './lib.mjs';

const root = arg('root', join(dirname(fileURLToPath(import.meta.url)), '..'));
const N = Number(arg('n', 2000));
const ROUNDS = Number(arg('rounds', 5));
const { StreamFramer } = await import(`${root}/dist/sip/stream-framer.js`);
const { callIdOwnerOf } = await import(`${root}/dist/transport/call-id-owner.js`);
const { encodeFrame, decodeFrame, FrameReader } = await import(`${root}/dist/transport/socket-mesh.js`);
const { meshSource } = await import(`${root}/dist/transport/remote-flows.js`);
const { parseMessage } = await import(`${root}/dist/sip/parser.js`);
const pairs = typeof (await import(`${root}/dist/transport/worker-mesh.js`)).isTextAndBytes === 'function';

const register = (i) =>
  `REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:28361;branch=z9hG4bK-1234-${i}-0\r\n` +
  `From: <sip:user${i}@example.test>;tag=1234SIPpTag00${i}\r\nTo: <sip:user${i}@example.test>\r\nCall-ID: ${i}-1234@127.0.0.1\r\n` +
  'CSeq: 2 REGISTER\r\nContact: <sip:user1@127.0.0.1:5999;transport=tcp>\r\nMax-Forwards: 70\r\nExpires: 3600\r\n' +
  'Authorization: Digest username="user1",realm="example.test",nonce="abcdefabcdefabcdefabcdefabcdef0123456789",uri="sip:example.test",' +
  'response="0123456789abcdef0123456789abcdef",algorithm=MD5\r\nContent-Length: 0\r\n\r\n';
const chunk = Buffer.from(Array.from({ length: 100 }, (_, i) => register(i)).join(''));
const source = { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 28361, localAddress: '127.0.0.1', localPort: 28360, flowId: 'tcp-1-17' };
const sourceText = JSON.stringify(meshSource(source));
const framer = new StreamFramer();
const msgs = framer.push(chunk).map((e) => e.data);
const answer = (m) => m.subarray(0, 420);
const answers = Buffer.concat(msgs.map((m) => encodeFrame([1, 'flow.write', 0, pairs ? ['tcp-1-17', answer(m)] : { flowId: 'tcp-1-17', data: answer(m) }])));
const reader = new FrameReader(1 << 20);

const steps = {
  'framing (Content-Length)': () => framer.push(chunk),
  'Call-ID scan': () => {
    for (const m of msgs) callIdOwnerOf(m, 2);
  },
  'hand-off frame (sip.in)': () => {
    for (const m of msgs) encodeFrame([1, 'sip.in', 0, pairs ? [sourceText, m] : { data: m, source: meshSource({ ...source }) }]);
  },
  "the owner's answer read and decoded (flow.write)": () => {
    for (const f of reader.push(answers)) decodeFrame(f);
  },
  'full parse (on the owner, for comparison)': () => {
    for (const m of msgs) parseMessage(m);
  },
};
console.log(`${root}: ${pairs ? 'text-and-bytes' : '{ data, source }'} hand-offs; µs per message, median of ${ROUNDS} rounds`);
for (const [name, fn] of Object.entries(steps)) {
  for (let i = 0; i < 200; i++) fn();
  const xs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) fn();
    xs.push(Number(process.hrtime.bigint() - t) / N / 100 / 1000);
  }
  xs.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(50)} ${xs[Math.floor(xs.length / 2)].toFixed(2)}`);
}
