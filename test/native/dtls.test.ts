/**
 * The DTLS engine addon (native/src/dtls_server.cc) driven from JavaScript:
 * the stateless cookie exchange on hand-built ClientHellos (RFC 6347
 * §4.2.1), session and handshake limits, handshake retransmission and
 * timeout, certificate errors; certificate replacement seen by openssl
 * s_client; and through DtlsListener on loopback with node-dtls-client: handshake, application data both ways, idle expiry with
 * close_notify.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dtls } from 'node-dtls-client';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { silentLogger } from '../../src/log.js';
import { type DtlsAddon, type DtlsEngine, type DtlsEngineOptions, loadDtlsAddon } from '../../src/turn/dtls-addon.js';
import { DtlsListener } from '../../src/turn/dtls-listener.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';
import { TurnServer } from '../../src/turn/index.js';
import { turnTestOptions } from '../helpers/turn-options.js';

const PSK = { identity: 'unit-client', key: Buffer.from('unit-psk-secret') };
const TLS_PSK_WITH_AES_128_GCM_SHA256 = 0x00a8;
const HANDSHAKE = 22;
const HELLO_VERIFY_REQUEST = 3;
const SERVER_HELLO = 2;

const loaded = loadDtlsAddon();
function addon(): DtlsAddon {
  if ('error' in loaded) throw new Error(`DTLS addon missing: ${loaded.error}`);
  return loaded.addon;
}

/**
 * A DTLS 1.2 ClientHello record offering one PSK suite, no extensions:
 * record header (13 bytes), handshake header (12 bytes), body.
 */
function clientHello(random: Buffer, cookie: Buffer, messageSeq: number): Buffer {
  const body = Buffer.concat([
    Buffer.from([0xfe, 0xfd]),
    random,
    Buffer.from([0]), // session id
    Buffer.from([cookie.length]),
    cookie,
    Buffer.from([0, 2, TLS_PSK_WITH_AES_128_GCM_SHA256 >> 8, TLS_PSK_WITH_AES_128_GCM_SHA256 & 0xff]),
    Buffer.from([1, 0]), // null compression
  ]);
  const hs = Buffer.alloc(12);
  hs[0] = 1;
  hs.writeUIntBE(body.length, 1, 3);
  hs.writeUInt16BE(messageSeq, 4);
  hs.writeUIntBE(0, 6, 3);
  hs.writeUIntBE(body.length, 9, 3);
  const rec = Buffer.alloc(13);
  rec[0] = HANDSHAKE;
  rec.writeUInt16BE(0xfefd, 1);
  rec.writeUIntBE(messageSeq, 5, 6); // epoch 0, sequence number = message_seq here
  rec.writeUInt16BE(hs.length + body.length, 11);
  return Buffer.concat([rec, hs, body]);
}

/** The cookie of a HelloVerifyRequest record (RFC 6347 §4.2.1); throws if it is not one. */
function hvrCookie(rec: Buffer): Buffer {
  if (rec[0] !== HANDSHAKE || rec[13] !== HELLO_VERIFY_REQUEST) throw new Error(`not a HelloVerifyRequest: ${rec.subarray(0, 16).toString('hex')}`);
  const len = rec[27]!;
  return rec.subarray(28, 28 + len);
}

