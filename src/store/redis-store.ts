/**
 * The shared store on Redis (`store.type: redis`): users, credentials, phone
 * numbers, USERHASH index, bindings and the server secret, for several nodes
 * that serve one domain. Redis is the engine: writes that touch several keys
 * run as Lua scripts (redis-scripts.ts), or, for registrations and refreshes,
 * as plain commands in one MULTI/EXEC (no Lua: RedisStore.commitPuts), so
 * each is atomic and one round trip.
 *
 * Key layout, under `key_prefix` (default `rtcedge:`):
 *
 * | key | type | what |
 * | --- | --- | --- |
 * | `user:<domain>:<username>` | hash | `ha1_md5`, `ha1_sha256`, `ha1_sha512_256`, `created_at` (unix s), `userhash` (hex) |
 * | `users:<domain>` | set | usernames of the domain |
 * | `domains` | set | domains with users |
 * | `userhash:<domain>:<hex>` | string | username (RFC 8489 §14.4 USERHASH index) |
 * | `phone:<number>` | string | `username@domain` owning the number |
 * | `phones:<domain>:<username>` | set | the user's numbers |
 * | `binding:<aor>\n<contact URI>` | string | the binding record (JSON), expiring at its expiry (EXAT) |
 * | `aor:<aor>` | sorted set | contact URIs of the AOR, scored by when first added (ms) |
 * | `aors` | set | AORs with an index |
 * | `aor-version:<aor>` | string | a counter bumped by every commit that changes the AOR (gone with its last binding): the one key per AOR a node's cache is told about |
 * | `contact:<contact URI>` | string | the AOR the contact is bound to, expiring with that binding (requests to a registered contact) |
 * | `secret` | string | the server secret (hex), set once with SET NX |
 * | `users:generation` | string | a counter bumped by every change to users and phone numbers |
 * | `turn:secrets` | set | TURN REST API shared secrets every node accepts besides `turn.auth_secrets` |
 *
 * Nodes do not copy each other's bindings: each reads them through Redis into
 * a bounded cache that Redis keeps true with client-side caching (CLIENT
 * TRACKING, redis-tracking.ts): a read of an AOR also reads its
 * `aor-version:<aor>` key with a plain GET, inside the same MULTI/EXEC as
 * the records (reads in a transaction are tracked; Redis 7.0 does not track
 * keys read inside a Lua script: checked against Debian 12's 7.0.15), so
 * Redis tells the node when another node's commit bumps it. The key layout
 * is the one the scripts always used: data written by earlier versions is
 * read as it is, and nodes of both kinds can share one Redis.
 *
 * Binding expiry is Redis's: each record expires by itself at its `expires`
 * (EXAT), on every node at once and with no sweeper deciding anything; the
 * index entries a record leaves behind are skipped on read and removed by
 * {@link RedisStore.deleteExpiredBindings}, which any number of nodes may run
 * at once (it removes only entries whose record is gone).
 *
 * Every failure to reach Redis (down, failing over, a command without an
 * answer within `command_timeout`) is a {@link StoreError} `unavailable`
 * carrying `retryAfterS`; commands are not queued while disconnected, and
 * the client reconnects by itself (ioredis, backing off up to 2 s).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import { userhash } from '../stun/stun-integrity.js';
import type { StoreConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { StoreError } from './errors.js';
import { ADD_USER, COMMIT_BINDINGS, DELETE_USER, LIST_BINDINGS, READ_AOR, SET_HA1, SET_PHONES, SWEEP_AORS } from './redis-scripts.js';
import type { BindingChange, BindingRecord, BindingStore, CommittedAor, Ha1Algorithm, HeldAor, ReadBackCause, UserRecord } from './types.js';

/** A change that registers or refreshes a binding. */
type PutChange = Extract<BindingChange, { op: 'put' }>;

/** Redis hash field of each HA1 algorithm. */
const HA1_FIELDS: Record<Ha1Algorithm, string> = { MD5: 'ha1_md5', 'SHA-256': 'ha1_sha256', 'SHA-512-256': 'ha1_sha512_256' };

/** AORs (and SCAN's COUNT hint) per round trip when every binding is read or swept. */
const AOR_BATCH = 200;

/** How old (ms) the users generation may be before it is read again (see RedisStore.usersGeneration). */
export const USERS_GENERATION_READ_MS = 250;

/** TURN REST API secrets kept in Redis at most. */
export const MAX_TURN_SECRETS = 100;

/**
 * Bytes of a binding commit's arguments up to which it is sent in one write
 * with the commands around it (RedisStore.commitAndRead): well under the
 * 16 KiB Redis reads from a client at once (PROTO_IOBUF_LEN), so Redis runs
 * them in one pass of its event loop.
 */
const ONE_READ_BYTES = 12 * 1024;

/**
 * Seconds a put's expiry must lie ahead of this node's clock for the commit
 * to go as plain commands (RedisStore.commitPuts); a put closer to its end
 * (or past it: a removal) goes through the script, which compares with
 * Redis's clock. Covers the skew between the nodes' clocks and Redis's.
 */
const PUT_MARGIN_S = 2;

/** Longest wait between two reconnection attempts, ms. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** A snapshot of the whole Redis store, for `rtcedge backup` (data/redis-store.json). */
export interface RedisSnapshot {
  format: 'rtcedge-redis-store';
  version: 1;
  users: UserRecord[];
  bindings: BindingRecord[];
  /** The server secret, hex, or null when none was set. */
  secret: string | null;
  /** TURN REST API secrets (absent in older snapshots). */
  turnSecrets?: string[];
}

