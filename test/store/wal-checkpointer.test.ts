/**
 * WAL checkpoints in a worker thread (pauses): while the
 * server's connection commits bindings, the worker copies the WAL into the
 * database file, the server's connection only checkpoints past the fallback
 * bound, and nothing committed is lost. Real SQLite files in a temporary
 * directory.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { type BindingRecord, SqliteStore, startWalCheckpointer } from '../../src/store/index.js';

const NOW_S = 1_800_000_000;

function binding(i: number): BindingRecord {
  const contactUri = `sip:u${i}@127.0.0.1:${10000 + (i % 50000)}`;
  return {
    aor: `sip:user${i % 500}@example.test`, contact: `<${contactUri}>`, contactUri, expires: NOW_S + 3600, q: null,
    callId: `call-${i}@127.0.0.1`, cseq: i, instance: null, regId: null, path: [], source: null, userAgent: 'test', updatedAt: NOW_S,
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('startWalCheckpointer', () => {
  it('copies the WAL into the database from a worker while commits go on, and loses nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtcedge-wal-'));
    dirs.push(dir);
    const path = join(dir, 'rtcedge.db');
    const store = new SqliteStore(path);
    const checkpoints = startWalCheckpointer(store, silentLogger, { intervalMs: 20, fallbackPages: 5000 });
    expect(store.autoCheckpointPages()).toBe(5000);
    const sizeBefore = statSync(path).size;
    for (let i = 0; i < 3000; i++) {
      store.commitBindings([{ op: 'put', binding: binding(i) }]);
      if (i % 300 === 0) await new Promise((r) => setTimeout(r, 25));
    }
    await expect.poll(() => checkpoints.stats().pagesCopied, { timeout: 10_000 }).toBeGreaterThan(0);
    await checkpoints.stop();
    const stats = checkpoints.stats();
    expect(stats.failures).toBe(0);
    expect(stats.checkpoints).toBeGreaterThan(0);
    // The pages reached the database file itself, not only the WAL.
    expect(statSync(path).size).toBeGreaterThan(sizeBefore);
    store.close();
    const reader = new Database(path, { readonly: true });
    expect((reader.prepare('SELECT count(*) AS n FROM bindings').get() as { n: number }).n).toBe(3000);
    reader.close();
  });
});
