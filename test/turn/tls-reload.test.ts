/**
 * Certificate renewal on TURN over TLS: after TurnServer.setTlsMaterial (what
 * a reload calls), a new handshake presents the new certificate while a
 * connection made before keeps its allocation and relaying.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureTlsCertificate } from '../../src/config/tls-cert.js';
import { silentLogger } from '../../src/log.js';
import { decodeErrorCode, decodeText, decodeUint32, decodeXorAddress, encodeRequestedTransport, encodeUint32, encodeXorAddress } from '../../src/stun/stun-attributes.js';
import { AttributeType as A, encodeStunMessage, getAttribute, StunMethod } from '../../src/stun/stun-message.js';
import { TurnServer } from '../../src/turn/index.js';
import { connectStream, signedRequest, streamClient } from '../helpers/turn-stream.js';
import { turnTestOptions } from '../helpers/turn-options.js';

const REALM = 'rtcedge.test';
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();

let dir: string;
const pem: Record<'a' | 'b', { cert: Buffer; key: Buffer; fingerprint: string }> = {} as never;
let server: TurnServer;
const sockets: net.Socket[] = [];
let peer: dgram.Socket;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-turn-tls-reload-'));
  for (const name of ['a', 'b'] as const) {
    const files = await ensureTlsCertificate(join(dir, name), [`${name}.example.test`], silentLogger);
    const cert = readFileSync(files.certPath);
    pem[name] = { cert, key: readFileSync(files.keyPath), fingerprint: new X509Certificate(cert).fingerprint256 };
  }
  server = new TurnServer(turnTestOptions({
    realm: REALM,
    listen: [{ transport: 'tls', host: '127.0.0.1', port: 0 }],
    tls: { cert: pem.a.cert, key: pem.a.key },
    relayPortMin: 34880,
    relayPortMax: 34889,
    nonceSecret: Buffer.from('k'),
    allowLoopbackPeers: true,
    getKey: async (u) => (u === 'alice' ? KEY : undefined),
    dataPlane: 'typescript',
  }));
  await server.start();
  peer = dgram.createSocket('udp4');
  await new Promise<void>((r) => peer.bind(0, '127.0.0.1', () => r()));
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  peer?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const fingerprint = (s: net.Socket) => (s as tls.TLSSocket).getPeerX509Certificate()!.fingerprint256;

it('a new handshake presents the new certificate; a connection made before keeps its allocation and relays', async () => {
  const port = server.addresses()[0]!.port;
  const before = await connectStream('tls', port);
  sockets.push(before);
  const transact = streamClient(before);
  const udp = { type: A.RequestedTransport, value: encodeRequestedTransport(17) };
  const challenge = await transact(encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [udp] }));
  expect(decodeErrorCode(getAttribute(challenge, A.ErrorCode)!.value).code).toBe(401);
  const cred = { username: 'alice', realm: REALM, key: KEY, nonce: decodeText(getAttribute(challenge, A.Nonce)!.value) };
  const allocated = await transact(signedRequest(StunMethod.Allocate, [udp], cred));
  expect(allocated.class).toBe('success');
  const relayed = decodeXorAddress(getAttribute(allocated, A.XorRelayedAddress)!.value, allocated.transactionId);
  expect(fingerprint(before)).toBe(pem.a.fingerprint);

  server.setTlsMaterial({ cert: pem.b.cert, key: pem.b.key });

  const after = await connectStream('tls', port);
  sockets.push(after);
  expect(fingerprint(after)).toBe(pem.b.fingerprint);
  const binding = await streamClient(after)(encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: randomBytes(12), attributes: [] }));
  expect(binding.class).toBe('success');

  // The connection made before the swap: same allocation (Refresh succeeds), data relayed to a peer.
  const refreshed = await transact(signedRequest(StunMethod.Refresh, [{ type: A.Lifetime, value: encodeUint32(600) }], cred));
  expect([refreshed.class, decodeUint32(getAttribute(refreshed, A.Lifetime)!.value)]).toEqual(['success', 600]);
  const peerAddr = { family: 'IPv4' as const, address: '127.0.0.1', port: peer.address().port };
  const tid = randomBytes(12);
  expect((await transact(signedRequest(StunMethod.CreatePermission, [{ type: A.XorPeerAddress, value: encodeXorAddress(peerAddr, tid) }], cred, tid))).class).toBe('success');
  const atPeer = new Promise<{ data: Buffer; port: number }>((r) => peer.once('message', (data, rinfo) => r({ data, port: rinfo.port })));
  const sendTid = randomBytes(12);
  before.write(
    encodeStunMessage({
      method: StunMethod.Send,
      class: 'indication',
      transactionId: sendTid,
      attributes: [{ type: A.XorPeerAddress, value: encodeXorAddress(peerAddr, sendTid) }, { type: A.Data, value: Buffer.from('after reload') }],
    }),
  );
  expect(await atPeer).toEqual({ data: Buffer.from('after reload'), port: relayed.port });
  expect(server.stats()).toMatchObject({ allocations: 1, permissions: 1, toPeerPackets: 1 });
  expect(before.destroyed).toBe(false);
});
