import type dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { firstExternalAddress, hostAddresses } from './transport/host-addresses.js';
import type { Logger } from './log.js';
import type { Config } from './config/load.js';
import { ensureTlsCertificate } from './config/tls-cert.js';
import { loadOrCreateSecret } from './config/secret.js';
import { tempGruuKey } from './registrar/gruu.js';
import { prepareDataDir } from './config/data-dir.js';
import { planReload } from './config/reload-plan.js';
import { openStore, RedisAbuseChannel, RedisBindingTracking, RedisCallCounter, RedisStore, SharedCallOwners, redisUserSource, StoreError, startWalCheckpointer, WAL_FALLBACK_PAGES } from './store/index.js';
import { getHeader, type SipMessage } from './sip/message.js';
import type { ServerTransaction } from './transaction/server-transaction.js';
import type { CallRefusal } from './security/call-limits.js';
import type { SqliteStore } from './store/sqlite-store.js';
import { SipError } from './sip/errors.js';
import { TransportLayer } from './transport/transport-layer.js';
import { TransactionLayer } from './transaction/transaction-layer.js';
import { LocalDomains } from './registrar/local-domains.js';
import { LocationService } from './registrar/location-service.js';
import { createRegistrar } from './registrar/registrar.js';
import { ProxyCore } from './proxy/proxy-core.js';
import { NonceCountTracker } from './auth/nonce.js';
import type { DigestPolicy } from './auth/sip-digest.js';
import { createAuthenticator, type Authenticate } from './auth/request-authenticator.js';
import { TurnServer } from './turn/index.js';
import { createSecurity, type SharedAbuse } from './security/security.js';
import type { Ban } from './security/ban-list.js';
import { certificateIdentities } from './auth/client-certificate.js';
import { BanFileWriter } from './admin/ban-file.js';
import { parseUri } from './sip/uri.js';
import { storeUserSource, type UserSource, UserSourceUnavailableError } from './auth/user-source.js';
import { openDirectory } from './directory/index.js';
import { cachedUserSource } from './auth/credential-cache.js';
import { rootCertificates } from 'node:tls';
import { dnsFromConfig } from './dns/from-config.js';
import type { Federation } from './proxy/federation.js';
import { nodePathFor } from './proxy/flow-token.js';
import type { TlsMaterial } from './transport/transport-layer.js';
import type { ServerMetrics } from './admin/metrics.js';
import type { Registry } from 'prom-client';
import { createServerMetrics, startAdmin } from './admin/admin-layer.js';
import { startEventLoopLoad, stopEventLoopLoad } from './transport/event-loop-load.js';
import { collectWhenIdle } from './transport/idle-collector.js';
import { tuneHeap } from './transport/heap-tuning.js';
import { Admission } from './transaction/admission.js';
import { streamCounters, takeMaxQueuedBytes } from './transport/backpressure.js';
import { startSummaryLog } from './log.js';
import { droppedLogLines } from './log.js';
import type { WorkerMesh } from './transport/worker-mesh.js';
import { meshBindingReplication, type MeshBindingReplication } from './registrar/mesh-replication.js';

/** A running rtcedge instance. */
export interface RunningServer {
  /** Stop every listener and timer, close the store. Resolves when done. */
  stop(): Promise<void>;
  /**
   * Read the certificate and key files again (`sip.tls.*`, `federation.ca`) and
   * use them for new TLS handshakes (SIP TLS/WSS, TURN over TLS and DTLS);
   * established connections and DTLS sessions keep theirs.
   * @throws Error from the file system (the old material stays in use).
   */
  reloadTlsMaterial(): Promise<void>;
  /**
   * Re-read what can change without dropping calls or connections (see
   * config/reload-plan.ts): the configuration file (when `reloadConfig` was
   * given) for `log.level` and `sip.tls`, then the TLS material as
   * reloadTlsMaterial does (new handshakes get it; open connections keep theirs).
   * Other changed keys are logged as taking effect at the next start.
   * Resolves with what was reloaded (e.g. `["sip.tls"]`, `["log.level", "sip.tls"]`).
   * @throws ConfigError when the file is not valid; Error when a certificate file
   *   cannot be read. Nothing changes then.
   */
  reload(): Promise<string[]>;
  /** The admin listener's address, when `admin.enabled`. */
  readonly admin?: { address: string; port: number };
  /** SIP listeners as bound, as the start log writes them (`udp:127.0.0.1:5060`). */
  readonly sip: string[];
  /** This process's metrics registry (a SIP worker answers the primary's scrape with it, admin/cluster-metrics.ts). */
  readonly metricsRegistry?: Registry;
  /** A worker's binding replication: the primary feeds it the AORs its admin API changed. */
  readonly replication?: MeshBindingReplication;
}

/** Options of startServer. */
export interface ServerOptions {
  /** Reads the configuration file again, for reload(); undefined: reload keeps the start-up configuration. */
  reloadConfig?: () => Config;
  /**
   * Run as SIP worker `mesh.self` of `mesh.count` (src/cluster/): messages
   * are dispatched by Call-ID over the mesh, bindings replicated over it;
   * TURN and the admin listener are the primary's, not the worker's, and the
   * worker logs `sip worker ready` instead of `rtcedge ready`.
   */
  worker?: {
    mesh: WorkerMesh;
    /** This worker's steered UDP sockets, bound, by udpListenKey (cluster/udp-steering.ts); other UDP listeners are bound as usual. */
    udpSockets?: ReadonlyMap<string, dgram.Socket>;
  };
}

