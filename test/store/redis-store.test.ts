import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import pino from 'pino';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { spawnProcess } from '../../interop/harness/process.js';
import { userhash } from '../../src/stun/stun-integrity.js';
import { type BindingRecord, RedisBindingChannel, RedisStore, StoreError, redisUserSource } from '../../src/store/index.js';
import { UserSourceUnavailableError } from '../../src/auth/user-source.js';
import { configSchema } from '../../src/config/schema.js';

const MD5 = '0123456789abcdef0123456789abcdef';
const SHA = 'ab'.repeat(32);
const PORT = 26379;
const silent = pino({ level: 'silent' });

function redisConfig(url: string, prefix = 'test:') {
  return configSchema.parse({ store: { type: 'redis', redis: { url, key_prefix: prefix, command_timeout: 500, retry_after: 7 } }, node: { uri: 'sip:127.0.0.1' } }).store.redis;
}

function binding(over: Partial<BindingRecord> = {}): BindingRecord {
  return {
    aor: 'sip:alice@example.test',
    contact: '<sip:alice@127.0.0.10:5060;transport=tcp>;+sip.instance="<urn:uuid:1>";reg-id=1',
    contactUri: 'sip:alice@127.0.0.10:5060;transport=tcp',
    expires: Math.floor(Date.now() / 1000) + 600,
    q: 0.5,
    callId: 'call-1@127.0.0.10',
    cseq: 7,
    instance: '<urn:uuid:1>',
    regId: 1,
    path: ['<sip:edge1.example.test;lr>'],
    source: { transport: 'tcp', address: '127.0.0.10', port: 40000, localPort: 5060 },
    userAgent: 'baresip 3.0',
    updatedAt: 1000,
    ...over,
  };
}

