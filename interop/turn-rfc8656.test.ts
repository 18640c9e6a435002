/**
 * Interop: coturn's turnutils_uclient and turnutils_peer, and the npm package
 * `stun`, against TurnServer on loopback: TLS, the REST API secret scheme,
 * client-to-client relaying, TCP allocations (RFC 6062), IPv6 relays, SHA-256 offered, the default peer
 * policy (403) and allocation quotas (486).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import stun from 'stun';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { makeSelfSignedPem } from './harness/tls-files.js';
import { runUclient, uclientCounts } from './harness/turnutils.js';
import { TurnServer, type TurnServerOptions } from '../src/turn/index.js';
import { turnTestOptions } from '../test/helpers/turn-options.js';

const REALM = 'rtcedge.test';
const TURN_PORT = 33478;
const TLS_PORT = 33479;
const PEER_PORT = 33491;
const SECRET = 'interop-rest-secret';

const common = (...extra: string[]) => ['-p', String(TURN_PORT), '-r', String(PEER_PORT), '-n', '10', '-c', ...extra];

describeWithPeers(['turnutils_uclient', 'turnutils_peer', 'openssl'])('turnutils_uclient against TurnServer (RFC 8656 features)', () => {
  let peer: ChildProcess | undefined;
  let server: TurnServer | undefined;
  let dir: string;
  let tls: { cert: Buffer; key: Buffer };

  async function start(over: Partial<TurnServerOptions> = {}): Promise<TurnServer> {
    const s = new TurnServer(turnTestOptions({
      realm: REALM,
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: TURN_PORT },
        { transport: 'tcp', host: '127.0.0.1', port: TURN_PORT },
        { transport: 'tls', host: '127.0.0.1', port: TLS_PORT },
        { transport: 'udp', host: '::1', port: TURN_PORT },
      ],
      relayAddress6: '::1',
      relayPortMin: 33600,
      relayPortMax: 33699,
      nonceSecret: Buffer.from('interop-nonce-secret'),
      allowLoopbackPeers: true,
      tls,
      authSecrets: [SECRET],
      getKey: async (username, realm, alg) =>
        username === 'alice' ? createHash(alg === 'SHA-256' ? 'sha256' : 'md5').update(`alice:${realm}:alicepw`).digest() : undefined,
      dataPlane: 'typescript',
      software: 'rtcedge-test',
      ...over,
    }));
    await s.start();
    server = s;
    return s;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-turn-'));
    const pem = await makeSelfSignedPem(dir, 'turn', 'localhost');
    tls = { cert: readFileSync(pem.certPath), key: readFileSync(pem.keyPath) };
    // Spawned directly (not under `timeout`) so its PID is the peer's; stopped by that PID in afterAll.
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-L', '::1', '-p', String(PEER_PORT)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  });

  /**
   * A TLS run of turnutils_uclient that sent `n` messages through `s`: it exited 0 having sent them all, the
   * server relayed every one to the peer and wrote every echo toward the client, and the client counted at
   * least one. The client's own count is only a lower bound: coturn 4.6.1's uclient takes each TLS record as one
   * message (one SSL_read, no STUN framing), and Node's TLS socket puts the messages queued behind a write still
   * in flight into one record. TLS keeps no message boundaries (RFC 5246 §6.2.1), STUN over a stream is framed by
   * its length (RFC 8489 §6.2.2), so this is allowed, and it happens when a busy machine delays the server: the
   * echoes then reach the client together and it counts one.
   */
  function expectRelayedOverTls(s: TurnServer, r: { code: number | null; out: string }, n: number): void {
    const counts = uclientCounts(r.out);
    expect(counts?.sent).toBe(n);
    expect(counts?.recv).toBeGreaterThanOrEqual(1);
    expect(counts?.recv).toBeLessThanOrEqual(n);
    expect(r.code).toBe(0);
    const st = s.stats();
    expect({ toPeerPackets: st.toPeerPackets, toClientPackets: st.toClientPackets, dropped: st.streams.dropped }).toEqual({ toPeerPackets: n, toClientPackets: n, dropped: 0 });
  }

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  afterAll(() => {
    if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays over TLS (-t -S) with channels, none lost on the way', async () => {
    const s = await start();
    const r = await runUclient(['-t', '-S', ...common('-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw'), '-p', String(TLS_PORT), '127.0.0.1']);
    expectRelayedOverTls(s, r, 10);
  });

  it('relays over TLS with Send/Data indications (-t -S -s)', async () => {
    const s = await start();
    const r = await runUclient(['-t', '-S', '-s', ...common('-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw'), '-p', String(TLS_PORT), '127.0.0.1']);
    expectRelayedOverTls(s, r, 10);
  });

  it('accepts REST API credentials (-W secret) over UDP and TCP, and refuses another secret', async () => {
    await start();
    for (const t of [[], ['-t']]) {
      const r = await runUclient([...t, ...common('-e', '127.0.0.1', '-u', 'alice', '-W', SECRET), '127.0.0.1']);
      expect(uclientCounts(r.out), t.join(' ')).toEqual({ sent: 10, recv: 10 });
      expect(r.code).toBe(0);
    }
    const bad = await runUclient([...common('-e', '127.0.0.1', '-u', 'alice', '-W', 'not-the-secret'), '127.0.0.1']);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/Cannot complete Allocation|error 401/);
  });

  it('relays client to client through two allocations (-y)', async () => {
    await start();
    const r = await runUclient(['-y', ...common('-u', 'alice', '-w', 'alicepw'), '127.0.0.1']);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 20, recv: 20 });
    expect(r.code).toBe(0);
  });

  it('relays over TCP allocations client to client (-T -t, RFC 6062 Connect/ConnectionBind/ConnectionAttempt)', async () => {
    await start();
    const r = await runUclient(['-T', '-t', ...common('-u', 'alice', '-w', 'alicepw'), '127.0.0.1']);
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 20, recv: 20 });
    expect(r.code).toBe(0);
  });

  it('relays through an IPv6 relayed address to a ::1 peer (-x)', async () => {
    const s = await start();
    const r = await runUclient(['-x', ...common('-e', '::1', '-u', 'alice', '-w', 'alicepw'), '127.0.0.1']);
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
    expect(s.stats().packetsRelayed).toBeGreaterThanOrEqual(20);
  });

  it('still works for a client when SHA-256 is offered first (it answers with MD5)', async () => {
    await start({ passwordAlgorithms: ['SHA-256', 'MD5'] });
    const r = await runUclient([...common('-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw'), '127.0.0.1']);
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
  });

  it('refuses a 127.0.0.1 peer with 403 under the default policy', async () => {
    const s = await start({ allowLoopbackPeers: false });
    const r = await runUclient([...common('-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw'), '127.0.0.1']);
    expect(r.out).toMatch(/error 403/);
    expect(r.code).not.toBe(0);
    expect(s.stats().packetsRelayed).toBe(0);
  });

  it('answers 486 when the per-user quota is reached', async () => {
    await start({ maxAllocationsPerUser: 1 });
    const r = await runUclient([...common('-e', '127.0.0.1', '-u', 'alice', '-w', 'alicepw'), '-m', '2', '127.0.0.1']);
    expect(r.out).toMatch(/error 486/);
    expect(r.code).not.toBe(0);
  });

  it('answers Binding from the independent `stun` client with our address', async () => {
    await start();
    const res = await stun.request(`127.0.0.1:${TURN_PORT}`);
    const mapped = res.getXorAddress();
    expect(mapped.address).toBe('127.0.0.1');
    expect(mapped.port).toBeGreaterThan(0);
  });
});