/**
 * Start rtcedge: the SIP transport, transaction layer, registrar and proxy on
 * the configured listeners, and the TURN server when `turn.enabled`.
 *
 * Start-up creates `data_dir`, the server secret (`data_dir/secret`), the
 * SQLite store (`data_dir/rtcedge.db`) and, when a TLS listener has no
 * `sip.tls.cert`/`key`, a self-signed certificate under `data_dir/tls/`.
 * Logs `rtcedge ready` at info level with the bound addresses.
 *
 * @throws Error naming the listener when a port cannot be bound.
 */
export async function startServer(config: Config, logger: Logger, options: ServerOptions = {}): Promise<RunningServer> {
  const log = logger.child({ component: 'server' });
  // data_dir (0700) and its files: the layout is config/data-dir.ts.
  prepareDataDir(config.data_dir);
  const { store, secret, tracking } = await openStoreOf(config, logger);
  // WAL checkpoints of the SQLite store in one worker thread per instance: here, or in the cluster primary
  // for its SIP workers (a Redis store has none).
  const sqlite = config.store.type === 'redis' ? undefined : (store as SqliteStore);
  const checkpoints = sqlite && !options.worker ? startWalCheckpointer(sqlite, logger) : undefined;
  if (sqlite && options.worker) sqlite.setAutoCheckpointPages(WAL_FALLBACK_PAGES);

  const tls = await loadTlsMaterial(config, logger);
  let turn: TurnServer | undefined;
  // Metrics read the layers below when scraped; the transport, transactions and authentication feed their counters.
  const metrics = createServerMetrics(config, () => ({
    location,
    transactions,
    transport,
    bans: security.bans,
    scannerDrops: () => security.gate.scannerDrops,
    streamsClosed: () => streamCounters.closed,
    turn,
  }));
  // The security layer drops a banned source's flow through the transport created right after it.
  // With the Redis store bans and failures per source go through Redis to every worker and node (wired below).
  let sharedAbuse: SharedAbuse | undefined;
  const { security, banFile } = createSecurityLayer(
    config,
    logger,
    (flowId) => transport.destroyFlow(flowId),
    options.worker?.mesh,
    config.store.type === 'redis'
      ? {
          ban: (ban) => (sharedAbuse ? sharedAbuse.ban(ban) : security.bans.broadcast(ban)),
          sourceFailure: (address, username) => (sharedAbuse ? sharedAbuse.sourceFailure(address, username) : security.failures.countSource(address, username)),
        }
      : undefined,
  );
  // The idle collection runs as soon as the load's completed transactions are gone (set once they exist, below).
  let heldTransactions = (): number => 0;
  const overload = startOverloadControl(config, () => heldTransactions() === 0);
  const worker = options.worker;
  const transport = createTransport(config, tls, overload.admission, metrics, logger, worker?.mesh, worker?.udpSockets);
  // With the Redis store, the end of a call (BYE) also reaches the limits counted across nodes (set below).
  let observeCall: ((msg: SipMessage) => void) | undefined;
  const transactions = createTransactions(config, transport, security, metrics, logger, (msg) => observeCall?.(msg));
  transactions.admission = overload.admission;
  heldTransactions = () => transactions.size().completed;
  const stopSummary = startSipSummary(config, transport, transactions, overload, logger, worker?.mesh);
  const domains = new LocalDomains(config.domains, (host, port) => transport.isLocal(host, port));
  // Workers of one node keep their location services equal through the mesh; on a Redis store each node reads
  // bindings through Redis into a bounded cache that Redis keeps true (client-side caching).
  const mesh = tracking ? undefined : worker && meshBindingReplication(worker.mesh, store, logger);
  const readThrough = tracking && { source: tracking, maxAors: config.store.redis.cache_aors };
  const location = new LocationService(mesh?.store ?? store, logger, undefined, mesh, readThrough || undefined);
  tracking?.onInvalidate((what) => location.invalidate(what));
  tracking?.onFlush(() => location.clearCache());
  await location.start();
  const abuse = await shareAbuse(config, store, security, logger, worker?.mesh.self);
  sharedAbuse = abuse;
  const calls = callAdmission(config, store, security, logger);
  observeCall = calls.observe;
  const { users, authenticate } = createAuthentication(config, secret, store, domains, security, metrics, logger, worker?.mesh.self);
  const federation = createFederation(config, store, logger);
  // TURN runs in the primary when there are SIP workers: a worker reads no TURN secrets.
  const turnSecrets = worker ? { secrets: [], stop() {} } : await sharedTurnSecrets(config, store, logger);
  transactions.tu = createSipCore(config, { transport, transactions, domains, location, users, authenticate, security, secret, federation, admitCall: calls.admit }, logger);

  const { reload, reloadTlsMaterial } = createReloader(
    config,
    logger,
    options.reloadConfig,
    (fresh) => {
      transport.setTlsMaterial(fresh);
      turn?.setTlsMaterial(fresh);
    },
    { quiet: options.worker !== undefined },
  );
  let admin: Awaited<ReturnType<typeof startAdmin>> | undefined;
  /**
   * Stop every layer made above, the admin listener first and the store last
   * (pending ban-list writes flushed, transactions terminated); used by
   * `stop()` and when a listener fails to start.
   */
  const stopLayers = async (): Promise<void> => {
    await admin?.server.stop();
    metrics.close();
    await turn?.stop();
    turnSecrets.stop();
    stopSummary();
    overload.stop();
    transactions.close();
    await transport.stop();
    banFile.flush();
    await location.stop();
    // Why commits read AORs back (SORT_RO), for bench/multi-node.mjs --read-back-causes.
    if (tracking) logger.info({ component: 'location', readBacks: (store as RedisStore).readBacks, droppedAtAnswer: location.droppedAtAnswer }, 'AOR read-backs by cause');
    await users.close();
    await abuse?.close();
    await tracking?.close();
    await checkpoints?.stop();
    await store.close();
  };
  try {
    await transport.start();
    if (!worker) {
      turn = await startTurn(config, tls, secret, users, turnSecrets.secrets, logger);
      admin = await startAdmin(config, { metrics, store, users, location, transport, turn, reload }, logger);
    }
  } catch (err) {
    await stopLayers();
    throw err;
  }

  const sip = transport.listeners().map((l) => listenerText(l.transport, l.address, l.port));
  if (worker) log.info({ sip }, 'sip worker ready');
  else logReady(log, config, sip, turn, admin?.address);

  return {
    admin: admin?.address,
    sip,
    replication: mesh,
    metricsRegistry: metrics.registry,
    async reloadTlsMaterial() {
      await reloadTlsMaterial();
    },
    reload,
    async stop() {
      await stopLayers();
      log.info('rtcedge stopped');
    },
  };
}

