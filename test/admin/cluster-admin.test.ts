/**
 * `/metrics` and the admin API of an instance with several processes
 * (admin/cluster-metrics.ts, admin/primary-admin.ts, admin/worker-control.ts),
 * on real forked processes: a cluster primary with the admin listener and two
 * SIP workers over one SQLite store (fixtures/admin-cluster.mjs, from dist/).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = new URL('./fixtures/admin-cluster.mjs', import.meta.url).pathname;
const TOKEN = { authorization: 'Bearer admin-token' };

/** The value of one sample line `name{labels} value` of an exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('admin listener of a primary with two SIP workers (node:cluster)', () => {
  let dir: string;
  let primary: ChildProcess;
  let base: string;
  let workerPids: number[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-cluster-'));
    primary = spawn(process.execPath, [FIXTURE, dir, '1000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await new Promise<{ port: number; workers: number[] }>((resolve, reject) => {
      let out = '';
      primary.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as { port: number; workers: number[] });
      });
      primary.once('exit', (code) => reject(new Error(`the primary exited with ${code}`)));
    });
    base = `http://127.0.0.1:${ready.port}`;
    workerPids = ready.workers;
  });

  afterAll(async () => {
    for (const pid of workerPids ?? []) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // already gone
      }
    }
    if (primary && primary.exitCode === null) {
      const exited = new Promise((r) => primary.once('exit', r));
      primary.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('/metrics sums the workers\' counters and transactions, takes bindings, AORs and bans once, and adds the primary\'s TURN', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    // Worker 1 counted 1 INVITE, worker 2 counted 2.
    expect(sample(text, 'rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBe(3);
    expect(sample(text, 'rtcedge_sip_transactions{kind="server"}')).toBe(3);
    // Both workers hold the same 3 bindings of 2 AORs and the same ban: not multiplied.
    expect(sample(text, 'rtcedge_bindings')).toBe(3);
    expect(sample(text, 'rtcedge_registered_aors')).toBe(2);
    expect(sample(text, 'rtcedge_bans')).toBe(1);
    expect(sample(text, 'rtcedge_turn_allocations')).toBe(2);
    expect(sample(text, 'rtcedge_metrics_workers_missing')).toBe(0);
    // Three processes' resident memory, summed: more than the primary's alone.
    expect(sample(text, 'rtcedge_process_resident_memory_bytes')).toBeGreaterThan(process.memoryUsage().rss);
    expect(text.match(/^# TYPE rtcedge_bindings /gm)).toHaveLength(1);
  });

  it('lists registrations from the store; a removal reaches every worker\'s location service', async () => {
    const listed = (await (await fetch(`${base}/api/registrations`, { headers: TOKEN })).json()) as { aor: string; bindings: unknown[] }[];
    expect(listed.map((r) => [r.aor, r.bindings.length])).toEqual([['sip:alice@example.test', 2], ['sip:bob@example.test', 1]]);

    const del = await fetch(`${base}/api/registrations?aor=${encodeURIComponent('sip:alice@example.test')}`, { method: 'DELETE', headers: TOKEN });
    expect(await del.json()).toEqual({ removed: 2 });
    const text = await (await fetch(`${base}/metrics`)).text();
    // Had either worker kept alice's bindings, the largest value would still be 3.
    expect(sample(text, 'rtcedge_bindings')).toBe(1);
    expect(sample(text, 'rtcedge_registered_aors')).toBe(1);
  });

  it('reload runs in the primary and in every worker', async () => {
    const res = await fetch(`${base}/api/reload`, { method: 'POST', headers: TOKEN });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ reloaded: ['log.level', 'turn.tls'] });
  });

  it('a worker that does not answer is left out of the scrape and counted as missing', async () => {
    process.kill(workerPids[1]!, 'SIGSTOP');
    try {
      const text = await (await fetch(`${base}/metrics`)).text();
      expect(sample(text, 'rtcedge_metrics_workers_missing')).toBe(1);
      expect(sample(text, 'rtcedge_sip_requests_total{direction="in",method="INVITE"}')).toBe(1);
      expect(sample(text, 'rtcedge_bindings')).toBe(1);
    } finally {
      process.kill(workerPids[1]!, 'SIGCONT');
    }
  });
});
