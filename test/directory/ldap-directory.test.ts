import { describe, expect, it } from 'vitest';
import { computeHA1 } from '../../src/auth/digest.js';
import { LdapDirectory, type LdapClientLike, MAX_CACHED_USERS, MAX_LOOKUPS_IN_FLIGHT } from '../../src/directory/ldap-directory.js';
import { escapeFilterValue, fillFilter } from '../../src/directory/ldap-filter.js';
import { silentLogger } from '../../src/log.js';
import { userhash } from '../../src/stun/stun-integrity.js';
import { UserSourceUnavailableError } from '../../src/auth/user-source.js';

const REALM = 'example.test';
type Entry = { dn: string; [k: string]: string | string[] };

/** A fake directory: entries by uid; records binds and searches; can be made to fail. */
function fakeLdap(entries: Record<string, Entry[]>) {
  const state = { down: false, binds: 0, searches: [] as string[], unbinds: 0 };
  const createClient = (): LdapClientLike => ({
    async bind(dn, pw) {
      if (state.down) throw Object.assign(new Error('connect ECONNREFUSED'), { name: 'ConnectionError' });
      expect([dn, pw]).toEqual(['cn=svc', 'svcpw']);
      state.binds++;
    },
    async search(_base, o) {
      if (state.down) throw Object.assign(new Error('socket closed'), { name: 'ConnectionError' });
      state.searches.push(o.filter);
      const uid = /^\(uid=(.*)\)$/.exec(o.filter)?.[1] ?? '';
      return { searchEntries: entries[uid] ?? [] };
    },
    async unbind() {
      state.unbinds++;
    },
  });
  return { state, createClient };
}

function directory(entries: Record<string, Entry[]>, over: Partial<ConstructorParameters<typeof LdapDirectory>[0]> = {}) {
  const fake = fakeLdap(entries);
  const clock = { t: 1_000_000 };
  const dir = new LdapDirectory({
    url: 'ldap://127.0.0.1:1',
    bindDn: 'cn=svc',
    bindPassword: 'svcpw',
    baseDn: 'ou=people,dc=example,dc=test',
    filter: '(uid={user})',
    passwordAttributes: ['SIPIdentityPassword', 'userPassword'],
    ha1Attributes: { MD5: 'ha1md5' },
    cacheTtl: 60,
    timeoutMs: 500,
    retryAfter: 9,
    realms: [REALM],
    logger: silentLogger,
    createClient: fake.createClient,
    now: () => clock.t,
    ...over,
  });
  return { dir, ...fake, clock };
}

describe('LDAP filter escaping (RFC 4515 §3)', () => {
  it('escapes the five special characters and nothing else', () => {
    expect(escapeFilterValue('a*b(c)d\\e\0f é')).toBe('a\\2ab\\28c\\29d\\5ce\\00f é');
  });
  it('fills {user} and {domain}; an injection attempt stays one assertion value', () => {
    expect(fillFilter('(&(uid={user})(mail=*@{domain}))', { user: 'x*)(uid=*', domain: 'example.test' })).toBe(
      '(&(uid=x\\2a\\29\\28uid=\\2a)(mail=*@example.test))',
    );
  });
});

