/**
 * Interop: TURN over DTLS (RFC 7350) on loopback. coturn's turnutils_uclient
 * with -S (DTLS 1.2, certificate suites) relays through TurnServer's dtls
 * listener to turnutils_peer with channels and with Send indications; the npm
 * package node-dtls-client (an independent DTLS implementation, PSK suites)
 * does Allocate → CreatePermission → ChannelBind → ChannelData to a UDP peer
 * and back, with the server's STUN answers checked on the wire.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dtls } from 'node-dtls-client';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { makeSelfSignedPem } from './harness/tls-files.js';
import { runUclient, startTurnutilsPeer, stopTurnutilsPeer, uclientCounts } from './harness/turnutils.js';
import { TurnServer, type TurnServerOptions } from '../src/turn/index.js';
import { decodeChannelData, encodeChannelData } from '../src/turn/channel-data.js';
import { decodeErrorCode, decodeText, decodeXorAddress, encodeChannelNumber, encodeRequestedTransport, encodeXorAddress } from '../src/stun/stun-attributes.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, type StunMessage, StunMethod } from '../src/stun/stun-message.js';
import { turnTestOptions } from '../test/helpers/turn-options.js';

const REALM = 'rtcedge.test';
const DTLS_PORT = 35349;
const PEER_PORT = 35391;
const PSK_IDENTITY = 'interop-client';
// node-dtls-client takes the key as a string: ASCII keeps its bytes as they are.
const PSK_KEY = Buffer.from('interop-psk-secret');
const KEY = createHash('md5').update(`alice:${REALM}:alicepw`).digest();

const common = (...extra: string[]) => ['-S', '-p', String(DTLS_PORT), '-r', String(PEER_PORT), '-n', '10', '-c', '-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw', ...extra, '127.0.0.1'];

describeWithPeers(['turnutils_uclient', 'turnutils_peer', 'openssl'])('TURN over DTLS against TurnServer', () => {
  let peer: ChildProcess | undefined;
  let server: TurnServer | undefined;
  let dir: string;
  let tls: { cert: Buffer; key: Buffer };

  async function start(over: Partial<TurnServerOptions> = {}): Promise<TurnServer> {
    const s = new TurnServer(turnTestOptions({
      realm: REALM,
      listen: [{ transport: 'dtls', host: '127.0.0.1', port: DTLS_PORT }],
      relayPortMin: 35400,
      relayPortMax: 35499,
      nonceSecret: Buffer.from('interop-nonce-secret'),
      allowLoopbackPeers: true,
      tls,
      dtls: { psk: [{ identity: PSK_IDENTITY, key: PSK_KEY }] },
      getKey: async (username) => (username === 'alice' ? KEY : undefined),
      software: 'rtcedge-test',
      ...over,
    }));
    await s.start();
    server = s;
    return s;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-dtls-'));
    const pem = await makeSelfSignedPem(dir, 'turn', 'localhost');
    tls = { cert: readFileSync(pem.certPath), key: readFileSync(pem.keyPath) };
    peer = await startTurnutilsPeer(PEER_PORT);
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  afterAll(() => {
    stopTurnutilsPeer(peer);
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['native', 'typescript'] as const)('relays over DTLS (-S) with channels, none lost (%s relays)', async (dataPlane) => {
    const s = await start({ dataPlane });
    const r = await runUclient(common());
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
    // 10 messages to the peer and 10 echoed back, all through the DTLS session.
    expect(s.stats().packetsRelayed).toBeGreaterThanOrEqual(20);
    // Every uclient session (a probe allocation and the real one) went through the cookie exchange.
    const d = s.stats().dtls!;
    expect(d.handshakesDone).toBeGreaterThanOrEqual(1);
    expect(d.cookiesSent).toBe(d.sessionsOpened);
    expect(d.recordsIn).toBeGreaterThanOrEqual(10);
  });

  it('relays over DTLS with Send/Data indications (-S -s), none lost', async () => {
    const s = await start();
    const r = await runUclient(common('-s'));
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
    expect(s.stats().packetsRelayed).toBeGreaterThanOrEqual(20);
  });

  it('relays over DTLS on ::1 with channels, none lost', async () => {
    await start({ listen: [{ transport: 'dtls', host: '::1', port: DTLS_PORT }] });
    // The server address (last argument) is ::1; the relayed address and the peer stay IPv4.
    const r = await runUclient([...common().slice(0, -1), '::1']);
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
  });

  it('refuses a wrong password over DTLS (401 after the handshake)', async () => {
    await start();
    const r = await runUclient(common().map((a) => (a === 'alicepw' ? 'wrong' : a)), 20);
    expect(r.code).not.toBe(0);
    expect(uclientCounts(r.out)).toBeUndefined();
  });

  it('node-dtls-client (PSK): Allocate → CreatePermission → ChannelBind → ChannelData both ways', async () => {
    await start();
    // A UDP peer that echoes what it gets, prefixed.
    const echo = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      echo.once('error', reject);
      echo.bind(0, '127.0.0.1', () => resolve());
    });
    echo.on('message', (m, ri) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), ri.port, ri.address));
    const client = dtls.createSocket({
      type: 'udp4',
      address: '127.0.0.1',
      port: DTLS_PORT,
      psk: { [PSK_IDENTITY]: PSK_KEY.toString('ascii') },
      timeout: 3000,
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connected', () => resolve());
        client.once('error', reject);
      });
      const inbox: Buffer[] = [];
      const waiters: Array<(b: Buffer) => void> = [];
      client.on('message', (m: Buffer) => {
        const w = waiters.shift();
        if (w) w(m);
        else inbox.push(m);
      });
      const next = (): Promise<Buffer> =>
        new Promise((resolve, reject) => {
          const b = inbox.shift();
          if (b) return resolve(b);
          const t = setTimeout(() => reject(new Error('timeout waiting for a DTLS datagram')), 3000);
          waiters.push((m) => {
            clearTimeout(t);
            resolve(m);
          });
        });
      const transact = async (req: Buffer): Promise<StunMessage> => {
        client.send(req);
        return decodeStunMessage(await next());
      };
      const first = await transact(request(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(17) }]));
      expect(first.class).toBe('error');
      expect(decodeErrorCode(getAttribute(first, A.ErrorCode)!.value).code).toBe(401);
      const nonce = decodeText(getAttribute(first, A.Nonce)!.value);

      const alloc = await transact(request(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(17) }], nonce));
      expect(alloc.class).toBe('success');
      const relayed = decodeXorAddress(getAttribute(alloc, A.XorRelayedAddress)!.value, alloc.transactionId);
      expect(relayed.address).toBe('127.0.0.1');
      expect(relayed.port).toBeGreaterThanOrEqual(35400);
      expect(relayed.port).toBeLessThanOrEqual(35499);

      const echoAddr = { family: 'IPv4' as const, address: '127.0.0.1', port: echo.address().port };
      let tid = randomBytes(12);
      const perm = await transact(request(StunMethod.CreatePermission, [{ type: A.XorPeerAddress, value: encodeXorAddress(echoAddr, tid) }], nonce, tid));
      expect(perm.class).toBe('success');
      tid = randomBytes(12);
      const bind = await transact(
        request(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(0x4001) }, { type: A.XorPeerAddress, value: encodeXorAddress(echoAddr, tid) }], nonce, tid),
      );
      expect(bind.class).toBe('success');

      // ChannelData out through the relay to the peer, and the echo back as ChannelData (not padded: DTLS is a datagram transport).
      for (let i = 0; i < 5; i++) {
        client.send(encodeChannelData(0x4001, Buffer.from(`ping ${i}`)));
        const back = await next();
        expect(back.length).toBe(4 + `echo:ping ${i}`.length);
        const cd = decodeChannelData(back);
        expect(cd.channel).toBe(0x4001);
        expect(cd.data.toString()).toBe(`echo:ping ${i}`);
      }
      expect(server!.stats().allocations).toBe(1);
      expect(server!.stats().packetsRelayed).toBeGreaterThanOrEqual(10);
    } finally {
      await new Promise<void>((r) => client.close(() => r()));
      echo.close();
    }
    // close_notify ends the session and with it the allocation (as a closed TLS connection would).
    for (let i = 0; i < 20 && server!.stats().allocations > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(server!.stats().allocations).toBe(0);
  });
});

function request(method: number, attrs: StunAttribute[], nonce?: string, tid = randomBytes(12)): Buffer {
  const a = [...attrs];
  if (nonce) a.push({ type: A.Username, value: Buffer.from('alice') }, { type: A.Realm, value: Buffer.from(REALM) }, { type: A.Nonce, value: Buffer.from(nonce) });
  return encodeStunMessage({ method, class: 'request', transactionId: tid, attributes: a }, { integrityKey: nonce ? KEY : undefined, fingerprint: true });
}
