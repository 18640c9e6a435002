/**
 * UDP datagrams steered to their Call-ID's worker by the kernel
 * (cluster/udp-steering.ts, native/src/udp_steer.cc): `rtcedge serve` with
 * two workers gets REGISTERs of many Call-IDs from ONE client socket (one
 * 4-tuple, which the kernel's own reuseport hash would give to one worker).
 * Steered, each worker challenges exactly the Call-IDs it owns and hands
 * nothing over the mesh (summary lines: `statelessChallenges`, `handedOff`);
 * with `sip.udp_steering: off` the workers share one socket, an info line says
 * why, messages are handed to their owner and every REGISTER is still answered
 * by its owner.
 *
 * Ports: 27370 (UDP), admin 27371; 27372, admin 27373.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callIdFor, serveWorkers, type ServedWorkers } from './harness.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { getHeader } from '../../src/sip/message.js';
import { loadUdpSteerAddon } from '../../src/cluster/udp-steering.js';

const DOMAIN = 'example.test';
const PER_WORKER = 40;

/** Why this host cannot steer (bpf() refused, addon missing), or undefined when it can. */
function steeringRefused(): string | undefined {
  const loaded = loadUdpSteerAddon();
  if ('reason' in loaded) return loaded.reason;
  try {
    loaded.addon.closeDescriptor(loaded.addon.loadCallIdProgram(2));
    return undefined;
  } catch (err) {
    return (err as Error).message.split(';')[0];
  }
}
const refused = steeringRefused();

interface Summary {
  worker: number;
  statelessChallenges: number;
  handedOff: number;
  handedIn: number;
}

/** Two workers on one UDP port for the tests of this describe block (started before them, stopped after); `steering` sets sip.udp_steering. */
function serveForBlock(port: number, steering: 'auto' | 'off'): { served: () => ServedWorkers; logLine: (text: string) => Record<string, unknown> | undefined } {
  let served: ServedWorkers | undefined;
  beforeAll(async () => {
    served = await serve(port, steering);
  }, 30_000);
  afterAll(async () => {
    await served?.stop();
  });
  const logLine = (text: string) => {
    const line = served!.server.stdout().split('\n').find((l) => l.includes(text));
    return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
  };
  return { served: () => served!, logLine };
}

function serve(port: number, steering: 'auto' | 'off'): Promise<ServedWorkers> {
  return serveWorkers(
    `udp-steering-${steering}`,
    {
      domains: [DOMAIN],
      log: { level: 'info', summary_interval: 1 },
      sip: { workers: 2, udp_steering: steering, listen: [{ transport: 'udp', host: '127.0.0.1', port }] },
      turn: { enabled: false },
      federation: { require_tls: false },
      admin: { listen: `127.0.0.1:${port + 1}` },
    },
    DOMAIN,
    ['alice'],
    'steer-pw',
  );
}

/** The summary lines' totals per worker so far (a restarted worker's lines add to those of the process it replaced). */
function totals(served: ServedWorkers): Summary[] {
  const lines = served.server
    .stdout()
    .split('\n')
    .filter((l) => l.includes('"msg":"summary"'))
    .map((l) => JSON.parse(l) as Summary);
  return [0, 1].map((worker) => {
    const mine = lines.filter((s) => s.worker === worker);
    const sum = (k: 'statelessChallenges' | 'handedOff' | 'handedIn') => mine.reduce((n, s) => n + s[k], 0);
    return { worker, statelessChallenges: sum('statelessChallenges'), handedOff: sum('handedOff'), handedIn: sum('handedIn') };
  });
}

/**
 * Send PER_WORKER REGISTERs without credentials whose Call-ID each worker owns, from one socket; wait for every 401,
 * then for summary lines counting every challenge. Returns what the summary totals per worker rose by.
 */