/**
 * The `rtcedge ready` line: domains, data_dir, SIP, TURN and admin listeners,
 * the TURN data plane and why; `extra` adds fields (the number of workers).
 */
export function logReady(
  log: Logger,
  config: Config,
  sip: string[],
  turn: TurnServer | undefined,
  admin: { address: string; port: number } | undefined,
  extra: Record<string, unknown> = {},
): void {
  log.info(
    {
      domains: config.domains,
      data_dir: config.data_dir,
      sip,
      turn: turn?.addresses().map((a) => listenerText(a.transport, a.address, a.port)) ?? [],
      admin: admin && `http://${admin.address.includes(':') ? `[${admin.address}]` : admin.address}:${admin.port}`,
      ...(turn && { turnDataPlane: turn.dataPlane, turnDataPlaneReason: dataPlaneReason(config, turn.dataPlane) }),
      ...extra,
    },
    'rtcedge ready',
  );
}

/**
 * The reload of a running server (see RunningServer.reload): re-reads the
 * configuration with `reloadConfig` (none: the start-up one stays), applies
 * `log.level` to `logger` and hands new TLS material to `applyTls`; keys that
 * need a restart are logged. `reloadTlsMaterial` reloads only the certificates.
 */
export function createReloader(
  config: Config,
  logger: Logger,
  reloadConfig: (() => Config) | undefined,
  applyTls: (fresh: TlsMaterial) => void,
  opts: {
    /** Log the outcome at debug only (a worker: the primary logs it once for the instance). */
    quiet?: boolean;
    /** Reload more with the configuration now in force (the primary: its workers); adds to the list and the log line. */
    also?: (applied: Config) => Promise<{ reloaded: string[]; fields: Record<string, unknown> }>;
  } = {},
) {
  const quiet = opts.quiet ?? false;
  const log = logger.child({ component: 'server' });
  const info = quiet ? log.debug.bind(log) : log.info.bind(log);
  const warn = quiet ? log.debug.bind(log) : log.warn.bind(log);
  // The configuration in force; a reload replaces its reloadable keys.
  let running = config;
  const reloadTlsMaterial = async (from: Config = running): Promise<boolean> => {
    const fresh = await loadTlsMaterial(from, logger);
    if (fresh) applyTls(fresh);
    info('TLS material reloaded');
    return fresh !== undefined;
  };
  const reload = async (): Promise<string[]> => {
    const next = reloadConfig?.() ?? running;
    const plan = planReload(running, next);
    const applied = { ...running, log: next.log, sip: { ...running.sip, tls: next.sip.tls } };
    const reloaded = (await reloadTlsMaterial(applied)) ? ['sip.tls'] : [];
    if (plan.changed.includes('log.level')) {
      logger.level = next.log.level;
      reloaded.unshift('log.level');
    }
    running = applied;
    if (plan.needRestart.length > 0) warn({ keys: plan.needRestart }, 'changed configuration keys take effect at the next start');
    const more = await opts.also?.(applied);
    const all = more ? [...new Set([...reloaded, ...more.reloaded])] : reloaded;
    info({ reloaded: all, ...more?.fields }, 'reloaded');
    return all;
  };
  return { reload, reloadTlsMaterial };
}

/**
 * The store of `store.type`: the SQLite file under data_dir with this node's
 * secret (`data_dir/secret`), or the shared Redis store with the secret every
 * node shares (the first node's, kept in Redis) and the client-side caching
 * that tells this node which bindings it read other nodes changed.
 * @throws StoreError 'unavailable' when Redis cannot be reached at start-up; as openStore for SQLite.
 */
