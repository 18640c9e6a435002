/**
 * `/metrics` of an instance with several processes (the primary, which runs
 * TURN and the admin listener, and the SIP workers): at each scrape the
 * primary asks every worker for its registry as JSON (over the cluster IPC,
 * cluster/primary.ts `askWorkers`) and sums them with its own using
 * prom-client's `AggregatorRegistry.aggregate`.
 * Each metric's `aggregator` says how: counters and per-process gauges add up;
 * bindings, AORs and bans, which every worker holds whole, take the largest
 * value (metrics.ts); `nodejs_version_info` the first; the process start time
 * is left out. A worker that does not answer within the timeout is left out
 * of that scrape and counted in `rtcedge_metrics_workers_missing`.
 */
import { AggregatorRegistry, Gauge, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { MetricsExposition } from './metrics.js';

/** One worker's answer: its value, or why there is none (its handler threw, or it did not answer in time). */
export type WorkerAnswer = { worker: number; ok: true; value: unknown } | { worker: number; ok: false; error: string };

/** How the primary asks its SIP workers. */
export interface WorkerControl {
  /**
   * Ask every worker `op` with `payload`; resolves within about `timeoutMs` ms
   * with one answer per worker (`ok: false` for a missing one). Never rejects.
   */
  ask(op: string, payload: unknown, timeoutMs: number): Promise<WorkerAnswer[]>;
}

/** A worker's handlers of the primary's questions, by operation; the return value (or promise) is the answer. */
export type ControlHandlers = Record<string, (payload: unknown) => unknown>;

/** The operation workers answer with their metrics. */
export const METRICS_OP = 'metrics';
/** How long a scrape waits for the workers, ms. */
export const METRICS_TIMEOUT_MS = 3000;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The worker side: answers {@link METRICS_OP} with `registry` as JSON (cluster/worker-main.ts registers it as a topic). */
export function metricsHandlers(registry: Registry): ControlHandlers {
  return { [METRICS_OP]: () => registry.getMetricsAsJSON() };
}

/**
 * The primary's `/metrics`: its own registry (TURN, its process) plus every
 * worker's, aggregated at each scrape.
 * @param own the primary's registry (e.g. a ServerMetrics' `registry` with only the TURN source).
 * @param workers how the primary asks its workers.
 */
export function createPrimaryMetrics(own: Registry, workers: WorkerControl, timeoutMs = METRICS_TIMEOUT_MS): MetricsExposition {
  let missing = 0;
  new Gauge({
    name: 'rtcedge_metrics_workers_missing',
    help: 'SIP workers whose metrics the last scrape lacked (no answer in time); their counters are absent from it',
    registers: [own],
    collect() {
      this.set(missing);
    },
  });
  return {
    async exposition() {
      const answers = await workers.ask(METRICS_OP, null, timeoutMs);
      const got = answers.filter((a) => a.ok && Array.isArray(a.value)).map((a) => (a as { value: MetricsJson }).value);
      missing = answers.length - got.length;
      const merged = AggregatorRegistry.aggregate([await own.getMetricsAsJSON(), ...got]);
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
  };
}
