/**
 * Interop: coturn's turnutils_uclient against TurnServer with the native UDP
 * data plane (native/), over UDP with ChannelData and with Send/Data
 * indications (-s): zero loss at a low rate, and the relayed datagrams never
 * entered JavaScript (the addon's counters say so).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { runUclient, uclientCounts } from './harness/turnutils.js';
import { TurnServer } from '../src/turn/index.js';
import { turnTestOptions } from '../test/helpers/turn-options.js';

const REALM = 'rtcedge.test';
const TURN_PORT = 31478;
const PEER_PORT = 31491;



describeWithPeers(['turnutils_uclient', 'turnutils_peer'])('turnutils_uclient against TurnServer, native data plane', () => {
  let peer: ChildProcess | undefined;
  let server: TurnServer | undefined;

  async function startServer(): Promise<TurnServer> {
    const s = new TurnServer(turnTestOptions({
      realm: REALM,
      listen: [{ transport: 'udp', host: '127.0.0.1', port: TURN_PORT }],
      relayPortMin: 31500,
      relayPortMax: 31799,
      nonceSecret: Buffer.from('interop-native-nonce-secret'),
      allowLoopbackPeers: true,
      getKey: async (username, realm) => (username === 'alice' ? createHash('md5').update(`alice:${realm}:alicepw`).digest() : undefined),
      dataPlane: 'native',
    }));
    await s.start();
    return s;
  }

  beforeAll(async () => {
    // Spawned directly (under `timeout` it would sit in a process group of its own) and stopped by PID in afterAll.
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(PEER_PORT)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  afterAll(() => {
    if (peer?.pid !== undefined && peer.exitCode === null) process.kill(peer.pid, 'SIGKILL');
  });

  for (const mode of ['channels', 'send indications'] as const) {
    it(`relays 5 clients x 50 messages over UDP with ${mode}, none lost, none through JavaScript`, async () => {
      server = await startServer();
      expect(server.dataPlane).toBe('native');
      const args = ['-u', 'alice', '-w', 'alicepw', '-p', String(TURN_PORT), '-e', '127.0.0.1', '-r', String(PEER_PORT), '-m', '5', '-n', '50', '-l', '200', '-c', '127.0.0.1'];
      if (mode === 'send indications') args.unshift('-s');
      const r = await runUclient(args, 60);
      if (process.env.TURN_INTEROP_DEBUG) console.log(r.out);
      expect(r.out).toContain('Total lost packets 0');
      expect(uclientCounts(r.out)).toEqual({ sent: 250, recv: 250 });
      expect(r.code).toBe(0);
      const st = server.stats();
      expect(st.dataPlane).toBe('native');
      const n = st.native!;
      // Every message went out to the peer and came back, in the addon.
      expect(n.toPeerPackets).toBeGreaterThanOrEqual(250);
      expect(n.toClientPackets).toBeGreaterThanOrEqual(250);
      expect(n.toPeerBytes).toBeGreaterThanOrEqual(250 * 200);
      // Only STUN requests went up: far fewer than the relayed messages.
      expect(n.toControlPackets).toBeLessThan(100);
      expect(n.dropQueueFull + n.dropSendFailed + n.dropMalformed + n.dropBadFingerprint).toBe(0);
      expect(st.packetsRelayed).toBe(n.toPeerPackets + n.toClientPackets);
    });
  }
});
