import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { BINDING_WRITER, meshBindingReplication } from '../../src/registrar/mesh-replication.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { SqliteStore, type BindingRecord } from '../../src/store/index.js';
import { SocketMesh } from '../../src/transport/socket-mesh.js';
import { atOnce } from '../helpers/sip-world.js';

const NOW_S = 1_800_000_000;
const AOR = 'sip:alice@example.test';

function binding(contactUri: string, userAgent: string): BindingRecord {
  return {
    aor: AOR, contact: `<${contactUri}>`, contactUri, expires: NOW_S + 600, q: null, callId: 'c1', cseq: 1,
    instance: null, regId: null, path: [], source: { transport: 'udp', address: '127.0.0.1', port: 5070, localPort: 5060 }, userAgent, updatedAt: NOW_S,
  };
}

interface Worker {
  mesh: SocketMesh;
  store: SqliteStore;
  location: LocationService;
}

describe('binding replication between workers over the mesh (one writer, changes carried)', () => {
  let dir: string;
  let workers: Worker[] = [];

  afterEach(async () => {
    for (const w of workers) await w.location.stop();
    await Promise.all(workers.map((w) => w.mesh.close()));
    for (const w of workers) w.store.close();
    workers = [];
    rmSync(dir, { recursive: true, force: true });
  });

  /** `count` workers in this process: each its mesh end (real Unix sockets), its connection to one SQLite file, its location service. */
  async function startWorkers(count: number): Promise<Worker[]> {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-meshrepl-'));
    const file = join(dir, 'rtcedge.db');
    workers = Array.from({ length: count }, (_, self) => {
      const mesh = new SocketMesh({ dir, self, count, logger: silentLogger });
      const store = new SqliteStore(file);
      const replication = meshBindingReplication(mesh, store, silentLogger, { ackTimeoutMs: 300 });
      return { mesh, store, location: new LocationService(replication.store, silentLogger, () => NOW_S, replication) };
    });
    await Promise.all(workers.map((w) => w.mesh.start(5000)));
    for (const w of workers) await w.location.start();
    return workers;
  }

  const contactsOf = (w: Worker) => w.location.lookup(AOR).map((b) => b.contactUri);

  it('a binding put through a worker that is not the writer is committed by the writer and found on every worker before committed() resolves', async () => {
    const [w0, w1, w2] = await startWorkers(3);
    expect(BINDING_WRITER).toBe(0);
    w1!.location.put(binding('sip:alice@127.0.0.1:5070', 'phone-1'));
    await w1!.location.committed();
    // Durable before the 200: in the file, as every worker's connection reads it.
    expect(w2!.store.listBindings(AOR).map((b) => b.contactUri)).toEqual(['sip:alice@127.0.0.1:5070']);
    for (const w of [w0!, w1!, w2!]) expect(contactsOf(w)).toEqual(['sip:alice@127.0.0.1:5070']);
    // The change itself travelled: every field as put, the source included.
    expect(w2!.location.findByContact('sip:alice@127.0.0.1:5070')).toEqual(binding('sip:alice@127.0.0.1:5070', 'phone-1'));

    // The writer's own change, then a removal from the third worker.
    w0!.location.put(binding('sip:alice@127.0.0.1:5072', 'phone-2'));
    await w0!.location.committed();
    for (const w of [w1!, w2!]) expect(contactsOf(w).sort()).toEqual(['sip:alice@127.0.0.1:5070', 'sip:alice@127.0.0.1:5072']);
    expect(w2!.location.remove(AOR, 'sip:alice@127.0.0.1:5070')).toBe(true);
    await w2!.location.committed();
    for (const w of [w0!, w1!, w2!]) expect(contactsOf(w)).toEqual(['sip:alice@127.0.0.1:5072']);
    w1!.location.removeAll(AOR);
    await w1!.location.committed();
    for (const w of [w0!, w1!, w2!]) expect(contactsOf(w)).toEqual([]);
    expect(w0!.store.listBindings(AOR)).toEqual([]);
  });

  it('a change of the same contact received from another worker while this worker has its own waiting to be committed ends as the store has it', async () => {
    const [w0, w1] = await startWorkers(2);
    // Worker 0 (the writer) changes the contact in this turn; worker 1's commit of the same contact is committed first.
    w0!.location.put(binding('sip:alice@127.0.0.1:5070', 'mine'));
    w0!.location.applyRemote([{ op: 'put', binding: binding('sip:alice@127.0.0.1:5070', 'theirs') }]);
    expect(atOnce(w0!.location.findByContact('sip:alice@127.0.0.1:5070'))?.userAgent).toBe('mine');
    await w0!.location.committed();
    expect(w0!.store.listBindings(AOR).map((b) => b.userAgent)).toEqual(['mine']);
    expect(atOnce(w1!.location.findByContact('sip:alice@127.0.0.1:5070'))?.userAgent).toBe('mine');
  });

  it('without the writer a worker commits to the store itself and carries the change to the others', async () => {
    const [w0, w1, w2] = await startWorkers(3);
    await w0!.mesh.close();
    w1!.location.put(binding('sip:alice@127.0.0.1:5070', 'phone-1'));
    await w1!.location.committed();
    expect(w1!.store.listBindings(AOR).map((b) => b.contactUri)).toEqual(['sip:alice@127.0.0.1:5070']);
    expect(contactsOf(w2!)).toEqual(['sip:alice@127.0.0.1:5070']);
  });
});