export async function openStoreOf(config: Config, logger: Logger): Promise<{ store: SqliteStore | RedisStore; secret: Buffer; tracking?: RedisBindingTracking }> {
  const local = loadOrCreateSecret(config.data_dir);
  if (config.store.type !== 'redis') return { store: openStore(config), secret: local };
  const store = await new RedisStore(config.store.redis, logger).connect();
  try {
    const secret = await store.sharedSecret(local);
    const tracking = new RedisBindingTracking(store, logger);
    await tracking.start();
    return { store, secret, tracking };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** How often a node reads the TURN REST API secrets of the Redis store again, ms. */
const TURN_SECRETS_REFRESH_MS = 10_000;

/**
 * The TURN REST API secrets TURN accepts: `turn.auth_secrets`, and with the
 * Redis store the shared ones (`rtcedge turn secret add`), read at start and
 * again every 10 s into the same array (TURN reads it on each authentication).
 * A failed read keeps the previous list.
 */
export async function sharedTurnSecrets(config: Config, store: SqliteStore | RedisStore, logger: Logger): Promise<{ secrets: string[]; stop(): void }> {
  const secrets = [...config.turn.auth_secrets];
  if (!(store instanceof RedisStore) || !config.turn.enabled) return { secrets, stop() {} };
  const refresh = async (): Promise<void> => {
    try {
      const shared = await store.turnSecrets();
      secrets.splice(0, secrets.length, ...config.turn.auth_secrets, ...shared.filter((s) => !config.turn.auth_secrets.includes(s)));
    } catch (err) {
      logger.warn({ component: 'turn', err: (err as Error).message }, 'reading the shared TURN secrets failed; the previous ones stay in use');
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), TURN_SECRETS_REFRESH_MS);
  timer.unref();
  return { secrets, stop: () => clearInterval(timer) };
}

/** `fn` with a store that cannot be reached answered as SIP 503 with Retry-After (RFC 3261 §21.5.4). */
async function storeOr503<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError && err.code === 'unavailable') {
      throw new SipError(503, 'Service Unavailable: store unavailable', [{ name: 'Retry-After', value: String(err.retryAfterS ?? 5) }]);
    }
    throw err;
  }
}

/**
 * TLS material when a SIP TLS/WSS listener or TURN over TLS is configured:
 * `sip.tls.cert`/`key`, or a self-signed certificate under `data_dir/tls/`;
 * the per-domain certificates (`sip.tls.certificates`); the CAs of client
 * (device) certificates (`sip.tls.ca`); and the CAs trusted for other
 * domains (`federation.ca`, plus the system CAs unless `federation.system_ca`
 * is false). Undefined without TLS. Called again by reloadTlsMaterial.
 */
export async function loadTlsMaterial(config: Config, logger: Logger): Promise<TlsMaterial | undefined> {
  const turnTls = config.turn.enabled && config.turn.listen.some((l) => l.transport === 'tls' || l.transport === 'dtls');
  if (!config.sip.listen.some((l) => l.transport === 'tls' || l.transport === 'wss') && !turnTls) return undefined;
  let tls: TlsMaterial;
  if (config.sip.tls.cert && config.sip.tls.key) {
    tls = { cert: readFileSync(config.sip.tls.cert), key: readFileSync(config.sip.tls.key) };
  } else {
    const paths = await ensureTlsCertificate(config.data_dir, [...config.domains, 'localhost'], logger);
    tls = { cert: readFileSync(paths.certPath), key: readFileSync(paths.keyPath) };
  }
  // CAs that issue client (device) certificates; see auth/client-certificate.ts.
  tls.ca = (config.sip.tls.ca ?? []).map((f) => readFileSync(f));
  tls.certificates = config.sip.tls.certificates.map((c) => ({ domain: c.domain, cert: readFileSync(c.cert), key: readFileSync(c.key) }));
  const fed = config.federation;
  tls.peerCa = [...(fed.system_ca ? rootCertificates : []), ...fed.ca.map((f) => readFileSync(f))];
  tls.wildcards = fed.wildcard_certificates;
  return tls;
}

/**
 * DNS (RFC 3263 server location, ENUM) and the federation policy
 * (`dns.*`, `federation.*`, `enum.*`) the proxy uses for other domains.
 * A number a local user owns (`rtcedge user add --phone`, stored with or
 * without its `+`) resolves to that user without DNS.
 */
function createFederation(config: Config, store: SqliteStore | RedisStore, logger: Logger): Federation {
  const dns = dnsFromConfig(config.dns, logger);
  return {
    dns: dns.resolver,
    failedTargets: dns.failedTargets,
    enumSuffixes: dns.enumSuffixes,
    requireTls: config.federation.require_tls,
    allowDomains: config.federation.allow_domains,
    denyDomains: config.federation.deny_domains,
    wildcards: config.federation.wildcard_certificates,
    pstnRoute: config.enum.pstn_route,
    phoneOwner: (number) =>
      storeOr503(async () => {
        const owner = (await store.userOfPhone(number)) ?? (number.startsWith('+') ? await store.userOfPhone(number.slice(1)) : undefined);
        return owner && { user: owner.username, domain: owner.domain };
      }),
    logger,
  };
}

/**
 * Abuse resistance (sip.security): per-source gate, failed-auth bans, call limits; bans in data_dir/bans.json.
 * A SIP worker shares them with the others over `mesh` (security/worker-peers.ts); worker 0 writes the ban file.
 * `shared` (the Redis store, see shareAbuse): bans and failures per source go through it instead of the mesh.
 */
