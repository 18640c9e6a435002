/**
 * The embedded store: users and bindings in one SQLite file (better-sqlite3,
 * synchronous). WAL journal, so the CLI can add users while the server runs.
 * The schema is created and migrated on open, versioned by `PRAGMA user_version`.
 */
import Database from 'better-sqlite3';
import { userhash } from '../stun/stun-integrity.js';
import { StoreError } from './errors.js';
import { checkStoreFile, isDamageError, quickCheck, STORE_FIX } from './store-file.js';
import type { BindingChange, BindingRecord, BindingStore, Ha1Algorithm, UserRecord } from './types.js';

/** SQL function computing a user's USERHASH (hex) in migrations; registered on every open. */
const USERHASH_FUNCTION = 'rtcedge_userhash';

/** USERHASH of `username` in `domain` (the TURN realm), lowercase hex (RFC 8489 §14.4). */
function userhashHex(username: string, domain: string): string {
  return userhash(username, domain).toString('hex');
}

/** Migrations; entry i takes the schema from user_version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     username        TEXT NOT NULL,
     domain          TEXT NOT NULL,
     ha1_md5         TEXT,
     ha1_sha256      TEXT,
     ha1_sha512_256  TEXT,
     created_at      INTEGER NOT NULL,
     PRIMARY KEY (username, domain)
   );
   CREATE TABLE bindings (
     aor               TEXT NOT NULL,
     contact_uri       TEXT NOT NULL,
     contact           TEXT NOT NULL,
     expires           INTEGER NOT NULL,
     q                 REAL,
     call_id           TEXT NOT NULL,
     cseq              INTEGER NOT NULL,
     instance          TEXT,
     reg_id            INTEGER,
     path              TEXT NOT NULL DEFAULT '[]',
     source_transport  TEXT,
     source_address    TEXT,
     source_port       INTEGER,
     source_local_port INTEGER,
     user_agent        TEXT,
     updated_at        INTEGER NOT NULL,
     PRIMARY KEY (aor, contact_uri)
   );
   CREATE INDEX bindings_expires ON bindings (expires);`,
  // USERHASH of every user (RFC 8489 §14.4: SHA-256(username ":" realm), realm = domain), hex, so a TURN client
  // that hides its name is known from its first request; existing users get theirs here.
  `ALTER TABLE users ADD COLUMN userhash TEXT;
   UPDATE users SET userhash = ${USERHASH_FUNCTION}(username, domain);
   CREATE INDEX users_userhash ON users (userhash);`,
  // Telephone numbers of users (E.164 or local), for ENUM and local number lookup; one owner per number.
  `CREATE TABLE phones (
     number    TEXT PRIMARY KEY,
     username  TEXT NOT NULL,
     domain    TEXT NOT NULL
   );
   CREATE INDEX phones_user ON phones (username, domain);`,
  // The users generation: bumped by every change to users (HA1, USERHASH) and phones, whoever makes it (the
  // server, \`rtcedge user ...\`, the import, in any process), so in-memory credential caches can notice it.
  `CREATE TABLE users_generation (
     id  INTEGER PRIMARY KEY CHECK (id = 0),
     n   INTEGER NOT NULL
   );
   INSERT INTO users_generation (id, n) VALUES (0, 0);
   ${['users', 'phones']
     .flatMap((table) =>
       ['INSERT', 'UPDATE', 'DELETE'].map(
         (op) => `CREATE TRIGGER ${table}_${op.toLowerCase()}_generation AFTER ${op} ON ${table}
     BEGIN UPDATE users_generation SET n = n + 1 WHERE id = 0; END;`,
       ),
     )
     .join('\n   ')}`,
];

/** Schema version this program writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

const HA1_COLUMNS: Record<Ha1Algorithm, 'ha1_md5' | 'ha1_sha256' | 'ha1_sha512_256'> = {
  MD5: 'ha1_md5',
  'SHA-256': 'ha1_sha256',
  'SHA-512-256': 'ha1_sha512_256',
};

interface UserRow {
  username: string;
  domain: string;
  ha1_md5: string | null;
  ha1_sha256: string | null;
  ha1_sha512_256: string | null;
  created_at: number;
  /** USERHASH hex (RFC 8489 §14.4), from schema version 2. */
  userhash: string;
}

