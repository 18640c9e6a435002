// In-process micro-benchmark of the TypeScript TURN relay path (no sockets, no load generator):
// N ChannelData messages from a client and N datagrams from its peer through TurnControl
// (relaying.ts), after a real Allocate and ChannelBind. Prints relayed packets per CPU-second
// of this process. Needs `npx tsc` first (reads dist/). Usage: node bench/turn-relay-micro.mjs [N] [root]
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
const N = Number(process.argv[2] ?? 300000);
const root = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), '..');
const stunDir = 'stun';
const { TurnControl } = await import(`${root}/dist/turn/turn-control.js`);
const M = await import(`${root}/dist/${stunDir}/stun-message.js`);
const Attr = await import(`${root}/dist/${stunDir}/stun-attributes.js`);
const { encodeChannelData } = await import(`${root}/dist/turn/channel-data.js`);
const A = M.AttributeType;
const REALM = 'example.test';
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();
const relayed = { family: 'IPv4', address: '192.0.2.100', port: 50000 };
let sent = 0;
const relay = { relayed, send: () => void sent++, close() {} };
const clock = () => Date.now();
const control = new TurnControl({
  realm: REALM, defaultLifetimeS: 600, maxLifetimeS: 3600, nonceTtlS: 600,
  nonceSecret: Buffer.from('s'), allowLoopbackPeers: false, getKey: async () => KEY, openRelay: async () => relay, nowMs: clock,
});
const ft = { transport: 'udp', clientAddress: '127.0.0.1', clientPort: 40000, serverAddress: '127.0.0.1', serverPort: 3478 };
const rt = { type: A.RequestedTransport, value: Attr.encodeRequestedTransport(17) };
const first = M.decodeStunMessage(await control.handleClientPacket(ft, M.encodeStunMessage({ method: M.StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [rt] })));
const nonce = Attr.decodeText(M.getAttribute(first, A.Nonce).value);
const creds = [{ type: A.Username, value: Buffer.from('alice') }, { type: A.Realm, value: Buffer.from(REALM) }, { type: A.Nonce, value: Buffer.from(nonce) }];
const req = (method, attrs, tid = randomBytes(12)) => M.encodeStunMessage({ method, class: 'request', transactionId: tid, attributes: [...attrs, ...creds] }, { integrityKey: KEY, fingerprint: true });
const alloc = M.decodeStunMessage(await control.handleClientPacket(ft, req(M.StunMethod.Allocate, [rt])));
if (alloc.class !== 'success') throw new Error('allocate failed');
// Nothing is sent: the relay handle only counts, so a global address can stand for the peer.
const peer = { family: 'IPv4', address: '8.8.8.8', port: 5000 };
const tid = randomBytes(12);
const cb = M.decodeStunMessage(await control.handleClientPacket(ft, req(M.StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: Attr.encodeChannelNumber(0x4000) }, { type: A.XorPeerAddress, value: Attr.encodeXorAddress(peer, tid) }], tid)));
if (cb.class !== 'success') throw new Error('channel bind failed');
const payload = randomBytes(100);
const cd = encodeChannelData(0x4000, payload, false);
let delivered = 0;
async function run(n) {
  for (let i = 0; i < n; i++) {
    await control.handleClientPacket(ft, cd);
    if (control.handlePeerPacket(relayed, peer, payload)) delivered++;
  }
}
await run(20000);
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
await run(N);
const ns = Number(process.hrtime.bigint() - t0);
const c = process.cpuUsage(c0);
const cpuS = (c.user + c.system) / 1e6;
console.log(`${N} ChannelData in + ${N} peer datagrams out; relayed ${sent} / delivered ${delivered}; wall ${(ns / 1e9).toFixed(2)} s; CPU ${cpuS.toFixed(2)} s; ${Math.round((2 * N) / cpuS)} relayed pkt per CPU-s`);
