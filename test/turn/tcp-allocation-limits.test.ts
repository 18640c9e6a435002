/**
 * RFC 6062 TCP allocations are bounded: peer data connections per
 * allocation and those waiting for their ConnectionBind. A Connect beyond
 * either gets 508 Insufficient Capacity (446 stays the answer for a second
 * connection to the same peer), a peer connecting beyond is closed without a
 * ConnectionAttempt, and a waiting peer connection is not read: what the peer
 * sends before the ConnectionBind reaches the client whole after it, none of
 * it held in the server meanwhile. Real sockets on loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeErrorCode, decodeUint32, decodeXorAddress, encodeXorAddress, type TransportAddress } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, getAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { TurnServer } from '../../src/turn/index.js';
import { allocateTcpRelay, connectStream, signedRequest, streamClient, type TurnTestCredential } from '../helpers/turn-stream.js';
import { turnTestOptions } from '../helpers/turn-options.js';

const REALM = 'rtcedge.test';
const ALICE: TurnTestCredential = { username: 'alice', realm: REALM, key: createHash('md5').update(`alice:${REALM}:alicepw`).digest() };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startServer(limits: { perAllocation: number; pending: number }): Promise<{ server: TurnServer; port: number }> {
  const server = new TurnServer(turnTestOptions({
    realm: REALM,
    listen: [{ transport: 'tcp', host: '127.0.0.1', port: 0 }],
    relayPortMin: 34890,
    relayPortMax: 34899,
    nonceSecret: Buffer.from('k'),
    allowLoopbackPeers: true,
    getKey: async (u) => (u === 'alice' ? ALICE.key : undefined),
    dataPlane: 'typescript',
    maxTcpConnectionsPerAllocation: limits.perAllocation,
    maxPendingTcpConnectionsPerAllocation: limits.pending,
  }));
  await server.start();
  cleanups.push(() => server.stop());
  return { server, port: server.addresses()[0]!.port };
}

async function connect(port: number): Promise<net.Socket> {
  const s = await connectStream('tcp', port);
  cleanups.push(() => void s.destroy());
  return s;
}

/** A TCP listener on loopback standing for a peer; its accepted connections are collected. */
async function peerListener(): Promise<{ address: TransportAddress; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((c) => {
    c.on('error', () => undefined);
    accepted.push(c);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => {
    for (const c of accepted) c.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return { address: { family: 'IPv4', address: '127.0.0.1', port: (srv.address() as net.AddressInfo).port }, accepted };
}

/** A control connection holding a TCP allocation of alice; ConnectionAttempt indications are collected. */
async function tcpAllocation(port: number): Promise<{ transact: (req: Buffer) => Promise<StunMessage>; nonce: string; relayed: TransportAddress; attempts: StunMessage[] }> {
  const attempts: StunMessage[] = [];
  const transact = streamClient(await connect(port), (m) => m.method === StunMethod.ConnectionAttempt && attempts.push(m));
  const { nonce, allocation } = await allocateTcpRelay(transact, ALICE);
  const relayed = decodeXorAddress(getAttribute(allocation, A.XorRelayedAddress)!.value, allocation.transactionId);
  return { transact, nonce, relayed, attempts };
}

function peerRequest(method: number, peer: TransportAddress, nonce: string): Buffer {
  const tid = randomBytes(12);
  return signedRequest(method, [{ type: A.XorPeerAddress, value: encodeXorAddress(peer, tid) }], { ...ALICE, nonce }, tid);
}

function errorOf(m: StunMessage): { code: number; reason: string } | undefined {
  const e = getAttribute(m, A.ErrorCode);
  return e && decodeErrorCode(e.value);
}

/** ConnectionBind (RFC 6062 §5.4) of CONNECTION-ID `id` on a new data connection; resolves with the answer and the connection. */
async function connectionBind(port: number, id: number, nonce: string): Promise<{ answer: StunMessage; data: net.Socket }> {
  const data = await connect(port);
  const value = Buffer.alloc(4);
  value.writeUInt32BE(id);
  const answer = await streamClient(data)(signedRequest(StunMethod.ConnectionBind, [{ type: A.ConnectionId, value }], { ...ALICE, nonce }));
  data.removeAllListeners('data');
  return { answer, data };
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('RFC 6062 TCP allocation limits', () => {
  it('answers a Connect beyond the waiting or the total limit with 508, a duplicate with 446', async () => {
    const { server, port } = await startServer({ perAllocation: 3, pending: 2 });
    const peers = await Promise.all([peerListener(), peerListener(), peerListener(), peerListener()]);
    const { transact, nonce } = await tcpAllocation(port);
    const connectTo = (i: number) => transact(peerRequest(StunMethod.Connect, peers[i]!.address, nonce));

    const first = await connectTo(0);
    const second = await connectTo(1);
    expect([first.class, second.class]).toEqual(['success', 'success']);
    // Two wait for their ConnectionBind: a third Connect is over the waiting limit.
    const third = await connectTo(2);
    expect(third.class).toBe('error');
    expect(errorOf(third)).toEqual({ code: 508, reason: 'Insufficient Capacity: 2 TCP connections wait for ConnectionBind' });
    expect(errorOf(await connectTo(0))?.code).toBe(446);

    const bound = await connectionBind(port, decodeUint32(getAttribute(first, A.ConnectionId)!.value), nonce);
    expect(bound.answer.class).toBe('success');
    expect((await connectTo(2)).class).toBe('success');
    // Three connections (one bound, two waiting): the allocation is full.
    const fourth = await connectTo(3);
    expect(errorOf(fourth)).toEqual({ code: 508, reason: 'Insufficient Capacity: 3 TCP connections in this allocation' });
    expect(peers.map((p) => p.accepted.length)).toEqual([1, 1, 1, 0]);
    expect(server.stats()).toMatchObject({ tcpConnections: 3, tcpConnectionsPending: 2, tcpConnectionsRefused: 2 });
  });

  it('closes a peer connecting beyond the waiting limit without a ConnectionAttempt', async () => {
    const { server, port } = await startServer({ perAllocation: 10, pending: 2 });
    const { transact, nonce, relayed, attempts } = await tcpAllocation(port);
    expect((await transact(peerRequest(StunMethod.CreatePermission, { family: 'IPv4', address: '127.0.0.1', port: 0 }, nonce))).class).toBe('success');
    const peerSockets: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = net.connect({ host: relayed.address, port: relayed.port });
      s.on('error', () => undefined);
      cleanups.push(() => void s.destroy());
      peerSockets.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    // The third is closed by the server; the first two stay open and were offered to the client.
    await closed(peerSockets[2]!);
    await expect.poll(() => attempts.length).toBe(2);
    expect(peerSockets.slice(0, 2).map((s) => s.destroyed)).toEqual([false, false]);
    expect(server.stats()).toMatchObject({ tcpConnections: 2, tcpConnectionsPending: 2, tcpConnectionsRefused: 1 });
  });

  it('does not read a peer connection before its ConnectionBind; the client gets every byte after it', async () => {
    const { server, port } = await startServer({ perAllocation: 10, pending: 2 });
    const { transact, nonce, relayed, attempts } = await tcpAllocation(port);
    expect((await transact(peerRequest(StunMethod.CreatePermission, { family: 'IPv4', address: '127.0.0.1', port: 0 }, nonce))).class).toBe('success');
    const peer = net.connect({ host: relayed.address, port: relayed.port });
    peer.on('error', () => undefined);
    cleanups.push(() => void peer.destroy());
    await new Promise((r) => peer.once('connect', r));
    await expect.poll(() => attempts.length).toBe(1);

    // The peer writes until TCP flow control holds it (no 'drain' for 300 ms): the server did not read.
    const chunks: Buffer[] = [];
    for (let blocked = false; !blocked && chunks.length < 1024; ) {
      const chunk = randomBytes(64 * 1024);
      chunks.push(chunk);
      if (!peer.write(chunk)) blocked = !(await Promise.race([new Promise((r) => peer.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 300))]));
    }
    expect(chunks.length).toBeLessThan(1024);
    expect(server.stats().tcpPeerBufferedBytes).toBe(0);
    const last = randomBytes(1000);
    chunks.push(last);
    peer.end(last);

    const id = decodeUint32(getAttribute(attempts[0]!, A.ConnectionId)!.value);
    const { answer, data } = await connectionBind(port, id, nonce);
    expect(answer.class).toBe('success');
    const received: Buffer[] = [];
    data.on('data', (d: Buffer) => received.push(d));
    await new Promise((r) => data.once('end', r));
    expect(Buffer.concat(received).equals(Buffer.concat(chunks))).toBe(true);
  });
});