/** COMMIT_BINDINGS's arguments of `changes`: five per change (op, AOR, contact URI, expiry, record JSON). */
function changeArgs(changes: readonly BindingChange[]): (string | number)[] {
  const args: (string | number)[] = [];
  for (const c of changes) {
    if (c.op === 'put') args.push('put', c.binding.aor, c.binding.contactUri, c.binding.expires, JSON.stringify(c.binding));
    else args.push(c.op, c.aor, c.op === 'delete' ? c.contactUri : '', '', '');
  }
  return args;
}

/** Check every HA1 is lowercase hex of its algorithm's length; returns the hash fields. */
function ha1Fields(ha1: UserRecord['ha1']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [alg, value] of Object.entries(ha1) as [Ha1Algorithm, string | undefined][]) {
    const field = HA1_FIELDS[alg];
    if (field === undefined) throw new StoreError('invalid', `unknown HA1 algorithm ${JSON.stringify(alg)}`);
    if (value === undefined) continue;
    const len = alg === 'MD5' ? 32 : 64;
    if (value.length !== len || !/^[0-9a-f]+$/.test(value)) throw new StoreError('invalid', `HA1 for ${alg} must be ${len} lowercase hex digits`);
    out[field] = value;
  }
  return out;
}

function checkPhones(numbers: readonly string[]): string[] {
  for (const n of numbers) if (!/^\+?[0-9]{1,20}$/.test(n)) throw new StoreError('invalid', `phone number ${JSON.stringify(n)}: expected 1-20 digits with an optional leading +`);
  return [...new Set(numbers)];
}

/** A script's 'ok', or its error text `<code> <message>` as a StoreError. */
function scriptResult(answer: unknown): void {
  if (answer === 'ok') return;
  const text = String(answer);
  const sp = text.indexOf(' ');
  throw new StoreError(text.slice(0, sp) as 'exists' | 'not_found', text.slice(sp + 1));
}

/** SHA-1 (hex) of each Lua script run so far, for EVALSHA. */
const scriptShas = new Map<string, string>();

/** The SHA-1 (hex) digest Redis names `script` by (EVALSHA, SCRIPT LOAD). */
function scriptSha(script: string): string {
  let sha = scriptShas.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    scriptShas.set(script, sha);
  }
  return sha;
}

/** True for Redis's answer to EVALSHA of a script it does not hold (first use, or after a restart or failover). */
function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Run a Lua script of redis-scripts.ts with no KEYS and `args` as ARGV: EVALSHA
 * (the script's 40-character digest instead of its text, so neither side
 * handles the text on every call), and EVAL once when Redis does not have it
 * yet (NOSCRIPT: first use, or after a restart or failover).
 * @throws whatever ioredis throws (no answer, a script error).
 */
export async function runScript(redis: Redis, script: string, args: readonly (string | number)[]): Promise<unknown> {
  try {
    return await redis.evalsha(scriptSha(script), 0, ...args);
  } catch (err) {
    if (!isNoScript(err)) throw err;
    return redis.eval(script, 0, ...args);
  }
}

/** One plain command for {@link pipelineScript} and {@link sendBatched}: its name, then its arguments. */
export type PlainCommand = readonly [string, ...(string | number)[]];

/**
 * A script and plain commands sent in one write (the connection's socket is
 * corked while ioredis writes them, so one system call carries all; Redis
 * reads and runs them in one pass): `before` just ahead of the script,
 * `after` just behind it. When Redis does not hold the script (NOSCRIPT) it
 * is sent again with its text, followed by `after` again.
 * Resolves `[answers of before, the script's answer, answers of after]`.
 * @throws the first error among the answers, or whatever ioredis throws.
 */
async function pipelineScript(redis: Redis, before: readonly PlainCommand[], script: string, args: readonly (string | number)[], after: readonly PlainCommand[]): Promise<[unknown[], unknown, unknown[]]> {
  const one = (c: PlainCommand): Promise<unknown> => redis.call(c[0], ...c.slice(1));
  const stream = redis.stream as { cork?: () => void; uncork?: () => void } | undefined;
  stream?.cork?.();
  let sent: [Promise<unknown[]>, Promise<unknown>, Promise<unknown[]>];
  try {
    sent = [Promise.all(before.map(one)), redis.evalsha(scriptSha(script), 0, ...args), Promise.all(after.map(one))];
  } finally {
    stream?.uncork?.();
  }
  const [b, answer, a] = await Promise.allSettled(sent);
  if (answer.status === 'rejected' && isNoScript(answer.reason)) {
    if (b.status === 'rejected') throw b.reason;
    const again = await runScript(redis, script, args);
    return [b.value, again, await Promise.all(after.map(one))];
  }
  for (const r of [b, answer, a]) if (r.status === 'rejected') throw r.reason;
  return [(b as PromiseFulfilledResult<unknown[]>).value, (answer as PromiseFulfilledResult<unknown>).value, (a as PromiseFulfilledResult<unknown[]>).value];
}

/** Binding records as read by SORT_RO ... GET (RedisStore.readRecords): nil where Redis expired one. */
function parseRecords(got: readonly (string | null)[]): BindingRecord[] {
  const out: BindingRecord[] = [];
  for (const j of got) if (j !== null) out.push(JSON.parse(j) as BindingRecord);
  return out;
}