function createSecurityLayer(config: Config, logger: Logger, destroyFlow: (flowId: string) => void, mesh: WorkerMesh | undefined, shared: SharedAbuse | undefined) {
  const banFile = new BanFileWriter(config.data_dir, logger.child({ component: 'abuse' }));
  const security = createSecurity(
    config.sip.security,
    logger,
    {
      onBansChanged: (bans) => banFile.update(bans),
      onDroppedBanned: (source) => {
        if (source.flowId) destroyFlow(source.flowId);
      },
    },
    // On Redis the shared call count (store/redis-calls.ts) holds across every worker and node: no mesh question per call.
    mesh && { peers: mesh, banFileWorker: 0, callsCountedInStore: config.store.type === 'redis' },
    shared,
  );
  return { security, banFile };
}

type Security = ReturnType<typeof createSecurity>;

/**
 * Call admission (`sip.security.calls`): the node's own limits
 * (security/call-limits.ts), then, with the Redis store, the same limits
 * counted across every node (store/redis-calls.ts), whose count follows the
 * call's end as seen here: a non-2xx final response on its INVITE transaction
 * or a BYE with its Call-ID. Refusals: 486 over the concurrent limit, 503
 * with Retry-After over the attempts per minute.
 */
function callAdmission(config: Config, store: SqliteStore | RedisStore, security: Security, logger: Logger) {
  const local = (username: string, st: ServerTransaction): CallRefusal | undefined | Promise<CallRefusal | undefined> => security.calls.admitTransaction(username, st);
  // Both limits 0: no admission at all (no count kept here, on another worker or in Redis).
  if (!(store instanceof RedisStore) || security.calls.off) return { admit: local, observe: (_msg: SipMessage) => {} };
  const limits = config.sip.security.calls;
  const counter = new RedisCallCounter(store, { maxConcurrent: limits.max_concurrent_per_user, maxPerMinute: limits.max_attempts_per_minute, maxCallSeconds: limits.max_call_seconds }, logger);
  const owners = new SharedCallOwners();
  const end = (callId: string): void => {
    const user = owners.take(callId);
    if (user !== undefined) counter.ended(user, callId);
  };
  return {
    async admit(username: string, st: ServerTransaction): Promise<CallRefusal | undefined> {
      const refused = await local(username, st);
      if (refused) return refused;
      const callId = getHeader(st.request, 'call-id') ?? '';
      const shared = await counter.admit(username, callId);
      if (!shared.ok) {
        security.calls.ended(callId);
        if (shared.why === 'busy') return { status: 486, reason: 'Busy Here: concurrent call limit', headers: [] };
        return { status: 503, reason: 'Service Unavailable: call rate limit', headers: [{ name: 'Retry-After', value: String(shared.retryAfterS) }] };
      }
      owners.add(callId, username);
      const respond = st.respond.bind(st);
      st.respond = (res) => {
        if (res.status >= 300) end(callId);
        respond(res);
      };
      return undefined;
    },
    observe(msg: SipMessage): void {
      if (owners.size === 0 || msg.kind !== 'request' || msg.method !== 'BYE') return;
      const callId = getHeader(msg, 'call-id');
      if (callId !== undefined) end(callId);
    },
  };
}

/**
 * With the Redis store: bans and failed authentications per source address
 * shared by every SIP worker of every node, through Redis only
 * (security/security.ts `SharedAbuse`). A ban decided by a worker is stored
 * and published once (RedisAbuseChannel.publishBan); every worker, this one
 * too, subscribes on its own connection and applies every ban published
 * (`BanList.applyShared`: its own echo changes nothing), and reads the active
 * ones when it starts, so the ban list each message is checked against stays
 * a Map in memory. `sip.security.auth_failures.per_source` failures within
 * `window_seconds`, counted in Redis wherever they land (exempt sources are
 * not counted), ban the source for `ban_seconds` everywhere. Redis
 * unreachable: a ban goes over the worker mesh instead and a failure is
 * counted as without Redis (its owner worker), for this node only. Per-user
 * locks, request rates and call limits are counted as before (call counts in
 * Redis: callAdmission). Undefined with SQLite.
 * @param self this SIP worker's index (undefined for a single process): worker 0 (or the single process) logs
 *   another node's bans at warn, the other workers at debug.
 * @throws StoreError 'unavailable' when Redis cannot be reached at start-up.
 */
async function shareAbuse(config: Config, store: SqliteStore | RedisStore, security: Security, logger: Logger, self: number | undefined) {
  if (!(store instanceof RedisStore)) return undefined;
  const channel = new RedisAbuseChannel(store, logger);
  // The node's processes share one tag: a SIP worker's parent is the node's primary.
  const node = `${hostname()}/${self === undefined ? process.pid : process.ppid}`;
  const logsOtherNodes = self === undefined || self === 0;
  await channel.start((ban) => {
    const here = ban.node === node;
    security.bans.applyShared(ban, !here && logsOtherNodes ? 'warn' : 'debug', here ? {} : { sharedBy: 'another node' });
  });
  const af = config.sip.security.auth_failures;
  const shared: SharedAbuse & { close(): Promise<void> } = {
    ban(ban: Ban): void {
      void channel.publishBan({ address: ban.address, reason: ban.reason, until: ban.until, node }).then((ok) => {
        if (!ok) security.bans.broadcast(ban);
      });
    },
    sourceFailure(address: string, username: string | undefined): void {
      void channel.countFailure(address, af.window_seconds).then((n) => {
        if (n === undefined) return security.failures.countSource(address, username);
        if (n < af.per_source) return;
        channel.resetFailures(address);
        security.bans.ban(address, af.ban_seconds, 'auth-failures', { failures: n, windowSeconds: af.window_seconds, user: username, counted: 'on every node' });
      });
    },
    close: () => channel.close(),
  };
  return shared;
}

