/**
 * TURN streams are bounded. A client that pipelines Binding
 * requests on TCP or TLS and never reads the answers stops being read and is
 * closed; so is an RFC 6062 data connection whose client never reads what
 * the peer sends. Assertions are on the close and on the largest write
 * queue the server saw (socket.writableLength), not on timing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeText, decodeUint32, encodeXorAddress } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, StunMethod } from '../../src/stun/stun-message.js';
import { TurnServer } from '../../src/turn/index.js';
import { StreamFramer } from '../../src/turn/stream-framer.js';
import { DEFAULT_STREAM_LIMITS } from '../../src/turn/stream-limits.js';
import { allocateTcpRelay, connectStream, signedRequest, streamClient } from '../helpers/turn-stream.js';
import { turnTestOptions } from '../helpers/turn-options.js';
import { makeSelfSignedPem } from '../../interop/harness/tls-files.js';

const REALM = 'rtcedge.test';
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();
const STALL_MS = 300;

let dir: string;
let cert: { cert: Buffer; key: Buffer };
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-turn-streams-'));
  const pem = await makeSelfSignedPem(dir, 'turn', '127.0.0.1');
  cert = { cert: readFileSync(pem.certPath), key: readFileSync(pem.keyPath) };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const started: TurnServer[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of started.splice(0)) await s.stop();
});

async function startServer(transport: 'tcp' | 'tls', maxConnectionsPerListener?: number): Promise<{ server: TurnServer; port: number }> {
  const server = new TurnServer(turnTestOptions({
    realm: REALM,
    listen: [{ transport, host: '127.0.0.1', port: 0 }],
    tls: cert,
    relayPortMin: 34870,
    relayPortMax: 34879,
    nonceSecret: Buffer.from('k'),
    allowLoopbackPeers: true,
    getKey: async (u) => (u === 'alice' ? KEY : undefined),
    dataPlane: 'typescript',
    streamLimits: { stallCloseMs: STALL_MS },
    maxConnectionsPerListener,
  }));
  started.push(server);
  await server.start();
  return { server, port: server.addresses()[0]!.port };
}

async function connect(transport: 'tcp' | 'tls', port: number): Promise<net.Socket> {
  const s = await connectStream(transport, port);
  sockets.push(s);
  return s;
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

/** Writes `batch` until the socket closes or `maxBytes` went out; returns the bytes written. */
async function flood(s: net.Socket, batch: Buffer, maxBytes: number): Promise<number> {
  let sent = 0;
  const gone = closed(s);
  while (!s.destroyed && sent < maxBytes) {
    sent += batch.length;
    if (!s.write(batch)) await Promise.race([new Promise((r) => s.once('drain', r)), gone]);
  }
  return sent;
}

describe.each(['tcp', 'tls'] as const)('a %s client that pipelines Binding requests and never reads', (transport) => {
  it('stops being read, is closed when its answers do not drain, and the write queue stays under the bound', async () => {
    const { server, port } = await startServer(transport);
    const s = await connect(transport, port);
    s.pause(); // never reads
    const binding = () => encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: randomBytes(12), attributes: [] });
    const batch = Buffer.concat(Array.from({ length: 1000 }, binding));
    // 256 MB of requests would be ~512 MB of answers queued in the server without the bound.
    const sent = await flood(s, batch, 256 * 1024 * 1024);
    await closed(s);
    const streams = server.stats().streams;
    expect(sent).toBeLessThan(256 * 1024 * 1024);
    expect(streams.paused).toBeGreaterThanOrEqual(1);
    expect(streams.closedStalled + streams.closedOverLimit).toBe(1);
    expect(streams.maxWriteQueueBytes).toBeLessThanOrEqual(DEFAULT_STREAM_LIMITS.closeAboveBytes);
    expect(streams.maxWriteQueueBytes).toBeGreaterThan(DEFAULT_STREAM_LIMITS.pauseAboveBytes);
  });
});

function request(method: number, attrs: StunAttribute[], nonce: string, tid = randomBytes(12)): Buffer {
  return signedRequest(method, attrs, { username: 'alice', realm: REALM, key: KEY, nonce }, tid);
}