interface BindingRow {
  aor: string;
  contact_uri: string;
  contact: string;
  expires: number;
  q: number | null;
  call_id: string;
  cseq: number;
  instance: string | null;
  reg_id: number | null;
  path: string;
  source_transport: string | null;
  source_address: string | null;
  source_port: number | null;
  source_local_port: number | null;
  user_agent: string | null;
  updated_at: number;
}

const BINDING_COLUMNS =
  'aor, contact_uri, contact, expires, q, call_id, cseq, instance, reg_id, path, ' +
  'source_transport, source_address, source_port, source_local_port, user_agent, updated_at';

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}

function userFromRow(r: UserRow): UserRecord {
  const ha1: UserRecord['ha1'] = {};
  if (r.ha1_md5 !== null) ha1.MD5 = r.ha1_md5;
  if (r.ha1_sha256 !== null) ha1['SHA-256'] = r.ha1_sha256;
  if (r.ha1_sha512_256 !== null) ha1['SHA-512-256'] = r.ha1_sha512_256;
  return { username: r.username, domain: r.domain, ha1, createdAt: r.created_at, phones: [] };
}

function bindingFromRow(r: BindingRow): BindingRecord {
  return {
    aor: r.aor,
    contact: r.contact,
    contactUri: r.contact_uri,
    expires: r.expires,
    q: r.q,
    callId: r.call_id,
    cseq: r.cseq,
    instance: r.instance,
    regId: r.reg_id,
    path: JSON.parse(r.path) as string[],
    source:
      r.source_transport !== null && r.source_address !== null && r.source_port !== null && r.source_local_port !== null
        ? { transport: r.source_transport, address: r.source_address, port: r.source_port, localPort: r.source_local_port }
        : null,
    userAgent: r.user_agent,
    updatedAt: r.updated_at,
  };
}

/** The JSON of an empty Path list, the common case: stored without a JSON.stringify per binding. */
const NO_PATH = '[]';

/**
 * Run the prepared upsert for `b`, its values bound by position in {@link BINDING_COLUMNS} order:
 * no row object per binding, and no bind-by-name lookups (16 per row); the row written is the
 * one a row object with the same values gives.
 */
function runPutBinding(stmt: Database.Statement<BindingValues>, b: BindingRecord): void {
  const src = b.source;
  stmt.run(
    b.aor,
    b.contactUri,
    b.contact,
    b.expires,
    b.q,
    b.callId,
    b.cseq,
    b.instance,
    b.regId,
    b.path.length === 0 ? NO_PATH : JSON.stringify(b.path),
    src?.transport ?? null,
    src?.address ?? null,
    src?.port ?? null,
    src?.localPort ?? null,
    b.userAgent,
    b.updatedAt,
  );
}

/** A binding row's values in {@link BINDING_COLUMNS} order. */
type BindingValues = [
  aor: string,
  contactUri: string,
  contact: string,
  expires: number,
  q: number | null,
  callId: string,
  cseq: number,
  instance: string | null,
  regId: number | null,
  path: string,
  sourceTransport: string | null,
  sourceAddress: string | null,
  sourcePort: number | null,
  sourceLocalPort: number | null,
  userAgent: string | null,
  updatedAt: number,
];

/** Check every HA1 is lowercase hex of its algorithm's length; returns the column values. */
function ha1Columns(ha1: UserRecord['ha1']): Record<'ha1_md5' | 'ha1_sha256' | 'ha1_sha512_256', string | null> {
  const out = { ha1_md5: null, ha1_sha256: null, ha1_sha512_256: null } as Record<
    'ha1_md5' | 'ha1_sha256' | 'ha1_sha512_256',
    string | null
  >;
  for (const [alg, value] of Object.entries(ha1) as [Ha1Algorithm, string | undefined][]) {
    const column = HA1_COLUMNS[alg];
    if (column === undefined) throw new StoreError('invalid', `unknown HA1 algorithm ${JSON.stringify(alg)}`);
    if (value === undefined) continue;
    const len = alg === 'MD5' ? 32 : 64;
    if (value.length !== len || !/^[0-9a-f]+$/.test(value)) {
      throw new StoreError('invalid', `HA1 for ${alg} must be ${len} lowercase hex digits`);
    }
    out[column] = value;
  }
  return out;
}