describe('LdapDirectory', () => {
  const alice: Entry = { dn: 'uid=alice', SIPIdentityPassword: 'pw-a' };

  it('computes every HA1 from a clear SIPIdentityPassword, binding once as the service account', async () => {
    const { dir, state } = directory({ alice: [alice] });
    for (const alg of ['MD5', 'SHA-256', 'SHA-512-256'] as const) {
      expect(await dir.lookupHa1('alice', REALM, alg)).toBe(computeHA1(alg, 'alice', REALM, 'pw-a'));
    }
    expect(await dir.userExists('alice', REALM)).toBe(true);
    expect(state.binds).toBe(1);
    expect(state.searches).toEqual(['(uid=alice)']);
  });

  it('prefers an HA1 attribute; other algorithms still come from the password', async () => {
    const stored = 'ABCDEF0123456789ABCDEF0123456789';
    const { dir } = directory({ bob: [{ dn: 'uid=bob', ha1md5: stored, SIPIdentityPassword: 'pw-b' }] });
    expect(await dir.lookupHa1('bob', REALM, 'MD5')).toBe(stored.toLowerCase());
    expect(await dir.lookupHa1('bob', REALM, 'SHA-256')).toBe(computeHA1('SHA-256', 'bob', REALM, 'pw-b'));
  });

  it('an HA1 attribute alone serves only its algorithm; a malformed one serves none', async () => {
    const { dir } = directory({
      carol: [{ dn: 'uid=carol', ha1md5: computeHA1('MD5', 'carol', REALM, 'x') }],
      zed: [{ dn: 'uid=zed', ha1md5: 'not-hex' }],
    });
    expect(await dir.lookupHa1('carol', REALM, 'MD5')).toBe(computeHA1('MD5', 'carol', REALM, 'x'));
    expect(await dir.lookupHa1('carol', REALM, 'SHA-256')).toBeUndefined();
    expect(await dir.lookupHa1('zed', REALM, 'MD5')).toBeUndefined();
    expect(await dir.userExists('zed', REALM)).toBe(true);
  });

  it('skips hashed userPassword values; uses {CLEARTEXT} and plain ones', async () => {
    const { dir } = directory({
      dave: [{ dn: 'uid=dave', userPassword: '{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=' }],
      eve: [{ dn: 'uid=eve', userPassword: '{CLEARTEXT}pw-e' }],
      fay: [{ dn: 'uid=fay', userpassword: ['pw-f', 'other'] }],
    });
    expect(await dir.lookupHa1('dave', REALM, 'MD5')).toBeUndefined();
    expect(await dir.lookupHa1('eve', REALM, 'MD5')).toBe(computeHA1('MD5', 'eve', REALM, 'pw-e'));
    expect(await dir.lookupHa1('fay', REALM, 'MD5')).toBe(computeHA1('MD5', 'fay', REALM, 'pw-f'));
  });

  it('unknown, ambiguous and other-realm users are unknown; other realms are not even searched', async () => {
    const { dir, state } = directory({ twin: [alice, { ...alice, dn: 'uid=alice2' }] });
    expect(await dir.lookupHa1('nobody', REALM, 'MD5')).toBeUndefined();
    expect(await dir.userExists('twin', REALM)).toBe(false);
    expect(await dir.lookupHa1('alice', 'elsewhere.test', 'MD5')).toBeUndefined();
    expect(state.searches).toEqual(['(uid=nobody)', '(uid=twin)']);
  });

  it('knows the USERHASH (RFC 8489 §14.4) of a user once fetched, even with the cache off', async () => {
    const { dir } = directory({ alice: [alice] }, { cacheTtl: 0 });
    const hash = userhash('alice', REALM);
    expect(await dir.lookupUserhash(hash, REALM)).toBeUndefined();
    expect(await dir.userExists('alice', REALM)).toBe(true);
    expect(await dir.lookupUserhash(hash, REALM)).toBe('alice');
    expect(await dir.lookupUserhash(hash, 'EXAMPLE.TEST')).toBe('alice');
    expect(await dir.lookupUserhash(userhash('alice', 'elsewhere.test'), REALM)).toBeUndefined();
    await dir.lookupHa1('nobody', REALM, 'MD5');
    expect(await dir.lookupUserhash(userhash('nobody', REALM), REALM)).toBeUndefined();
  });

  it('caches found and missing users for cache_ttl, then asks again', async () => {
    const { dir, state, clock } = directory({ alice: [alice] });
    await dir.lookupHa1('alice', REALM, 'MD5');
    await dir.lookupHa1('nobody', REALM, 'MD5');
    await Promise.all([dir.lookupHa1('alice', REALM, 'SHA-256'), dir.userExists('nobody', REALM)]);
    expect(state.searches).toHaveLength(2);
    clock.t += 60_001;
    await dir.lookupHa1('alice', REALM, 'MD5');
    expect(state.searches).toHaveLength(3);
  });

  it(`keeps at most ${MAX_CACHED_USERS} cached users and USERHASH values, the oldest dropped (asked again, unknown by hash)`, async () => {
    const n = MAX_CACHED_USERS + 1;
    const entries: Record<string, Entry[]> = {};
    for (let i = 0; i < n; i++) entries[`u${i}`] = [{ dn: `uid=u${i}`, SIPIdentityPassword: `pw${i}` }];
    const { dir, state } = directory(entries);
    let most = { cache: 0, userhashes: 0 };
    let unknown = 0;
    for (let i = 0; i < n; i++) {
      if (!(await dir.userExists(`u${i}`, REALM))) unknown++;
      const s = dir.sizes;
      most = { cache: Math.max(most.cache, s.cache), userhashes: Math.max(most.userhashes, s.userhashes) };
    }
    expect(unknown).toBe(0);
    expect(most).toEqual({ cache: MAX_CACHED_USERS, userhashes: MAX_CACHED_USERS });
    expect(state.searches.length).toBe(n);
    // The oldest user is known by hash no more; the next one and the newest are.
    expect(await dir.lookupUserhash(userhash('u0', REALM), REALM)).toBeUndefined();
    expect(await dir.lookupUserhash(userhash('u1', REALM), REALM)).toBe('u1');
    expect(await dir.lookupUserhash(userhash(`u${n - 1}`, REALM), REALM)).toBe(`u${n - 1}`);
    // The newest is answered from the cache; the oldest is searched again (and still found).
    expect(await dir.lookupHa1(`u${n - 1}`, REALM, 'MD5')).toBe(computeHA1('MD5', `u${n - 1}`, REALM, `pw${n - 1}`));
    expect(state.searches.length).toBe(n);
    expect(await dir.lookupHa1('u0', REALM, 'MD5')).toBe(computeHA1('MD5', 'u0', REALM, 'pw0'));
    expect(state.searches.slice(n)).toEqual(['(uid=u0)']);
    expect(dir.sizes).toEqual({ cache: MAX_CACHED_USERS, userhashes: MAX_CACHED_USERS });
    expect(await dir.lookupUserhash(userhash('u0', REALM), REALM)).toBe('u0');
  });

  it('concurrent lookups of one user share one search', async () => {
    const { dir, state } = directory({ alice: [alice] }, { cacheTtl: 0 });
    await Promise.all([dir.lookupHa1('alice', REALM, 'MD5'), dir.lookupHa1('alice', REALM, 'SHA-256')]);
    expect(state.searches).toHaveLength(1);
  });

  it('an outage throws UserSourceUnavailableError (503, Retry-After) and is not cached; recovery reconnects', async () => {
    const { dir, state, clock } = directory({ alice: [alice] }, { cacheTtl: 1 });
    await dir.lookupHa1('alice', REALM, 'MD5');
    state.down = true;
    clock.t += 1001;
    const err = await dir.lookupHa1('alice', REALM, 'MD5').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserSourceUnavailableError);
    expect(err).toMatchObject({ status: 503, retryAfterS: 9 });
    await expect(dir.userExists('alice', REALM)).rejects.toBeInstanceOf(UserSourceUnavailableError);
    state.down = false;
    expect(await dir.lookupHa1('alice', REALM, 'MD5')).toBe(computeHA1('MD5', 'alice', REALM, 'pw-a'));
    expect(state.binds).toBe(2);
  });

  it(`refuses a lookup beyond ${MAX_LOOKUPS_IN_FLIGHT} in flight as unavailable, and takes new ones once they end`, async () => {
    let answer: () => void = () => undefined;
    const answered = new Promise<void>((r) => (answer = r));
    const slow = (): LdapClientLike => ({ bind: async () => {}, search: async () => (await answered, { searchEntries: [] }), unbind: async () => {} });
    const { dir } = directory({}, { cacheTtl: 0, timeoutMs: 60_000, createClient: slow });
    const waiting = Array.from({ length: MAX_LOOKUPS_IN_FLIGHT }, (_, i) => dir.userExists(`user${i}`, REALM));
    const err = await dir.userExists('one-more', REALM).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserSourceUnavailableError);
    expect(err).toMatchObject({ status: 503, retryAfterS: 9 });
    // A user already being looked up shares that search.
    const shared = dir.userExists('user0', REALM);
    answer();
    expect(await Promise.all(waiting)).toEqual(Array(MAX_LOOKUPS_IN_FLIGHT).fill(false));
    expect(await shared).toBe(false);
    expect(await dir.userExists('one-more', REALM)).toBe(false);
  });

  it('a directory that never answers times out as unavailable', async () => {
    const dir = new LdapDirectory({
      url: 'ldap://127.0.0.1:1',
      baseDn: 'dc=x',
      filter: '(uid={user})',
      cacheTtl: 60,
      timeoutMs: 50,
      retryAfter: 5,
      realms: [REALM],
      logger: silentLogger,
      createClient: () => ({ bind: async () => {}, search: () => new Promise(() => {}), unbind: async () => {} }),
    });
    await expect(dir.lookupHa1('alice', REALM, 'MD5')).rejects.toBeInstanceOf(UserSourceUnavailableError);
  });

  it('after close, lookups are unavailable', async () => {
    const { dir, state } = directory({ alice: [alice] });
    await dir.lookupHa1('alice', REALM, 'MD5');
    await dir.close();
    expect(state.unbinds).toBe(1);
    await expect(dir.lookupHa1('alice', REALM, 'MD5')).rejects.toBeInstanceOf(UserSourceUnavailableError);
  });
});
