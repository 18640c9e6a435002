import type { Logger } from '../log.js';
import type { BindingChange, BindingStore } from '../store/index.js';
import type { WorkerMesh } from '../transport/worker-mesh.js';
import type { BindingReplication } from './binding-replication.js';

/** Changes carried in one mesh request at most (a binding is ~0.5 KB of JSON; frames are at most 1 MiB). */
export const CHANGES_PER_FRAME = 256;

/** The worker that writes every worker's bindings to the store (see {@link meshBindingReplication}). */
export const BINDING_WRITER = 0;

/** Options of {@link meshBindingReplication}. */
export interface MeshReplicationOptions {
  /** How long an announcement or a commit handed to the writer waits for an answer, ms; default 500. */
  ackTimeoutMs?: number;
}

/** A {@link BindingReplication} that can also be fed changes from outside the mesh (the primary's admin API). */
export interface MeshBindingReplication extends BindingReplication {
  /** Run the listener for AORs changed elsewhere (as a peer's announcement does); resolves when read again. */
  remoteChange(aors: readonly string[]): Promise<void>;
  /**
   * The store this worker's location service writes through: `store`, except
   * that on a worker other than {@link BINDING_WRITER} a commit is handed to
   * the writer (channel `bindings.commit`), which commits it and applies it to
   * its memory before answering; when the writer does not answer (not
   * connected, restarting, `ackTimeoutMs` passed, its commit failed) the
   * worker commits to `store` itself, so a commit never waits longer than that.
   */
  readonly store: BindingStore;
}

/**
 * Binding replication between the SIP workers of one instance, which share
 * one SQLite store (WAL).
 *
 * One writer: worker {@link BINDING_WRITER} commits every worker's binding
 * changes (the others hand theirs over the mesh, see
 * {@link MeshBindingReplication.store}), so SQLite's page cache of the
 * writing process stays valid (a commit by another process empties it, and
 * then every statement reads its pages again) and the other workers do not
 * touch the store per REGISTER.
 *
 * Changes, not reloads: after a commit the changes themselves go to every
 * worker that does not hold them yet (channel `bindings.changes`, at most
 * {@link CHANGES_PER_FRAME} per request; the writer sends what it committed
 * for another worker to the rest), which apply them to memory without
 * reading the store. The committing side waits for their acknowledgements, at
 * most `ackTimeoutMs` ms; a worker that does not answer in time is logged
 * (warn) and the registrar answers anyway (the binding is durable, and that
 * worker reads it at its next reload or restart). `announce(aors)` (channel
 * `bindings.changed`: read these AORs again from the store) remains for
 * changes made outside the workers.
 */
export function meshBindingReplication(mesh: WorkerMesh, store: BindingStore, logger: Logger, opts: MeshReplicationOptions = {}): MeshBindingReplication {
  const log = logger.child({ component: 'replication' });
  const ackTimeoutMs = opts.ackTimeoutMs ?? 500;
  let listener: (aors: readonly string[]) => void | Promise<void> = () => {};
  let changesListener: (changes: readonly BindingChange[]) => void = () => {};
  /** Change lists the writer committed and passed on for this worker (the location service's announceChanges then has nothing to do). */
  const handedToWriter = new WeakSet<readonly BindingChange[]>();

  /** Send `payloads` on `channel` to every other worker but `except` and wait for each answer (bounded); logs who did not answer. */
  const toWorkers = async (channel: string, payloads: readonly unknown[], what: number, except = -1): Promise<void> => {
    const peers: number[] = [];
    for (let i = 0; i < mesh.count; i++) if (i !== mesh.self && i !== except) peers.push(i);
    if (peers.length === 0 || payloads.length === 0) return;
    const results = await Promise.allSettled(peers.flatMap((i) => payloads.map((p) => mesh.request(i, channel, p, ackTimeoutMs))));
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      const missing = peers.filter((_, k) => results.slice(k * payloads.length, (k + 1) * payloads.length).some((r) => r.status === 'rejected'));
      log.warn({ workers: missing, changes: what, err: (results[failed] as PromiseRejectedResult).reason?.message }, 'binding change not acknowledged by every worker');
    }
  };
  const framesOf = (changes: readonly BindingChange[]): BindingChange[][] => {
    const frames: BindingChange[][] = [];
    for (let i = 0; i < changes.length; i += CHANGES_PER_FRAME) frames.push(changes.slice(i, i + CHANGES_PER_FRAME));
    return frames;
  };

  mesh.on('bindings.changed', async (_from, payload) => {
    await listener(payload as string[]);
    return true;
  });
  mesh.on('bindings.changes', (_from, payload) => {
    changesListener(payload as BindingChange[]);
    return true;
  });
  // The writer: commit another worker's changes, hold them in memory, pass them on to the rest, then answer.
  mesh.on('bindings.commit', async (from, payload) => {
    const changes = payload as BindingChange[];
    const done = store.commitBindings(changes);
    if (done instanceof Promise) await done;
    changesListener(changes);
    await toWorkers('bindings.changes', [changes], changes.length, from);
    return true;
  });

  const forwardingStore: BindingStore = {
    async commitBindings(changes) {
      try {
        await Promise.all(framesOf(changes).map((f) => mesh.request(BINDING_WRITER, 'bindings.commit', f, ackTimeoutMs)));
        handedToWriter.add(changes);
        return;
      } catch (err) {
        log.debug({ err: (err as Error).message, changes: changes.length }, 'binding writer did not commit: committing here');
      }
      // Upserts and deletes by key: committing again what the writer may have committed late changes nothing.
      await store.commitBindings(changes);
    },
    listBindings: (aor) => store.listBindings(aor),
    allBindings: () => store.allBindings(),
    deleteExpiredBindings: (nowS) => store.deleteExpiredBindings(nowS),
  };

  return {
    store: mesh.count > 1 && mesh.self !== BINDING_WRITER ? forwardingStore : store,
    async announce(aors) {
      await toWorkers('bindings.changed', aors.length ? [[...aors]] : [], aors.length);
    },
    async announceChanges(changes) {
      if (handedToWriter.has(changes)) return;
      await toWorkers('bindings.changes', framesOf(changes), changes.length);
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
