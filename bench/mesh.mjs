// The cost of handing a SIP message to the worker that owns its Call-ID (docs/ARCHITECTURE.md, "Workers"):
// two processes joined by the worker mesh (dist/transport/socket-mesh.js, Unix sockets), the sender hands N
// REGISTER-sized messages with their Source as `sip.in` does; then N sequential requests measure the round trip.
// Prints messages/s, CPU µs per hand-off on each side, the round-trip percentiles, and the CPU µs of both
// processes per sequential round trip (two frames, each waking the other process: nothing batches).
// Needs `npx tsc` first (reads dist/). Usage: node bench/mesh.mjs [N] [root] [udp|tcp]
// udp (default): the Source of a UDP datagram; tcp: the Source of a TCP flow (the hand-off of a stream connection's
// message). A build whose worker-mesh.js exports isTextAndBytes hands off as its transport does: [the Source's JSON,
// made once (a flow's) or per message (a datagram's), the bytes], the receiver parsing the JSON; an older build
// sends { data, source }.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';

const here = fileURLToPath(import.meta.url);
const role = process.argv[2] === '--receiver' ? 'receiver' : 'sender';
const N = Number(role === 'sender' ? (process.argv[2] ?? 200000) : process.argv[4]);
const root = (role === 'sender' ? process.argv[3] : process.argv[5]) ?? join(dirname(here), '..');
const kind = (role === 'sender' ? process.argv[4] : process.argv[6]) ?? 'udp';
const { SocketMesh } = await import(`${root}/dist/transport/socket-mesh.js`);
const textAndBytes = typeof (await import(`${root}/dist/transport/worker-mesh.js`)).isTextAndBytes === 'function';
const logger = pino({ level: 'silent' });

/** A REGISTER of the size SIPp sends with credentials (~600 bytes) and the Source of a UDP datagram. */
const data = Buffer.from(
  'REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-1-2;rport\r\n' +
    'Max-Forwards: 70\r\nFrom: <sip:u1@example.test>;tag=1SIPpTag001\r\nTo: <sip:u1@example.test>\r\n' +
    'Call-ID: 1-1@127.0.0.1\r\nCSeq: 2 REGISTER\r\nContact: <sip:u1@127.0.0.1:5061>\r\nExpires: 600\r\n' +
    'Authorization: Digest username="u1",realm="example.test",uri="sip:127.0.0.1:5060",nonce="AAAAAGdxY2VkZjEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlh",' +
    'response="0123456789abcdef0123456789abcdef",algorithm=MD5,cnonce="abcdef",qop=auth,nc=00000001\r\nContent-Length: 0\r\n\r\n',
);
const source =
  kind === 'tcp'
    ? { transport: 'tcp', remoteAddress: '127.0.0.1', remotePort: 5061, localAddress: '127.0.0.1', localPort: 5060, flowId: 'tcp-17' }
    : { transport: 'udp', remoteAddress: '127.0.0.1', remotePort: 5061, localAddress: '127.0.0.1', localPort: 5060 };
/** A stream flow's Source text is made once; a datagram's for each message. */
const flowText = JSON.stringify(source);
const handOff = () => (!textAndBytes ? { data, source } : [kind === 'tcp' ? flowText : JSON.stringify({ ...source }), data]);

if (role === 'receiver') {
  const dir = process.argv[3];
  const mesh = new SocketMesh({ dir, self: 1, count: 2, logger });
  let got = 0;
  let cpu0;
  mesh.on('sip.in', (_from, p) => {
    if (got === 0) cpu0 = process.cpuUsage();
    if (Array.isArray(p)) JSON.parse(p[0]);
    if (++got === N) {
      const c = process.cpuUsage(cpu0);
      process.send({ cpuUs: c.user + c.system, got });
    }
  });
  mesh.on('echo', (_from, p) => p);
  mesh.on('cpu', () => process.cpuUsage());
  await mesh.start(10_000);
  process.send({ ready: true });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-bench-'));
  const child = fork(here, ['--receiver', dir, String(N), root, kind]);
  const messages = [];
  child.on('message', (m) => messages.push(m));
  const mesh = new SocketMesh({ dir, self: 0, count: 2, logger, maxQueuedBytes: 64 * 1024 * 1024 });
  await mesh.start(10_000);
  while (!messages.some((m) => m.ready)) await new Promise((r) => setTimeout(r, 10));

  // One way: N hand-offs, yielding every 1000 so the socket drains (as a worker reading datagrams does).
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    mesh.send(1, 'sip.in', handOff());
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  const c = process.cpuUsage(cpu0);
  while (!messages.some((m) => m.got)) await new Promise((r) => setTimeout(r, 5));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const recv = messages.find((m) => m.got);

  // Round trip: sequential requests (a hand-off there and an answer back).
  const rtts = [];
  const R = Math.min(N, 20000);
  const rc0 = await mesh.request(1, 'cpu', null, 5000);
  const sc0 = process.cpuUsage();
  for (let i = 0; i < R; i++) {
    const t = process.hrtime.bigint();
    await mesh.request(1, 'echo', handOff(), 5000);
    rtts.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const sc = process.cpuUsage(sc0);
  const rc = await mesh.request(1, 'cpu', null, 5000);
  // Each request waits for its answer: every one wakes both processes (no batching), as a binding announcement does at low rates.
  const roundTripCpuUs = (sc.user + sc.system + rc.user - rc0.user + rc.system - rc0.system) / R;
  rtts.sort((a, b) => a - b);
  const pct = (p) => rtts[Math.min(rtts.length - 1, Math.floor((p / 100) * rtts.length))].toFixed(1);
  console.log(
    JSON.stringify({
      messages: N,
      source: kind,
      payload: textAndBytes ? 'text and bytes' : '{ data, source }',
      bytesPerMessage: data.length,
      dropped: mesh.counters.framesDropped,
      handOffsPerS: Math.round(N / s),
      senderCpuUsPerHandOff: +((c.user + c.system) / N).toFixed(2),
      receiverCpuUsPerHandOff: +(recv.cpuUs / N).toFixed(2),
      roundTripUs: { p50: pct(50), p99: pct(99), p999: pct(99.9) },
      roundTripCpuUs: +roundTripCpuUs.toFixed(2),
    }),
  );
  await mesh.close();
  child.kill();
  rmSync(dir, { recursive: true, force: true });
}