/**
 * Overload control (`sip.overload`): the process's event-loop monitor,
 * admission control for new SIP transactions (503 + Retry-After past
 * capacity), one full collection when a load ends (sooner once
 * `settled()`: no completed transaction held), and the V8 heap's growth
 * (`memory.*`, transport/heap-tuning.ts). `stop()` ends them.
 */
function startOverloadControl(config: Config, settled: () => boolean) {
  const ov = config.sip.overload;
  const stopHeapTuning = tuneHeap({ heapGrowingPercent: config.memory.heap_growing_percent, youngGenerationMB: config.memory.young_generation_mb });
  const load = startEventLoopLoad(ov.lag_ms);
  // After 2 s of quiet once no completed transaction is held any more (`settled`), else after quiet for
  // longer than Timer J (a trickle of requests keeps a few held): the load's transactions are gone by then.
  const stopIdleCollector = collectWhenIdle(load, 64 * config.sip.timers.t1 + 5000, { settled });
  const admission = new Admission(
    {
      lagMs: ov.lag_ms,
      dropLagMs: ov.drop_lag_ms,
      targetUtilization: ov.target_utilization,
      maxPendingTransactions: ov.max_pending_transactions,
      maxTransactions: ov.max_transactions,
      maxNewPerS: ov.max_new_per_s,
      retryAfterS: ov.retry_after,
    },
    load,
  );
  return {
    load,
    admission,
    stop() {
      stopIdleCollector();
      stopHeapTuning();
      admission.close();
      stopEventLoopLoad();
    },
  };
}

/**
 * The info-level summary line every `log.summary_interval` s: transaction and
 * refusal counts, stream backpressure, dropped log lines; server-side response
 * times, lag, garbage collection and memory. Returns a function that stops it.
 */
function startSipSummary(
  config: Config,
  transport: TransportLayer,
  transactions: TransactionLayer,
  overload: ReturnType<typeof startOverloadControl>,
  logger: Logger,
  mesh?: WorkerMesh,
): () => void {
  const { load, admission } = overload;
  const meshCounters = mesh?.counters;
  return startSummaryLog(
    logger,
    config.log.summary_interval,
    () => ({
      serverTransactions: transactions.counters.serverTransactions,
      finals: transactions.counters.finals,
      refused503: transactions.counters.refused,
      retransmissions: transactions.counters.retransmissions,
      // Digest challenges answered without transaction state (RFC 3261 §8.2.7), and the ACKs of them absorbed.
      statelessChallenges: transactions.counters.statelessChallenges,
      challengeAcks: transactions.counters.challengeAcks,
      completedReleasedEarly: transactions.completedReleasedEarly,
      droppedBeforeParse: transport.counters.droppedBeforeParse,
      // Several workers: messages handed to the Call-ID's owner, and received from the others.
      handedOff: transport.counters.handedOff,
      handedIn: transport.counters.handedIn,
      // Several workers: the mesh's frames, bytes and socket writes (each write wakes the worker it goes to).
      ...(meshCounters && { meshFramesSent: meshCounters.framesSent, meshBytesSent: meshCounters.bytesSent, meshWrites: meshCounters.writes }),
      malformed: transport.counters.malformed,
      // UDP datagrams the kernel refused (logged one by one at debug only).
      udpSendFailed: transport.counters.udpSendFailed,
      streamsPaused: streamCounters.paused,
      streamsClosed: streamCounters.closed,
      logLinesDropped: droppedLogLines(),
    }),
    () => {
      const mem = process.memoryUsage();
      const rt = transactions.takeResponseTimes();
      const gc = load.takeGcStats();
      const delay = load.takeDelay();
      return {
        responseP50Ms: rt.p50Ms,
        responseP99Ms: rt.p99Ms,
        responseP999Ms: rt.p999Ms,
        responseMaxMs: rt.maxMs,
        maxLagMs: Math.round(load.takeMaxLagMs()),
        loopDelayP99Ms: delay.p99Ms,
        loopDelayP999Ms: delay.p999Ms,
        loopDelayMaxMs: delay.maxMs,
        gcCount: gc.count,
        gcMajorCount: gc.majorCount,
        gcTotalMs: gc.totalMs,
        gcMaxPauseMs: gc.maxMs,
        maxStreamQueueBytes: takeMaxQueuedBytes(),
        admittedShare: Math.round(admission.share * 100) / 100,
        serverTransactionsHeld: transactions.size().server,
        rssMB: Math.round(mem.rss / 1048576),
        heapMB: Math.round(mem.heapUsed / 1048576),
        heapTotalMB: Math.round(mem.heapTotal / 1048576),
        externalMB: Math.round(mem.external / 1048576),
        // Of external: Buffers and plain ArrayBuffers (datagrams received, responses serialized, until collected).
        arrayBuffersMB: Math.round(mem.arrayBuffers / 1048576),
        heldResponsesMB: Math.round(transactions.heldResponseBytes() / 1048576),
      };
    },
  );
}

