/**
 * Prometheus metrics of one running server (prom-client, text exposition
 * format 0.0.4), served by the admin HTTP listener at `/metrics`.
 *
 * Gauges read the layers' own state when scraped (collect callbacks); the
 * few events no layer keeps a count of (SIP messages, TLS handshakes, auth
 * failures) are counted through hooks the server wires. No label carries a
 * user, an AOR or an address: cardinality is fixed.
 *
 * With several processes (SIP workers and the primary, cluster-metrics.ts)
 * each keeps its own ServerMetrics and the primary sums them at scrape;
 * every metric says how: counters and per-process gauges add up, while the
 * gauges of state every worker holds whole (bindings, AORs, bans) take the
 * largest worker's value (`aggregator: 'max'`), so they are not multiplied.
 */
import { type Aggregator, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { SipMessage } from '../sip/message.js';
import type { EventLoopLagStats } from '../transport/event-loop-load.js';
import { statusClass } from '../sip/response.js';

/**
 * What the scrape reads; each callback is cheap (O(AORs) at most). A process
 * without SIP (the primary of several workers) leaves out the SIP sources, one
 * without TURN (a SIP worker) the TURN one: their metrics are then not registered.
 */
export interface MetricsSources {
  /** Registered AORs and their unexpired bindings. */
  registrations?(): { aors: number; bindings: number };
  /** Server and client transactions in flight (RFC 3261 §17). */
  transactions?(): { server: number; client: number };
  /** Active bans (sip.security). */
  activeBans?(): number;
  /**
   * SIP messages discarded since start, by reason (`banned`, `scanner`,
   * `overload` before parsing, `malformed` (answered 400 when a request line
   * was readable), `stream_closed` connections).
   */
  sipDrops?(): Record<string, number>;
  /** New requests answered 503 + Retry-After under overload since start, by what was exceeded (transaction/admission.ts). */
  sipRefused?(): Record<string, number>;
  /**
   * Completed server transactions released before Timer J (H, I) since start because
   * `sip.limits.completed_transactions` were held (transaction/completed-responses.ts).
   */
  completedReleasedEarly?(): number;
  /**
   * Digest challenges (401/407) answered without transaction state since start (RFC 3261 §8.2.7),
   * and ACKs of such INVITE challenges absorbed (transaction/transaction-layer.ts).
   */
  statelessChallenges?(): { challenges: number; acks: number };
  /**
   * Connections refused since start, by service: `sip` and `turn` (closed on
   * accept, their listener holding `max_connections`), `turn_peer` (RFC 6062
   * Connects answered 508 and peer connections closed at the per-allocation limits).
   */
  connectionsRefused?(): Record<string, number>;
  /** TURN state and cumulative counters; undefined when TURN is off. */
  turn?(): TurnMetricsSnapshot;
  /**
   * Event-loop lag since the previous scrape (the overload control's sampling
   * timer, transport/event-loop-load.ts), for the
   * `nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds` gauges;
   * undefined while no monitor runs. A process without it (the primary of
   * several workers) has none of those gauges.
   */
  eventLoopLag?(): EventLoopLagStats | undefined;
}

/**
 * prom-client's default event-loop delay histogram period, ms: so long that
 * its timer never fires (it would wake the process every 10 ms by default);
 * the gauges it feeds are replaced by the ones {@link MetricsSources.eventLoopLag} feeds.
 */
const PROM_CLIENT_DELAY_PERIOD_MS = 2 ** 31 - 1;

/** The gauges prom-client feeds from its own delay histogram, by the field of EventLoopLagStats that feeds ours, with prom-client's aggregator across processes. */
const EVENT_LOOP_LAG_GAUGES: [string, keyof EventLoopLagStats, Aggregator, string][] = [
  ['min', 'minS', 'min', 'The minimum recorded event loop delay.'],
  ['max', 'maxS', 'max', 'The maximum recorded event loop delay.'],
  ['mean', 'meanS', 'average', 'The mean of the recorded event loop delays.'],
  ['stddev', 'stddevS', 'average', 'The standard deviation of the recorded event loop delays.'],
  ['p50', 'p50S', 'average', 'The 50th percentile of the recorded event loop delays.'],
  ['p90', 'p90S', 'average', 'The 90th percentile of the recorded event loop delays.'],
  ['p99', 'p99S', 'average', 'The 99th percentile of the recorded event loop delays.'],
];

/** TURN numbers at scrape time; packets and bytes are cumulative since start. */
export interface TurnMetricsSnapshot {
  dataPlane: 'native' | 'typescript';
  allocations: number;
  /** Permissions over all allocations (RFC 8656 §9). */
  permissions: number;
  /** Channel bindings over all allocations (RFC 8656 §12). */
  channels: number;
  /** Relayed packets/payload bytes per direction: client to peer, peer to client. */
  relayed: { direction: 'to_peer' | 'to_client'; packets: number; bytes: number }[];
  /** Dropped packets by reason (e.g. `bandwidth_cap`, `no_permission`). */
  drops: Record<string, number>;
}


const METHODS = new Set(['INVITE', 'ACK', 'BYE', 'CANCEL', 'REGISTER', 'OPTIONS', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE']);

/** What the admin listener's `/metrics` serves: one process's metrics, or the sum of several. */
export interface MetricsExposition {
  /** The exposition text (and its Content-Type) for `/metrics`. */
  exposition(): Promise<{ contentType: string; body: string }>;
}

/** The metrics of one server: its own registry, counters for hooks, gauges read at scrape. */
export class ServerMetrics implements MetricsExposition {
  /** Registry holding every metric below and the Node.js defaults (event-loop lag, heap, fds). */
  readonly registry = new Registry();
  /**
   * SIP messages counted per message as plain numbers, by direction then method
   * (requests) or status class (responses); the counters below add the growth
   * when scraped, so the hot path does no label hashing.
   */
  private readonly requestCounts = { in: {} as Record<string, number>, out: {} as Record<string, number> };
  private readonly responseCounts = { in: {} as Record<string, number>, out: {} as Record<string, number> };
  private readonly tlsHandshakes: Counter<'result'>;
  private readonly authFailures: Counter;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'rtcedge_', eventLoopMonitoringPrecision: PROM_CLIENT_DELAY_PERIOD_MS });
    this.replaceEventLoopLagGauges(sources.eventLoopLag);
    const countedByDirection = (name: string, help: string, label: string, counts: { in: Record<string, number>; out: Record<string, number> }) => {
      const reported = { in: {} as Record<string, number>, out: {} as Record<string, number> };
      new Counter({
        name,
        help,
        labelNames: ['direction', label],
        registers,
        collect() {
          for (const direction of ['in', 'out'] as const) {
            for (const [value, n] of Object.entries(counts[direction])) {
              const growth = n - (reported[direction][value] ?? 0);
              if (growth > 0) this.inc({ direction, [label]: value }, growth);
              reported[direction][value] = n;
            }
          }
        },
      });
    };
    countedByDirection('rtcedge_sip_requests_total', 'SIP requests received (in) and sent (out), by method (other methods: OTHER)', 'method', this.requestCounts);
    countedByDirection('rtcedge_sip_responses_total', 'SIP responses received (in) and sent (out), by status class', 'status_class', this.responseCounts);
    this.tlsHandshakes = new Counter({ name: 'rtcedge_tls_handshakes_total', help: 'TLS handshakes on SIP listeners, by result (ok, failed)', labelNames: ['result'], registers });
    this.authFailures = new Counter({ name: 'rtcedge_auth_failures_total', help: 'Digest authentications refused with 403 (wrong password, locked user)', registers });

    const gauge = (name: string, help: string, read: () => number, aggregator: Aggregator = 'sum') =>
      new Gauge({ name, help, registers, aggregator, collect() { this.set(read()); } });
    // Every worker holds all bindings and all bans: across workers these take the largest value, not the sum.
    const { registrations, transactions, activeBans } = sources;
    if (registrations) {
      gauge('rtcedge_registered_aors', 'AORs with at least one binding', () => registrations().aors, 'max');
      gauge('rtcedge_bindings', 'Unexpired bindings (contacts) of all AORs', () => registrations().bindings, 'max');
    }
    if (transactions) {
      new Gauge({
        name: 'rtcedge_sip_transactions',
        help: 'SIP transactions in flight, by kind (server, client)',
        labelNames: ['kind'],
        registers,
        collect() {
          const t = transactions();
          this.set({ kind: 'server' }, t.server);
          this.set({ kind: 'client' }, t.client);
        },
      });
    }
    if (activeBans) gauge('rtcedge_bans', 'Source addresses banned now', activeBans, 'max');

    // Cumulative counts kept by the layers (SIP drops, TURN data planes), exposed as counters (the scrape adds the growth since the last one).
    const mirrored = (name: string, help: string, labelNames: string[], read: () => { labels: Record<string, string>; value: number }[]) => {
      const last = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const { labels, value } of read()) {
            const key = JSON.stringify(labels);
            const growth = value - (last.get(key) ?? 0);
            if (growth > 0) this.inc(labels, growth);
            else if (!last.has(key)) this.inc(labels, 0);
            last.set(key, value);
          }
        },
      });
    };
    const { sipDrops, sipRefused, connectionsRefused, completedReleasedEarly, statelessChallenges } = sources;
    if (statelessChallenges) {
      mirrored('rtcedge_sip_stateless_challenges_total', 'Digest challenges (401/407) answered without transaction state (RFC 3261 §8.2.7); they count in rtcedge_sip_responses_total too', [], () => [
        { labels: {}, value: statelessChallenges().challenges },
      ]);
      mirrored('rtcedge_sip_challenge_acks_absorbed_total', 'ACKs of INVITE challenges answered statelessly, absorbed by the transaction layer', [], () => [
        { labels: {}, value: statelessChallenges().acks },
      ]);
    }
    if (completedReleasedEarly) {
      mirrored('rtcedge_sip_completed_released_total', 'Completed SIP server transactions released before Timer J (H, I) because sip.limits.completed_transactions were held', [], () => [
        { labels: {}, value: completedReleasedEarly() },
      ]);
    }
    if (connectionsRefused) {
      mirrored('rtcedge_connections_refused_total', 'Connections refused at a bound, by service: sip, turn (listener full), turn_peer (RFC 6062 per-allocation limits)', ['service'], () =>
        Object.entries(connectionsRefused()).map(([service, value]) => ({ labels: { service }, value })),
      );
    }
    if (sipDrops) {
      mirrored('rtcedge_sip_dropped_total', 'SIP messages the server discarded, by reason: banned, scanner, overload (before parsing), malformed (400 when a request line was readable), stream_closed (connections closed by backpressure)', ['reason'], () =>
        Object.entries(sipDrops()).map(([reason, value]) => ({ labels: { reason }, value })),
      );
    }
    if (sipRefused) {
      mirrored('rtcedge_sip_overload_refused_total', 'New SIP requests answered 503 + Retry-After under overload, by reason', ['reason'], () =>
        Object.entries(sipRefused()).map(([reason, value]) => ({ labels: { reason }, value })),
      );
    }

    const turn = sources.turn;
    if (!turn) return;
    gauge('rtcedge_turn_allocations', 'Live TURN allocations', () => turn().allocations);
    gauge('rtcedge_turn_permissions', 'TURN permissions over all allocations', () => turn().permissions);
    gauge('rtcedge_turn_channels', 'TURN channel bindings over all allocations', () => turn().channels);
    new Gauge({
      name: 'rtcedge_turn_data_plane',
      help: 'TURN UDP data plane in use (1 for the one in use)',
      labelNames: ['plane'],
      registers,
      collect() {
        const inUse = turn().dataPlane;
        for (const plane of ['native', 'typescript'] as const) this.set({ plane }, plane === inUse ? 1 : 0);
      },
    });
    mirrored('rtcedge_turn_relayed_packets_total', 'Packets relayed by TURN, by direction', ['direction'], () =>
      turn().relayed.map((r) => ({ labels: { direction: r.direction }, value: r.packets })),
    );
    mirrored('rtcedge_turn_relayed_bytes_total', 'Payload bytes relayed by TURN, by direction', ['direction'], () =>
      turn().relayed.map((r) => ({ labels: { direction: r.direction }, value: r.bytes })),
    );
    mirrored('rtcedge_turn_dropped_packets_total', 'Packets TURN dropped, by reason', ['reason'], () =>
      Object.entries(turn().drops).map(([reason, value]) => ({ labels: { reason }, value })),
    );
  }

  /**
   * The `nodejs_eventloop_lag_*_seconds` gauges from the process's own monitor
   * (the lateness of its 100 ms sampling timer, which runs anyway) instead of
   * prom-client's histogram timer every 10 ms; same names, help and
   * aggregators. Values are the lateness alone (prom-client's included its
   * 10 ms period).
   */
  private replaceEventLoopLagGauges(read: MetricsSources['eventLoopLag']): void {
    let last: EventLoopLagStats | undefined;
    EVENT_LOOP_LAG_GAUGES.forEach(([suffix, field, aggregator, help], i) => {
      const name = `rtcedge_nodejs_eventloop_lag_${suffix}_seconds`;
      this.registry.removeSingleMetric(name);
      if (!read) return;
      new Gauge({
        name,
        help,
        registers: [this.registry],
        aggregator,
        collect() {
          // The first gauge of a scrape takes the figures for all (registry order).
          if (i === 0) last = read();
          this.set(last?.[field] ?? 0);
        },
      });
    });
  }

  /** Count a SIP message received (`in`) or sent (`out`). */
  countSipMessage(msg: SipMessage, direction: 'in' | 'out'): void {
    if (msg.kind === 'request') {
      const counts = this.requestCounts[direction];
      const method = METHODS.has(msg.method) ? msg.method : 'OTHER';
      counts[method] = (counts[method] ?? 0) + 1;
    } else {
      const counts = this.responseCounts[direction];
      const cls = statusClass(msg.status);
      counts[cls] = (counts[cls] ?? 0) + 1;
    }
  }

  /** Count one TLS handshake on a SIP listener. */
  countTlsHandshake(ok: boolean): void {
    this.tlsHandshakes.inc({ result: ok ? 'ok' : 'failed' });
  }

  /** Count one refused digest authentication. */
  countAuthFailure(): void {
    this.authFailures.inc();
  }

  /** The exposition text (and its Content-Type) for `/metrics`. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Stop the default collectors' timers (event-loop monitor). */
  close(): void {
    this.registry.clear();
  }
}
