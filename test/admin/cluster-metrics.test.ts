/**
 * The primary's /metrics over several processes (admin/cluster-metrics.ts):
 * the workers' registries, as JSON (copied, as over IPC), summed with the
 * primary's own; bindings, AORs and bans taken once; a worker that does not
 * answer left out and counted. The same over real worker processes:
 * test/cluster/security-workers.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createPrimaryMetrics, METRICS_OP, metricsHandlers, type WorkerControl } from '../../src/admin/cluster-metrics.js';
import { ServerMetrics } from '../../src/admin/metrics.js';
import type { SipMessage } from '../../src/sip/message.js';

const invite = { kind: 'request', method: 'INVITE', uri: 'sip:bob@example.test', headers: [], body: Buffer.alloc(0) } as unknown as SipMessage;

/** A SIP worker's metrics: `k` INVITEs in, `k` server transactions; 3 bindings of 2 AORs and 1 ban, as every worker. */
function worker(k: number): ServerMetrics {
  const m = new ServerMetrics({ registrations: () => ({ aors: 2, bindings: 3 }), transactions: () => ({ server: k, client: 0 }), activeBans: () => 1 });
  for (let i = 0; i < k; i++) m.countSipMessage(invite, 'in');
  return m;
}

/** Workers asked in process; `silent` ones do not answer. */
function control(workers: ServerMetrics[], silent = new Set<number>()): WorkerControl {
  return {
    async ask(op, payload) {
      return Promise.all(
        workers.map(async (w, worker) => {
          if (silent.has(worker)) return { worker, ok: false as const, error: 'no answer' };
          const value = await metricsHandlers(w.registry)[op]!(payload);
          return { worker, ok: true as const, value: JSON.parse(JSON.stringify(value)) as unknown };
        }),
      );
    },
  };
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('createPrimaryMetrics', () => {
  const turn = () => ({ dataPlane: 'typescript' as const, allocations: 2, permissions: 0, channels: 0, relayed: [], drops: {} });

  it('sums counters and transactions over the workers, takes bindings, AORs and bans once, adds the primary\'s TURN', async () => {
    const primary = new ServerMetrics({ turn });
    const workers = [worker(1), worker(2)];
    const { body, contentType } = await createPrimaryMetrics(primary.registry, control(workers)).exposition();
    expect(contentType).toMatch(/^text\/plain/);
    expect(sample(body, 'rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBe(3);
    expect(sample(body, 'rtcedge_sip_transactions{kind="server"}')).toBe(3);
    expect(sample(body, 'rtcedge_bindings')).toBe(3);
    expect(sample(body, 'rtcedge_registered_aors')).toBe(2);
    expect(sample(body, 'rtcedge_bans')).toBe(1);
    expect(sample(body, 'rtcedge_turn_allocations')).toBe(2);
    expect(sample(body, 'rtcedge_metrics_workers_missing')).toBe(0);
    expect(body.match(/^# TYPE rtcedge_bindings /gm)).toHaveLength(1);
    for (const m of [primary, ...workers]) m.close();
  });

  it('leaves out a worker that does not answer and counts it', async () => {
    const primary = new ServerMetrics({ turn });
    const workers = [worker(1), worker(2)];
    const { body } = await createPrimaryMetrics(primary.registry, control(workers, new Set([1]))).exposition();
    expect(sample(body, 'rtcedge_metrics_workers_missing')).toBe(1);
    expect(sample(body, 'rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBe(1);
    expect(sample(body, 'rtcedge_bindings')).toBe(3);
    for (const m of [primary, ...workers]) m.close();
  });

  it('a worker answers the metrics operation with its registry as JSON', async () => {
    const w = worker(1);
    const json = (await metricsHandlers(w.registry)[METRICS_OP]!(null)) as { name: string; aggregator: string }[];
    expect(json.find((m) => m.name === 'rtcedge_bindings')?.aggregator).toBe('max');
    expect(json.find((m) => m.name === 'rtcedge_sip_requests_total')?.aggregator).toBe('sum');
    w.close();
  });
});