/** ioredis's Command class, loaded with the first Redis store (see RedisStore's constructor). */
let CommandClass: typeof import('ioredis').Command | undefined;

/**
 * Plain commands sent in one write: ioredis queues each one for its answer
 * but hands its bytes (RESP) to a batch instead of the socket, as its own
 * pipelines do, and the batch goes out as one string in one `write` (one
 * system call, no per-command write request or corking); resolves their
 * answers in order. Only the last command carries the connection's command
 * timeout (ioredis reads `options.commandTimeout` as it sends each one):
 * one connection answers in order, so the last answer's timer bounds them
 * all, and a timer set and cleared per command cost the node ~2 µs each
 * (bench/RESULTS.md). While the connection is not ready every command is
 * refused at once (no offline queue) and nothing is written.
 * @throws the first error (the last command's timeout when Redis does not answer).
 */
export function sendBatched(redis: Redis, cmds: readonly PlainCommand[]): Promise<unknown[]> {
  const options = redis.options;
  const timeoutMs = options.commandTimeout;
  let data = '';
  // What ioredis's sendCommand takes for a pipeline's commands (it writes each command's RESP to `write`).
  const batch = { isPipeline: true, destination: { redis }, write: (w: string) => void (data += w) };
  let sent: Promise<unknown>[];
  try {
    options.commandTimeout = undefined;
    sent = cmds.map((c, i) => {
      if (i === cmds.length - 1) options.commandTimeout = timeoutMs;
      return redis.sendCommand(new CommandClass!(c[0], c.slice(1), { replyEncoding: 'utf8' }), batch as never) as Promise<unknown>;
    });
  } finally {
    options.commandTimeout = timeoutMs;
  }
  if (data.length > 0) redis.stream.write(data);
  return Promise.all(sent);
}

/**
 * Bindings read for a cache that Redis keeps true (client-side caching,
 * redis-tracking.ts): `cacheable` is false when the AOR's version changed
 * between the tracked GET and the read of the records (a commit slipped in
 * between: use the bindings once, do not keep them).
 */
export interface TrackedBindings {
  bindings: BindingRecord[];
  cacheable: boolean;
}

/** What one transaction of RedisStore.runPuts sends for one AOR. */
interface AorStep {
  /** The latest expiry of the AOR's puts in the commit (unix s). */
  untilS: number;
  /**
   * Contact URIs to add to the AOR's index (ZADD NX), with the AOR to the AOR
   * set and the version key's first expiry (EXPIREAT NX); undefined to send
   * none of these (the node's cache held every one of them).
   */
  index: string[] | undefined;
  /** Bump the version (INCR, EXPIREAT GT). */
  bump: boolean;
  /** Read the records back ({@link RedisStore.readRecords}). */
  read: boolean;
}

/** ioredis options of `store.redis`: no offline queue (a request fails at once while disconnected), timeouts, reconnection. */
export function redisOptions(config: StoreConfig['redis']): RedisOptions {
  const common: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: config.command_timeout,
    connectTimeout: config.connect_timeout,
    retryStrategy: (times) => Math.min(100 * times, MAX_RECONNECT_DELAY_MS),
    sentinelRetryStrategy: (times) => Math.min(100 * times, MAX_RECONNECT_DELAY_MS),
  };
  if (config.sentinels.length === 0) return common;
  return {
    ...common,
    name: config.sentinel_name,
    sentinels: config.sentinels.map((s) => {
      const colon = s.lastIndexOf(':');
      return { host: s.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(s.slice(colon + 1)) };
    }),
  };
}

