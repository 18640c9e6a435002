/**
 * The primary process of an instance with several SIP workers
 * (`sip.workers` > 1, node:cluster): it prepares what must exist once
 * (data_dir, the secret, the store's migrations and check, the self-signed
 * certificate), forks the workers (cluster/worker-main.ts), runs what cannot
 * be spread (TURN: an allocation cannot move between processes; the admin
 * listener), restarts a worker that dies, forwards reloads and stops the
 * workers gracefully. See docs/ARCHITECTURE.md, "Workers".
 */
import cluster, { type Worker } from 'node:cluster';
import { rmSync } from 'node:fs';
import { createMeshDir, removeStaleMeshDirs } from './mesh-dir.js';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';
import type { Config } from '../config/schema.js';
import { prepareDataDir } from '../config/data-dir.js';
import { loadOrCreateSecret } from '../config/secret.js';
import { openStore, redisUserSource, startWalCheckpointer, type RedisStore } from '../store/index.js';
import { storeUserSource, type UserSource } from '../auth/user-source.js';
import { cachedUserSource } from '../auth/credential-cache.js';
import { startUdpSteering } from './udp-steering.js';
import { openDirectory } from '../directory/index.js';
import { bindingOrder, LocationService } from '../registrar/location-service.js';
import type { BindingRecord, SqliteStore } from '../store/index.js';
import type { BindingReplication } from '../registrar/binding-replication.js';
import { ServerMetrics, type MetricsSources } from '../admin/metrics.js';
import { startAdmin, turnSnapshot, type AdminLayers } from '../admin/admin-layer.js';
import type { TurnServer } from '../turn/index.js';
import type { BoundListener } from '../transport/types.js';
import { createReloader, loadTlsMaterial, logReady, openStoreOf, sharedTurnSecrets, startTurn, type RunningServer } from '../server.js';
import type { FromWorker, ToWorker } from './ipc.js';
import { WorkerQuestions, type WorkerReply } from './worker-questions.js';
import { createPrimaryMetrics, type WorkerAnswer, type WorkerControl } from '../admin/cluster-metrics.js';

/** Options of {@link startCluster}. */
export interface ClusterOptions {
  /** SIP workers to run (≥ 2). */
  workers: number;
  /** Reads the configuration file again, for reload(). */
  reloadConfig?: () => Config;
  /** How long start-up waits for every worker's `ready`, ms; default 30 000. */
  readyTimeoutMs?: number;
  /**
   * Metrics the primary cannot read itself (transactions, bans, drops of the
   * workers): a function that completes the sources (e.g. by asking each
   * worker with {@link RunningCluster.askWorkers}); default: zeros.
   */
  metrics?: (base: MetricsSources, cluster: RunningCluster) => MetricsSources;
}

/** A running multi-worker instance. */
export interface RunningCluster extends RunningServer {
  /** Worker processes running now (pid by index; undefined while one restarts). */
  workerPids(): (number | undefined)[];
  /**
   * Ask every running worker about `topic` (handlers in worker-main's
   * `workerTopics`); resolves with the answers in worker order (undefined for a
   * worker that failed or did not answer within `timeoutMs` ms).
   */
  askWorkers(topic: string, payload: unknown, timeoutMs: number): Promise<unknown[]>;
}

/** Restart backoff after a worker exits: 500 ms doubling to 30 s; reset once a worker ran 60 s. */
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;
/** How long stop waits for the workers to exit before SIGKILL, ms. */
const STOP_GRACE_MS = 10_000;
/** How long the primary waits for the workers' answer to a binding change or a reload, ms. */
const ANSWER_TIMEOUT_MS = 5000;

interface Slot {
  index: number;
  worker: Worker | undefined;
  startedAtMs: number;
  failures: number;
  restartTimer?: NodeJS.Timeout;
}

/**
 * Start the primary and `opts.workers` SIP workers. Resolves once every
 * worker logged ready, with `rtcedge ready` logged (the same fields as one
 * process, plus `workers`).
 * @throws Error when a worker fails to start (its reason, e.g. a port in use);
 *   the others are stopped first.
 */
