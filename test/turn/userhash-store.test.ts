/**
 * USERHASH for every user (RFC 8489 §14.4, §9.2.4): the store keeps
 * each user's USERHASH, so a client that sends only USERHASH allocates on a
 * freshly started server, and again after a restart, for a user added before
 * the start; an existing store gets the hashes by migration.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/server.js';
import { decodeErrorCode, decodeText, encodeRequestedTransport } from '../../src/stun/stun-attributes.js';
import { longTermKey, userhash } from '../../src/stun/stun-integrity.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { openStore } from '../../src/store/index.js';
import { SCHEMA_VERSION, SqliteStore } from '../../src/store/sqlite-store.js';
import { credentialsFor } from '../../src/store/users.js';

const DOMAIN = 'example.test';
const SIP_PORT = 29620;
const TURN_PORT = 29621;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-userhash-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function transact(s: dgram.Socket, req: Buffer): Promise<StunMessage> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no answer')), 3000);
    s.once('message', (d) => {
      clearTimeout(t);
      resolve(decodeStunMessage(d));
    });
    s.send(req, TURN_PORT, '127.0.0.1');
  });
}

/** Allocate with USERHASH only (no USERNAME anywhere); resolves with the final answer's class and code. */
async function allocateByUserhash(username: string, password: string): Promise<{ cls: string; code?: number }> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  try {
    const transport = { type: A.RequestedTransport, value: encodeRequestedTransport(17) };
    const ch = await transact(s, encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [transport] }));
    expect(decodeErrorCode(getAttribute(ch, A.ErrorCode)!.value).code).toBe(401);
    const nonce = decodeText(getAttribute(ch, A.Nonce)!.value);
    const attributes = [
      transport,
      { type: A.Userhash, value: userhash(username, DOMAIN) },
      { type: A.Realm, value: Buffer.from(DOMAIN) },
      { type: A.Nonce, value: Buffer.from(nonce) },
    ];
    const r = await transact(s, encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes }, { integrityKey: longTermKey(username, DOMAIN, password), fingerprint: true }));
    return r.class === 'error' ? { cls: r.class, code: decodeErrorCode(getAttribute(r, A.ErrorCode)!.value).code } : { cls: r.class };
  } finally {
    s.close();
  }
}

describe('USERHASH of stored users', () => {
  it('lets a USERHASH-only client allocate on a fresh server and after a restart, for a user added before the start', async () => {
    const config = parseConfig({
      data_dir: join(dir, 'server'),
      domains: [DOMAIN],
      log: { level: 'silent' },
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }] },
      turn: {
        enabled: true,
        realm: DOMAIN,
        listen: [{ transport: 'udp', host: '127.0.0.1', port: TURN_PORT }],
        relay_address: '127.0.0.1',
        relay_port_min: 29630,
        relay_port_max: 29639,
        password_algorithms: ['SHA-256', 'MD5'],
        data_plane: 'typescript',
      },
    });
    const store = openStore(config);
    store.addUser('carol', DOMAIN, credentialsFor('carol', DOMAIN, 'carolpw', ['MD5', 'SHA-256']));
    store.close();
    for (let run = 0; run < 2; run++) {
      const server = await startServer(config, silentLogger);
      try {
        expect(await allocateByUserhash('carol', 'carolpw'), `run ${run}`).toEqual({ cls: 'success' });
        expect(await allocateByUserhash('carol', 'wrong'), `run ${run}`).toEqual({ cls: 'error', code: 401 });
        expect(await allocateByUserhash('nobody', 'x'), `run ${run}`).toEqual({ cls: 'error', code: 401 });
      } finally {
        await server.stop();
      }
    }
  });
});

describe('store migration to USERHASH', () => {
  it('computes the USERHASH of users already in a version 1 store, and of users added or changed later', () => {
    mkdirSync(join(dir, 'migrate'));
    const path = join(dir, 'migrate', 'rtcedge.db');
    const s1 = new SqliteStore(path);
    s1.addUser('dave', 'Example.TEST', credentialsFor('dave', DOMAIN, 'davepw', ['MD5']));
    s1.close();
    // Back to schema version 1: the users table as it was before the USERHASH column, and no later tables.
    const raw = new Database(path);
    raw.exec(
      'DROP TABLE phones; DROP TRIGGER users_insert_generation; DROP TRIGGER users_update_generation; ' +
        'DROP TRIGGER users_delete_generation; DROP TABLE users_generation; DROP INDEX users_userhash; ALTER TABLE users DROP COLUMN userhash;',
    );
    raw.pragma('user_version = 1');
    raw.close();
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(2);

    const s2 = new SqliteStore(path);
    try {
      expect(s2.userByUserhash(userhash('dave', DOMAIN), DOMAIN)).toBe('dave');
      expect(s2.userByUserhash(userhash('dave', DOMAIN), 'EXAMPLE.test')).toBe('dave');
      expect(s2.userByUserhash(userhash('dave', 'other.test'), DOMAIN)).toBeUndefined();
      expect(s2.userByUserhash(Buffer.alloc(5), DOMAIN)).toBeUndefined();
      s2.addUser('erin', DOMAIN, credentialsFor('erin', DOMAIN, 'erinpw', ['MD5']));
      expect(s2.userByUserhash(userhash('erin', DOMAIN), DOMAIN)).toBe('erin');
      const v = new Database(path, { readonly: true });
      expect(v.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const rows = v.prepare('SELECT username, userhash FROM users ORDER BY username').all() as Array<{ username: string; userhash: string }>;
      v.close();
      expect(rows).toEqual([
        { username: 'dave', userhash: userhash('dave', DOMAIN).toString('hex') },
        { username: 'erin', userhash: userhash('erin', DOMAIN).toString('hex') },
      ]);
    } finally {
      s2.close();
    }
  });
});
