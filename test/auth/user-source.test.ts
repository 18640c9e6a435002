/**
 * The store as a user source: HA1 lookups over a real SQLite store, with the
 * same statement for known and unknown users (the 403 timing is measured by bench/auth-timing.mjs, not here).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { storeUserSource } from '../../src/auth/user-source.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { credentialsFor } from '../../src/store/users.js';

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-user-source-'));
  store = new SqliteStore(join(dir, 'rtcedge.db'));
  store.addUser('alice', 'example.test', credentialsFor('alice', 'example.test', 'pw', ['MD5', 'SHA-256']));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('storeUserSource over SqliteStore', () => {
  test('gives the stored HA1 of a known user, per algorithm', async () => {
    const source = storeUserSource(store);
    const ha1 = credentialsFor('alice', 'example.test', 'pw', ['MD5', 'SHA-256']);
    expect(await source.lookupHa1('alice', 'example.test', 'MD5')).toBe(ha1.MD5);
    expect(await source.lookupHa1('alice', 'EXAMPLE.test', 'SHA-256')).toBe(ha1['SHA-256']);
  });

  test('gives undefined for an unknown user, another domain and a missing algorithm, never the stand-in', async () => {
    const source = storeUserSource(store);
    expect(await source.lookupHa1('alicf', 'example.test', 'MD5')).toBeUndefined();
    expect(await source.lookupHa1('Alice', 'example.test', 'MD5')).toBeUndefined();
    expect(await source.lookupHa1('alice', 'other.test', 'MD5')).toBeUndefined();
    expect(await source.lookupHa1('alice', 'example.test', 'SHA-512-256')).toBeUndefined();
    expect(await source.userExists('alice', 'example.test')).toBe(true);
    expect(await source.userExists('alicf', 'example.test')).toBe(false);
  });

  test('a store without users answers undefined (no decoy row to read)', async () => {
    const empty = new SqliteStore(join(dir, 'empty.db'));
    try {
      expect(await storeUserSource(empty).lookupHa1('alice', 'example.test', 'MD5')).toBeUndefined();
    } finally {
      empty.close();
    }
  });

  test('a store without lookupHa1 is read through getUser', async () => {
    const source = storeUserSource({ getUser: (u, d) => store.getUser(u, d) });
    expect(await source.lookupHa1('alice', 'example.test', 'MD5')).toBe(credentialsFor('alice', 'example.test', 'pw', ['MD5']).MD5);
    expect(await source.lookupHa1('bob', 'example.test', 'MD5')).toBeUndefined();
  });
});
