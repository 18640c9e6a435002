/**
 * The location service's purge of expired bindings (RFC 3261 §10.2.1.1: a
 * binding lives until its expiry) over many AORs: memory and the SQLite store
 * lose exactly the expired bindings, and the walk gives the event loop back
 * between slices instead of holding it for every AOR at once (pauses).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { LocationService, PURGE_SLICE_AORS } from '../../src/registrar/location-service.js';
import { type BindingRecord, SqliteStore } from '../../src/store/index.js';

const NOW_S = 1_800_000_000;

function binding(aor: string, port: number, expires: number): BindingRecord {
  const contactUri = `sip:u@127.0.0.1:${port}`;
  return {
    aor, contact: `<${contactUri}>`, contactUri, expires, q: null, callId: 'c1', cseq: 1,
    instance: null, regId: null, path: [], source: null, userAgent: null, updatedAt: NOW_S - 60,
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A location service on a new SQLite store, on a clock the test moves (unix s), its purge timer out of the way. */
async function startLocation(): Promise<{ store: SqliteStore; clock: { nowS: number }; location: LocationService }> {
  const dir = mkdtempSync(join(tmpdir(), 'rtcedge-purge-'));
  dirs.push(dir);
  const store = new SqliteStore(join(dir, 'rtcedge.db'));
  const clock = { nowS: NOW_S - 100 };
  const location = new LocationService(store, silentLogger, () => clock.nowS);
  await location.start(3_600_000);
  return { store, clock, location };
}

describe('LocationService.purge and counts', () => {
  it('removes exactly the expired bindings from memory and store, in slices that let other work run', async () => {
    const { store, clock, location } = await startLocation();
    const aors = 3 * PURGE_SLICE_AORS;
    // Every AOR has a binding that expires at NOW_S; every other AOR also one that lives on.
    for (let i = 0; i < aors; i++) {
      location.put(binding(`sip:user${i}@example.test`, 10000 + (i % 50000), NOW_S));
      if (i % 2 === 0) location.put(binding(`sip:user${i}@example.test`, 60000, NOW_S + 600));
    }
    await location.committed();
    clock.nowS = NOW_S;

    // At NOW_S the first bindings have expired: counted out at once, before any purge.
    expect(location.counts()).toEqual({ aors: aors / 2, bindings: aors / 2 });
    let otherWorkRan = false;
    setImmediate(() => (otherWorkRan = true));
    const removed = await location.purge();
    expect(otherWorkRan).toBe(true);
    expect(removed).toBe(aors);
    expect(location.aors().length).toBe(aors / 2);
    expect(location.lookup('sip:user0@example.test').map((b) => b.contactUri)).toEqual(['sip:u@127.0.0.1:60000']);
    expect(location.findByContact('sip:u@127.0.0.1:10001')).toBeUndefined();
    expect(store.allBindings().length).toBe(aors / 2);
    expect(store.allBindings().every((b) => b.expires === NOW_S + 600)).toBe(true);
    await location.stop();
    store.close();
  });

  it('ends a purge under way at its next slice when the service stops', async () => {
    const { store, clock, location } = await startLocation();
    for (let i = 0; i < 3 * PURGE_SLICE_AORS; i++) location.put(binding(`sip:user${i}@example.test`, 10000 + i, NOW_S));
    await location.committed();
    clock.nowS = NOW_S;
    const purge = location.purge();
    await location.stop();
    expect(await purge).toBe(PURGE_SLICE_AORS);
    store.close();
  });
});
