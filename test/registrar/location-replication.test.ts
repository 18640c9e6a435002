import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import type { BindingReplication } from '../../src/registrar/binding-replication.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { SqliteStore, type BindingRecord } from '../../src/store/index.js';
import { atOnce } from '../helpers/sip-world.js';

const NOW_S = 1_800_000_000;

function binding(aor: string, contactUri: string): BindingRecord {
  return {
    aor, contact: `<${contactUri}>`, contactUri, expires: NOW_S + 600, q: null, callId: 'c1', cseq: 1,
    instance: null, regId: null, path: [], source: null, userAgent: null, updatedAt: NOW_S,
  };
}

/** Replications joined in one process: an announcement runs the other listeners and waits for them. */
function replicationGroup(): () => BindingReplication & { announced: string[][] } {
  const listeners: ((aors: readonly string[]) => void | Promise<void>)[] = [];
  return () => {
    let mine: ((aors: readonly string[]) => void | Promise<void>) | undefined;
    const self = {
      announced: [] as string[][],
      async announce(aors: readonly string[]) {
        self.announced.push([...aors]);
        await Promise.all(listeners.filter((l) => l !== mine).map((l) => l(aors)));
      },
      onRemoteChange(l: (aors: readonly string[]) => void | Promise<void>) {
        mine = l;
        listeners.push(l);
      },
    };
    return self;
  };
}

describe('location services sharing one store (several workers)', () => {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('a binding committed by one is found by the other once committed() resolves, and its removal too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rtcedge-repl-'));
    dirs.push(dir);
    const file = join(dir, 'rtcedge.db');
    const [storeA, storeB] = [new SqliteStore(file), new SqliteStore(file)];
    stores.push(storeA, storeB);
    const join2 = replicationGroup();
    const [replA, replB] = [join2(), join2()];
    const a = new LocationService(storeA, silentLogger, () => NOW_S, replA);
    const b = new LocationService(storeB, silentLogger, () => NOW_S, replB);
    await a.start();
    await b.start();

    a.put(binding('sip:alice@example.test', 'sip:alice@127.0.0.1:5070'));
    expect(b.lookup('sip:alice@example.test')).toEqual([]);
    await a.committed();
    expect(replA.announced).toEqual([['sip:alice@example.test']]);
    expect(b.lookup('sip:alice@example.test').map((x) => x.contactUri)).toEqual(['sip:alice@127.0.0.1:5070']);
    expect(atOnce(b.findByContact('sip:alice@127.0.0.1:5070'))?.aor).toBe('sip:alice@example.test');

    a.removeAll('sip:alice@example.test');
    await a.committed();
    expect(b.lookup('sip:alice@example.test')).toEqual([]);
    expect(b.findByContact('sip:alice@127.0.0.1:5070')).toBeUndefined();
    expect(storeB.listBindings('sip:alice@example.test')).toEqual([]);
    await a.stop();
    await b.stop();
  });
});
