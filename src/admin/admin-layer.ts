/**
 * The operations layer of a running server: its metrics (metrics.ts) read
 * from the other layers, and the admin HTTP listener (admin-server.ts) with
 * readiness checks over the store, the user source and the listeners.
 */
import type { Config } from '../config/schema.js';
import { loadOrCreateAdminToken } from '../config/data-dir.js';
import type { Logger } from '../log.js';
import type { LocationService } from '../registrar/location-service.js';
import type { RedisStore, SqliteStore } from '../store/index.js';
import type { UserSource } from '../auth/user-source.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { TransportLayer } from '../transport/transport-layer.js';
import type { TurnServer } from '../turn/index.js';
import { AdminServer } from './admin-server.js';
import { type MetricsExposition, ServerMetrics, type TurnMetricsSnapshot } from './metrics.js';
import { takeEventLoopLagForMetrics } from '../transport/event-loop-load.js';

/** The layers metrics read; a getter because the server creates them after the metrics (their hooks need it first). */
export interface MetricsLayers {
  location: LocationService;
  transactions: TransactionLayer;
  transport: TransportLayer;
  bans: { list(): unknown[]; droppedMessages: number };
  /** Requests dropped for a scanner User-Agent (security/source-gate.ts). */
  scannerDrops(): number;
  /** Stream connections closed by write-queue backpressure (transport/backpressure.ts). */
  streamsClosed(): number;
  turn: TurnServer | undefined;
}

/** Metrics of one server over the layers `layers()` returns when scraped. */
export function createServerMetrics(config: Pick<Config, 'turn'>, layers: () => MetricsLayers): ServerMetrics {
  return new ServerMetrics({
    eventLoopLag: takeEventLoopLagForMetrics,
    registrations: () => layers().location.counts(),
    transactions: () => layers().transactions.size(),
    activeBans: () => layers().bans.list().length,
    sipDrops: () => {
      const l = layers();
      return {
        banned: l.bans.droppedMessages,
        scanner: l.scannerDrops(),
        overload: l.transport.counters.droppedBeforeParse,
        malformed: l.transport.counters.malformed,
        stream_closed: l.streamsClosed(),
      };
    },
    sipRefused: () => ({ ...layers().transactions.counters.refused }),
    completedReleasedEarly: () => layers().transactions.completedReleasedEarly,
    statelessChallenges: () => {
      const c = layers().transactions.counters;
      return { challenges: c.statelessChallenges, acks: c.challengeAcks };
    },
    connectionsRefused: () => {
      const l = layers();
      const t = l.turn?.stats();
      return { sip: l.transport.counters.connectionsRefused, ...(t && { turn: t.connectionsRefused, turn_peer: t.tcpConnectionsRefused }) };
    },
    turn: config.turn.enabled
      ? () => {
          const turn = layers().turn;
          return turn ? turnSnapshot(turn) : { dataPlane: 'typescript', allocations: 0, permissions: 0, channels: 0, relayed: [], drops: {} };
        }
      : undefined,
  });
}

/** AORs with at least one unexpired binding, and those bindings, for /metrics of a source without counts() (the cluster primary's store view). */
export function registrationCounts(location: Pick<LocationService, 'aors' | 'lookup'>): { aors: number; bindings: number } {
  let aors = 0;
  let bindings = 0;
  for (const aor of location.aors()) {
    const n = location.lookup(aor).length;
    bindings += n;
    if (n > 0) aors++;
  }
  return { aors, bindings };
}

/** TURN counters for /metrics: relayed traffic each way (both data paths), drop reasons of the native data plane and of the bandwidth cap. */
export function turnSnapshot(t: TurnServer): TurnMetricsSnapshot {
  const s = t.stats();
  const n = s.native;
  const drops: Record<string, number> = n
    ? {
        no_allocation: n.dropNoAllocation,
        no_permission: n.dropNoPermission,
        no_channel: n.dropNoChannel,
        malformed: n.dropMalformed,
        bad_fingerprint: n.dropBadFingerprint,
        too_big: n.dropTooBig,
        queue_full: n.dropQueueFull,
        send_failed: n.dropSendFailed,
      }
    : {};
  drops.bandwidth_cap = s.packetsDropped;
  return {
    dataPlane: s.dataPlane,
    allocations: s.allocations,
    permissions: s.permissions,
    channels: s.channels,
    relayed: [
      { direction: 'to_peer', packets: s.toPeerPackets, bytes: s.toPeerBytes },
      { direction: 'to_client', packets: s.toClientPackets, bytes: s.toClientBytes },
    ],
    drops,
  };
}

/** What the admin listener serves. */
export interface AdminLayers {
  /** This process's metrics, or (the primary of several workers) the sum of every process's. */
  metrics: MetricsExposition;
  /** The store: SQLite, or the shared Redis store (asynchronous). */
  store: Pick<SqliteStore | RedisStore, 'ping' | 'listUsers' | 'getUser'>;
  users: UserSource;
  /** The bindings the API lists and removes (the location service, or the store's view in a primary). */
  location: Pick<LocationService, 'aors' | 'lookup' | 'read' | 'registrations' | 'remove' | 'removeAll'>;
  /** The SIP listeners bound (the readiness check counts them). */
  transport: Pick<TransportLayer, 'listeners'>;
  turn: TurnServer | undefined;
  reload(): Promise<string[]>;
}

/**
 * Start the admin listener on `admin.listen` when `admin.enabled` (token from
 * data_dir/admin-token, created on first start).
 *
 * @returns the listener and its bound address, or undefined when disabled.
 * @throws Error `cannot listen on admin host:port: ...` when the port cannot be bound.
 */
export async function startAdmin(config: Config, layers: AdminLayers, logger: Logger): Promise<{ server: AdminServer; address: { address: string; port: number } } | undefined> {
  if (!config.admin.enabled) return undefined;
  const { store, users, location, transport, turn } = layers;
  // Listeners bound at start (IPv6 ones a host without IPv6 cannot bind were skipped then): all must stay bound.
  const want = transport.listeners().length + (turn?.addresses().length ?? 0);
  const server = new AdminServer({
    token: loadOrCreateAdminToken(config.data_dir),
    metrics: layers.metrics,
    readiness: {
      store: async () => (await store.ping()) || 'store does not answer',
      directory: async () => {
        try {
          await users.userExists('readyz-probe', config.domains[0]!);
          return true;
        } catch (e) {
          return `directory unreachable: ${(e as Error).message}`;
        }
      },
      listeners: () => {
        const have = transport.listeners().length + (turn?.addresses().length ?? 0);
        return (have === want && have > 0) || `${have} of ${want} listeners bound`;
      },
    },
    users: { list: (domain) => store.listUsers(domain), get: (u, d) => store.getUser(u, d) },
    registrations: location,
    reload: layers.reload,
    logger,
  });
  const address = await server.start(config.admin.listen.host, config.admin.listen.port);
  return { server, address };
}
