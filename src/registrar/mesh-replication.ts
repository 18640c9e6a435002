import type { Logger } from '../log.js';
import type { WorkerMesh } from '../transport/worker-mesh.js';
import type { BindingReplication } from './binding-replication.js';

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
 * one SQLite store (WAL): after a commit, the worker asks every other worker
 * over the mesh (channel `bindings.changed`) to read the changed AORs again
 * and waits for their acknowledgements, at most `ackTimeoutMs` ms; a worker
 * that does not answer in time is logged (warn) and the registrar answers
 * anyway (the binding is durable, and that worker reads it at its next
 * reload or restart).
 */
export function meshBindingReplication(mesh: WorkerMesh, logger: Logger, opts: MeshReplicationOptions = {}): MeshBindingReplication {
  const log = logger.child({ component: 'replication' });
  const ackTimeoutMs = opts.ackTimeoutMs ?? 500;
  let listener: (aors: readonly string[]) => void | Promise<void> = () => {};
  mesh.on('bindings.changed', async (_from, payload) => {
    await listener(payload as string[]);
    return true;
  });
  return {
    async announce(aors) {
      if (mesh.count < 2 || aors.length === 0) return;
      const list = [...aors];
      const peers: number[] = [];
      for (let i = 0; i < mesh.count; i++) if (i !== mesh.self) peers.push(i);
      const results = await Promise.allSettled(peers.map((i) => mesh.request(i, 'bindings.changed', list, ackTimeoutMs)));
      const missing = peers.filter((_, k) => results[k]!.status === 'rejected');
      if (missing.length > 0) {
        log.warn({ workers: missing, aors: list.length, err: (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason?.message }, 'binding change not acknowledged by every worker');
      }
    },
    onRemoteChange(l) {
      listener = l;
    },
    async remoteChange(aors) {
      await listener(aors);
    },
  };
}
