/**
 * The credential cache over the real SQLite store: answers (known and unknown
 * users) come from memory until the store's users generation changes, which
 * a second connection to the same file (as `rtcedge user passwd` in another
 * process) bumps through the schema's triggers; bounded by maxEntries.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { cachedUserSource } from '../../src/auth/credential-cache.js';
import { storeUserSource } from '../../src/auth/user-source.js';
import { SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite-store.js';
import { credentialsFor } from '../../src/store/users.js';

const D = 'example.test';
let dir: string;
let path: string;
let server: SqliteStore;
/** Another connection to the same file: the CLI or another worker process. */
let cli: SqliteStore;
let clockMs: number;

const ha1 = (user: string, pw: string) => credentialsFor(user, D, pw, ['MD5']).MD5!;
const cacheOver = (store: SqliteStore, maxEntries = 100) =>
  cachedUserSource(storeUserSource(store), { maxEntries, generation: () => store.usersGeneration(), pollMs: 500, nowMs: () => clockMs });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-credential-cache-'));
  path = join(dir, 'rtcedge.db');
  server = new SqliteStore(path);
  cli = new SqliteStore(path);
  server.addUser('alice', D, credentialsFor('alice', D, 'pw1', ['MD5']));
  clockMs = 1_000;
});
afterEach(() => {
  server.close();
  cli.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('credential cache over the store', () => {
  test('a password changed by another connection is seen after the poll interval, not before', async () => {
    const users = cacheOver(server);
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw1'));
    cli.setUserHa1('alice', D, credentialsFor('alice', D, 'pw2', ['MD5']));
    clockMs += 499;
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw1')); // from memory
    clockMs += 1;
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw2'));
  });

  test('unknown users are cached too, and an added user is found after the poll interval', async () => {
    const users = cacheOver(server);
    expect(await users.lookupHa1('bob', D, 'MD5')).toBeUndefined();
    expect(await users.userExists('bob', D)).toBe(false);
    expect(users.size).toBe(2);
    cli.addUser('bob', D, credentialsFor('bob', D, 'bobpw', ['MD5']));
    expect(await users.lookupHa1('bob', D, 'MD5')).toBeUndefined();
    clockMs += 500;
    expect(await users.lookupHa1('bob', D, 'MD5')).toBe(ha1('bob', 'bobpw'));
    expect(await users.userExists('bob', D)).toBe(true);
  });

  test('a deleted user is gone after the poll interval', async () => {
    const users = cacheOver(server);
    expect(await users.userExists('alice', D)).toBe(true);
    expect(cli.deleteUser('alice', D)).toBe(true);
    clockMs += 500;
    expect(await users.userExists('alice', D)).toBe(false);
    expect(await users.lookupHa1('alice', D, 'MD5')).toBeUndefined();
  });

  test('the users generation changes with users and phone numbers, and not with bindings', () => {
    const g0 = server.usersGeneration();
    cli.setPhones('alice', D, ['+15550100']);
    const g1 = server.usersGeneration();
    expect(g1).not.toBe(g0);
    cli.addUser('carol', D, credentialsFor('carol', D, 'x', ['MD5']));
    const g2 = server.usersGeneration();
    expect(g2).not.toBe(g1);
    cli.commitBindings([
      {
        op: 'put',
        binding: {
          aor: `sip:alice@${D}`, contact: '<sip:alice@127.0.0.1>', contactUri: 'sip:alice@127.0.0.1', expires: 2e9, q: null,
          callId: 'c1', cseq: 1, instance: null, regId: null, path: [], source: null, userAgent: null, updatedAt: 1,
        },
      },
    ]);
    expect(server.usersGeneration()).toBe(g2);
  });

  test('at most maxEntries answers are kept, least recently used dropped first', async () => {
    for (const u of ['bob', 'carol']) server.addUser(u, D, credentialsFor(u, D, `${u}pw`, ['MD5']));
    const users = cacheOver(server, 2);
    await users.lookupHa1('alice', D, 'MD5');
    await users.lookupHa1('bob', D, 'MD5');
    await users.lookupHa1('alice', D, 'MD5'); // alice is now the most recent
    await users.lookupHa1('carol', D, 'MD5'); // bob goes
    expect(users.size).toBe(2);
    // Change every password without the generation noticing (poll far away): what is still cached keeps the old answer.
    for (const u of ['alice', 'bob', 'carol']) cli.setUserHa1(u, D, credentialsFor(u, D, 'new', ['MD5']));
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw1'));
    expect(await users.lookupHa1('carol', D, 'MD5')).toBe(ha1('carol', 'carolpw'));
    expect(await users.lookupHa1('bob', D, 'MD5')).toBe(ha1('bob', 'new'));
  });

  test('maxEntries 0 reads the store every time', async () => {
    const users = cacheOver(server, 0);
    await users.lookupHa1('alice', D, 'MD5');
    cli.setUserHa1('alice', D, credentialsFor('alice', D, 'pw2', ['MD5']));
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw2'));
    expect(users.size).toBe(0);
  });

  test('with ttlMs and no generation, an answer is asked again once it is older than the TTL', async () => {
    const users = cachedUserSource(storeUserSource(server), { maxEntries: 10, ttlMs: 60_000, nowMs: () => clockMs });
    await users.lookupHa1('alice', D, 'MD5');
    cli.setUserHa1('alice', D, credentialsFor('alice', D, 'pw2', ['MD5']));
    clockMs += 59_999;
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw1'));
    clockMs += 1;
    expect(await users.lookupHa1('alice', D, 'MD5')).toBe(ha1('alice', 'pw2'));
  });

  test('a store of schema version 3 gets the generation table and its triggers (migration 4)', () => {
    server.close();
    cli.close();
    const raw = new Database(path);
    raw.exec(
      'DROP TRIGGER users_insert_generation; DROP TRIGGER users_update_generation; DROP TRIGGER users_delete_generation; ' +
        'DROP TRIGGER phones_insert_generation; DROP TRIGGER phones_update_generation; DROP TRIGGER phones_delete_generation; ' +
        'DROP TABLE users_generation;',
    );
    raw.pragma('user_version = 3');
    raw.close();
    expect(SCHEMA_VERSION).toBe(4);
    server = new SqliteStore(path);
    cli = new SqliteStore(path);
    expect(server.usersGeneration()).toBe(0);
    cli.deleteUser('alice', D);
    expect(server.usersGeneration()).toBe(1);
  });
});
