import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { type BindingRecord, SCHEMA_VERSION, SqliteStore, StoreError, openStore } from '../../src/store/index.js';

const MD5 = '0123456789abcdef0123456789abcdef';
const SHA = 'ab'.repeat(32);

let dir: string;
let store: SqliteStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-store-'));
  store = new SqliteStore(join(dir, 'rtcedge.db'));
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function binding(over: Partial<BindingRecord> = {}): BindingRecord {
  return {
    aor: 'sip:alice@example.test',
    contact: '"Alice" <sip:alice@192.0.2.10:5060;transport=tcp>;+sip.instance="<urn:uuid:1>";reg-id=1',
    contactUri: 'sip:alice@192.0.2.10:5060;transport=tcp',
    expires: 2000,
    q: 0.5,
    callId: 'call-1@192.0.2.10',
    cseq: 7,
    instance: '<urn:uuid:1>',
    regId: 1,
    path: ['<sip:edge1.example.test;lr>', '<sip:edge2.example.test;lr>'],
    source: { transport: 'tcp', address: '192.0.2.10', port: 40000, localPort: 5060 },
    userAgent: 'baresip 3.0',
    updatedAt: 1000,
    ...over,
  };
}

function expectStoreError(fn: () => unknown, code: StoreError['code'], message: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe(code);
    expect((err as StoreError).message).toBe(message);
    return;
  }
  throw new Error('expected a StoreError');
}

