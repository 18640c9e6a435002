/**
 * `store.redis.url: unix:/path`: a node beside its Redis reaches it over the
 * Unix socket (no TCP): the configuration's forms, the database number and
 * password after the path, the name logged without the password, and the
 * store's commit, tracked read and invalidation over the socket.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { join } from 'node:path';
import pino from 'pino';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedisWith, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { type BindingRecord, type Invalidation, RedisBindingTracking, RedisStore, redisName } from '../../src/store/index.js';
import { configSchema } from '../../src/config/schema.js';

const PORT = 26393;
const silent = pino({ level: 'silent' });

function redisConfig(url: string) {
  return configSchema.parse({ store: { type: 'redis', redis: { url, key_prefix: 'sock:', command_timeout: 2000 } }, node: { uri: 'sip:127.0.0.1' } }).store.redis;
}

test('store.redis.url takes unix:/path and unix:///path with options, refuses a relative path; the logged name hides the password', () => {
  expect(redisConfig('unix:/run/redis/redis-server.sock').url).toBe('unix:/run/redis/redis-server.sock');
  expect(redisConfig('unix:///run/redis/redis-server.sock?db=2').url).toBe('unix:///run/redis/redis-server.sock?db=2');
  for (const bad of ['unix:redis.sock', 'unix:', '/run/redis.sock', 'unix:/a b']) {
    expect(() => redisConfig(bad), bad).toThrow(/unix:\/path/);
  }
  expect(redisName(redisConfig('unix:/run/r.sock?db=1&password=secret'))).toBe('unix:/run/r.sock?db=1&password=…');
  expect(redisName(redisConfig('redis://:secret@10.0.0.1:6379/0'))).toBe('redis://10.0.0.1:6379/0');
});

describeWithPeers(['redis-server'])('Redis store over a Unix socket', () => {
  let dir: string;
  let redis: TestRedis;
  let socket: string;
  beforeAll(async () => {
    dir = makeTempDir('redis-unix');
    socket = join(dir, 'redis.sock');
    redis = await startRedisWith('127.0.0.1', PORT, dir, ['--unixsocket', socket, '--unixsocketperm', '700']);
  });
  afterAll(async () => {
    await redis?.stop();
    removeTempDir(dir);
  });

  test('commit, tracked read and another node’s invalidation over the socket; ?db=N selects the database', async () => {
    const a = await new RedisStore(redisConfig(`unix:${socket}?db=3`), silent).connect();
    const b = await new RedisStore(redisConfig(`unix://${socket}?db=3`), silent).connect();
    const tracking = new RedisBindingTracking(a, silent);
    const seen: Invalidation[] = [];
    tracking.onInvalidate((w) => seen.push(w));
    try {
      await tracking.start();
      // The connection is the socket's: Redis names the client's address by the socket's path.
      expect(String(await a.redis.client('INFO'))).toMatch(/addr=\S*redis\.sock/);
      const nowS = Math.floor(Date.now() / 1000);
      const rec: BindingRecord = {
        aor: 'sip:alice@example.test', contact: '<sip:alice@127.0.0.10:5060>', contactUri: 'sip:alice@127.0.0.10:5060', expires: nowS + 600, q: null,
        callId: 'c1@x', cseq: 1, instance: null, regId: null, path: [], source: { transport: 'udp', address: '127.0.0.10', port: 5060, localPort: 5060 },
        userAgent: 'test', updatedAt: nowS,
      };
      expect((await a.commitAndRead([{ op: 'put', binding: rec }])).get(rec.aor)).toMatchObject({ version: 1, bindings: [rec] });
      expect(await tracking.readTracked(rec.aor)).toEqual({ bindings: [rec], cacheable: true });
      await b.commitBindings([{ op: 'put', binding: { ...rec, cseq: 2 } }]);
      await expect.poll(() => seen, { timeout: 2000, interval: 20 }).toContainEqual({ kind: 'aor', aor: rec.aor });
      // Database 3, not 0: a plain TCP client on database 0 sees no key.
      const db0 = a.redis.duplicate({ path: undefined, host: '127.0.0.1', port: PORT, db: 0, enableOfflineQueue: true });
      await db0.connect();
      expect(await db0.dbsize()).toBe(0);
      db0.disconnect();
    } finally {
      await tracking.close();
      await a.close();
      await b.close();
    }
  });
});