export async function startCluster(config: Config, logger: Logger, opts: ClusterOptions): Promise<RunningCluster> {
  const log = logger.child({ component: 'cluster' });
  prepareDataDir(config.data_dir);
  // The admin API reads bindings from the store (the workers commit them before their 200); what it removes
  // goes through a location service of the primary, which tells the workers (SQLite: over IPC; Redis: Redis
  // invalidates the AOR in every worker's cache).
  const replication: BindingReplication = {
    async announce(aors) {
      const answers = await Promise.all(slots.map((s) => ask(s, (id) => ({ type: 'bindings', id, aors: [...aors] }), ANSWER_TIMEOUT_MS)));
      const missing = slots.filter((_, i) => !answers[i]?.ok).map((s) => s.index);
      if (missing.length) log.warn({ workers: missing }, 'binding change not acknowledged by every worker');
    },
    onRemoteChange() {},
  };
  // Opened first: a store that cannot be opened (a damaged SQLite file, Redis not reachable) stops the start before
  // any socket or mesh directory exists. (`slots` and `ask` are read only when a removal is announced.)
  const shared = await openPrimaryStore(config, logger, replication);
  const { secret, users, location } = shared;
  const tls = await loadTlsMaterial(config, logger);
  for (const dir of await removeStaleMeshDirs()) log.info({ dir }, 'removed the mesh directory of a server that no longer runs');
  const meshDir = createMeshDir();
  // One SO_REUSEPORT socket per worker and UDP listener, bound here in worker order and kept for restarts.
  const steering = startUdpSteering(config.sip.udp_steering, opts.workers, config.sip.listen, logger);
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, index) => ({ index, worker: undefined, startedAtMs: 0, failures: 0 }));
  const questions = new WorkerQuestions();
  let stopping = false;
  let running = config;
  let sip: string[] = [];

  const ask = (slot: Slot, build: (id: number) => ToWorker, timeoutMs: number): Promise<WorkerReply | undefined> => questions.ask(slot.worker, build, timeoutMs);

  const onMessage = (slot: Slot, m: FromWorker): void => {
    if (m.type === 'reply') questions.answer(m);
    else if (m.type === 'ready') {
      sip = m.sip;
      if (slot.failures > 0) log.info({ worker: slot.index, pid: slot.worker?.process.pid }, 'sip worker restarted');
    }
  };

  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker-main.js', import.meta.url)), args: [], silent: false });

  /** Fork the worker of `slot`; resolves when it is ready, rejects with its start error. */
  const fork = (slot: Slot): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      slot.worker = w;
      slot.startedAtMs = Date.now();
      let ready = false;
      w.on('message', (m: FromWorker) => {
        if (m.type === 'loaded') {
          const steered = steering?.listeners ?? [];
          for (const l of steered) w.send({ type: 'udp-socket', listen: l.key } satisfies ToWorker, l.sockets[slot.index]);
          w.send({ type: 'start', config: running, index: slot.index, count: slots.length, meshDir, udpSockets: steered.length } satisfies ToWorker);
        } else if (m.type === 'ready' && !ready) {
          ready = true;
          resolve();
        } else if (m.type === 'failed' && !ready) {
          ready = true;
          reject(new Error(m.error));
        }
        onMessage(slot, m);
      });
      w.on('exit', (code, signal) => {
        if (slot.worker === w) slot.worker = undefined;
        if (!ready) {
          ready = true;
          reject(new Error(`sip worker ${slot.index} exited before it was ready (code ${code}, signal ${signal})`));
          return;
        }
        if (stopping) return;
        const ranMs = Date.now() - slot.startedAtMs;
        if (ranMs >= HEALTHY_AFTER_MS) slot.failures = 0;
        const delayMs = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** slot.failures);
        slot.failures++;
        log.warn({ worker: slot.index, pid: w.process.pid, code, signal, restartInMs: delayMs }, 'sip worker exited; restarting');
        slot.restartTimer = setTimeout(() => {
          slot.restartTimer = undefined;
          if (stopping) return;
          fork(slot).catch((err: unknown) => log.error({ worker: slot.index, err: (err as Error).message }, 'sip worker restart failed'));
        }, delayMs);
      });
    });

  const stopWorkers = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      slots.map((slot) => {
        clearTimeout(slot.restartTimer);
        const w = slot.worker;
        if (!w || w.isDead()) return undefined;
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => w.process.kill('SIGKILL'), STOP_GRACE_MS);
          w.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          if (w.isConnected()) w.send({ type: 'stop' } satisfies ToWorker);
          else w.process.kill('SIGTERM');
        });
      }),
    );
    rmSync(meshDir, { recursive: true, force: true });
    steering?.close();
  };

  let turn: TurnServer | undefined;
  let metrics: ServerMetrics | undefined;
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  const closeLocal = async (): Promise<void> => {
    await admin?.server.stop();
    metrics?.close();
    await turn?.stop();
    await shared.close();
  };

  /** Have every worker reload with `applied` (the configuration now in force); what they reloaded, and how many answered. */
  const reloadWorkers = async (applied: Config): Promise<{ reloaded: string[]; fields: Record<string, unknown> }> => {
    running = applied;
    const answers = await Promise.all(slots.map((s) => ask(s, (id) => ({ type: 'reload', id, config: applied }), ANSWER_TIMEOUT_MS)));
    const failed = answers.find((a) => a && !a.ok);
    if (failed) throw new Error(failed.error);
    return { reloaded: answers.flatMap((a) => (a?.ok ? (a.value as string[]) : [])), fields: { workers: answers.filter((a) => a?.ok).length } };
  };
  const { reload, reloadTlsMaterial } = createReloader(config, logger, opts.reloadConfig, (fresh) => turn?.setTlsMaterial(fresh), { also: reloadWorkers });

  const self: RunningCluster = {
    sip: [],
    reload,
    async reloadTlsMaterial() {
      await reloadTlsMaterial();
      await reloadWorkers(running);
    },
    workerPids: () => slots.map((s) => s.worker?.process.pid),
    async askWorkers(topic, payload, timeoutMs) {
      const answers = await Promise.all(slots.map((s) => ask(s, (id) => ({ type: 'ask', id, topic, payload }), timeoutMs)));
      return answers.map((a) => (a?.ok ? a.value : undefined));
    },
    async stop() {
      await stopWorkers();
      await closeLocal();
      log.info('rtcedge stopped');
    },
  };

  try {
    await withTimeout(Promise.all(slots.map(fork)), opts.readyTimeoutMs ?? 30_000, 'sip workers not ready in time');
    turn = await startTurn(config, tls, secret, users, shared.turnSecrets, logger);
    metrics = new ServerMetrics(primaryMetricsSources(config, shared.countRegistrations, () => turn, opts.metrics, self));
    // /metrics: the primary's registry (TURN, bindings in the store, its process) summed with every worker's.
    const scrape = createPrimaryMetrics(metrics.registry, workerControl(self));
    admin = await startAdmin(config, { metrics: scrape, store: shared.store, users, location: shared.registrations, transport: { listeners: () => listenersOf(sip) }, turn, reload }, logger);
  } catch (err) {
    await stopWorkers();
    await closeLocal();
    throw err;
  }
  Object.assign(self, { sip, admin: admin?.address });
  logReady(logger.child({ component: 'server' }), config, sip, turn, admin?.address, { workers: slots.length });
  return self;
}

