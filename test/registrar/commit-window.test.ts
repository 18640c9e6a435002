/**
 * Group commit of the location service (`sip.registrar.commit_window_ms`): a
 * change made within the window of the last commit waits for the window's
 * end, and the changes of that window go to SQLite in one transaction;
 * nothing is reported committed before it is in the store; an idle service
 * (and a window of 0) commits right after the turn; stop() commits what waits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { type BindingChange, type BindingRecord, SqliteStore } from '../../src/store/index.js';

const NOW_S = 1_800_000_000;

function binding(user: number): BindingRecord {
  const contactUri = `sip:u${user}@127.0.0.1:${5000 + user}`;
  return {
    aor: `sip:user${user}@example.test`, contact: `<${contactUri}>`, contactUri, expires: NOW_S + 600, q: null, callId: `c${user}`, cseq: 1,
    instance: null, regId: null, path: [], source: null, userAgent: null, updatedAt: NOW_S,
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A started location service on a new SQLite store whose commits are recorded (the changes of each). */
async function start(commitWindowMs?: number): Promise<{ store: SqliteStore; location: LocationService; commits: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'rtcedge-window-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'rtcedge.db'));
  const commits: number[] = [];
  const commit = store.commitBindings.bind(store);
  store.commitBindings = (changes: readonly BindingChange[]) => {
    commits.push(changes.length);
    return commit(changes);
  };
  const location = new LocationService(store, silentLogger, () => NOW_S, undefined, undefined, commitWindowMs === undefined ? {} : { commitWindowMs });
  await location.start(3_600_000);
  return { store, location, commits };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('LocationService commit window', () => {
  it('commits the changes made within the window of the last commit together, at its end, and only then reports them committed', async () => {
    const { store, location, commits } = await start(400);
    // Idle: the first change is committed right after its turn.
    location.put(binding(0));
    await location.committed();
    expect(commits).toEqual([1]);
    // Three more in three later turns, inside the window: none is committed yet.
    let reported = false;
    for (let i = 1; i <= 3; i++) {
      await turn();
      location.put(binding(i));
    }
    const done = location.committed().then(() => (reported = true));
    await turn();
    await turn();
    expect(commits).toEqual([1]);
    expect(reported).toBe(false);
    expect(store.allBindings().map((b) => b.callId)).toEqual(['c0']);
    // Memory has them already (lookups do not wait for the store).
    expect(location.lookup('sip:user3@example.test')).toHaveLength(1);
    await done;
    expect(commits).toEqual([1, 3]);
    expect(store.allBindings().map((b) => b.callId).sort()).toEqual(['c0', 'c1', 'c2', 'c3']);
    await location.stop();
    store.close();
  });

  it('stop() commits what waits for the window at once', async () => {
    const { store, location, commits } = await start(60_000);
    location.put(binding(0));
    await location.committed();
    await turn();
    location.put(binding(1));
    location.put(binding(2));
    await location.stop();
    expect(commits).toEqual([1, 2]);
    expect(store.allBindings()).toHaveLength(3);
    store.close();
  });

  it('without a window (the default of the class) each turn commits its own changes', async () => {
    const { store, location, commits } = await start();
    for (let i = 0; i < 3; i++) {
      location.put(binding(i));
      await location.committed();
    }
    location.put(binding(3));
    location.put(binding(4));
    await location.committed();
    expect(commits).toEqual([1, 1, 1, 2]);
    await location.stop();
    store.close();
  });

  it('refuses a negative or non-finite window', () => {
    const store = {} as SqliteStore;
    expect(() => new LocationService(store, silentLogger, undefined, undefined, undefined, { commitWindowMs: -1 })).toThrow(RangeError);
    expect(() => new LocationService(store, silentLogger, undefined, undefined, undefined, { commitWindowMs: Number.NaN })).toThrow(RangeError);
  });
});