/** The SIP transport layer on the configured listeners (not started yet), with stream bounds and overload shedding. */
function createTransport(
  config: Config,
  tls: TlsMaterial | undefined,
  admission: Admission,
  metrics: ServerMetrics,
  logger: Logger,
  mesh: WorkerMesh | undefined,
  udpSockets: ReadonlyMap<string, dgram.Socket> | undefined,
): TransportLayer {
  return new TransportLayer({
    mesh,
    udpSockets,
    listen: config.sip.listen.map((l) => ({ transport: l.transport, host: l.host, port: l.port, clientCert: l.client_cert ?? 'optional' })),
    peerIdentities: (cert) => certificateIdentities(cert, config.sip.tls.client_identity ?? ['uri']),
    advertisedHost: config.sip.advertised_host,
    tls,
    limits: {
      maxMessageBytes: config.sip.limits.max_message_bytes,
      maxHeaders: config.sip.limits.max_headers,
      maxLineBytes: config.sip.limits.max_line_bytes,
    },
    streamBounds: {
      pauseBytes: config.sip.limits.stream_pause_bytes,
      closeBytes: config.sip.limits.stream_close_bytes,
      stallMs: config.sip.limits.stream_stall_ms,
    },
    dropBeforeParse: () => admission.dropBeforeParse(),
    maxConnectionsPerListener: config.sip.limits.max_connections,
    udpSend: config.sip.udp_send,
    udpReceiveBufferBytes: config.sip.limits.udp_receive_buffer_bytes,
    logger,
    onTlsHandshake: (ok) => metrics.countTlsHandshake(ok),
    onSend: (msg) => metrics.countSipMessage(msg, 'out'),
  });
}

/** The transaction layer, fed by the transport through the per-source gate (dropped messages create no state). */
function createTransactions(config: Config, transport: TransportLayer, security: Security, metrics: ServerMetrics, logger: Logger, observeCall: (msg: SipMessage) => void): TransactionLayer {
  const transactions = new TransactionLayer(transport, config.sip.timers, logger, { maxCompleted: config.sip.limits.completed_transactions });
  transport.onMessage = (inbound) => {
    metrics.countSipMessage(inbound.msg, 'in');
    if (!security.gate.admit(inbound)) return;
    security.calls.observe(inbound.msg);
    observeCall(inbound.msg);
    transactions.handle(inbound);
  };
  return transactions;
}

/**
 * Users and authentication: the directory when one is configured, else the
 * SQLite store (SIP and TURN share it); digest with the server secret, and
 * client certificates naming an AOR.
 */
function createAuthentication(
  config: Config,
  secret: Buffer,
  store: SqliteStore | RedisStore,
  domains: LocalDomains,
  security: Security,
  metrics: ServerMetrics,
  logger: Logger,
  /** This SIP worker's index, with several: its nonces carry it, and nonces of the others are answered as stale. */
  nonceIssuer?: number,
) {
  // The directory caches its own answers for directory.cache_ttl s (TTL only: an LDAP server tells nobody of
  // changes); the store is cached in memory and cleared when its users generation changes (any process or node).
  const users: UserSource =
    openDirectory(config.directory, config.domains, logger) ??
    cachedUserSource(store instanceof RedisStore ? redisUserSource(store) : storeUserSource(store), {
      maxEntries: config.sip.auth.credential_cache_entries,
      generation: () => store.usersGeneration(),
    });
  const auth: DigestPolicy = {
    realm: config.domains[0],
    secret,
    nonceTtlS: config.sip.auth.nonce_ttl,
    nonceIssuer,
    algorithms: config.sip.auth.algorithms,
    strictUri: config.sip.auth.strict_uri,
    isOwnHost: (host) => domains.isLocal(host),
    lookupHa1: (username, realm, alg) => users.lookupHa1(username, realm, alg),
    nonceCounts: new NonceCountTracker(config.sip.auth.nonce_count_entries),
    logger,
  };
  const authenticate = createAuthenticator(auth, {
    certificates: {
      aorOf: (uri) => {
        try {
          return domains.aorOf(parseUri(uri));
        } catch {
          return undefined;
        }
      },
    },
    // Refused digest authentications are counted for /metrics on their way to the failure guard.
    failures: Object.assign(Object.create(security.failures) as typeof security.failures, {
      failed: (username: string | undefined, address: string) => {
        metrics.countAuthFailure();
        security.failures.failed(username, address);
      },
    }),
  });
  return { users, authenticate };
}

/** What the registrar and proxy are built from. */
interface SipCoreParts {
  transport: TransportLayer;
  transactions: TransactionLayer;
  domains: LocalDomains;
  location: LocationService;
  users: UserSource;
  authenticate: Authenticate;
  security: Security;
  secret: Buffer;
  federation: Federation;
  /** Call admission (see callAdmission). */
  admitCall: (username: string, st: ServerTransaction) => CallRefusal | undefined | Promise<CallRefusal | undefined>;
}