/** The workers as admin/ asks them: a worker that did not answer (or failed) is an answer with `ok: false`. */
function workerControl(cluster: RunningCluster): WorkerControl {
  return {
    async ask(op, payload, timeoutMs) {
      const answers = await cluster.askWorkers(op, payload, timeoutMs);
      return answers.map((value, worker): WorkerAnswer => (value === undefined ? { worker, ok: false, error: 'no answer' } : { worker, ok: true, value }));
    },
  };
}

/** What the primary's /metrics reads: the bindings in the store (SQLite: counted by one query; Redis: none, the workers' count) and TURN; the SIP workers' numbers through `complete`. */
function primaryMetricsSources(
  config: Config,
  registrations: (() => { aors: number; bindings: number }) | undefined,
  turn: () => TurnServer | undefined,
  complete: ClusterOptions['metrics'],
  cluster: RunningCluster,
): MetricsSources {
  const base: MetricsSources = {
    registrations,
    transactions: () => ({ server: 0, client: 0 }),
    activeBans: () => 0,
    // TURN runs here; the SIP listeners' refusals come with the workers' numbers.
    connectionsRefused: (): Record<string, number> => {
      const t = turn()?.stats();
      return t ? { turn: t.connectionsRefused, turn_peer: t.tcpConnectionsRefused } : {};
    },
    turn: config.turn.enabled
      ? () => {
          const t = turn();
          return t ? turnSnapshot(t) : { dataPlane: 'typescript', allocations: 0, permissions: 0, channels: 0, relayed: [], drops: {} };
        }
      : undefined,
  };
  return complete ? complete(base, cluster) : base;
}

/** The store as the primary uses it: the secret, users for TURN, the admin API's store and bindings. */
interface PrimaryStore {
  secret: Buffer;
  /** The users TURN authenticates (the directory, or the store's). */
  users: UserSource;
  /** What the admin API reads of the store (its health, users). */
  store: AdminLayers['store'];
  /** The location service whose removals reach the workers. */
  location: LocationService;
  /** The bindings as the admin API lists and removes them. */
  registrations: Registrations;
  /** AORs and bindings in the store, for /metrics; undefined on Redis (the workers' largest count stands). */
  countRegistrations?: () => { aors: number; bindings: number };
  /** The TURN REST API secrets (turn.auth_secrets, and on Redis the shared ones, read again every 10 s). */
  turnSecrets: readonly string[];
  close(): Promise<void>;
}