describeWithPeers(['redis-server'])('Redis store against redis-server', () => {
  let dir: string;
  let redis: TestRedis;
  let store: RedisStore;
  beforeAll(async () => {
    dir = makeTempDir('redis-store');
    redis = await startRedis('127.0.0.1', PORT, dir);
    store = await new RedisStore(redisConfig(redis.url), silent).connect();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
    removeTempDir(dir);
  });
  beforeEach(async () => {
    await store.redis.flushall();
  });

  test('users: add, HA1 per algorithm, USERHASH, phones, passwd, delete', async () => {
    await store.addUser('alice', 'Example.TEST', { MD5, 'SHA-256': SHA }, ['+4930123']);
    expect(await store.lookupHa1('alice', 'example.test', 'MD5')).toBe(MD5);
    expect(await store.lookupHa1('alice', 'example.test', 'SHA-512-256')).toBeUndefined();
    expect(await store.lookupHa1('nobody', 'example.test', 'MD5')).toBeUndefined();
    expect(await store.userExists('alice', 'example.test')).toBe(true);
    expect(await store.userByUserhash(userhash('alice', 'example.test'), 'example.test')).toBe('alice');
    expect(await store.userOfPhone('+4930123')).toEqual({ username: 'alice', domain: 'example.test' });
    await expect(store.addUser('alice', 'example.test', { MD5 })).rejects.toMatchObject({ code: 'exists' });
    await expect(store.addUser('bob', 'example.test', { MD5 }, ['+4930123'])).rejects.toThrow(/belongs to alice@example.test/);
    expect(await store.userExists('bob', 'example.test')).toBe(false);
    await expect(store.addUser('bob', 'example.test', { MD5: 'xyz' })).rejects.toMatchObject({ code: 'invalid' });
    await store.setUserHa1('alice', 'example.test', { 'SHA-256': SHA });
    expect(await store.lookupHa1('alice', 'example.test', 'MD5')).toBeUndefined();
    await expect(store.setUserHa1('bob', 'example.test', { MD5 })).rejects.toMatchObject({ code: 'not_found' });
    await store.addUser('bob', 'example.test', { MD5 });
    await store.setPhones('bob', 'example.test', ['100', '101']);
    expect((await store.listUsers()).map((u) => [u.username, u.phones])).toEqual([['alice', ['+4930123']], ['bob', ['100', '101']]]);
    expect(await store.deleteUser('alice', 'example.test')).toBe(true);
    expect(await store.deleteUser('alice', 'example.test')).toBe(false);
    expect(await store.userOfPhone('+4930123')).toBeUndefined();
    expect(await store.userByUserhash(userhash('alice', 'example.test'), 'example.test')).toBeUndefined();
    expect((await store.listUsers('example.test')).map((u) => u.username)).toEqual(['bob']);
  });

  test('every change to users bumps the users generation, which usersGeneration() reads again on its own', async () => {
    const before = Number((await store.redis.get('test:users:generation')) ?? 0);
    await store.addUser('carol', 'example.test', { MD5 });
    await store.setUserHa1('carol', 'example.test', { MD5: 'f'.repeat(32) });
    await store.setPhones('carol', 'example.test', ['200']);
    await store.deleteUser('carol', 'example.test');
    await expect(store.setUserHa1('nobody', 'example.test', { MD5 })).rejects.toMatchObject({ code: 'not_found' });
    expect(Number(await store.redis.get('test:users:generation'))).toBe(before + 4);
    await expect.poll(() => store.usersGeneration(), { timeout: 3000, interval: 100 }).toBe(before + 4);
  });

  test('bindings: put, order, delete, deleteAll in one commit; records expire by Redis TTL', async () => {
    const now = Math.floor(Date.now() / 1000);
    const a = binding();
    const b = binding({ contactUri: 'sip:alice@127.0.0.11', contact: '<sip:alice@127.0.0.11>' });
    const gone = binding({ contactUri: 'sip:alice@127.0.0.12', contact: '<sip:alice@127.0.0.12>', expires: now + 1 });
    await store.commitBindings([{ op: 'put', binding: a }, { op: 'put', binding: b }, { op: 'put', binding: gone }]);
    expect((await store.listBindings(a.aor)).map((x) => x.contactUri)).toEqual([a.contactUri, b.contactUri, gone.contactUri]);
    expect(await store.listBindings(a.aor)).toContainEqual(a);
    expect(await store.redis.ttl(`test:binding:${a.aor}\n${a.contactUri}`)).toBeGreaterThan(590);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await store.listBindings(a.aor)).map((x) => x.contactUri)).toEqual([a.contactUri, b.contactUri]);
    expect(await store.deleteExpiredBindings(0)).toBe(1);
    expect(await store.redis.zcard(`test:aor:${a.aor}`)).toBe(2);
    await store.commitBindings([{ op: 'delete', aor: a.aor, contactUri: a.contactUri }, { op: 'put', binding: binding({ aor: 'sip:bob@example.test' }) }]);
    expect((await store.allBindings()).map((x) => `${x.aor} ${x.contactUri}`).sort()).toEqual([`${a.aor} ${b.contactUri}`, `sip:bob@example.test ${a.contactUri}`]);
    await store.commitBindings([{ op: 'deleteAll', aor: a.aor }]);
    expect(await store.listBindings(a.aor)).toEqual([]);
    expect(await store.redis.smembers('test:aors')).toEqual(['sip:bob@example.test']);
    // An expiry already past deletes.
    await store.commitBindings([{ op: 'put', binding: binding({ aor: 'sip:bob@example.test', expires: now - 1 }) }]);
    expect(await store.allBindings()).toEqual([]);
  });

  test('the secret is set once: every node gets the first one', async () => {
    const first = await store.sharedSecret(Buffer.alloc(32, 1));
    expect(await store.sharedSecret(Buffer.alloc(32, 2))).toEqual(first);
    expect(first).toEqual(Buffer.alloc(32, 1));
  });

  test('snapshot and load round-trip users, numbers, bindings and the secret', async () => {
    await store.addUser('alice', 'example.test', { MD5 }, ['123']);
    await store.commitBindings([{ op: 'put', binding: binding() }]);
    await store.sharedSecret(Buffer.alloc(32, 3));
    const snap = await store.snapshot();
    await store.redis.flushall();
    expect(await store.isEmpty()).toBe(true);
    await store.load(JSON.parse(JSON.stringify(snap)));
    expect(await store.snapshot()).toEqual(snap);
    expect(await store.isEmpty()).toBe(false);
  });

  test('a commit announces the changed bindings to the other channel, which takes them without reading; the commit resolves once it did; the own channel ignores it', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const mine = new RedisBindingChannel(store, silent);
    const theirs = new RedisBindingChannel(other, silent);
    await mine.start();
    // Alone on the channel, a node publishes nothing.
    const publishes = async () => Number(/cmdstat_publish:calls=(\d+)/.exec(await store.redis.info('commandstats'))?.[1] ?? 0);
    const before = await publishes();
    await store.commitBindings([{ op: 'put', binding: binding() }]);
    expect(await publishes()).toBe(before);
    await theirs.start();
    await store.commitBindings([{ op: 'deleteAll', aor: binding().aor }]);
    // The announcement, and the other node's acknowledgement (the commit resolved on it).
    expect(await publishes()).toBe(before + 2);
    const mineSeen: unknown[] = [];
    mine.onRemoteBindings((aor) => void mineSeen.push(aor));
    const seen: [string, BindingRecord[]][] = [];
    theirs.onRemoteBindings((aor, bindings) => void seen.push([aor, bindings]));
    const b = binding();
    // No waiting on the announcement: the commit resolves after the other node applied it.
    await store.commitBindings([{ op: 'put', binding: b }]);
    expect(seen).toEqual([[b.aor, [b]]]);
    await store.commitBindings([{ op: 'deleteAll', aor: b.aor }]);
    expect(seen).toEqual([
      [b.aor, [b]],
      [b.aor, []],
    ]);
    // Several commits in one turn are acknowledged together and every one resolves.
    const c = { ...b, contactUri: 'sip:alice@127.0.0.1:5099' };
    await Promise.all([store.commitBindings([{ op: 'put', binding: b }]), store.commitBindings([{ op: 'put', binding: c }])]);
    expect(seen.slice(2)).toEqual([
      [b.aor, [b]],
      [b.aor, [b, c]],
    ]);
    // A commit at the other node reaches this one the same way; neither channel applies its own.
    const mineAfter = new Promise<void>((resolve) => mine.onRemoteBindings((aor) => void (mineSeen.push(aor), resolve())));
    await other.commitBindings([{ op: 'delete', aor: b.aor, contactUri: c.contactUri }]);
    await mineAfter;
    expect(mineSeen).toEqual([b.aor]);
    expect(seen).toHaveLength(4);
    expect(mine.unacknowledgedCommits).toBe(0);
    await mine.close();
    await theirs.close();
    await other.close();
  });

  test('clients that are not nodes (redis-cli, ioredis) subscribed to the channels make no commit wait; a listed node that does not acknowledge does, until its heartbeat lapses', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const mine = new RedisBindingChannel(store, silent);
    const theirs = new RedisBindingChannel(other, silent);
    await mine.start();
    await theirs.start();
    const seen: string[] = [];
    theirs.onRemoteBindings((aor) => void seen.push(aor));
    // Monitoring clients: redis-cli on both nodes' channels, ioredis on every channel of the prefix.
    const cli = spawnProcess('redis-cli', ['-p', String(PORT), 'SUBSCRIBE', store.nodeChannel(mine.nodeId), store.nodeChannel(theirs.nodeId)]);
    const monitor = store.redis.duplicate({ enableOfflineQueue: true });
    const monitored: string[] = [];
    monitor.on('pmessage', (_pattern: string, channel: string) => void monitored.push(channel));
    try {
      await cli.waitForLine((t) => t.trim() === '2', 5000);
      await monitor.psubscribe('test:*');
      for (let i = 0; i < 5; i++) await store.commitBindings([{ op: 'put', binding: binding({ cseq: i }) }]);
      expect(seen).toHaveLength(5);
      // They see the traffic, and no commit waited for them.
      expect(monitored.filter((c) => c === store.nodeChannel(theirs.nodeId))).toHaveLength(5);
      expect(mine.unacknowledgedCommits).toBe(0);
      expect(Object.keys(await store.redis.hgetall('test:nodes')).sort()).toEqual([mine.nodeId, theirs.nodeId].sort());

      // A node listed as live and subscribed that never acknowledges: the commit answers after the bounded wait.
      const silentNode = store.redis.duplicate({ enableOfflineQueue: true });
      await silentNode.subscribe(store.nodeChannel('hung'));
      await store.redis.hset('test:nodes', 'hung', String(Date.now() + 60_000));
      await store.commitBindings([{ op: 'put', binding: binding({ cseq: 10 }) }]);
      expect(mine.unacknowledgedCommits).toBe(1);
      // Once its heartbeat lapsed it is no longer waited for, and its entry is removed.
      await store.redis.hset('test:nodes', 'hung', String(Date.now() - 1000));
      await store.commitBindings([{ op: 'put', binding: binding({ cseq: 11 }) }]);
      expect(mine.unacknowledgedCommits).toBe(1);
      expect(await store.redis.hexists('test:nodes', 'hung')).toBe(0);
      await silentNode.quit();
      expect(seen).toHaveLength(7);
    } finally {
      await cli.stop();
      await monitor.quit();
    }
    await mine.close();
    // A node that stops leaves the list.
    expect(await store.redis.hexists('test:nodes', mine.nodeId)).toBe(0);
    await theirs.close();
    await other.close();
  });

  test('a node whose entry among the live nodes lapsed is listed again at its next heartbeat and reads every binding again', async () => {
    const mine = new RedisBindingChannel(store, silent);
    let resyncs = 0;
    mine.onResync(async () => void resyncs++);
    await mine.start();
    await store.redis.hdel('test:nodes', mine.nodeId);
    await expect.poll(() => resyncs, { timeout: 5000, interval: 100 }).toBe(1);
    expect(await store.redis.hexists('test:nodes', mine.nodeId)).toBe(1);
    await mine.close();
  });

  test('Redis down: StoreError unavailable with retryAfterS, user source 503; back by itself after a restart', async () => {
    await store.addUser('alice', 'example.test', { MD5 });
    const users = redisUserSource(store);
    await redis.stop();
    const err = await store.lookupHa1('alice', 'example.test', 'MD5').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: 'unavailable', retryAfterS: 7 });
    await expect(users.lookupHa1('alice', 'example.test', 'MD5')).rejects.toBeInstanceOf(UserSourceUnavailableError);
    await expect(store.commitBindings([{ op: 'put', binding: binding() }])).rejects.toMatchObject({ code: 'unavailable' });
    await redis.start();
    await expect.poll(() => store.lookupHa1('alice', 'example.test', 'MD5').catch(() => 'down'), { timeout: 10_000, interval: 200 }).toBe(MD5);
  });
});