/** Close a connection politely (QUIT), or at once when that fails; nothing for undefined or a closed one. */
export async function quitConnection(redis: Redis | undefined): Promise<void> {
  if (!redis || redis.status === 'end') return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** The Redis a configuration names, for log lines and errors: the URL without its password, or the sentinels. */
export function redisName(config: StoreConfig['redis']): string {
  if (config.sentinels.length > 0) return `sentinel ${config.sentinel_name}@${config.sentinels.join(',')}`;
  return config.url.replace(/\/\/[^@/]*@/, '//').replace(/([?&]password=)[^&]*/i, '$1…');
}

/**
 * What ioredis takes for `store.redis.url`: a `unix:` URL (`unix:/path`,
 * `unix:///path`, options such as `?db=2` after the path) as the bare path,
 * which ioredis opens as a Unix socket; a redis:// or rediss:// URL as it is.
 */
export function redisTarget(url: string): string {
  return /^unix:/i.test(url) ? url.replace(/^unix:(\/\/)?/i, '') : url;
}

/**
 * Users and bindings on a shared Redis. Every method is asynchronous and may
 * throw {@link StoreError} `unavailable` (Redis cannot be reached; carries
 * `retryAfterS`). Not a cache: every read asks Redis.
 */
export class RedisStore implements BindingStore {
  /** The command connection (the pub/sub replication duplicates it). */
  readonly redis: Redis;
  /** `store.redis` this store was opened with. */
  readonly config: StoreConfig['redis'];
  /**
   * AORs a commit read back (SORT_RO) since the store opened, per cause
   * ({@link ReadBackCause}); logged when a node on Redis stops, for the bench.
   */
  readonly readBacks: Record<ReadBackCause, number> = { uncached: 0, unversioned: 0, committing: 0, moved: 0, scripted: 0 };
  private readonly prefix: string;
  private readonly log: Logger | undefined;
  /** The users generation last read from Redis, and when (performance.now, ms). */
  private generation = 0;
  private generationReadMs = -Infinity;
  private generationReading = false;
  /** Whether the connection was up at the last state change, so each outage is logged once. */
  private up = false;

  /**
   * Create the client; {@link connect} opens it.
   * @param config `store.redis`.
   * @param logger for connection state changes (component `store`).
   */
  constructor(config: StoreConfig['redis'], logger?: Logger) {
    this.config = config;
    this.prefix = config.key_prefix;
    this.log = logger?.child({ component: 'store' });
    const opts = redisOptions(config);
    // ioredis is loaded by the first Redis store only: a server on SQLite never holds its code (~2 MB of heap).
    const { Redis: Client, Command } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    CommandClass ??= Command;
    this.redis = config.sentinels.length > 0 ? new Client(opts) : new Client(redisTarget(config.url), opts);
    this.redis.on('error', (err: Error) => {
      if (this.up) this.log?.warn({ err: err.message, redis: redisName(config) }, 'Redis connection failed; requests that need the store get 503 until it is back');
      this.up = false;
    });
    this.redis.on('ready', () => {
      if (!this.up) this.log?.info({ redis: redisName(config) }, 'Redis connected');
      this.up = true;
    });
    this.redis.on('end', () => {
      this.up = false;
    });
  }

  /**
   * Connect (once; reconnection after that is automatic) and check that Redis answers.
   * @throws StoreError 'unavailable' when it cannot be reached within `connect_timeout`.
   */
  async connect(): Promise<this> {
    try {
      await this.redis.connect();
      this.generation = Number((await this.redis.get(`${this.prefix}users:generation`)) ?? 0);
      this.generationReadMs = performance.now();
    } catch (err) {
      this.redis.disconnect();
      throw new StoreError('unavailable', `cannot reach Redis ${redisName(this.config)} (store.redis): ${(err as Error).message}`, { cause: err, retryAfterS: this.config.retry_after });
    }
    return this;
  }

  /** Run one Redis operation; any failure to get an answer becomes StoreError 'unavailable'. */
  private async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.unavailable(what, err);
    }
  }

  /** `err` as StoreError 'unavailable' naming `what` and this Redis (a StoreError as it is). */
  private unavailable(what: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError('unavailable', `Redis ${redisName(this.config)}: ${what}: ${(err as Error).message}`, { cause: err, retryAfterS: this.config.retry_after });
  }

  private eval(what: string, script: string, ...args: (string | number)[]): Promise<unknown> {
    return this.run(what, () => runScript(this.redis, script, [this.prefix, ...args]));
  }

  private userKey(domain: string, username: string): string {
    return `${this.prefix}user:${domain}:${username}`;
  }

  /**
   * A counter that changes whenever users or phone numbers change, at any
   * node or CLI (for the credential cache, auth/credential-cache.ts).
   * Synchronous: answers the value last read and reads it again in the
   * background when that is older than {@link USERS_GENERATION_READ_MS}, so a
   * change is seen within about twice that; while Redis cannot be reached the
   * value stays (cached credentials keep answering).
   */
  usersGeneration(): number {
    const nowMs = performance.now();
    if (!this.generationReading && nowMs - this.generationReadMs >= USERS_GENERATION_READ_MS) {
      this.generationReading = true;
      this.redis
        .get(`${this.prefix}users:generation`)
        .then(
          (v) => {
            this.generation = Number(v ?? 0);
            this.generationReadMs = performance.now();
          },
          () => {},
        )
        .finally(() => (this.generationReading = false));
    }
    return this.generation;
  }

  /**
   * The server secret every node shares (nonces, flow tokens, temp-GRUUs): the
   * one in Redis, or `candidate` when there is none yet (set once with SET NX,
   * so the first node to start decides).
   * @throws StoreError 'unavailable'.
   */
  async sharedSecret(candidate: Buffer): Promise<Buffer> {
    const key = `${this.prefix}secret`;
    const hex = await this.run('secret', async () => {
      await this.redis.set(key, candidate.toString('hex'), 'NX');
      return this.redis.get(key);
    });
    if (!hex || !/^[0-9a-f]{32,}$/.test(hex)) throw new StoreError('invalid', `Redis key ${key} does not hold a hex secret`);
    return Buffer.from(hex, 'hex');
  }

  /**
   * Add a user (domain stored lowercase, createdAt now) with their phone numbers, all or nothing.
   * @throws StoreError 'exists' (user or number taken), 'invalid', 'unavailable'.
   */
  async addUser(username: string, domain: string, ha1: UserRecord['ha1'], phones: readonly string[] = [], createdAtS = Math.floor(Date.now() / 1000)): Promise<void> {
    const d = domain.toLowerCase();
    const fields = { ...ha1Fields(ha1), created_at: String(createdAtS), userhash: userhash(username, d).toString('hex') };
    scriptResult(await this.eval('add user', ADD_USER, d, username, JSON.stringify(fields), JSON.stringify(checkPhones(phones))));
  }

  /**
   * Replace a user's HA1 set (algorithms not in `ha1` are removed).
   * @throws StoreError 'not_found', 'invalid', 'unavailable'.
   */
  async setUserHa1(username: string, domain: string, ha1: UserRecord['ha1']): Promise<void> {
    scriptResult(await this.eval('set password', SET_HA1, domain.toLowerCase(), username, JSON.stringify(ha1Fields(ha1))));
  }

  /**
   * Replace a user's telephone numbers.
   * @throws StoreError 'not_found', 'exists' (a number of another user), 'invalid', 'unavailable'.
   */
  async setPhones(username: string, domain: string, numbers: readonly string[]): Promise<void> {
    scriptResult(await this.eval('set phones', SET_PHONES, domain.toLowerCase(), username, JSON.stringify(checkPhones(numbers))));
  }

  /** Remove a user, their USERHASH and phone numbers; true if there was one. @throws StoreError 'unavailable'. */
  async deleteUser(username: string, domain: string): Promise<boolean> {
    return (await this.eval('delete user', DELETE_USER, domain.toLowerCase(), username)) === 1;
  }

  /** The user with phone numbers, or undefined. @throws StoreError 'unavailable'. */
  async getUser(username: string, domain: string): Promise<UserRecord | undefined> {
    const d = domain.toLowerCase();
    const [fields, phones] = await this.run('get user', () =>
      Promise.all([this.redis.hgetall(this.userKey(d, username)), this.redis.smembers(`${this.prefix}phones:${d}:${username}`)]),
    );
    if (fields.created_at === undefined) return undefined;
    const ha1: UserRecord['ha1'] = {};
    for (const [alg, field] of Object.entries(HA1_FIELDS) as [Ha1Algorithm, string][]) if (fields[field]) ha1[alg] = fields[field];
    return { username, domain: d, ha1, createdAt: Number(fields.created_at), phones: phones.sort() };
  }

  /** HA1 for `alg` (lowercase hex), or undefined for an unknown user or one without it. One HGET. @throws StoreError 'unavailable'. */
  async lookupHa1(username: string, domain: string, alg: Ha1Algorithm): Promise<string | undefined> {
    const field = HA1_FIELDS[alg];
    if (field === undefined) return undefined;
    return (await this.run('HA1 lookup', () => this.redis.hget(this.userKey(domain.toLowerCase(), username), field))) ?? undefined;
  }

  /** True when username@domain exists. @throws StoreError 'unavailable'. */
  async userExists(username: string, domain: string): Promise<boolean> {
    return (await this.run('user lookup', () => this.redis.exists(this.userKey(domain.toLowerCase(), username)))) === 1;
  }

  /** The username whose USERHASH (RFC 8489 §14.4) in `domain` is `hash`, or undefined. @throws StoreError 'unavailable'. */
  async userByUserhash(hash: Buffer, domain: string): Promise<string | undefined> {
    if (hash.length !== 32) return undefined;
    return (await this.run('USERHASH lookup', () => this.redis.get(`${this.prefix}userhash:${domain.toLowerCase()}:${hash.toString('hex')}`))) ?? undefined;
  }

  /** The owner of telephone number `number` (exact), or undefined. @throws StoreError 'unavailable'. */
  async userOfPhone(number: string): Promise<{ username: string; domain: string } | undefined> {
    const owner = await this.run('phone lookup', () => this.redis.get(`${this.prefix}phone:${number}`));
    if (!owner) return undefined;
    const at = owner.lastIndexOf('@');
    return { username: owner.slice(0, at), domain: owner.slice(at + 1) };
  }

  /** Users of one domain (lowercase compare) by username, or of all domains by domain then username. @throws StoreError 'unavailable'. */
  async listUsers(domain?: string): Promise<UserRecord[]> {
    const domains = domain === undefined ? (await this.run('list domains', () => this.redis.smembers(`${this.prefix}domains`))).sort() : [domain.toLowerCase()];
    const out: UserRecord[] = [];
    for (const d of domains) {
      const names = (await this.run('list users', () => this.redis.smembers(`${this.prefix}users:${d}`))).sort();
      for (const n of names) {
        const u = await this.getUser(n, d);
        if (u) out.push(u);
      }
    }
    return out;
  }

  /** TURN REST API secrets in the store (RFC 8489 long-term credentials by the REST API convention), sorted. @throws StoreError 'unavailable'. */
  async turnSecrets(): Promise<string[]> {
    return (await this.run('TURN secrets', () => this.redis.smembers(`${this.prefix}turn:secrets`))).sort().slice(0, MAX_TURN_SECRETS);
  }

  /**
   * Add a TURN REST API secret every node accepts (within its refresh, 10 s).
   * @throws StoreError 'invalid' for an empty secret or past {@link MAX_TURN_SECRETS}; 'unavailable'.
   */
  async addTurnSecret(secret: string): Promise<void> {
    if (secret.length === 0) throw new StoreError('invalid', 'a TURN secret must not be empty');
    const key = `${this.prefix}turn:secrets`;
    const n = await this.run('add TURN secret', () => this.redis.scard(key));
    if (n >= MAX_TURN_SECRETS) throw new StoreError('invalid', `at most ${MAX_TURN_SECRETS} TURN secrets`);
    await this.run('add TURN secret', () => this.redis.sadd(key, secret));
  }

  /** Remove a TURN REST API secret; true when it was there. @throws StoreError 'unavailable'. */
  async deleteTurnSecret(secret: string): Promise<boolean> {
    return (await this.run('delete TURN secret', () => this.redis.srem(`${this.prefix}turn:secrets`, secret))) === 1;
  }

  /** True when Redis answers PING (for /readyz). */
  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /**
   * Apply binding changes in order, atomically (one Lua script; see
   * {@link BindingStore.commitBindings}).
   * @throws StoreError 'unavailable'.
   */
  async commitBindings(changes: readonly BindingChange[]): Promise<void> {
    await this.eval('write bindings', COMMIT_BINDINGS, '', ...changeArgs(changes));
  }

  /**
   * Apply binding changes as {@link commitBindings} and read the changed
   * AORs' bindings after them, for a cache kept true by client-side caching.
   * Registrations and refreshes (every change a put whose expiry is more
   * than {@link PUT_MARGIN_S} ahead of this node's clock, the arguments
   * within {@link ONE_READ_BYTES}, no `*` in a record key's pattern): plain
   * commands in MULTI/EXEC, see {@link commitPuts}. Anything else
   * (removals, expired puts, a long batch) runs the COMMIT_BINDINGS script,
   * see {@link commitScripted}.
   * @param held what the node's cache held of the AORs (see {@link commitPuts}); the script ignores it.
   * @param unheld why each AOR not in `held` is not, for {@link readBacks} (`uncached` when not named).
   * Resolves AOR → its version and bindings in first-added order (or no
   * bindings: as held, with the changes); an AOR left out may not be kept.
   * @throws StoreError 'unavailable'.
   */
  async commitAndRead(changes: readonly BindingChange[], held?: ReadonlyMap<string, HeldAor>, unheld?: ReadonlyMap<string, ReadBackCause>): Promise<Map<string, CommittedAor>> {
    const args = changeArgs(changes);
    const bytes = args.reduce<number>((n, a) => n + String(a).length, 0);
    const minExpiresS = Math.floor(Date.now() / 1000) + PUT_MARGIN_S;
    const plain = (c: BindingChange): c is PutChange => c.op === 'put' && c.binding.expires > minExpiresS && !this.recordPattern(c.binding.aor).slice(0, -1).includes('*');
    if (bytes <= ONE_READ_BYTES && changes.every(plain)) return this.run('write bindings', () => this.commitPuts(changes as PutChange[], args, held, unheld));
    this.readBacks.scripted += new Set(changes.map((c) => (c.op === 'put' ? c.binding.aor : c.aor))).size;
    return this.commitScripted(changes, args, bytes);
  }

  /**
   * The SORT_RO pattern of an AOR's binding records (`*`: the contact URI);
   * usable only while the AOR and prefix hold no `*` of their own.
   */
  private recordPattern(aor: string): string {
    return `${this.prefix}binding:${aor}\n*`;
  }

  /**
   * The commands that read one AOR's records in index order, nil where Redis
   * expired one: SORT_RO of the index, BY nosort (a sorted set keeps its
   * score order: first added first), GET of each record key by pattern; one
   * command, no script. Only the index key is tracked.
   */
  private readRecords(aor: string): PlainCommand {
    return ['sort_ro', `${this.prefix}aor:${aor}`, 'BY', 'nosort', 'GET', this.recordPattern(aor)];
  }

  /**
   * A commit of puts only, as plain commands in one MULTI/EXEC sent in one
   * write (one round trip, atomic, no Lua: the script cost Redis 60–75 µs
   * per refresh here, the transaction 22–27 µs; bench/RESULTS.md). Per put:
   * SET of the record EXAT its expiry and SET of the contact's key EXAT; per
   * AOR: ZADD NX of its contacts to its index (score: this node's clock, ms),
   * SADD to the AOR set, INCR of its version and EXPIREAT NX then GT to its
   * latest expiry (a new key gets one, an existing one only a later one),
   * then the reads: the records ({@link readRecords}) and a GET of the
   * version, which tracks the key (reads inside a transaction are tracked,
   * unlike a script's in Redis 7.0) at the point of the commit, so no other
   * commit can slip in between. MULTI's own answer queues this connection in
   * Redis's pending writes before EXEC queues the invalidations for the
   * other nodes, so they are written out first (the part the PING plays
   * ahead of the script).
   *
   * An AOR in `held` (the node's cache holds it as its last commit answered
   * it, at that version) is not read back: when INCR answers the held version
   * plus one, this commit was the only change since, and the cache with its changes is what Redis
   * holds (the GET still tracks the key again: the commit's own INCR took it
   * out of Redis's tracking table). When the cache held every contact the
   * commit puts for the AOR, unexpired (`indexed`: a refresh), the ZADD, the
   * SADD and EXPIREAT NX are left out too (their keys have them). An AOR
   * whose version moved otherwise (another node's commit came in between)
   * is read back in a second transaction, after its index entries are added
   * where they were left out (ZADD NX, SADD, a new INCR so that a node which
   * read it meanwhile is told): the records this commit wrote are never
   * written again, so a removal at another node in between is not undone
   * (a ZADD for a record already gone leaves an entry the sweeper removes).
   * @param changeArgv `changes` as changeArgs gave them, so each record is serialized once.
   */
  private async commitPuts(
    changes: readonly PutChange[],
    changeArgv: readonly (string | number)[],
    held?: ReadonlyMap<string, HeldAor>,
    unheld?: ReadonlyMap<string, ReadBackCause>,
  ): Promise<Map<string, CommittedAor>> {
    const steps = new Map<string, AorStep>();
    for (const { binding: b } of changes) {
      const step = steps.get(b.aor);
      if (step) {
        step.untilS = Math.max(step.untilS, b.expires);
        step.index?.push(b.contactUri);
      } else {
        const h = held?.get(b.aor);
        steps.set(b.aor, { untilS: b.expires, index: h?.indexed ? undefined : [b.contactUri], bump: true, read: h === undefined });
        if (h === undefined) this.readBacks[unheld?.get(b.aor) ?? 'uncached'] += 1;
      }
    }
    const out = await this.runPuts(changes, changeArgv, steps);
    const again = new Map<string, AorStep>();
    for (const [aor, step] of steps) {
      const h = held?.get(aor);
      if (h === undefined || out.get(aor)!.version === h.version + 1) continue;
      const left = step.index === undefined ? changes.filter((c) => c.binding.aor === aor).map((c) => c.binding.contactUri) : undefined;
      again.set(aor, { untilS: step.untilS, index: left, bump: left !== undefined, read: true });
    }
    this.readBacks.moved += again.size;
    if (again.size > 0) for (const [aor, got] of await this.runPuts([], [], again)) out.set(aor, got);
    return out;
  }

  /**
   * One MULTI/EXEC of {@link commitPuts}: the records and contact keys of
   * `puts`, then per AOR what its step names, and a GET of its version last.
   * Resolves AOR → the version after the transaction, and the records when read.
   * @throws StoreError 'unavailable' for an error inside the transaction.
   */
  private async runPuts(puts: readonly PutChange[], changeArgv: readonly (string | number)[], steps: ReadonlyMap<string, AorStep>): Promise<Map<string, CommittedAor>> {
    const p = this.prefix;
    const nowMs = Date.now();
    const cmds: PlainCommand[] = [['multi']];
    for (let k = 0; k < puts.length; k++) {
      const b = puts[k]!.binding;
      // The record as changeArgs serialized it (five arguments per change, the record last).
      cmds.push(['set', `${p}binding:${b.aor}\n${b.contactUri}`, changeArgv[5 * k + 4]!, 'EXAT', b.expires], ['set', `${p}contact:${b.contactUri}`, b.aor, 'EXAT', b.expires]);
    }
    // Where each AOR's answers are among EXEC's (one less than among the commands: MULTI's is not there).
    const at: [string, number | undefined, number][] = [];
    for (const [aor, step] of steps) {
      const ver = this.versionKey(aor);
      if (step.index) cmds.push(['zadd', `${p}aor:${aor}`, 'NX', ...step.index.flatMap((c) => [nowMs, c])], ['sadd', `${p}aors`, aor]);
      if (step.bump) cmds.push(['incr', ver]);
      if (step.index) cmds.push(['expireat', ver, step.untilS, 'NX']);
      if (step.bump) cmds.push(['expireat', ver, step.untilS, 'GT']);
      const read = step.read ? cmds.push(this.readRecords(aor)) - 2 : undefined;
      at.push([aor, read, cmds.push(['get', ver]) - 2]);
    }
    cmds.push(['exec']);
    const answers = await sendBatched(this.redis, cmds);
    const results = answers[answers.length - 1] as unknown[];
    for (const r of results) if (r instanceof Error) throw this.unavailable('write bindings', r);
    const out = new Map<string, CommittedAor>();
    for (const [aor, read, version] of at) {
      out.set(aor, { version: Number(results[version] ?? 0), bindings: read === undefined ? undefined : parseRecords(results[read] as (string | null)[]) });
    }
    return out;
  }

  /**
   * A commit through the COMMIT_BINDINGS script, and the changed AORs' bindings after it.
   * The script's own reads are not tracked (Redis 7.0), so an MGET right
   * behind it reads the AORs' version keys again, which tracks them; an AOR
   * whose version there differs from the script's (another commit came in
   * between) is left out. The three commands PING, the script and the MGET go
   * in one write and come back in one read (one round trip): the PING is
   * there so that when this resolves every invalidation of the commit is
   * already in the other nodes' sockets. Redis writes the answers of one pass
   * of its event loop to the clients in the reverse order it first queued an
   * answer to each (networking.c, the pending-writes list takes each new
   * client at its head); the PING's answer queues this connection before the
   * script queues the invalidations, so they are written out before this
   * connection's answers (without it this connection came first, and a
   * request sent on the 200 at once reached another node before its
   * invalidation now and then on this loaded host). Redis must read the
   * three in one go for that: a commit whose arguments pass
   * {@link ONE_READ_BYTES} (many changes in one batch) sends the MGET only
   * after the script's answer instead (Redis runs it in a later pass, by
   * when the invalidations are out), a second round trip.
   */
  private async commitScripted(changes: readonly BindingChange[], changeArgv: readonly (string | number)[], bytes: number): Promise<Map<string, CommittedAor>> {
    const aors = [...new Set(changes.map((c) => (c.op === 'put' ? c.binding.aor : c.aor)))];
    const args = [this.prefix, '1', ...changeArgv];
    const mget: PlainCommand = ['mget', ...aors.map((a) => this.versionKey(a))];
    const [, answer, [tracked]] = await this.run('write bindings', async () => {
      if (bytes <= ONE_READ_BYTES) return pipelineScript(this.redis, [['ping']], COMMIT_BINDINGS, args, [mget]);
      // Too long for Redis to read in one go: the MGET after the script's answer, in a later pass.
      const written = await runScript(this.redis, COMMIT_BINDINGS, args);
      return [[], written, [await this.redis.call(...mget)]] as const;
    });
    const [, written, versions, lists] = answer as [number, string[], (string | null)[], string[][]];
    const trackedVersions = tracked as (string | null)[];
    const out = new Map<string, CommittedAor>();
    written.forEach((aor, i) => {
      const version = versions[i] ?? null;
      if (version === (trackedVersions[aors.indexOf(aor)] ?? null)) out.set(aor, { version: Number(version ?? 0), bindings: lists[i].map((j) => JSON.parse(j) as BindingRecord) });
    });
    return out;
  }

  /**
   * Bindings of one AOR for a cache kept true by client-side caching: a GET
   * of the AOR's version key (tracked) and its records
   * ({@link readRecords}) in one MULTI/EXEC (one write, atomic: always
   * cacheable). An AOR or prefix with a `*` of its own (no SORT pattern
   * fits) takes the READ_AOR script instead, behind a plain GET of the
   * version, cacheable when the script saw the same version.
   * @throws StoreError 'unavailable'.
   */
  async readTracked(aor: string): Promise<TrackedBindings> {
    const ver = this.versionKey(aor);
    if (!this.recordPattern(aor).slice(0, -1).includes('*')) {
      const answers = await this.run('read bindings', () => sendBatched(this.redis, [['multi'], ['get', ver], this.readRecords(aor), ['exec']]));
      const results = answers[3] as unknown[];
      for (const r of results) if (r instanceof Error) throw this.unavailable('read bindings', r);
      return { bindings: parseRecords(results[1] as (string | null)[]), cacheable: true };
    }
    const [[version], answer] = await this.run('read bindings', () => pipelineScript(this.redis, [['get', ver]], READ_AOR, [this.prefix, aor], []));
    const [seen, list] = answer as [string | null, string[]];
    return { bindings: list.map((j) => JSON.parse(j) as BindingRecord), cacheable: (seen ?? null) === (version ?? null) };
  }

  /**
   * The AOR whose unexpired binding has contact URI `contactUri`, or
   * undefined; a plain GET, so with client-side caching Redis tells when
   * that changes. @throws StoreError 'unavailable'.
   */
  async aorOfContact(contactUri: string): Promise<string | undefined> {
    return (await this.run('contact lookup', () => this.redis.get(`${this.prefix}contact:${contactUri}`))) ?? undefined;
  }

  private versionKey(aor: string): string {
    return `${this.prefix}aor-version:${aor}`;
  }

  /** Bindings of one AOR in first-added order (those Redis expired are gone). @throws StoreError 'unavailable'. */
  async listBindings(aor: string): Promise<BindingRecord[]> {
    return (await this.bindingsOf([aor]))[0] ?? [];
  }

  private async bindingsOf(aors: readonly string[]): Promise<BindingRecord[][]> {
    const got = (await this.eval('read bindings', LIST_BINDINGS, ...aors)) as string[][];
    return got.map((list) => list.map((j) => JSON.parse(j) as BindingRecord));
  }

  /** Walk the AOR set in batches (SSCAN), calling `fn` with each batch. */
  private async eachAorBatch(fn: (aors: string[]) => Promise<void>): Promise<void> {
    let cursor = '0';
    do {
      const [next, aors] = await this.run('scan AORs', () => this.redis.sscan(`${this.prefix}aors`, cursor, 'COUNT', AOR_BATCH));
      cursor = next;
      if (aors.length > 0) await fn(aors);
    } while (cursor !== '0');
  }

  /** Every binding (loading the location service at start-up and after an outage). @throws StoreError 'unavailable'. */
  async allBindings(): Promise<BindingRecord[]> {
    const out: BindingRecord[] = [];
    await this.eachAorBatch(async (aors) => {
      for (const list of await this.bindingsOf(aors)) out.push(...list);
    });
    return out;
  }

  /**
   * Redis removes expired records itself (EXAT); this removes the index
   * entries they leave behind. `nowS` is not needed (Redis's clock decides).
   * Returns how many entries were removed. @throws StoreError 'unavailable'.
   */
  async deleteExpiredBindings(_nowS: number): Promise<number> {
    let removed = 0;
    await this.eachAorBatch(async (aors) => {
      removed += Number(await this.eval('sweep bindings', SWEEP_AORS, ...aors));
    });
    return removed;
  }

  /** The whole store as data, for `rtcedge backup`. @throws StoreError 'unavailable'. */
  async snapshot(): Promise<RedisSnapshot> {
    const [users, bindings, secret, turnSecrets] = await Promise.all([
      this.listUsers(),
      this.allBindings(),
      this.run('secret', () => this.redis.get(`${this.prefix}secret`)),
      this.turnSecrets(),
    ]);
    return { format: 'rtcedge-redis-store', version: 1, users, bindings, secret, turnSecrets };
  }

  /** True when the store holds no user and no binding (restore writes only into an empty store). @throws StoreError 'unavailable'. */
  async isEmpty(): Promise<boolean> {
    const [domains, aors] = await this.run('count', () => Promise.all([this.redis.scard(`${this.prefix}domains`), this.redis.scard(`${this.prefix}aors`)]));
    return domains === 0 && aors === 0;
  }

  /**
   * Write a snapshot into the store: users, numbers, unexpired bindings, and the secret (replacing any).
   * @throws StoreError 'exists' when a user is already there, 'invalid', 'unavailable'.
   */
  async load(snapshot: RedisSnapshot): Promise<void> {
    for (const u of snapshot.users) await this.addUser(u.username, u.domain, u.ha1, u.phones, u.createdAt);
    await this.commitBindings(snapshot.bindings.map((binding) => ({ op: 'put', binding })));
    if (snapshot.secret) await this.run('secret', () => this.redis.set(`${this.prefix}secret`, snapshot.secret!));
    for (const s of snapshot.turnSecrets ?? []) await this.addTurnSecret(s);
  }

  /** Close the connection (pending commands fail). Closing twice is harmless. */
  async close(): Promise<void> {
    this.up = false;
    await quitConnection(this.redis);
  }
}