/**
 * Users and bindings in a SQLite file. One instance per open database; all
 * methods are synchronous and use cached prepared statements. Not a cache:
 * every read goes to the file.
 */
export class SqliteStore implements BindingStore {
  /** Absolute or relative path of the database file, as given. */
  readonly path: string;
  private readonly db: Database.Database;
  private readonly stmt;
  /** Per algorithm, the statement of {@link SqliteStore.lookupHa1}. */
  private readonly ha1Lookup: Record<Ha1Algorithm, Database.Statement<[string, string]>>;
  /** `fn()` in one transaction ({@link inTransaction}). */
  private readonly runInTransaction: (fn: () => void) => void;
  /** The changes of {@link commitBindings} in one transaction. */
  private readonly commitInTransaction: (changes: readonly BindingChange[]) => void;

  /**
   * Open (creating the file if needed; its directory must exist: openStore
   * makes data_dir), check and migrate. An absent file becomes a new store;
   * an existing one must pass `PRAGMA quick_check` (see store-file.ts).
   *
   * @param path database file, e.g. `<data_dir>/rtcedge.db`.
   * @throws StoreError code 'damaged' when the file is empty, not a database
   *   or fails the check (the file is left untouched); 'open' when it cannot
   *   be opened or its schema version is newer than this program's.
   */
  constructor(path: string) {
    this.path = path;
    let opened: Database.Database | undefined;
    try {
      const existed = checkStoreFile(path) === 'present';
      opened = new Database(path);
      this.db = opened;
      opened.pragma('journal_mode = WAL');
      opened.pragma('synchronous = NORMAL');
      opened.pragma('busy_timeout = 5000');
      if (existed) quickCheck(opened, path);
      opened.function(USERHASH_FUNCTION, { deterministic: true }, (u, d) => userhashHex(String(u), String(d)));
      this.migrate();
    } catch (err) {
      opened?.close();
      if (err instanceof StoreError) throw err;
      if (isDamageError(err)) throw new StoreError('damaged', `store ${path} is damaged (${(err as Error).message}): ${STORE_FIX}`, { cause: err });
      throw new StoreError('open', `cannot open store ${path}: ${(err as Error).message}`, { cause: err });
    }
    const db = this.db;
    // One index seek for the user, then one table row read either way: the user's row, or for an
    // unknown user a decoy row (the first user's), whose values are discarded (see lookupHa1).
    const ha1Statement = (column: string) =>
      db
        .prepare<[string, string]>(
          `SELECT t.${column}, x.found IS NOT NULL
           FROM (SELECT (SELECT rowid FROM users WHERE username = ? AND domain = ?) AS found,
                        (SELECT min(rowid) FROM users) AS decoy) x
           JOIN users t ON t.rowid = COALESCE(x.found, x.decoy)`,
        )
        .raw();
    this.ha1Lookup = {
      MD5: ha1Statement(HA1_COLUMNS.MD5),
      'SHA-256': ha1Statement(HA1_COLUMNS['SHA-256']),
      'SHA-512-256': ha1Statement(HA1_COLUMNS['SHA-512-256']),
    };
    this.stmt = {
      insertUser: db.prepare<[UserRow]>(
        `INSERT INTO users (username, domain, ha1_md5, ha1_sha256, ha1_sha512_256, created_at, userhash)
         VALUES (@username, @domain, @ha1_md5, @ha1_sha256, @ha1_sha512_256, @created_at, @userhash)`,
      ),
      updateUserHa1: db.prepare<[Omit<UserRow, 'created_at'>]>(
        `UPDATE users SET ha1_md5 = @ha1_md5, ha1_sha256 = @ha1_sha256, ha1_sha512_256 = @ha1_sha512_256, userhash = @userhash
         WHERE username = @username AND domain = @domain`,
      ),
      userByUserhash: db.prepare<[string, string], { username: string }>('SELECT username FROM users WHERE userhash = ? AND domain = ?'),
      getUser: db.prepare<[string, string], UserRow>('SELECT * FROM users WHERE username = ? AND domain = ?'),
      listUsers: db.prepare<[], UserRow>('SELECT * FROM users ORDER BY domain, username'),
      listUsersOfDomain: db.prepare<[string], UserRow>('SELECT * FROM users WHERE domain = ? ORDER BY username'),
      deleteUser: db.prepare<[string, string]>('DELETE FROM users WHERE username = ? AND domain = ?'),
      phonesOf: db.prepare<[string, string], { number: string }>('SELECT number FROM phones WHERE username = ? AND domain = ? ORDER BY number'),
      allPhones: db.prepare<[], { number: string; username: string; domain: string }>('SELECT number, username, domain FROM phones ORDER BY number'),
      phoneOwner: db.prepare<[string], { username: string; domain: string }>('SELECT username, domain FROM phones WHERE number = ?'),
      deletePhones: db.prepare<[string, string]>('DELETE FROM phones WHERE username = ? AND domain = ?'),
      insertPhone: db.prepare<[string, string, string]>('INSERT INTO phones (number, username, domain) VALUES (?, ?, ?)'),
      ping: db.prepare<[], { one: number }>('SELECT 1 AS one'),
      usersGeneration: db.prepare<[], number>('SELECT n FROM users_generation WHERE id = 0').pluck(),
      putBinding: db.prepare<BindingValues>(
        `INSERT INTO bindings (${BINDING_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (aor, contact_uri) DO UPDATE SET
           contact = excluded.contact, expires = excluded.expires, q = excluded.q, call_id = excluded.call_id,
           cseq = excluded.cseq, instance = excluded.instance, reg_id = excluded.reg_id, path = excluded.path,
           source_transport = excluded.source_transport, source_address = excluded.source_address,
           source_port = excluded.source_port, source_local_port = excluded.source_local_port,
           user_agent = excluded.user_agent, updated_at = excluded.updated_at`,
      ),
      deleteBinding: db.prepare<[string, string]>('DELETE FROM bindings WHERE aor = ? AND contact_uri = ?'),
      deleteBindings: db.prepare<[string]>('DELETE FROM bindings WHERE aor = ?'),
      listBindings: db.prepare<[string], BindingRow>(`SELECT ${BINDING_COLUMNS} FROM bindings WHERE aor = ? ORDER BY rowid`),
      allBindings: db.prepare<[], BindingRow>(`SELECT ${BINDING_COLUMNS} FROM bindings ORDER BY aor, rowid`),
      deleteExpired: db.prepare<[number]>('DELETE FROM bindings WHERE expires <= ?'),
      countBindings: db.prepare<[number], { aors: number; bindings: number }>('SELECT COUNT(DISTINCT aor) AS aors, COUNT(*) AS bindings FROM bindings WHERE expires > ?'),
    };
    // One transaction function each, made once: better-sqlite3's `db.transaction(fn)` builds four
    // wrapper functions and defines five properties on each per call, which cost more than running
    // the BEGIN and the COMMIT (bench/RESULTS.md, "CPU per REGISTER: allocations...").
    this.runInTransaction = db.transaction((fn: () => void) => fn());
    this.commitInTransaction = db.transaction((changes: readonly BindingChange[]) => {
      for (const c of changes) {
        if (c.op === 'put') runPutBinding(this.stmt.putBinding, c.binding);
        else if (c.op === 'delete') this.stmt.deleteBinding.run(c.aor, c.contactUri);
        else this.stmt.deleteBindings.run(c.aor);
      }
    });
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        'open',
        `store ${this.path} has schema version ${version}, newer than this program's ${SCHEMA_VERSION}`,
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      }).immediate();
    }
  }

  /**
   * Add a user. `domain` is stored lowercase; createdAt is now.
   *
   * @param ha1 lowercase hex per algorithm (see credentialsFor).
   * @throws StoreError 'exists' if username@domain is already there, 'invalid' for a malformed HA1.
   */
  addUser(username: string, domain: string, ha1: UserRecord['ha1']): void {
    const d = domain.toLowerCase();
    const row: UserRow = { username, domain: d, ...ha1Columns(ha1), created_at: nowS(), userhash: userhashHex(username, d) };
    try {
      this.stmt.insertUser.run(row);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreError('exists', `user ${username}@${row.domain} already exists`);
      }
      throw err;
    }
  }

  /**
   * Replace a user's HA1 set (algorithms not in `ha1` are removed).
   *
   * @throws StoreError 'not_found' if the user does not exist, 'invalid' for a malformed HA1.
   */
  setUserHa1(username: string, domain: string, ha1: UserRecord['ha1']): void {
    const d = domain.toLowerCase();
    const info = this.stmt.updateUserHa1.run({ username, domain: d, ...ha1Columns(ha1), userhash: userhashHex(username, d) });
    if (info.changes === 0) throw new StoreError('not_found', `no user ${username}@${d}`);
  }

  /** The user, or undefined. Domain compared lowercase, username exactly. */
  getUser(username: string, domain: string): UserRecord | undefined {
    const row = this.stmt.getUser.get(username, domain.toLowerCase());
    if (row === undefined) return undefined;
    const u = userFromRow(row);
    u.phones = this.stmt.phonesOf.all(u.username, u.domain).map((p) => p.number);
    return u;
  }

  /**
   * HA1 of `username`@`domain` for `alg` (lowercase hex), or undefined for an
   * unknown user or one without that credential. Known and unknown users cost
   * the same: one statement doing one index seek and one table row read either
   * way (for an unknown user a decoy row, discarded), so a 403 does not tell by
   * its timing whether the user exists (no user enumeration by timing).
   */
  lookupHa1(username: string, domain: string, alg: Ha1Algorithm): string | undefined {
    const row = this.ha1Lookup[alg].get(username, domain.toLowerCase()) as [string | null, number] | undefined;
    return row !== undefined && row[1] === 1 && row[0] !== null ? row[0] : undefined;
  }

  /**
   * The username whose USERHASH (RFC 8489 §14.4: SHA-256(username ":" realm), 32 bytes) in `domain`
   * (the realm, lowercase compare) is `hash`, or undefined. Indexed: O(log users).
   */
  userByUserhash(hash: Buffer, domain: string): string | undefined {
    if (hash.length !== 32) return undefined;
    return this.stmt.userByUserhash.get(hash.toString('hex'), domain.toLowerCase())?.username;
  }

  /** Users of one domain (lowercase compare) ordered by username, or of all domains ordered by domain, username. */
  listUsers(domain?: string): UserRecord[] {
    const rows = domain === undefined ? this.stmt.listUsers.all() : this.stmt.listUsersOfDomain.all(domain.toLowerCase());
    const users = rows.map(userFromRow);
    const byKey = new Map(users.map((u) => [`${u.username}@${u.domain}`, u]));
    for (const p of this.stmt.allPhones.all()) byKey.get(`${p.username}@${p.domain}`)?.phones.push(p.number);
    return users;
  }

  /** Remove a user and their phone numbers; true if there was one. Bindings of the user are not touched. */
  deleteUser(username: string, domain: string): boolean {
    const d = domain.toLowerCase();
    return this.db.transaction(() => {
      this.stmt.deletePhones.run(username, d);
      return this.stmt.deleteUser.run(username, d).changes > 0;
    })();
  }

  /**
   * Replace a user's telephone numbers (digits with an optional leading +, as given).
   *
   * @throws StoreError 'not_found' when there is no such user, 'exists' when a number belongs to another user,
   *   'invalid' for a number that is not 1-20 digits with an optional leading +.
   */
  setPhones(username: string, domain: string, numbers: readonly string[]): void {
    const d = domain.toLowerCase();
    for (const n of numbers) if (!/^\+?[0-9]{1,20}$/.test(n)) throw new StoreError('invalid', `phone number ${JSON.stringify(n)}: expected 1-20 digits with an optional leading +`);
    this.db.transaction(() => {
      if (!this.stmt.getUser.get(username, d)) throw new StoreError('not_found', `no user ${username}@${d}`);
      this.stmt.deletePhones.run(username, d);
      for (const n of new Set(numbers)) {
        const owner = this.stmt.phoneOwner.get(n);
        if (owner) throw new StoreError('exists', `phone number ${n} belongs to ${owner.username}@${owner.domain}`);
        this.stmt.insertPhone.run(n, username, d);
      }
    })();
  }

  /** The user owning telephone number `number` (exact), or undefined. */
  userOfPhone(number: string): { username: string; domain: string } | undefined {
    return this.stmt.phoneOwner.get(number);
  }

  /**
   * A counter that changes whenever a user, an HA1, a USERHASH or a phone number
   * changes in this file, from this or any other process (SQLite triggers, schema
   * version 4). One indexed read; credential caches poll it (auth/credential-cache.ts).
   */
  usersGeneration(): number {
    return this.stmt.usersGeneration.get() ?? 0;
  }

  /** True when the database answers a query (for /readyz). */
  ping(): boolean {
    return this.stmt.ping.get()?.one === 1;
  }

  /**
   * Copy the whole database to `destination` while it is in use (SQLite online
   * backup API via better-sqlite3); the copy is a consistent snapshot.
   * @throws Error from SQLite or the file system.
   */
  async backupTo(destination: string): Promise<void> {
    this.flushWal();
    await this.db.backup(destination);
  }

  /** Checkpoint the WAL into the main file (PASSIVE: never blocks writers). */
  private flushWal(): void {
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  /** Run `fn` in one SQLite transaction (all its writes commit together, or none; nested: a savepoint). */
  inTransaction(fn: () => void): void {
    this.runInTransaction(fn);
  }

  /** Apply binding changes in order in one SQLite transaction (see {@link BindingStore.commitBindings}). */
  commitBindings(changes: readonly BindingChange[]): void {
    this.commitInTransaction(changes);
  }

  /** Insert or replace the binding keyed by (b.aor, b.contactUri). Values are stored as given. */
  putBinding(b: BindingRecord): void {
    runPutBinding(this.stmt.putBinding, b);
  }

  /** Remove one binding; true if it existed. */
  deleteBinding(aor: string, contactUri: string): boolean {
    return this.stmt.deleteBinding.run(aor, contactUri).changes > 0;
  }

  /** Remove every binding of an AOR (REGISTER with `Contact: *`); returns how many. */
  deleteBindings(aor: string): number {
    return this.stmt.deleteBindings.run(aor).changes;
  }

  /** Bindings of one AOR (exact match), in the order they were first added. Includes expired ones not yet purged. */
  listBindings(aor: string): BindingRecord[] {
    return this.stmt.listBindings.all(aor).map(bindingFromRow);
  }

  /** Every binding, ordered by AOR then first-added order; for loading the location service at start-up. */
  allBindings(): BindingRecord[] {
    return this.stmt.allBindings.all().map(bindingFromRow);
  }

  /**
   * How many AORs have an unexpired binding (expires > nowS, unix s) and how
   * many such bindings there are: one query, for /metrics of a server whose
   * bindings are not all in its memory.
   */
  countBindings(nowS: number): { aors: number; bindings: number } {
    const row = this.stmt.countBindings.get(nowS);
    return { aors: row?.aors ?? 0, bindings: row?.bindings ?? 0 };
  }

  /** Remove bindings with expires <= nowS (unix s); returns how many. */
  deleteExpiredBindings(nowS: number): number {
    return this.stmt.deleteExpired.run(nowS).changes;
  }

  /** Close the database; further calls throw. Closing twice is harmless. */
  /**
   * Sets the WAL size, in pages, past which a commit on this connection runs
   * a checkpoint (`PRAGMA wal_autocheckpoint`; SQLite's default is 1000).
   * wal-checkpointer.ts raises it when a worker thread checkpoints instead.
   */
  setAutoCheckpointPages(pages: number): void {
    this.db.pragma(`wal_autocheckpoint = ${Math.max(0, Math.floor(pages))}`);
  }

  /** The connection's `wal_autocheckpoint`, pages. */
  autoCheckpointPages(): number {
    return this.db.pragma('wal_autocheckpoint', { simple: true }) as number;
  }

  /** Close the database connection. Idempotent. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}
