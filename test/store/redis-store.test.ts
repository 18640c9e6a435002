import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import pino from 'pino';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { startRedis, type TestRedis } from '../../interop/harness/redis.js';
import { makeTempDir, removeTempDir } from '../../interop/harness/temp-dir.js';
import { userhash } from '../../src/stun/stun-integrity.js';
import { type BindingRecord, RedisBindingTracking, RedisStore, StoreError, redisUserSource } from '../../src/store/index.js';
import { LocationService } from '../../src/registrar/location-service.js';
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
    // Two seconds ahead: Redis expires it at a whole second, which now + 1 may be a millisecond away.
    const gone = binding({ contactUri: 'sip:alice@127.0.0.12', contact: '<sip:alice@127.0.0.12>', expires: now + 2 });
    await store.commitBindings([{ op: 'put', binding: a }, { op: 'put', binding: b }, { op: 'put', binding: gone }]);
    expect((await store.listBindings(a.aor)).map((x) => x.contactUri)).toEqual([a.contactUri, b.contactUri, gone.contactUri]);
    expect(await store.listBindings(a.aor)).toContainEqual(a);
    expect(await store.redis.ttl(`test:binding:${a.aor}\n${a.contactUri}`)).toBeGreaterThan(590);
    await new Promise((r) => setTimeout(r, 3100));
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

  /**
   * A location service reading through `on`'s Redis with client-side caching, as a node runs it; with `deaf`
   * it never hears of invalidations (as a node whose invalidation is still on its way when it commits).
   */
  async function node(on: RedisStore, maxAors = 100, deaf = false): Promise<{ location: LocationService; tracking: RedisBindingTracking; stop(): Promise<void> }> {
    const tracking = new RedisBindingTracking(on, silent);
    await tracking.start();
    const location = new LocationService(on, silent, undefined, undefined, { source: tracking, maxAors });
    if (!deaf) tracking.onInvalidate((what) => location.invalidate(what));
    tracking.onFlush(() => location.clearCache());
    await location.start();
    return { location, tracking, stop: async () => (await location.stop(), await tracking.close()) };
  }
  /**
   * One turn of the event loop: a request reaching a node comes through a
   * socket, so the node has read what Redis had sent it by then (the
   * invalidations of a commit are in its socket when committed() resolves).
   */
  const turn = () => new Promise((r) => setImmediate(r));
  /** Commands Redis ran so far, by name (INFO commandstats). */
  const calls = async (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await store.redis.info('commandstats'))?.[1] ?? 0);

  test('read-through: a binding committed at one node is read at the other, cached, and dropped from its cache by Redis when the first node changes it', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const one = await node(store);
    const two = await node(other);
    try {
      const b = binding();
      // Nothing cached yet at node two: a miss reads Redis (a promise), and an empty AOR is cached too.
      const first = two.location.read(b.aor);
      expect(first).toBeInstanceOf(Promise);
      expect(await first).toEqual([]);
      expect(two.location.read(b.aor)).toEqual([]);
      one.location.put(b);
      await one.location.committed();
      await turn();
      // The commit invalidated node two's entry before committed() resolved: the next read misses and finds it.
      const after = two.location.read(b.aor);
      expect(after).toBeInstanceOf(Promise);
      expect(await after).toEqual([b]);
      // Cached now: no Redis command for the next reads.
      const gets = await calls('get');
      expect(two.location.read(b.aor)).toEqual([b]);
      expect(two.location.findByContact(b.contactUri)).toEqual(b);
      expect(await calls('get')).toBe(gets);
      // The writer keeps what it wrote (and reads nothing for it).
      expect(one.location.read(b.aor)).toEqual([b]);
      // A removal at node one: gone at node two once committed() resolved, every time.
      for (let i = 0; i < 20; i++) {
        one.location.remove(b.aor, b.contactUri);
        await one.location.committed();
        await turn();
        expect(await two.location.read(b.aor)).toEqual([]);
        const again = { ...b, cseq: 100 + i };
        one.location.put(again);
        await one.location.committed();
        await turn();
        expect(await two.location.read(b.aor)).toEqual([again]);
      }
      // A contact URI: found through its key; one without a binding is remembered (no second read).
      const fresh = new RedisStore(redisConfig(redis.url), silent);
      await fresh.connect();
      const three = await node(fresh);
      expect(await three.location.findByContact(b.contactUri)).toMatchObject({ aor: b.aor, cseq: 119 });
      expect(await three.location.findByContact('sip:nobody@127.0.0.1')).toBeUndefined();
      const before = await calls('get');
      expect(three.location.findByContact('sip:nobody@127.0.0.1')).toBeUndefined();
      expect(await calls('get')).toBe(before);
      // ... until a binding with that contact is committed elsewhere.
      one.location.put(binding({ aor: 'sip:bob@example.test', contactUri: 'sip:nobody@127.0.0.1', contact: '<sip:nobody@127.0.0.1>' }));
      await one.location.committed();
      await turn();
      expect(await three.location.findByContact('sip:nobody@127.0.0.1')).toMatchObject({ aor: 'sip:bob@example.test' });
      await three.stop();
      await fresh.close();
    } finally {
      await one.stop();
      await two.stop();
      await other.close();
    }
  });

  test('read-through: a refresh at one node (same contact, new expiry) is seen at the other with that expiry, no script run; the AOR stays listed and its keys expire with it; a removal after a SCRIPT FLUSH', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const one = await node(store);
    const two = await node(other);
    const expiry = (key: string) => store.redis.call('EXPIRETIME', `test:${key}`);
    try {
      const b = binding();
      one.location.put(b);
      await one.location.committed();
      await turn();
      expect(await two.location.read(b.aor)).toEqual([b]);
      // Later, then earlier: the record and the contact key follow each refresh, the version key only ever lives longer.
      const scripts = await calls('evalsha');
      for (const [i, expires] of [b.expires + 600, b.expires + 300].entries()) {
        const refreshed = { ...b, expires, cseq: b.cseq + 1 + i };
        one.location.put(refreshed);
        await one.location.committed();
        await turn();
        const seen = two.location.read(b.aor);
        expect(seen).toBeInstanceOf(Promise);
        expect(await seen).toEqual([refreshed]);
        expect(one.location.read(b.aor)).toEqual([refreshed]);
        expect(await expiry(`binding:${b.aor}\n${b.contactUri}`)).toBe(expires);
        expect(await expiry(`contact:${b.contactUri}`)).toBe(expires);
        expect(await expiry(`aor-version:${b.aor}`)).toBe(b.expires + 600);
        expect(await store.redis.smembers('test:aors')).toEqual([b.aor]);
        expect(await store.redis.zrange(`test:aor:${b.aor}`, 0, -1)).toEqual([b.contactUri]);
      }
      // Refreshes and the reads at node two ran no script (plain commands in MULTI/EXEC).
      expect(await calls('evalsha')).toBe(scripts);
      expect(await calls('exec')).toBeGreaterThanOrEqual(4);
      // The last binding removed (a script: Redis forgot the scripts first, as after a restart, so its text is sent again):
      // the AOR, its index and its version key are gone.
      await store.redis.script('FLUSH');
      one.location.remove(b.aor, b.contactUri);
      await one.location.committed();
      await turn();
      expect(await two.location.read(b.aor)).toEqual([]);
      expect(await store.redis.exists('test:aors', `test:aor:${b.aor}`, `test:aor-version:${b.aor}`, `test:contact:${b.contactUri}`)).toBe(0);
      // A batch too long for one read by Redis (40 records of ~500 bytes): the MGET goes after the script's answer, no PING.
      const many = Array.from({ length: 40 }, (_, i) => binding({ aor: `sip:u${i}@example.test`, contactUri: `sip:u${i}@127.0.0.1`, userAgent: 'x'.repeat(300) }));
      expect(await two.location.read(many[7].aor)).toEqual([]);
      const pings = await calls('ping');
      for (const m of many) one.location.put(m);
      await one.location.committed();
      await turn();
      expect(await calls('ping')).toBe(pings);
      expect(one.location.read(many[7].aor)).toEqual([many[7]]);
      expect(await two.location.read(many[7].aor)).toEqual([many[7]]);
    } finally {
      await one.stop();
      await two.stop();
      await other.close();
    }
  });

  /** Node one on `store` and node two on a second connection (`other`), for `fn`; both stopped after it. */
  async function withTwoNodes(fn: (one: Awaited<ReturnType<typeof node>>, two: Awaited<ReturnType<typeof node>>, other: RedisStore) => Promise<void>): Promise<void> {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const one = await node(store);
    const two = await node(other);
    try {
      await fn(one, two, other);
    } finally {
      await one.stop();
      await two.stop();
      await other.close();
    }
  }

  test('read-through: a record Redis expired is returned by no read or commit at any node, and the sweeper removes its index entry', () =>
    withTwoNodes(async (one, two, other) => {
      const a = binding({ contactUri: 'sip:a@127.0.0.10', contact: '<sip:a@127.0.0.10>' });
      const b = binding({ contactUri: 'sip:b@127.0.0.11', contact: '<sip:b@127.0.0.11>' });
      one.location.put(a);
      one.location.put(b);
      await one.location.committed();
      expect(await store.redis.zrange(`test:aor:${a.aor}`, 0, -1)).toEqual([a.contactUri, b.contactUri]);
      // Redis expires a's record (its TTL cut short, as when its expiry comes): the index entry stays behind.
      await store.redis.pexpire(`test:binding:${a.aor}\n${a.contactUri}`, 1);
      await expect.poll(() => store.redis.exists(`test:binding:${a.aor}\n${a.contactUri}`), { timeout: 2000, interval: 10 }).toBe(0);
      expect(await two.location.read(a.aor)).toEqual([b]);
      // A refresh of b at node one, which holds the AOR: nothing is read back (the version is the one it held plus one),
      // so its cache keeps a until a's expiry by its own clock, as a cache hit does (Redis expires a record at that
      // expiry; here its TTL was cut short behind the nodes' backs). Read again, the AOR comes without a.
      const refreshed = { ...b, cseq: b.cseq + 1, expires: b.expires + 60 };
      const sorts = await calls('sort_ro');
      one.location.put(refreshed);
      await one.location.committed();
      await turn();
      expect(await calls('sort_ro')).toBe(sorts);
      expect(one.location.read(a.aor)).toHaveLength(2);
      expect(one.location.read(a.aor)).toEqual(expect.arrayContaining([a, refreshed]));
      one.location.clearCache();
      expect(await one.location.read(a.aor)).toEqual([refreshed]);
      expect(await two.location.read(a.aor)).toEqual([refreshed]);
      expect(await store.listBindings(a.aor)).toEqual([refreshed]);
      // The sweeper removes the entry left behind, and only it.
      expect(await other.deleteExpiredBindings(0)).toBe(1);
      expect(await store.redis.zrange(`test:aor:${a.aor}`, 0, -1)).toEqual([b.contactUri]);
      expect(await store.redis.smembers('test:aors')).toEqual([a.aor]);
    }));

  test("read-through: a commit at a node that missed another node's change since it read the AOR reads the AOR back, and puts back the index entries a refresh left out", async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const one = await node(store, 100, true);
    const two = await node(other);
    const expiry = (key: string) => store.redis.call('EXPIRETIME', `test:${key}`);
    const index = (aor: string) => store.redis.zrange(`test:aor:${aor}`, 0, -1);
    try {
      const b1 = binding({ contactUri: 'sip:b1@127.0.0.10', contact: '<sip:b1@127.0.0.10>', updatedAt: 1 });
      const b2 = binding({ contactUri: 'sip:b2@127.0.0.11', contact: '<sip:b2@127.0.0.11>', updatedAt: 2 });
      one.location.put(b1);
      await one.location.committed();
      // A refresh at node one with nothing in between: no read back, no index write.
      const quiet = { ...b1, cseq: 8 };
      const [sorts, zadds] = [await calls('sort_ro'), await calls('zadd')];
      one.location.put(quiet);
      await one.location.committed();
      expect([await calls('sort_ro'), await calls('zadd')]).toEqual([sorts, zadds]);
      expect(one.location.read(b1.aor)).toEqual([quiet]);
      // Node two adds b2; node one does not hear of it and refreshes b1: the version it gets is not its own plus one,
      // so it reads the AOR back (and finds b2).
      two.location.put(b2);
      await two.location.committed();
      expect(one.location.read(b1.aor)).toEqual([quiet]);
      const r1 = { ...b1, cseq: 9 };
      one.location.put(r1);
      await one.location.committed();
      expect(one.location.read(b1.aor)).toEqual([b2, r1]);
      expect(await index(b1.aor)).toEqual([b1.contactUri, b2.contactUri]);
      // Node two removes b1 (a script) while node one, not told, refreshes it: the refresh comes after the removal, so b1
      // is registered, indexed and seen everywhere.
      two.location.remove(b1.aor, b1.contactUri);
      await two.location.committed();
      const r2 = { ...b1, cseq: 10, expires: b1.expires + 60 };
      one.location.put(r2);
      await one.location.committed();
      await turn();
      expect(one.location.read(b1.aor)).toEqual([b2, r2]);
      expect(await two.location.read(b1.aor)).toEqual([b2, r2]);
      expect(await index(b1.aor)).toEqual([b2.contactUri, b1.contactUri]);
      expect(await store.redis.get(`test:contact:${b1.contactUri}`)).toBe(b1.aor);
      // Node two removes every binding of the AOR (its set entry and version key go): node one's refresh brings back
      // the index, the AOR set entry and a version key expiring with the binding.
      two.location.removeAll(b1.aor);
      await two.location.committed();
      expect(await store.redis.exists(`test:aor-version:${b1.aor}`)).toBe(0);
      const r3 = { ...b1, cseq: 11, expires: b1.expires + 120 };
      one.location.put(r3);
      await one.location.committed();
      await turn();
      expect(one.location.read(b1.aor)).toEqual([r3]);
      expect(await two.location.read(b1.aor)).toEqual([r3]);
      expect(await index(b1.aor)).toEqual([b1.contactUri]);
      expect(await store.redis.smembers('test:aors')).toEqual([b1.aor]);
      expect(await expiry(`aor-version:${b1.aor}`)).toBe(r3.expires);
      expect(await store.listBindings(b1.aor)).toEqual([r3]);
    } finally {
      await one.stop();
      await two.stop();
      await other.close();
    }
  });

  test('read-through: a refresh committed while the previous commit of the AOR is under way goes at its version plus one (no read back); anything else in between is read back', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const one = await node(store);
    const two = await node(other);
    try {
      const b1 = binding({ contactUri: 'sip:c1@127.0.0.10', contact: '<sip:c1@127.0.0.10>', updatedAt: 1 });
      one.location.put(b1);
      await one.location.committed();
      // Two refreshes, each its own commit, the second sent before the first answered (a user registering again at once).
      const sorts = await calls('sort_ro');
      const before = { ...store.readBacks };
      const r1 = { ...b1, cseq: 8 };
      const r2 = { ...b1, cseq: 9 };
      one.location.put(r1);
      const first = one.location.flush();
      one.location.put(r2);
      const second = one.location.flush();
      await Promise.all([first, second]);
      expect(await calls('sort_ro')).toBe(sorts);
      expect(store.readBacks).toEqual(before);
      expect(one.location.read(b1.aor)).toEqual([r2]);
      expect(await store.listBindings(b1.aor)).toEqual([r2]);
      // And the next refresh goes at the version the second left: still nothing read back.
      const r3 = { ...b1, cseq: 10 };
      one.location.put(r3);
      await one.location.committed();
      expect(await calls('sort_ro')).toBe(sorts);
      // Node two adds a binding while node one's two refreshes are under way (in whichever order Redis runs the three):
      // the cache of node one ends as Redis has it, with node two's binding.
      const b2 = binding({ contactUri: 'sip:c2@127.0.0.11', contact: '<sip:c2@127.0.0.11>', updatedAt: 2 });
      const r4 = { ...b1, cseq: 11 };
      const r5 = { ...b1, cseq: 12 };
      one.location.put(r4);
      const third = one.location.flush();
      two.location.put(b2);
      const theirs = two.location.flush();
      one.location.put(r5);
      const fourth = one.location.flush();
      await Promise.all([third, theirs, fourth]);
      await turn();
      const held = one.location.read(b1.aor);
      const byUri = (list: BindingRecord[]) => list.map((b) => `${b.contactUri} ${b.cseq}`).sort();
      expect(byUri(held instanceof Promise ? await held : held)).toEqual([`${b1.contactUri} 12`, `${b2.contactUri} 7`]);
      expect(byUri(await store.listBindings(b1.aor))).toEqual([`${b1.contactUri} 12`, `${b2.contactUri} 7`]);
    } finally {
      await one.stop();
      await two.stop();
      await other.close();
    }
  });

  test('read-through: an AOR with a * of its own (no SORT pattern fits) commits and reads through the scripts', () =>
    withTwoNodes(async (one, two) => {
      const b = binding({ aor: 'sip:a*b@example.test' });
      const scripts = await calls('evalsha');
      one.location.put(b);
      await one.location.committed();
      await turn();
      expect(await two.location.read(b.aor)).toEqual([b]);
      const refreshed = { ...b, cseq: b.cseq + 1 };
      one.location.put(refreshed);
      await one.location.committed();
      await turn();
      expect(await two.location.read(b.aor)).toEqual([refreshed]);
      // Two commits and two reads, each a script (EVAL after a NOSCRIPT counts as one more).
      expect(await calls('evalsha')).toBeGreaterThanOrEqual(scripts + 4);
    }));

  test('read-through: the cache holds at most max AORs, least recently used dropped first, and an evicted AOR is read again', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const writer = await node(store);
    const reader = await node(other, 3);
    try {
      const aors = ['a', 'b', 'c', 'd', 'e'].map((u) => `sip:${u}@example.test`);
      for (const aor of aors) writer.location.put(binding({ aor, contactUri: `sip:x@127.0.0.1;u=${aor}` }));
      await writer.location.committed();
      for (const aor of aors.slice(0, 3)) expect(await reader.location.read(aor)).toHaveLength(1);
      expect(reader.location.aors()).toEqual(aors.slice(0, 3));
      // a used again: b is now the least recently used, and goes first.
      expect(reader.location.read(aors[0])).toHaveLength(1);
      expect(await reader.location.read(aors[3])).toHaveLength(1);
      expect(reader.location.aors()).toEqual([aors[0], aors[2], aors[3]]);
      expect(await reader.location.read(aors[4])).toHaveLength(1);
      expect(reader.location.aors()).toEqual([aors[0], aors[3], aors[4]]);
      // b is read from Redis again.
      const again = reader.location.read(aors[1]);
      expect(again).toBeInstanceOf(Promise);
      expect(await again).toHaveLength(1);
      expect(reader.location.counts()).toEqual({ aors: 3, bindings: 3 });
    } finally {
      await writer.stop();
      await reader.stop();
      await other.close();
    }
  });

  test('read-through: while Redis is down the cache answers what it holds and a miss gets 503; once back the cache is emptied and reads recover by themselves', async () => {
    const other = await new RedisStore(redisConfig(redis.url), silent).connect();
    const reader = await node(other);
    try {
      const b = binding();
      await store.commitBindings([{ op: 'put', binding: b }]);
      expect(await reader.location.read(b.aor)).toEqual([b]);
      expect(reader.location.read(b.aor)).toEqual([b]);
      await redis.stop();
      // Tracking lost with the connections: nothing more is kept, what is held still answers (calls in progress).
      await expect.poll(() => reader.tracking.active, { timeout: 5000, interval: 50 }).toBe(false);
      expect(reader.location.read(b.aor)).toEqual([b]);
      await expect(reader.location.read('sip:other@example.test')).rejects.toMatchObject({ status: 503, headers: [{ name: 'Retry-After', value: '7' }] });
      await redis.start();
      // Back (with its data saved at shutdown): read from Redis again, then cached again.
      await expect.poll(() => reader.tracking.active, { timeout: 10_000, interval: 100 }).toBe(true);
      const again = reader.location.read(b.aor);
      expect(again).toBeInstanceOf(Promise);
      expect(await again).toEqual([b]);
      expect(reader.location.read(b.aor)).toEqual([b]);
      // Tracking is on again: the reader hears of a change made through another connection.
      await store.commitBindings([{ op: 'deleteAll', aor: b.aor }]);
      await expect.poll(() => reader.location.aors(), { timeout: 5000, interval: 20 }).toEqual([]);
      expect(await reader.location.read(b.aor)).toEqual([]);
    } finally {
      await reader.stop();
      await other.close();
    }
  });

  test('Redis that does not answer: a commit of puts fails with unavailable after command_timeout (its last command carries the timer), and the next one after Redis answers again goes through', async () => {
    const b = binding();
    expect((await store.commitAndRead([{ op: 'put', binding: b }])).get(b.aor)).toMatchObject({ version: 1, bindings: [b] });
    const pid = redis.process!.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      const t0 = performance.now();
      const err = await store.commitAndRead([{ op: 'put', binding: { ...b, cseq: 8 } }], new Map([[b.aor, { version: 1, indexed: true }]])).catch((e: unknown) => e);
      // command_timeout is 500 ms here.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
      expect(err).toMatchObject({ code: 'unavailable', retryAfterS: 7 });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The commit Redis answers late went through after all (version 2); the next one reads back what it wrote.
    const next = { ...b, cseq: 9 };
    expect((await store.commitAndRead([{ op: 'put', binding: next }])).get(b.aor)).toMatchObject({ version: 3, bindings: [next] });
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
