/**
 * The shared call count (store/redis-calls.ts) against a real redis-server,
 * two RedisCallCounters on two connections standing for two nodes: who is
 * refused when admissions race for a user's last slots, the rate limit and
 * its Retry-After, a Call-ID counted once, ends freeing a slot, and counts
 * left by earlier versions (the same keys) honoured.
 */
import { afterAll, beforeAll, beforeEach, expect, test, vi } from 'vitest';
import pino from 'pino';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { RedisCallCounter, RedisStore } from '../../src/store/index.js';
import { MAX_ENDED_WAITING } from '../../src/store/redis-calls.js';
import { configSchema } from '../../src/config/schema.js';

const PORT = 26392;
const PREFIX = 'calls-test:';
const silent = pino({ level: 'silent' });

describeWithPeers(['redis-server'])('call limits counted in Redis by two nodes', () => {
  let dir: string;
  let redis: TestRedis;
  let storeA: RedisStore;
  let storeB: RedisStore;
  beforeAll(async () => {
    dir = makeTempDir('redis-calls');
    redis = await startRedis('127.0.0.1', PORT, dir);
    const config = configSchema.parse({ store: { type: 'redis', redis: { url: redis.url, key_prefix: PREFIX, command_timeout: 2000 } }, node: { uri: 'sip:127.0.0.1' } }).store.redis;
    storeA = await new RedisStore(config, silent).connect();
    storeB = await new RedisStore(config, silent).connect();
  });
  afterAll(async () => {
    await storeA?.close();
    await storeB?.close();
    await redis?.stop();
    removeTempDir(dir);
  });
  beforeEach(async () => {
    await storeA.redis.flushall();
  });

  const counters = (maxConcurrent: number, maxPerMinute: number): [RedisCallCounter, RedisCallCounter] => [
    new RedisCallCounter(storeA, { maxConcurrent, maxPerMinute, maxCallSeconds: 3600 }, silent),
    new RedisCallCounter(storeB, { maxConcurrent, maxPerMinute, maxCallSeconds: 3600 }, silent),
  ];
  /** The Call-IDs Redis counts as active for `user`, sorted (after this connection's earlier commands). */
  const active = async (user: string): Promise<string[]> => (await storeA.redis.zrange(`${PREFIX}calls:${user}`, 0, -1)).sort();
  const attemptCount = (user: string): Promise<number> => storeA.redis.zcard(`${PREFIX}attempts:${user}`);
  /** Wait until both connections' pending commands (the undo of a refusal) have run. */
  const settle = async (): Promise<void> => {
    await storeA.redis.ping();
    await storeB.redis.ping();
  };

  test('two nodes racing for the last slot: the admission Redis runs second is refused (486 busy), and leaves nothing counted', async () => {
    const [a, b] = counters(3, 0);
    expect(await a.admit('alice', 'c1')).toEqual({ ok: true });
    expect(await b.admit('alice', 'c2')).toEqual({ ok: true });
    // Writes paused: both transactions wait in Redis, node A's first, and run in that order on UNPAUSE.
    const pauser = storeA.redis.duplicate({ enableOfflineQueue: true });
    await pauser.connect();
    try {
      await pauser.client('PAUSE', 10_000, 'WRITE');
      const first = a.admit('alice', 'from-a');
      await new Promise((r) => setTimeout(r, 100));
      const second = b.admit('alice', 'from-b');
      await new Promise((r) => setTimeout(r, 100));
      await pauser.client('UNPAUSE');
      expect(await first).toEqual({ ok: true });
      expect(await second).toEqual({ ok: false, why: 'busy' });
    } finally {
      await pauser.quit();
    }
    await settle();
    expect(await active('alice')).toEqual(['c1', 'c2', 'from-a']);
    // The other order: node B's first.
    await storeA.redis.zrem(`${PREFIX}calls:alice`, 'from-a');
    const pauser2 = storeA.redis.duplicate({ enableOfflineQueue: true });
    await pauser2.connect();
    try {
      await pauser2.client('PAUSE', 10_000, 'WRITE');
      const first = b.admit('alice', 'from-b2');
      await new Promise((r) => setTimeout(r, 100));
      const second = a.admit('alice', 'from-a2');
      await new Promise((r) => setTimeout(r, 100));
      await pauser2.client('UNPAUSE');
      expect(await first).toEqual({ ok: true });
      expect(await second).toEqual({ ok: false, why: 'busy' });
    } finally {
      await pauser2.quit();
    }
    await settle();
    expect(await active('alice')).toEqual(['c1', 'c2', 'from-b2']);
  });

  test('many admissions at once from both nodes: exactly the limit is admitted, the refused leave no entry', async () => {
    const [a, b] = counters(4, 0);
    for (let round = 0; round < 5; round++) {
      const user = `u${round}`;
      const got = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).admit(user, `call-${i}`)));
      const admitted = got.map((g, i) => (g.ok ? `call-${i}` : undefined)).filter((x) => x !== undefined);
      expect(admitted).toHaveLength(4);
      expect(got.filter((g) => !g.ok).every((g) => !g.ok && g.why === 'busy')).toBe(true);
      await settle();
      expect(await active(user)).toEqual(admitted.sort());
    }
  });

  test('attempts per minute: the attempts over the limit get rate with a Retry-After within the minute; refused ones are not counted', async () => {
    const [a, b] = counters(0, 3);
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).admit('bob', `r-${i}`)));
    expect(got.filter((g) => g.ok)).toHaveLength(3);
    for (const g of got.filter((x) => !x.ok)) {
      expect(g).toMatchObject({ ok: false, why: 'rate' });
      const retry = (g as { retryAfterS: number }).retryAfterS;
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
    }
    await settle();
    expect(await attemptCount('bob')).toBe(3);
    // An attempt older than a minute (as an earlier version's script or this one wrote it) no longer counts.
    await storeA.redis.zadd(`${PREFIX}attempts:carol`, Date.now() - 61_000, 'old 1', Date.now() - 1000, 'recent 2', Date.now() - 1000, 'recent 3');
    expect(await a.admit('carol', 'x')).toEqual({ ok: true });
    const refused = await b.admit('carol', 'y');
    expect(refused).toMatchObject({ ok: false, why: 'rate' });
    // Retry-After: until the oldest counted attempt (1 s old) leaves the minute.
    expect((refused as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(57);
    await storeA.redis.zadd(`${PREFIX}attempts:hank`, Date.now() - 50_000, 'h0 1', Date.now() - 1000, 'h1 2', Date.now() - 1000, 'h2 3');
    const later = await a.admit('hank', 'h3');
    expect(later).toMatchObject({ ok: false, why: 'rate' });
    expect((later as { retryAfterS: number }).retryAfterS).toBeGreaterThanOrEqual(8);
    expect((later as { retryAfterS: number }).retryAfterS).toBeLessThanOrEqual(11);
  });

  test('a Call-ID admitted again in the same millisecond, on either node, leaves the first attempt counted', async () => {
    const [a, b] = counters(1, 10);
    const now = vi.spyOn(Date, 'now').mockReturnValue(Date.now());
    try {
      expect(await a.admit('frank', 'f1')).toEqual({ ok: true });
      expect(await a.admit('frank', 'f1')).toEqual({ ok: true });
      expect(await b.admit('frank', 'f1')).toEqual({ ok: true });
      await settle();
    } finally {
      now.mockRestore();
    }
    expect(await active('frank')).toEqual(['f1']);
    expect(await attemptCount('frank')).toBe(1);
  });

  test('a Call-ID already counted is admitted again without a second entry or attempt; its end frees the slot', async () => {
    const [a, b] = counters(1, 10);
    expect(await a.admit('dave', 'd1')).toEqual({ ok: true });
    expect(await b.admit('dave', 'd1')).toEqual({ ok: true });
    await settle();
    expect(await active('dave')).toEqual(['d1']);
    expect(await attemptCount('dave')).toBe(1);
    expect(await b.admit('dave', 'd2')).toEqual({ ok: false, why: 'busy' });
    a.ended('dave', 'd1');
    a.sendEnded();
    await settle();
    expect(await active('dave')).toEqual([]);
    expect(await b.admit('dave', 'd2')).toEqual({ ok: true });
    // A call an earlier version counted (same key, same member) still counts.
    await storeA.redis.zadd(`${PREFIX}calls:erin`, Date.now() - 5000, 'e-old');
    expect(await a.admit('erin', 'e1')).toEqual({ ok: false, why: 'busy' });
    // ... unless it is older than max call seconds: forgotten.
    await storeA.redis.zadd(`${PREFIX}calls:frank`, Date.now() - 3_601_000, 'f-old');
    expect(await a.admit('frank', 'f1')).toEqual({ ok: true });
    await settle();
    expect(await active('frank')).toEqual(['f1']);
  });

  test('Redis not answering: the call is admitted (the node counts alone)', async () => {
    const config = configSchema.parse({ store: { type: 'redis', redis: { url: 'redis://127.0.0.1:1', key_prefix: PREFIX } }, node: { uri: 'sip:127.0.0.1' } }).store.redis;
    const down = new RedisStore(config, silent);
    const c = new RedisCallCounter(down, { maxConcurrent: 1, maxPerMinute: 1, maxCallSeconds: 60 }, silent);
    expect(await c.admit('gina', 'g1')).toEqual({ ok: true });
    await down.close();
  });

  test('at most MAX_ENDED_WAITING call ends wait for their batch: the one that reaches it sends them all at once', async () => {
    const [a] = counters(0, 0);
    // Calls counted in Redis as earlier admissions left them (one more than the bound, over two users).
    const ids = Array.from({ length: MAX_ENDED_WAITING + 1 }, (_, i) => `e${i}`);
    const user = (i: number) => (i % 2 ? 'ivan' : 'judy');
    const seed = storeA.redis.pipeline();
    for (const [i, id] of ids.entries()) seed.zadd(`${PREFIX}calls:${user(i)}`, Date.now(), id);
    await seed.exec();
    let most = 0;
    for (let i = 0; i < MAX_ENDED_WAITING - 1; i++) {
      a.ended(user(i), ids[i]!);
      most = Math.max(most, a.endsWaiting);
    }
    expect(most).toBe(MAX_ENDED_WAITING - 1);
    a.ended(user(MAX_ENDED_WAITING - 1), ids[MAX_ENDED_WAITING - 1]!);
    expect(a.endsWaiting).toBe(0);
    await settle();
    expect([...(await active('ivan')), ...(await active('judy'))]).toEqual([ids[MAX_ENDED_WAITING]]);
    // Later ends wait for the next batch again.
    a.ended(user(MAX_ENDED_WAITING), ids[MAX_ENDED_WAITING]!);
    expect(a.endsWaiting).toBe(1);
    a.sendEnded();
    await settle();
    expect(await active(user(MAX_ENDED_WAITING))).toEqual([]);
  });
});
