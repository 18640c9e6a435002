import type { Logger } from '../log.js';
import type { BindingChange } from '../store/index.js';
import type { WorkerMesh } from '../transport/worker-mesh.js';
import type { BindingReplication } from './binding-replication.js';

/** Changes carried in one mesh request at most (a binding is ~0.5 KB of JSON; frames are at most 1 MiB). */
export const CHANGES_PER_FRAME = 256;

/** Options of {@link meshBindingReplication}. */
export interface MeshReplicationOptions {
  /** How long an announcement waits for the other workers' acknowledgements, ms; default 500. */
  ackTimeoutMs?: number;
}

/** A {@link BindingReplication} that can also be fed changes from outside the mesh (the primary's admin API). */
export interface MeshBindingReplication extends BindingReplication {
  /** Run the listener for AORs changed elsewhere (as a peer's announcement does); resolves when read again. */
  remoteChange(aors: readonly string[]): Promise<void>;
}

/**
 * Binding replication between the SIP workers of one instance, which share
 * one SQLite store (WAL): after a commit, the worker sends the committed
 * changes themselves to every other worker over the mesh (channel
 * `bindings.changes`, at most {@link CHANGES_PER_FRAME} per request), which
 * apply them to memory without reading the store, and waits for their
 * acknowledgements, at most `ackTimeoutMs` ms; a worker that does not answer
 * in time is logged (warn) and the registrar answers anyway (the binding is
 * durable, and that worker reads it at its next reload or restart).
 * `announce(aors)` (channel `bindings.changed`: read these AORs again from
 * the store) remains for changes made outside the workers.
 */
export function meshBindingReplication(mesh: WorkerMesh, logger: Logger, opts: MeshReplicationOptions = {}): MeshBindingReplication {
  const log = logger.child({ component: 'replication' });
  const ackTimeoutMs = opts.ackTimeoutMs ?? 500;
  let listener: (aors: readonly string[]) => void | Promise<void> = () => {};
  let changesListener: (changes: readonly BindingChange[]) => void = () => {};
  mesh.on('bindings.changed', async (_from, payload) => {
    await listener(payload as string[]);
    return true;
  });
  mesh.on('bindings.changes', (_from, payload) => {
    changesListener(payload as BindingChange[]);
    return true;
  });
  /** Send `payloads` on `channel` to every other worker and wait for each answer (bounded); logs who did not answer. */
  const toEveryWorker = async (channel: string, payloads: readonly unknown[], what: number): Promise<void> => {
    if (mesh.count < 2 || payloads.length === 0) return;
    const peers: number[] = [];
    for (let i = 0; i < mesh.count; i++) if (i !== mesh.self) peers.push(i);
    const results = await Promise.allSettled(peers.flatMap((i) => payloads.map((p) => mesh.request(i, channel, p, ackTimeoutMs))));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      const missing = [...new Set(peers.filter((_, k) => results.slice(k * payloads.length, (k + 1) * payloads.length).some((r) => r.status === 'rejected')))];
      log.warn({ workers: missing, changes: what, err: (results[failed] as PromiseRejectedResult).reason?.message }, 'binding change not acknowledged by every worker');
    }
  };
  return {
    async announce(aors) {
      await toEveryWorker('bindings.changed', aors.length ? [[...aors]] : [], aors.length);
    },
    async announceChanges(changes) {
      const frames: BindingChange[][] = [];
      for (let i = 0; i < changes.length; i += CHANGES_PER_FRAME) frames.push(changes.slice(i, i + CHANGES_PER_FRAME));
      await toEveryWorker('bindings.changes', frames, changes.length);
    },
    onRemoteChange(l) {
      listener = l;
    },
    onRemoteChanges(l) {
      changesListener = l;
    },
    async remoteChange(aors) {
      await listener(aors);
    },
  };
}