async function registerFromOneSocket(served: ServedWorkers, port: number): Promise<Summary[]> {
  const before = totals(served);
  const rise = (): Summary[] =>
    totals(served).map((t, w) => ({
      worker: t.worker,
      statelessChallenges: t.statelessChallenges - before[w]!.statelessChallenges,
      handedOff: t.handedOff - before[w]!.handedOff,
      handedIn: t.handedIn - before[w]!.handedIn,
    }));
  const ua = await UdpUa.open();
  try {
    const callIds = [0, 1].flatMap((owner) => Array.from({ length: PER_WORKER }, () => callIdFor(owner)));
    for (const [i, callId] of callIds.entries()) {
      ua.sendRaw(
        `REGISTER sip:${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${ua.port};branch=z9hG4bK-steer-${i};rport\r\nMax-Forwards: 70\r\n` +
          `From: <sip:alice@${DOMAIN}>;tag=s${i}\r\nTo: <sip:alice@${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: 1 REGISTER\r\n` +
          `Contact: <sip:alice@127.0.0.1:${ua.port}>\r\nContent-Length: 0\r\n\r\n`,
        port,
      );
    }
    const answered = () => new Set(ua.received.filter((m) => m.kind === 'response' && m.status === 401).map((m) => getHeader(m, 'call-id'))).size;
    await expect.poll(answered, { timeout: 10_000 }).toBe(callIds.length);
  } finally {
    ua.close();
  }
  await expect.poll(() => rise().reduce((n, t) => n + t.statelessChallenges, 0), { timeout: 10_000 }).toBe(2 * PER_WORKER);
  return rise();
}

describe.skipIf(refused !== undefined)(`two workers, sip.udp_steering: auto${refused ? ` (skipped: bpf() refused here: ${refused})` : ''}`, () => {
  const PORT = 27370;
  const { served, logLine } = serveForBlock(PORT, 'auto');

  it('logs that UDP is steered, naming the listener', () => {
    expect(logLine('steered to their Call-ID')).toMatchObject({ component: 'udp-steering', workers: 2, listeners: [`udp|127.0.0.1|${PORT}`] });
  });

  it("REGISTERs of many Call-IDs from one client socket each reach the worker owning the Call-ID: none handed over the mesh", async () => {
    const totals = await registerFromOneSocket(served(), PORT);
    expect(totals).toEqual([
      { worker: 0, statelessChallenges: PER_WORKER, handedOff: 0, handedIn: 0 },
      { worker: 1, statelessChallenges: PER_WORKER, handedOff: 0, handedIn: 0 },
    ]);
  });

  it('a worker killed gets its socket back at the same index: its Call-IDs still reach it, none handed over', async () => {
    const lines = () => served().server.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = (worker: number) => lines().filter((l) => l.msg === 'sip worker ready' && l.worker === worker);
    process.kill(ready(0)[0]!.pid as number, 'SIGKILL');
    await expect.poll(() => ready(0).length, { timeout: 10_000 }).toBe(2);
    expect(await registerFromOneSocket(served(), PORT)).toEqual([
      { worker: 0, statelessChallenges: PER_WORKER, handedOff: 0, handedIn: 0 },
      { worker: 1, statelessChallenges: PER_WORKER, handedOff: 0, handedIn: 0 },
    ]);
  });
});

describe('two workers, sip.udp_steering: off', () => {
  const PORT = 27372;
  const { served, logLine } = serveForBlock(PORT, 'off');

  it('logs why UDP is not steered', () => {
    expect(logLine('not steered by Call-ID')).toMatchObject({ component: 'udp-steering', reason: 'sip.udp_steering is off' });
  });

  it("REGISTERs from one client socket land on either worker and are handed to the Call-ID's owner, which answers each", async () => {
    const totals = await registerFromOneSocket(served(), PORT);
    expect(totals.map((t) => t.statelessChallenges)).toEqual([PER_WORKER, PER_WORKER]);
    const handedOff = totals.reduce((n, t) => n + t.handedOff, 0);
    expect(handedOff).toBeGreaterThan(0);
    expect(totals.reduce((n, t) => n + t.handedIn, 0)).toBe(handedOff);
  });
});
