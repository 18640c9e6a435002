/**
 * Several nodes on one shared Redis store, against real peers on
 * loopback: redis-server on 127.0.0.1:26390; three rtcedge processes serve
 * example.test on 127.0.0.2 (node 1), 127.0.0.3 (node 2) and 127.0.0.4
 * (node 3), UDP/TCP 5060 and TLS 5061 each; bind9 publishes the domain's
 * NAPTR and SRV records for all three (node 2 first, then node 3, then node 1).
 *
 * - baresip A (alice) registers over TLS on node 1 (its outbound proxy) and
 *   places its calls through node 3 (a second account of the same user,
 *   outbound node 3, not registering); baresip B (bob) finds the domain by
 *   DNS and registers over TLS on node 2, the first SRV target;
 * - A calls B: the INVITE enters at node 3, which routes it through node 2
 *   (the Path node 2 put on B's binding) down B's TLS connection;
 * - node 2 is killed: B re-registers by DNS on node 3 (node 2 refuses
 *   connections), and A reaches B again;
 * - Redis is restarted during a call: the call goes on and ends normally,
 *   every node answers /readyz 200 again by itself, and a new call connects.
 *
 * Ports: rtcedge 5060/5061 on 127.0.0.2-4 (admin on ephemeral ports); Redis
 * 26390; baresip A 26800 (+1 TLS), B 26810; ctrl 26447/26448; RTP
 * 26820-26849 / 26850-26879; named on a free port.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { startNamed, zoneFile, type Named } from './harness/named.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { startRedis, type TestRedis } from './harness/redis.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';
import { RedisStore } from '../src/store/index.js';
import { configSchema } from '../src/config/schema.js';

const NODES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'] as const;
const REDIS_PORT = 26390;
const ALICE_PW = 'alice-nodes-1';
const BOB_PW = 'bob-nodes-2';

const ZONE = zoneFile(
  'example.test',
  [
    '@ IN NAPTR 10 10 "s" "SIPS+D2T" "" _sips._tcp.example.test.',
    '_sips._tcp IN SRV 10 0 5061 node2.example.test.',
    '_sips._tcp IN SRV 20 0 5061 node3.example.test.',
    '_sips._tcp IN SRV 30 0 5061 node1.example.test.',
    ...NODES.map((a, i) => `node${i + 1} IN A ${a}`),
  ].join('\n'),
  5,
);

describeWithPeers(['baresip', 'named', 'redis-server'])('three nodes on one Redis, located by DNS SRV', () => {
  let dir: string;
  let named: Named | undefined;
  let redis: TestRedis | undefined;
  const nodes: Rtcedge[] = [];
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;
  let store: RedisStore | undefined;

  /** An INVITE the node logged receiving since log index `from`, or undefined. */
  const inviteAt = (node: Rtcedge, from: number) => node.logs.slice(from).find((l) => l.msg === 'sip recv' && /^INVITE sip:bob/.test(String(l.startLine)));

  beforeAll(async () => {
    for (const a of NODES) await assertPortsFree(a, [5060, 5061]);
    await assertPortsFree('127.0.0.1', [REDIS_PORT, 26800, 26801, 26810, 26811, 26447, 26448]);
    dir = makeTempDir('multi-node');
    named = await startNamed({ dir, zones: { 'example.test': ZONE } });
    const redisDir = join(dir, 'redis');
    mkdirSync(redisDir);
    redis = await startRedis('127.0.0.1', REDIS_PORT, redisDir);
    for (const [i, address] of NODES.entries()) {
      nodes.push(
        await startRtcedge({
          dir: join(dir, `node${i + 1}`),
          config: {
            sip: {
              listen: [
                { transport: 'udp', host: address, port: 5060 },
                { transport: 'tcp', host: address, port: 5060 },
                { transport: 'tls', host: address, port: 5061 },
              ],
              // Short registrations, so B's refresh after node 2 dies comes within seconds.
              registrar: { min_expires: 5 },
            },
            dns: { servers: [named.server] },
            store: { type: 'redis', redis: { url: redis.url, key_prefix: 'nodes:', retry_after: 3 } },
            node: { uri: `sip:${address}:5061;transport=tls` },
          },
          users: i === 0 ? [{ aor: 'alice@example.test', password: ALICE_PW }, { aor: 'bob@example.test', password: BOB_PW }] : [],
        }),
      );
    }
    const ua = (name: string, n: number, accounts: Parameters<typeof startBaresip>[0]['accounts']) =>
      startBaresip({
        name,
        parentDir: dir,
        sipPort: 26800 + 10 * n,
        ctrlPort: 26447 + n,
        rtpPorts: [26820 + 30 * n, 26849 + 30 * n],
        accounts,
        extraConfig: [`dns_server ${named!.server}`],
        lifetimeS: 170,
      });
    // A: the first account (baresip's current one) places calls through node 3; the second registers on node 1.
    alice = await ua('alice', 0, [
      { aor: 'sip:alice@example.test;transport=tls', password: ALICE_PW, regint: 0, outbound: `sip:${NODES[2]}:5061;transport=tls` },
      { aor: 'sip:alice@example.test', password: ALICE_PW, regint: 600, answermode: 'auto', outbound: `sip:${NODES[0]}:5061;transport=tls` },
    ]);
    // B: no outbound proxy: the registrar is found by NAPTR/SRV of example.test.
    bob = await ua('bob', 1, [{ aor: 'sip:bob@example.test;transport=tls', password: BOB_PW, regint: 6, answermode: 'auto' }]);
    await bob.waitForRegistered(15_000);
    // Both registrations are in Redis, each led by the Path of the node holding its TLS flow.
    store = await new RedisStore(configSchema.parse({ store: nodes[0]!.config.store, node: nodes[0]!.config.node }).store.redis).connect();
    const firstPath = async (aor: string) => (await store!.listBindings(aor))[0]?.path[0] ?? '';
    for (let i = 0; i < 75 && !(await firstPath('sip:alice@example.test')); i++) await new Promise((r) => setTimeout(r, 200));
  }, 120_000);

  afterAll(async () => {
    await store?.close();
    await Promise.all([alice?.stop(), bob?.stop()]);
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
    await named?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  /** A dials B and both have the call; returns the log indexes of the nodes before dialling. */
  async function connect(): Promise<number[]> {
    const from = nodes.map((n) => n.logs.length);
    const a0 = alice!.events.length;
    const b0 = bob!.events.length;
    expect((await alice!.dial('sip:bob@example.test')).ok).toBe(true);
    await alice!.waitForEventType('CALL_ESTABLISHED', 20_000, a0);
    await bob!.waitForEventType('CALL_ESTABLISHED', 20_000, b0);
    return from;
  }

  /** A hangs up; resolves when B saw the end. */
  async function hangUp(): Promise<void> {
    const b0 = bob!.events.length;
    expect((await alice!.hangup()).ok).toBe(true);
    await bob!.waitForEventType('CALL_CLOSED', 10_000, b0);
  }

  it('A (registered on node 1) calls B (registered on node 2) with the INVITE entering at node 3', async () => {
    const firstPath = async (aor: string) => (await store!.listBindings(aor))[0]?.path[0] ?? '';
    expect(await firstPath('sip:alice@example.test')).toMatch(/@127\.0\.0\.2:5061;transport=tls;lr>$/);
    expect(await firstPath('sip:bob@example.test')).toMatch(/@127\.0\.0\.3:5061;transport=tls;lr>$/);
    const from = await connect();
    const at3 = inviteAt(nodes[2]!, from[2]!);
    const at2 = inviteAt(nodes[1]!, from[1]!);
    expect(at3?.transport).toBe('tls');
    // Node 3 sent it to node 2 (over TLS, as node 2's URI says), node 2 down B's connection.
    expect(at2?.transport).toBe('tls');
    expect(String(at2?.remote)).not.toMatch(/:2680\d$/);
    expect(inviteAt(nodes[0]!, from[0]!)).toBeUndefined();
    await hangUp();
  }, 60_000);

  it('node 2 is killed: B re-registers on node 3 by DNS, and A reaches it there', async () => {
    const node2 = nodes[1]!;
    process.kill(node2.pid, 'SIGKILL');
    await node2.process.exited;
    const at3 = nodes[2]!.logs.length;
    // B's next refresh finds node 2 refusing connections and takes the next SRV target, node 3.
    await nodes[2]!.waitForLog((l) => l.msg === 'sip recv' && /^REGISTER /.test(String(l.startLine)) && l.transport === 'tls', 30_000, at3);
    await bob!.waitForRegistered(15_000);
    // baresip still reports the registration of node 2 as OK while the one at node 3 is under way:
    // dial once node 3 has stored B's binding over its own flow.
    await expect.poll(async () => (await store!.listBindings('sip:bob@example.test')).some((b) => /@127\.0\.0\.4:5061;transport=tls;lr>$/.test(b.path[0] ?? '')), { timeout: 15_000, interval: 200 }).toBe(true);
    const from = await connect();
    expect(inviteAt(nodes[2]!, from[2]!)).toBeDefined();
    await hangUp();
  }, 90_000);

  it('Redis restarted during a call: the call goes on, every node recovers by itself, a new call connects', async () => {
    await connect();
    await redis!.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await redis!.start();
    await hangUp();
    const live = [nodes[0]!, nodes[2]!];
    for (const node of live) {
      const ready = node.logs.find((l) => l.msg === 'rtcedge ready' && l._run === node.logs.at(-1)?._run);
      const admin = String(ready?.admin);
      await expect.poll(async () => (await fetch(`${admin}/readyz`)).status, { timeout: 15_000, interval: 250 }).toBe(200);
    }
    const from = await connect();
    expect(inviteAt(nodes[2]!, from[2]!)).toBeDefined();
    await hangUp();
  }, 90_000);
});
