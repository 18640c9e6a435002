/**
 * Checkpoints of the SQLite write-ahead log off the event loop. A
 * checkpoint copies the WAL's pages into the database file and syncs both
 * (https://sqlite.org/wal.html#checkpointing); by default SQLite runs one
 * inside the commit that takes the WAL past 1000 pages, so under a REGISTER
 * load one binding commit in a few hundred blocked the event loop for the
 * copy and two fsyncs (6–27 ms measured on this project's test machine, of
 * which ~2 ms CPU). Here a worker thread with its own connection runs a
 * PASSIVE checkpoint (it never waits for the writer, and the writer never
 * waits for it) every `intervalMs`; the server's own connection checkpoints
 * only past `fallbackPages`, a bound on the WAL should the worker fall
 * behind or stop.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { SqliteStore } from './sqlite-store.js';

/** Default WAL size (pages) past which the server's own connection checkpoints; also for connections whose checkpoints another process's worker runs. */
export const WAL_FALLBACK_PAGES = 10_000;

/** Settings of {@link startWalCheckpointer}. */
export interface WalCheckpointerOptions {
  /** Time between two checkpoints of the worker, ms; default 1000. */
  intervalMs?: number;
  /** WAL size (pages of 4 KiB) past which the server's connection checkpoints itself; default 10 000 (~40 MB). */
  fallbackPages?: number;
}

/** Counters of the worker's checkpoints. */
export interface WalCheckpointStats {
  /** Checkpoints run. */
  checkpoints: number;
  /** WAL pages copied into the database file. */
  pagesCopied: number;
  /** Checkpoints that failed (logged at warn); the fallback keeps the WAL bounded meanwhile. */
  failures: number;
  /** Longest checkpoint, ms (time in the worker, not on the event loop). */
  maxMs: number;
}

/** A running checkpointer: its counters and how to stop it. */
export interface WalCheckpointer {
  stats(): WalCheckpointStats;
  /** Runs one last checkpoint, then ends the worker. Resolves when it has exited. */
  stop(): Promise<void>;
}

/** The worker: CommonJS source run with `eval`, so that it needs no built file beside this one. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const checkpoint = () => {
  const t = performance.now();
  try {
    const r = db.pragma('wal_checkpoint(PASSIVE)')[0];
    parentPort.postMessage({ ok: true, pages: r.checkpointed, ms: performance.now() - t });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: String((e && e.message) || e) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

/**
 * Starts checkpointing `store`'s WAL in a worker thread and lowers the
 * server connection's own checkpoints to the `fallbackPages` bound.
 * Costs one thread and about 9 MB of RSS.
 * @throws Error when the worker cannot be created.
 */
export function startWalCheckpointer(store: SqliteStore, logger: Logger, opts: WalCheckpointerOptions = {}): WalCheckpointer {
  const log = logger.child({ component: 'store' });
  const stats: WalCheckpointStats = { checkpoints: 0, pagesCopied: 0, failures: 0, maxMs: 0 };
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { module, path: store.path, intervalMs: opts.intervalMs ?? 1000 },
    resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 },
  });
  store.setAutoCheckpointPages(opts.fallbackPages ?? WAL_FALLBACK_PAGES);
  worker.on('message', (m: { ok: true; pages: number; ms: number } | { ok: false; error: string }) => {
    if (!m.ok) {
      stats.failures++;
      log.warn({ error: m.error }, 'WAL checkpoint failed');
      return;
    }
    stats.checkpoints++;
    stats.pagesCopied += Math.max(0, m.pages);
    if (m.ms > stats.maxMs) stats.maxMs = m.ms;
  });
  worker.on('error', (err) => log.warn({ err }, 'WAL checkpoint worker stopped; the server connection checkpoints past the fallback bound'));
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    stats: () => ({ ...stats }),
    async stop() {
      worker.postMessage('stop');
      const late = setTimeout(() => void worker.terminate(), 5000);
      await exited;
      clearTimeout(late);
    },
  };
}