/**
 * Open the store once in the primary. SQLite: the secret of data_dir, the
 * file opened first here (migrations and the quick check run before any
 * worker opens it), the WAL checkpointer for every process, and a location
 * service whose removals `replication` announces to the workers. Redis: the
 * shared secret, and a location service read through Redis like a worker's
 * (its own connections and tracking), whose removals reach the workers' caches
 * as Redis invalidations; no WAL, nothing announced.
 * @throws StoreError 'unavailable' when Redis cannot be reached; as openStore for SQLite.
 */
async function openPrimaryStore(config: Config, logger: Logger, replication: BindingReplication): Promise<PrimaryStore> {
  if (config.store.type === 'redis') {
    const { store, secret, tracking } = await openStoreOf(config, logger);
    const redis = store as RedisStore;
    const users =
      openDirectory(config.directory, config.domains, logger) ??
      cachedUserSource(redisUserSource(redis), { maxEntries: config.sip.auth.credential_cache_entries, generation: () => redis.usersGeneration() });
    // Not started: the workers purge the index entries of expired bindings.
    const location = new LocationService(redis, logger, undefined, undefined, { source: tracking!, maxAors: config.store.redis.cache_aors });
    tracking!.onInvalidate((what) => location.invalidate(what));
    tracking!.onFlush(() => location.clearCache());
    const turnSecrets = await sharedTurnSecrets(config, redis, logger);
    return {
      secret,
      users,
      store: redis,
      location,
      registrations: location,
      turnSecrets: turnSecrets.secrets,
      async close() {
        turnSecrets.stop();
        await location.stop();
        await users.close();
        await tracking!.close();
        await redis.close();
      },
    };
  }
  const secret = loadOrCreateSecret(config.data_dir);
  // Opened once here first: migrations and the quick check run before any worker opens it.
  const store = openStore(config);
  // The workers' connections checkpoint only past a bound: this worker thread copies the WAL for all of them.
  const checkpoints = startWalCheckpointer(store, logger);
  const users = openDirectory(config.directory, config.domains, logger) ?? storeUserSource(store);
  // Not started: it holds no bindings (the workers purge expired ones); it only commits and announces removals.
  const location = new LocationService(store, logger, undefined, replication);
  return {
    secret,
    users,
    store,
    location,
    registrations: storeRegistrations(store, location),
    countRegistrations: () => store.countBindings(Math.floor(Date.now() / 1000)),
    turnSecrets: config.turn.auth_secrets,
    async close() {
      await location.stop();
      await users.close();
      await checkpoints.stop();
      store.close();
    },
  };
}

/** What the admin API and /metrics read and change of the bindings. */
type Registrations = Pick<LocationService, 'aors' | 'lookup' | 'read' | 'registrations' | 'remove' | 'removeAll'>;

/**
 * The bindings as the store has them (every worker commits before its 200):
 * read from SQLite when asked, removed through `location`, which commits and
 * tells the workers to read the AOR again.
 */
function storeRegistrations(store: SqliteStore, location: LocationService, nowS = () => Math.floor(Date.now() / 1000)): Registrations {
  const lookup = (aor: string): BindingRecord[] => store.listBindings(aor).filter((b) => b.expires > nowS()).sort(bindingOrder);
  const aors = (): string[] => [...new Set(store.allBindings().map((b) => b.aor))].sort();
  return {
    aors,
    lookup,
    read: lookup,
    registrations: async () => aors().map((aor) => ({ aor, bindings: lookup(aor) })),
    remove(aor, contactUri) {
      const had = lookup(aor).some((b) => b.contactUri === contactUri);
      location.remove(aor, contactUri);
      return had;
    },
    removeAll(aor) {
      const n = lookup(aor).length;
      location.removeAll(aor);
      return n;
    },
  };
}

/** The listeners a worker reported (`udp:127.0.0.1:5060`), as bound listeners for the readiness check. */
function listenersOf(sip: string[]): BoundListener[] {
  return sip.map((text) => {
    const [transport, ...rest] = text.split(':');
    const port = Number(rest.pop());
    const address = rest.join(':').replace(/^\[|\]$/g, '');
    return { transport: transport as BoundListener['transport'], address, port, advertisedHost: address };
  });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]).finally(() => clearTimeout(timer));
}