/** The registrar (sip.registrar) and the proxy that hands it REGISTERs: the transaction user. */
function createSipCore(config: Config, parts: SipCoreParts, logger: Logger): ProxyCore {
  const { transport, transactions, domains, location, users, authenticate, security, secret, federation } = parts;
  const gruuKey = tempGruuKey(secret);
  const register = createRegistrar({
    domains,
    location,
    authenticate,
    minExpiresS: config.sip.registrar.min_expires,
    maxExpiresS: config.sip.registrar.max_expires,
    defaultExpiresS: config.sip.registrar.default_expires,
    maxBindingsPerAor: config.sip.registrar.max_bindings_per_aor,
    flowTimerS: config.sip.registrar.flow_timer,
    tempGruuKey: gruuKey,
    // Several nodes on one store: bindings over this node's connections are reached through this node.
    nodePath: config.store.type === 'redis' && config.node.uri ? nodePathFor(config.node.uri, secret) : undefined,
    logger,
  });
  return new ProxyCore({
    transport,
    transactions,
    domains,
    location,
    // During a directory outage a callee counts as existing: its bindings (local) decide between routing and 480.
    userExists: async (username, domain) => {
      try {
        return await users.userExists(username, domain);
      } catch (e) {
        if (e instanceof UserSourceUnavailableError) return true;
        throw e;
      }
    },
    authenticate,
    admitCall: parts.admitCall,
    flowTokenSecret: secret,
    tempGruuKey: gruuKey,
    register,
    federation,
    logger,
  });
}

/** The TURN server when `turn.enabled`, started; undefined otherwise. */
export async function startTurn(config: Config, tls: TlsMaterial | undefined, secret: Buffer, users: UserSource, authSecrets: readonly string[], logger: Logger): Promise<TurnServer | undefined> {
  if (!config.turn.enabled) return undefined;
  const turn = new TurnServer({
    realm: config.turn.realm ?? config.domains[0],
    listen: config.turn.listen,
    // Defaults: the host's first non-loopback IPv4 address (else 127.0.0.1) and first global IPv6 address.
    relayAddress: config.turn.relay_address ?? firstExternalAddress('IPv4') ?? '127.0.0.1',
    relayAddress6: config.turn.relay_address_v6 ?? firstExternalAddress('IPv6'),
    // TURN over TLS and DTLS (port 5349) use the SIP TLS certificate.
    tls: tls && { cert: tls.cert, key: tls.key },
    dtls: {
      maxSessions: config.turn.dtls.max_sessions,
      maxHandshakes: config.turn.dtls.max_handshakes,
      idleTimeoutMs: config.turn.dtls.idle_timeout * 1000,
      psk: config.turn.dtls.psk.map((p) => ({ identity: p.identity, key: Buffer.from(p.key, 'hex') })),
    },
    allowedPeers: config.turn.allowed_peers,
    deniedPeers: config.turn.denied_peers,
    ownAddresses: hostAddresses(),
    authSecrets,
    passwordAlgorithms: config.turn.password_algorithms,
    maxAllocationsPerUser: config.turn.max_allocations_per_user,
    maxAllocations: config.turn.max_allocations,
    bandwidthLimitBytesPerS: config.turn.bandwidth_limit,
    maxPermissionsPerAllocation: config.turn.permissions_per_allocation,
    maxTcpConnectionsPerAllocation: config.turn.tcp_connections_per_allocation,
    maxPendingTcpConnectionsPerAllocation: config.turn.tcp_pending_per_allocation,
    maxConnectionsPerListener: config.turn.max_connections,
    challengeRatePerS: config.turn.challenge_rate,
    challengeAddressRatePerS: config.turn.challenge_address_rate,
    exemptSources: config.sip.security.exempt_sources,
    relayPortMin: config.turn.relay_port_min,
    relayPortMax: config.turn.relay_port_max,
    defaultLifetimeS: config.turn.default_lifetime,
    maxLifetimeS: config.turn.max_lifetime,
    nonceTtlS: config.turn.nonce_ttl,
    nonceSecret: secret,
    allowLoopbackPeers: config.turn.allow_loopback_peers,
    dataPlane: config.turn.data_plane,
    // The long-term key is MD5(username:realm:password), or SHA-256 of it for PASSWORD-ALGORITHM SHA-256:
    // the same as the SIP digest HA1 of that algorithm (RFC 8489 §9.2.2, §18.5.1).
    getKey: async (username, r, algorithm) => {
      const ha1 = await users.lookupHa1(username, r, algorithm ?? 'MD5');
      return ha1 ? Buffer.from(ha1, 'hex') : undefined;
    },
    // USERHASH (RFC 8489 §14.4) of users in the store (kept with the user) or fetched from the directory.
    resolveUserhash: (hash, r) => users.lookupUserhash(hash, r),
    software: 'rtcedge',
    logger,
  });
  await turn.start();
  return turn;
}

/** Why the TURN UDP data plane in use was chosen, for the start log line. */
function dataPlaneReason(config: Config, inUse: 'native' | 'typescript'): string {
  if (config.turn.data_plane !== undefined) return `turn.data_plane: ${config.turn.data_plane}`;
  if (config.turn.bandwidth_limit > 0) return 'turn.bandwidth_limit is enforced by the typescript data plane only';
  return inUse === 'native' ? 'the native addon loaded' : 'the native addon did not load (see the warning above)';
}


/** `udp:0.0.0.0:5060`, `udp:[::]:5060` (an IPv6 address in brackets, RFC 3986 §3.2.2) for the start log. */
export function listenerText(transport: string, address: string, port: number): string {
  return `${transport}:${address.includes(':') ? `[${address}]` : address}:${port}`;
}