describe('users', () => {
  test('add, get, list, set HA1, delete', () => {
    const before = Math.floor(Date.now() / 1000);
    store.addUser('Alice', 'Example.TEST', { MD5, 'SHA-256': SHA });
    const u = store.getUser('Alice', 'example.test');
    expect(u).toEqual({ username: 'Alice', domain: 'example.test', ha1: { MD5, 'SHA-256': SHA }, createdAt: u!.createdAt, phones: [] });
    expect(u!.createdAt).toBeGreaterThanOrEqual(before);
    expect(u!.createdAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(store.getUser('Alice', 'EXAMPLE.test')?.username).toBe('Alice');
    expect(store.getUser('alice', 'example.test')).toBeUndefined();

    store.addUser('bob', 'example.test', { MD5 });
    store.addUser('carol', 'other.test', { 'SHA-512-256': SHA });
    expect(store.listUsers().map((x) => `${x.username}@${x.domain}`)).toEqual(['Alice@example.test', 'bob@example.test', 'carol@other.test']);
    expect(store.listUsers('OTHER.test').map((x) => x.username)).toEqual(['carol']);
    expect(store.listUsers('none.test')).toEqual([]);

    const other = 'cd'.repeat(32);
    store.setUserHa1('bob', 'example.test', { 'SHA-256': other });
    expect(store.getUser('bob', 'example.test')!.ha1).toEqual({ 'SHA-256': other });

    expect(store.deleteUser('bob', 'example.test')).toBe(true);
    expect(store.deleteUser('bob', 'example.test')).toBe(false);
    expect(store.getUser('bob', 'example.test')).toBeUndefined();
  });

  test('errors are typed', () => {
    store.addUser('alice', 'example.test', { MD5 });
    expectStoreError(() => store.addUser('alice', 'EXAMPLE.test', { MD5 }), 'exists', 'user alice@example.test already exists');
    expectStoreError(() => store.setUserHa1('nobody', 'example.test', { MD5 }), 'not_found', 'no user nobody@example.test');
    expectStoreError(() => store.addUser('x', 'example.test', { MD5: 'xyz' }), 'invalid', 'HA1 for MD5 must be 32 lowercase hex digits');
    expectStoreError(
      () => store.addUser('x', 'example.test', { 'SHA-256': MD5 }),
      'invalid',
      'HA1 for SHA-256 must be 64 lowercase hex digits',
    );
    expect(store.getUser('x', 'example.test')).toBeUndefined();
  });
});

describe('bindings', () => {
  test('put, list (all fields round-trip), upsert by (aor, contactUri)', () => {
    const b1 = binding();
    store.putBinding(b1);
    expect(store.listBindings('sip:alice@example.test')).toEqual([b1]);

    const b2 = binding({
      contact: '<sip:alice@198.51.100.1>',
      contactUri: 'sip:alice@198.51.100.1',
      q: null,
      instance: null,
      regId: null,
      path: [],
      source: null,
      userAgent: null,
    });
    store.putBinding(b2);
    const b1refresh = { ...b1, expires: 5000, cseq: 8, updatedAt: 1500, q: 1 };
    store.putBinding(b1refresh);
    expect(store.listBindings('sip:alice@example.test')).toEqual([b1refresh, b2]);
    expect(store.listBindings('sip:bob@example.test')).toEqual([]);

    const b3 = binding({ aor: 'sip:bob@example.test' });
    store.putBinding(b3);
    expect(store.allBindings()).toEqual([b1refresh, b2, b3]);
  });

  test('delete one, delete all of an AOR, delete expired', () => {
    store.putBinding(binding({ contactUri: 'sip:a@h1', expires: 100 }));
    store.putBinding(binding({ contactUri: 'sip:a@h2', expires: 200 }));
    store.putBinding(binding({ contactUri: 'sip:a@h3', expires: 300 }));
    store.putBinding(binding({ aor: 'sip:bob@example.test', contactUri: 'sip:b@h1', expires: 150 }));
    store.putBinding(binding({ aor: 'sip:carol@example.test', contactUri: 'sip:c@h1', expires: 400 }));

    expect(store.deleteBinding('sip:alice@example.test', 'sip:a@h2')).toBe(true);
    expect(store.deleteBinding('sip:alice@example.test', 'sip:a@h2')).toBe(false);
    expect(store.listBindings('sip:alice@example.test').map((b) => b.contactUri)).toEqual(['sip:a@h1', 'sip:a@h3']);

    // expires == now counts as expired
    expect(store.deleteExpiredBindings(150)).toBe(2);
    expect(store.allBindings().map((b) => b.contactUri)).toEqual(['sip:a@h3', 'sip:c@h1']);

    expect(store.deleteBindings('sip:alice@example.test')).toBe(1);
    expect(store.deleteBindings('sip:alice@example.test')).toBe(0);
    expect(store.allBindings().map((b) => b.contactUri)).toEqual(['sip:c@h1']);
  });

  test('countBindings counts unexpired bindings and the AORs that have one', () => {
    expect(store.countBindings(0)).toEqual({ aors: 0, bindings: 0 });
    store.putBinding(binding({ contactUri: 'sip:a@h1', expires: 100 }));
    store.putBinding(binding({ contactUri: 'sip:a@h2', expires: 300 }));
    store.putBinding(binding({ aor: 'sip:bob@example.test', contactUri: 'sip:b@h1', expires: 150 }));
    store.putBinding(binding({ aor: 'sip:carol@example.test', contactUri: 'sip:c@h1', expires: 400 }));
    expect(store.countBindings(99)).toEqual({ aors: 3, bindings: 4 });
    // expires == now counts as expired, as for deleteExpiredBindings
    expect(store.countBindings(150)).toEqual({ aors: 2, bindings: 2 });
    expect(store.countBindings(400)).toEqual({ aors: 0, bindings: 0 });
  });

  test('commitBindings: a refresh leaves the same row as putBinding; changes apply in order in one transaction, all or none', () => {
    const raw = () => {
      const db = new Database(store.path, { readonly: true });
      try {
        return db.prepare('SELECT * FROM bindings ORDER BY aor, contact_uri').all();
      } finally {
        db.close();
      }
    };
    const b1 = binding();
    const b2 = binding({ contactUri: 'sip:alice@198.51.100.1', contact: '<sip:alice@198.51.100.1>', path: [], source: null, q: null, instance: null, regId: null, userAgent: null });
    store.putBinding(b1);
    store.putBinding(b2);
    const refresh = { ...b1, expires: 5000, cseq: 8, callId: 'call-2@192.0.2.10', updatedAt: 1500 };
    store.putBinding(refresh);
    const byPut = raw();
    expect(byPut).toEqual([
      expect.objectContaining({ contact_uri: 'sip:alice@192.0.2.10:5060;transport=tcp', expires: 5000, cseq: 8, call_id: 'call-2@192.0.2.10', updated_at: 1500, path: JSON.stringify(b1.path), source_port: 40000, source_local_port: 5060 }),
      expect.objectContaining({ contact_uri: 'sip:alice@198.51.100.1', path: '[]', source_transport: null, source_address: null, source_port: null, source_local_port: null, q: null, user_agent: null }),
    ]);

    // The same writes through commitBindings, from the same start, leave byte-identical rows.
    store.deleteBindings(b1.aor);
    store.commitBindings([{ op: 'put', binding: b1 }, { op: 'put', binding: b2 }, { op: 'put', binding: refresh }]);
    expect(raw()).toEqual(byPut);

    // In order: a put after a deleteAll survives, a delete after a put removes it.
    const bob = binding({ aor: 'sip:bob@example.test' });
    store.commitBindings([{ op: 'deleteAll', aor: b1.aor }, { op: 'put', binding: b2 }, { op: 'put', binding: bob }, { op: 'delete', aor: bob.aor, contactUri: bob.contactUri }]);
    expect(store.allBindings()).toEqual([b2]);

    // A change SQLite refuses (NOT NULL contact) rolls back the whole commit, and the next commit works.
    expect(() => store.commitBindings([{ op: 'deleteAll', aor: b2.aor }, { op: 'put', binding: { ...bob, contact: null as unknown as string } }])).toThrow(/NOT NULL/);
    expect(store.allBindings()).toEqual([b2]);
    store.commitBindings([{ op: 'put', binding: bob }]);
    expect(store.allBindings()).toEqual([b2, bob]);
  });

  test('inTransaction commits together, rolls back on a throw, and nests', () => {
    store.inTransaction(() => {
      store.putBinding(binding({ contactUri: 'sip:a@h1' }));
      store.inTransaction(() => store.putBinding(binding({ contactUri: 'sip:a@h2' })));
    });
    expect(store.allBindings().map((b) => b.contactUri)).toEqual(['sip:a@h1', 'sip:a@h2']);
    expect(() =>
      store.inTransaction(() => {
        store.deleteBindings('sip:alice@example.test');
        throw new Error('abandoned');
      }),
    ).toThrow('abandoned');
    expect(store.allBindings().map((b) => b.contactUri)).toEqual(['sip:a@h1', 'sip:a@h2']);
    store.inTransaction(() => {
      store.putBinding(binding({ contactUri: 'sip:a@h3' }));
      expect(() => store.inTransaction(() => {
        store.deleteBindings('sip:alice@example.test');
        throw new Error('inner');
      })).toThrow('inner');
    });
    expect(store.allBindings().map((b) => b.contactUri)).toEqual(['sip:a@h1', 'sip:a@h2', 'sip:a@h3']);
  });

  test('table layout other tools read: bindings(aor, contact_uri, expires)', () => {
    store.putBinding(binding({ expires: 1234 }));
    const db = new Database(store.path, { readonly: true });
    try {
      const rows = db.prepare('SELECT aor, contact_uri, expires FROM bindings').all();
      expect(rows).toEqual([{ aor: 'sip:alice@example.test', contact_uri: 'sip:alice@192.0.2.10:5060;transport=tcp', expires: 1234 }]);
    } finally {
      db.close();
    }
  });
});

describe('phone numbers', () => {
  test('set, listed with the user, looked up, unique across users, removed with the user', () => {
    store.addUser('alice', 'example.test', { MD5 });
    store.addUser('bob', 'example.test', { MD5 });
    store.setPhones('alice', 'example.test', ['+4930111', '111', '111']);
    expect(store.getUser('alice', 'example.test')!.phones).toEqual(['+4930111', '111']);
    expect(store.listUsers().map((u) => [u.username, u.phones])).toEqual([
      ['alice', ['+4930111', '111']],
      ['bob', []],
    ]);
    expect(store.userOfPhone('111')).toEqual({ username: 'alice', domain: 'example.test' });
    expectStoreError(() => store.setPhones('bob', 'example.test', ['111']), 'exists', 'phone number 111 belongs to alice@example.test');
    expectStoreError(() => store.setPhones('bob', 'example.test', ['12a']), 'invalid', 'phone number "12a": expected 1-20 digits with an optional leading +');
    expectStoreError(() => store.setPhones('carol', 'example.test', ['1']), 'not_found', 'no user carol@example.test');
    expect(store.getUser('bob', 'example.test')!.phones).toEqual([]);
    expect(store.deleteUser('alice', 'example.test')).toBe(true);
    expect(store.userOfPhone('111')).toBeUndefined();
  });
});

describe('persistence and schema', () => {
  test('data survives close and reopen', () => {
    store.addUser('alice', 'example.test', { MD5, 'SHA-512-256': SHA });
    const b = binding();
    store.putBinding(b);
    const path = store.path;
    store.close();

    store = new SqliteStore(path);
    expect(store.getUser('alice', 'example.test')!.ha1).toEqual({ MD5, 'SHA-512-256': SHA });
    expect(store.allBindings()).toEqual([b]);
  });

  test('WAL mode and schema version recorded', () => {
    const db = new Database(store.path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  test('a database from a newer schema is refused', () => {
    store.close();
    const db = new Database(store.path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expectStoreError(
      () => new SqliteStore(store.path),
      'open',
      `store ${store.path} has schema version ${SCHEMA_VERSION + 1}, newer than this program's ${SCHEMA_VERSION}`,
    );
  });

  test('a file that is not SQLite gives StoreError open', () => {
    const bad = join(dir, 'bad.db');
    writeFileSync(bad, 'this is not a database, just text that is long enough to be read as a header');
    expect(() => new SqliteStore(bad)).toThrow(StoreError);
  });

  test('openStore uses <data_dir>/rtcedge.db', () => {
    const s = openStore({ data_dir: join(dir, 'data') });
    try {
      expect(s.path).toBe(join(dir, 'data', 'rtcedge.db'));
      s.addUser('u', 'example.test', { MD5 });
    } finally {
      s.close();
    }
    const again = openStore({ data_dir: join(dir, 'data') });
    expect(again.listUsers().map((u) => u.username)).toEqual(['u']);
    again.close();
  });
});
