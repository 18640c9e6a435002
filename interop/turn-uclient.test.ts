/**
 * Interop: coturn's turnutils_uclient and turnutils_peer (Debian package coturn)
 * against TurnServer over UDP and TCP on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { runUclient, uclientCounts } from './harness/turnutils.js';
import { TurnServer } from '../src/turn/index.js';
import { turnTestOptions } from '../test/helpers/turn-options.js';

const REALM = 'rtcedge.test';
const TURN_PORT = 34780;
const PEER_PORT = 34910;



describeWithPeers(['turnutils_uclient', 'turnutils_peer'])('turnutils_uclient against TurnServer', () => {
  let peer: ChildProcess | undefined;
  let server: TurnServer;

  async function startServer(): Promise<TurnServer> {
    const s = new TurnServer(turnTestOptions({
      realm: REALM,
      listen: [
        { transport: 'udp', host: '127.0.0.1', port: TURN_PORT },
        { transport: 'tcp', host: '127.0.0.1', port: TURN_PORT },
      ],
      relayPortMin: 34800,
      relayPortMax: 34899,
      nonceSecret: Buffer.from('interop-nonce-secret'),
      allowLoopbackPeers: true,
      getKey: async (username, realm) =>
        username === 'alice' ? createHash('md5').update(`alice:${realm}:alicepw`).digest() : undefined,
      software: 'rtcedge-test',
    }));
    await s.start();
    return s;
  }

  beforeAll(async () => {
    // Spawned directly (not under `timeout`, which would move it to a process group of its own) and stopped by PID in afterAll.
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(PEER_PORT)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  });

  afterEach(async () => {
    await server?.stop();
  });

  afterAll(async () => {
    if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid, 'SIGKILL');
  });

  it('relays 10 messages over UDP with ChannelData, none lost', async () => {
    server = await startServer();
    const r = await runUclient(['-u', 'alice', '-w', 'alicepw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', '10', '-c', '127.0.0.1'], 30);
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
    // 10 messages out to the peer and 10 echoed back.
    expect(server.stats().packetsRelayed).toBeGreaterThanOrEqual(20);
  });

  it('relays 10 messages over UDP with Send/Data indications', async () => {
    server = await startServer();
    const r = await runUclient(['-s', '-u', 'alice', '-w', 'alicepw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', '10', '-c', '127.0.0.1'], 30);
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
  });

  it('relays 10 messages over TCP, none lost', async () => {
    server = await startServer();
    const r = await runUclient(['-t', '-u', 'alice', '-w', 'alicepw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', '10', '-c', '127.0.0.1'], 30);
    if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
    expect(r.out).toContain('Total lost packets 0');
    expect(uclientCounts(r.out)).toEqual({ sent: 10, recv: 10 });
    expect(r.code).toBe(0);
  });

  it('refuses a wrong password and relays nothing', async () => {
    server = await startServer();
    const r = await runUclient(['-u', 'alice', '-w', 'wrongpw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-n', '10', '-c', '127.0.0.1'], 30);
    expect(r.out.includes('Cannot complete Allocation') || r.code !== 0).toBe(true);
    expect(r.code).not.toBe(0);
    expect(server.stats().packetsRelayed).toBe(0);
    expect(server.stats().allocations).toBe(0);
  });
});