describe('an RFC 6062 data connection whose client never reads', () => {
  it('stops reading the peer, then closes both sides', async () => {
    const { server, port } = await startServer('tcp');
    const peerSide: net.Socket[] = [];
    const peerServer = net.createServer((c) => {
      peerSide.push(c);
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => peerServer.listen(0, '127.0.0.1', () => r()));
    const peerPort = (peerServer.address() as net.AddressInfo).port;
    try {
      const control = await connect('tcp', port);
      const transact = streamClient(control);
      const { nonce } = await allocateTcpRelay(transact, { username: 'alice', realm: REALM, key: KEY });
      const tid = randomBytes(12);
      const peerAttr = { type: A.XorPeerAddress, value: encodeXorAddress({ family: 'IPv4', address: '127.0.0.1', port: peerPort }, tid) };
      const conn = await transact(request(StunMethod.Connect, [peerAttr], nonce, tid));
      expect(conn.class).toBe('success');
      const connectionId = getAttribute(conn, A.ConnectionId)!.value;
      expect(decodeUint32(connectionId)).toBeGreaterThan(0);

      const data = await connect('tcp', port);
      const bound = await streamClient(data)(request(StunMethod.ConnectionBind, [{ type: A.ConnectionId, value: connectionId }], nonce));
      expect(bound.class).toBe('success');
      data.removeAllListeners('data');
      data.pause(); // the client never reads what the peer sends
      expect(peerSide.length).toBe(1);
      const peer = peerSide[0]!;
      const sent = await flood(peer, randomBytes(64 * 1024), 256 * 1024 * 1024);
      await closed(peer);
      // The server closed the data connection too: reading what was delivered ends in its FIN.
      data.resume();
      await closed(data);
      const streams = server.stats().streams;
      expect(sent).toBeLessThan(256 * 1024 * 1024);
      expect(streams.paused).toBeGreaterThanOrEqual(1);
      expect(streams.closedStalled + streams.closedOverLimit).toBe(1);
      expect(streams.maxWriteQueueBytes).toBeLessThanOrEqual(DEFAULT_STREAM_LIMITS.closeAboveBytes);
    } finally {
      for (const c of peerSide) c.destroy();
      await new Promise<void>((r) => peerServer.close(() => r()));
    }
  });
});

describe.each(['tcp', 'tls'] as const)('a %s TURN listener at its connection bound', (transport) => {
  it('closes one more connection on accept and counts it; the open ones still get answers', async () => {
    const { server, port } = await startServer(transport, 2);
    const open = [await connect(transport, port), await connect(transport, port)];
    const extra = net.connect({ host: '127.0.0.1', port });
    extra.on('error', () => undefined);
    sockets.push(extra);
    await closed(extra);
    expect(server.stats().connectionsRefused).toBe(1);
    for (const s of open) {
      const answer = await streamClient(s)(encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: randomBytes(12), attributes: [] }));
      expect(answer.class).toBe('success');
    }
  });
});

describe('a TCP client whose requests wait behind a slow credential lookup', () => {
  it('stops being read past pendingRequestBytes of waiting requests, then answers every one in order', async () => {
    let release: () => void = () => undefined;
    const lookup = new Promise<void>((r) => (release = r));
    const server = new TurnServer(turnTestOptions({
      realm: REALM,
      listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
      relayPortMin: 34880,
      relayPortMax: 34889,
      nonceSecret: Buffer.from('k'),
      getKey: async (u) => (await lookup, u === 'alice' ? KEY : undefined),
      dataPlane: 'typescript',
    }));
    started.push(server);
    await server.start();
    const s = await connect('tcp', server.addresses()[0]!.port);
    const challenge = await streamClient(s)(encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [] }));
    const nonce = decodeText(getAttribute(challenge, A.Nonce)!.value);
    s.removeAllListeners('data');
    const answers: string[] = [];
    const framer = new StreamFramer();
    s.on('data', (c: Buffer) => framer.push(c).forEach((f) => answers.push(decodeStunMessage(f).transactionId.toString('hex'))));
    // A signed request (its key lookup hangs), then Binding requests (1 KB each) that must wait for its answer.
    const first = request(StunMethod.Allocate, [{ type: A.RequestedTransport, value: Buffer.from([17, 0, 0, 0]) }], nonce);
    const tids = [decodeStunMessage(first).transactionId.toString('hex')];
    s.write(first);
    const software = { type: A.Software, value: Buffer.alloc(750, 'x') };
    let blocked = false;
    while (!blocked && tids.length < 100_000) {
      const batch = Array.from({ length: 100 }, () => {
        const tid = randomBytes(12);
        tids.push(tid.toString('hex'));
        return encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: tid, attributes: [software] });
      });
      if (!s.write(Buffer.concat(batch))) blocked = !(await Promise.race([new Promise((r) => s.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 300))]));
    }
    expect(blocked).toBe(true); // TCP flow control: the server stopped reading
    expect(tids.length).toBeLessThan(100_000);
    expect(answers.length).toBe(0);
    expect(server.stats().streams.pausedPendingRequests).toBeGreaterThanOrEqual(1);
    release();
    await expect.poll(() => answers.length, { timeout: 20_000 }).toBe(tids.length);
    expect(answers).toEqual(tids);
  });
});