describeWithPeers(['openssl'])('DTLS engine addon', () => {
  let dir: string;
  let tls: { cert: Buffer; key: Buffer };
  const engines: DtlsEngine[] = [];
  const listeners: DtlsListener[] = [];

  function engine(over: Partial<DtlsEngineOptions> = {}): DtlsEngine {
    const e = new (addon().DtlsServer)({ ...tls, psk: [PSK], ...over });
    engines.push(e);
    return e;
  }

  /** Cookie exchange for `key`; returns what the ClientHello with the cookie produced. */
  function exchange(e: DtlsEngine, key: string) {
    const random = randomBytes(32);
    const cookie = hvrCookie(e.receive(key, clientHello(random, Buffer.alloc(0), 0)).out[0]!);
    return e.receive(key, clientHello(random, cookie, 1));
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-dtls-unit-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    tls = { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) };
  });
  afterEach(async () => {
    for (const e of engines.splice(0)) e.destroy();
    for (const l of listeners.splice(0)) await l.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs on Node's own OpenSSL 3", () => {
    expect(addon().openssl).toMatch(/^OpenSSL 3\./);
  });

  it('answers a ClientHello without a cookie with a HelloVerifyRequest and keeps no state', () => {
    const e = engine();
    const r = e.receive('127.0.0.1|40000', clientHello(randomBytes(32), Buffer.alloc(0), 0));
    expect(r.out).toHaveLength(1);
    expect(r.out[0]![0]).toBe(HANDSHAKE);
    expect(r.out[0]!.readUInt16BE(1)).toBe(0xfeff); // HelloVerifyRequest records say DTLS 1.0 (RFC 6347 §4.2.1)
    expect(hvrCookie(r.out[0]!)).toHaveLength(32);
    expect(r.data).toEqual([]);
    expect(r.event).toBe('');
    expect(e.stats()).toMatchObject({ sessions: 0, handshaking: 0, cookiesSent: 1, sessionsOpened: 0 });
  });

  it("opens a session when the cookie comes back from the same 5-tuple, not from another one", () => {
    const e = engine();
    const random = randomBytes(32);
    const cookie = hvrCookie(e.receive('127.0.0.1|40000', clientHello(random, Buffer.alloc(0), 0)).out[0]!);
    // Replayed from another source port: no session, no ServerHello.
    const other = e.receive('127.0.0.1|40001', clientHello(random, cookie, 1));
    expect(other.out.every((d) => d[13] !== SERVER_HELLO)).toBe(true);
    expect(e.stats().sessions).toBe(0);
    const r = e.receive('127.0.0.1|40000', clientHello(random, cookie, 1));
    expect(r.out.length).toBeGreaterThan(0);
    expect(r.out[0]![0]).toBe(HANDSHAKE);
    expect(r.out[0]![13]).toBe(SERVER_HELLO);
    expect(r.out.every((d) => d.length <= 1200)).toBe(true);
    expect(e.stats()).toMatchObject({ sessions: 1, handshaking: 1, sessionsOpened: 1 });
  });

  it('drops ClientHellos beyond maxHandshakes and maxSessions, and non-handshake records from unknown 5-tuples', () => {
    const e = engine({ maxHandshakes: 1 });
    exchange(e, '127.0.0.1|40000');
    const r = e.receive('127.0.0.1|40001', clientHello(randomBytes(32), Buffer.alloc(0), 0));
    expect(r.out).toEqual([]);
    expect(e.stats()).toMatchObject({ sessions: 1, dropLimit: 1 });
    const s = engine({ maxSessions: 1 });
    exchange(s, '127.0.0.1|40000');
    expect(s.receive('127.0.0.1|40002', clientHello(randomBytes(32), Buffer.alloc(0), 0)).out).toEqual([]);
    expect(s.stats().dropLimit).toBe(1);
    const app = Buffer.from('170000000000000000000000', 'hex'); // application_data record header
    expect(s.receive('127.0.0.1|40003', Buffer.concat([app, Buffer.alloc(8)])).out).toEqual([]);
    expect(s.stats().dropNotHandshake).toBe(1);
  });

  it('retransmits the server flight when the client stays silent, then abandons the handshake', async () => {
    const e = engine({ handshakeTimeoutMs: 2500 });
    exchange(e, '127.0.0.1|40000');
    await new Promise((r) => setTimeout(r, 1200)); // RFC 6347 §4.2.4.1: initial timer 1 s
    const t = e.tick();
    expect(t.out.length).toBeGreaterThan(0);
    expect(t.out.every(([k]) => k === '127.0.0.1|40000')).toBe(true);
    expect(t.out[0]![1][13]).toBe(SERVER_HELLO);
    // The same flight again: ServerHello first, ServerHelloDone (14) last.
    expect(t.out.at(-1)![1][13]).toBe(14);
    await new Promise((r) => setTimeout(r, 1500));
    expect(e.tick().closed).toEqual(['127.0.0.1|40000']);
    expect(e.stats()).toMatchObject({ sessions: 0, handshaking: 0, handshakesTimedOut: 1 });
  });

  it('refuses an unusable certificate or key, and a key that does not match the certificate', () => {
    const make = (o: DtlsEngineOptions) => () => new (addon().DtlsServer)(o);
    expect(make({ cert: 'not a certificate', key: tls.key })).toThrow(/DTLS: cannot use the certificate/);
    expect(make({ cert: tls.cert, key: 'not a key' })).toThrow(/DTLS: cannot use the private key/);
    const other = execFileSync('openssl', ['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']);
    expect(make({ cert: tls.cert, key: other })).toThrow(/DTLS: cannot use the private key/);
    expect(make({ ...tls, mtu: 10 })).toThrow(RangeError);
  });

  it('send() needs an established session and 1-16384 bytes', () => {
    const e = engine();
    expect(e.send('127.0.0.1|40000', Buffer.from('x'))).toBeNull();
    exchange(e, '127.0.0.1|40000');
    expect(e.send('127.0.0.1|40000', Buffer.from('x'))).toBeNull(); // still handshaking
    expect(e.closeSession('127.0.0.1|40000')).toEqual([]);
    expect(e.closeSession('127.0.0.1|40000')).toBeNull();
    expect(e.stats().sessions).toBe(0);
  });

  /** The subject CN a DTLS 1.2 handshake by `openssl s_client` sees at `port` (the listener runs in this process, so async). */
  function presentedCn(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('openssl', ['s_client', '-dtls1_2', '-connect', `127.0.0.1:${port}`, '-brief'], { timeout: 10_000 }, (_err, stdout, stderr) => {
        const m = /Peer certificate: .*CN ?= ?([^,\n]+)/.exec(stdout + stderr);
        if (m) resolve(m[1]!.trim());
        else reject(new Error(`no peer certificate in: ${stdout}${stderr}`));
      });
      child.stdin?.end();
    });
  }

  it('setCertificate: new handshakes present the renewed certificate, open sessions keep going, a bad pair changes nothing', async () => {
    const echoed: string[] = [];
    const l = new DtlsListener(addon(), { ...tls, psk: [PSK] }, { onClientPacket: (_ft, data, reply) => (echoed.push(data.toString()), reply(data)), onSessionClosed: () => {} }, silentLogger);
    listeners.push(l);
    const { port } = await l.listen('127.0.0.1', 0);
    expect(await presentedCn(port)).toBe('localhost');

    const client = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port, psk: { [PSK.identity]: PSK.key.toString('ascii') }, timeout: 3000 });
    await new Promise<void>((resolve, reject) => (client.once('connected', () => resolve()), client.once('error', reject)));
    const echo = (text: string) => new Promise<string>((resolve) => (client.once('message', (m: Buffer) => resolve(m.toString())), client.send(Buffer.from(text))));
    expect(await echo('before')).toBe('before');

    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key2.pem'), '-out', join(dir, 'cert2.pem'), '-days', '2', '-subj', '/CN=renewed.test'], { stdio: 'ignore' });
    const renewed = { cert: readFileSync(join(dir, 'cert2.pem')), key: readFileSync(join(dir, 'key2.pem')) };
    l.setCertificate(renewed.cert, renewed.key);
    expect(await presentedCn(port)).toBe('renewed.test');
    expect(await echo('after')).toBe('after');

    expect(() => l.setCertificate(renewed.cert, tls.key)).toThrow(/DTLS: cannot use the private key/);
    expect(() => l.setCertificate('not a certificate', renewed.key)).toThrow(/DTLS: cannot use the certificate/);
    expect(await presentedCn(port)).toBe('renewed.test');
    expect(echoed).toEqual(['before', 'after']);
    client.close();
  });

  it('a DtlsListener completes a handshake with node-dtls-client, carries datagrams both ways and closes idle sessions', async () => {
    const got: string[] = [];
    const closed: FiveTuple[] = [];
    const l = new DtlsListener(
      addon(),
      { ...tls, psk: [PSK], idleTimeoutMs: 600 },
      {
        onClientPacket: (ft, data, reply) => {
          got.push(`${ft.transport} ${data.toString()}`);
          reply(Buffer.concat([Buffer.from('echo:'), data]));
        },
        onSessionClosed: (ft) => closed.push(ft),
      },
      silentLogger,
    );
    listeners.push(l);
    const { port } = await l.listen('127.0.0.1', 0);
    const client = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port, psk: { [PSK.identity]: PSK.key.toString('ascii') }, timeout: 3000 });
    const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
    await new Promise<void>((resolve, reject) => {
      client.once('connected', () => resolve());
      client.once('error', reject);
    });
    const replies: string[] = [];
    const three = new Promise<void>((resolve) =>
      client.on('message', (m: Buffer) => {
        replies.push(m.toString());
        if (replies.length === 3) resolve();
      }),
    );
    for (const s of ['one', 'two', 'three']) client.send(Buffer.from(s));
    await three;
    expect(got).toEqual(['dtls one', 'dtls two', 'dtls three']);
    expect(replies).toEqual(['echo:one', 'echo:two', 'echo:three']);
    expect(l.stats()).toMatchObject({ sessions: 1, handshakesDone: 1, recordsIn: 3, cookiesSent: 1 });
    // Idle: the tick closes the session with close_notify, which the client sees.
    await clientClosed;
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ transport: 'dtls', clientAddress: '127.0.0.1', serverPort: port });
    expect(l.stats()).toMatchObject({ sessions: 0, idleClosed: 1 });
  });

  it('replaces an established session when a new client on the same 5-tuple passes the cookie exchange (RFC 6347 §4.2.8)', async () => {
    const closed: FiveTuple[] = [];
    const l = new DtlsListener(
      addon(),
      { ...tls, psk: [PSK] },
      { onClientPacket: (_ft, data, reply) => reply(Buffer.concat([Buffer.from('echo:'), data])), onSessionClosed: (ft) => closed.push(ft) },
      silentLogger,
    );
    listeners.push(l);
    const { port } = await l.listen('127.0.0.1', 0);
    const clientPort = 35350;
    const connect = async () => {
      const c = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port, listenPort: clientPort, psk: { [PSK.identity]: PSK.key.toString('ascii') }, timeout: 3000 });
      await new Promise<void>((resolve, reject) => {
        c.once('connected', () => resolve());
        c.once('error', reject);
      });
      const echoed = new Promise<string>((r) => c.once('message', (m: Buffer) => r(m.toString())));
      c.send(Buffer.from('hello'));
      expect(await echoed).toBe('echo:hello');
      return c;
    };
    const first = await connect();
    // The first client vanishes without close_notify (a crash, a NAT mapping handed to someone else).
    (first as unknown as { udp: { removeAllListeners(): void; close(): void } }).udp.removeAllListeners();
    (first as unknown as { udp: { close(): void } }).udp.close();
    expect(l.stats()).toMatchObject({ sessions: 1, handshakesDone: 1 });
    const second = await connect();
    expect(l.stats()).toMatchObject({ sessions: 1, handshakesDone: 2, sessionsReplaced: 1, cookiesSent: 2 });
    expect(closed).toEqual([{ transport: 'dtls', clientAddress: '127.0.0.1', clientPort, serverAddress: '127.0.0.1', serverPort: port }]);
    await new Promise<void>((r) => second.close(() => r()));
  });

  it('TurnServer refuses a dtls listener without a certificate', () => {
    expect(
      () =>
        new TurnServer(turnTestOptions({
          realm: 'r',
          listen: [{ transport: 'dtls', host: '127.0.0.1', port: 0 }],
          relayPortMin: 40000,
          relayPortMax: 40010,
          nonceSecret: Buffer.from('k'),
          allowLoopbackPeers: true,
          getKey: async () => undefined,
        })),
    ).toThrow(/dtls TURN listener needs a certificate and key/);
  });
});
