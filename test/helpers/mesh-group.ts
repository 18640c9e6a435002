/**
 * N {@link WorkerMesh}es joined in one process, for tests of what the SIP
 * workers share. Delivery is asynchronous (a later turn of the event loop,
 * as over a socket), and every payload is copied on the way: through JSON
 * (a Buffer is carried as bytes, as the mesh promises), so no object is
 * shared by reference between the workers of a test.
 */
import type { MeshHandler, MeshPayload, WorkerMesh } from '../../src/transport/worker-mesh.js';
import { decodeFrame, encodeFrame } from '../../src/transport/socket-mesh.js';

/** Connections to other workers opening (`up`) and lost, as the socket mesh reports them. */
interface PeerChanges {
  onPeerChange(listener: (worker: number, up: boolean) => void): void;
}

/** The meshes of one group and its controls. */
export interface MeshGroup {
  /** meshes[i] is worker i's view. */
  meshes: (WorkerMesh & PeerChanges)[];
  /** Messages delivered so far, by channel (requests and one-way sends alike). */
  delivered: Map<string, number>;
  /** Take worker `i` off the mesh: messages to it are dropped, requests to it time out; the others are told (`onPeerChange`). */
  disconnect(i: number): void;
  /** Put worker `i` back (as a restarted worker: its handlers are kept); the others are told. */
  reconnect(i: number): void;
  /** Resolves once every message sent so far (and what its handlers sent in turn) is delivered. */
  settle(): Promise<void>;
}

/** What a payload becomes on the way: the socket mesh's own framing and back (JSON, bytes, text and bytes). */
function copy(payload: MeshPayload): MeshPayload {
  return decodeFrame(encodeFrame([1, 'copy', 0, payload]).subarray(4))[3];
}

/** A group of `count` workers (count ≥ 1). */
export function meshGroup(count: number): MeshGroup {
  const handlers: Map<string, MeshHandler>[] = Array.from({ length: count }, () => new Map());
  const peerListeners: ((worker: number, up: boolean) => void)[][] = Array.from({ length: count }, () => []);
  const tellOthers = (i: number, up: boolean): void => {
    for (let w = 0; w < count; w++) if (w !== i && !down.has(w)) for (const l of peerListeners[w]!) later(() => l(i, up));
  };
  const down = new Set<number>();
  const delivered = new Map<string, number>();
  let inFlight = 0;
  const idle: (() => void)[] = [];

  const later = (fn: () => void): void => {
    inFlight++;
    setImmediate(() => {
      try {
        fn();
      } finally {
        inFlight--;
        if (inFlight === 0) for (const w of idle.splice(0)) w();
      }
    });
  };
  /** Run worker `to`'s handler of `channel`; resolves with its answer (copied). */
  const deliver = (from: number, to: number, channel: string, payload: MeshPayload): Promise<unknown> | undefined => {
    if (down.has(to)) return undefined;
    const h = handlers[to]!.get(channel);
    delivered.set(channel, (delivered.get(channel) ?? 0) + 1);
    if (!h) return Promise.reject(new Error(`worker ${to} has no handler for ${channel}`));
    return Promise.resolve()
      .then(() => h(from, copy(payload)))
      .then(copy);
  };

  const meshes = Array.from({ length: count }, (_, self) => {
    const send = (to: number, channel: string, payload: MeshPayload): boolean => {
      if (to === self || to < 0 || to >= count) throw new RangeError(`worker ${self} cannot send to ${to}`);
      const body = copy(payload);
      later(() => void deliver(self, to, channel, body)?.catch(() => {}));
      return !down.has(to);
    };
    const mesh: WorkerMesh & PeerChanges = {
      self,
      count,
      send,
      broadcast(channel, payload) {
        for (let to = 0; to < count; to++) if (to !== self) send(to, channel, payload);
      },
      request(to, channel, payload, timeoutMs) {
        if (to === self || to < 0 || to >= count) return Promise.reject(new RangeError(`worker ${self} cannot ask ${to}`));
        const body = copy(payload);
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no answer from worker ${to} on ${channel} within ${timeoutMs} ms`)), timeoutMs);
          later(() => {
            const answer = deliver(self, to, channel, body);
            if (!answer) return;
            answer.then(
              (v) => {
                clearTimeout(timer);
                resolve(v);
              },
              (err: unknown) => {
                clearTimeout(timer);
                reject(err instanceof Error ? err : new Error(String(err)));
              },
            );
          });
        });
      },
      on(channel, handler) {
        handlers[self]!.set(channel, handler);
      },
      onPeerChange(listener) {
        peerListeners[self]!.push(listener);
      },
    };
    return mesh;
  });

  return {
    meshes,
    delivered,
    disconnect(i) {
      down.add(i);
      tellOthers(i, false);
    },
    reconnect(i) {
      down.delete(i);
      tellOthers(i, true);
    },
    async settle() {
      // Handlers may answer in promise callbacks and send more: wait until nothing is queued for a few turns.
      for (let quiet = 0; quiet < 3; ) {
        if (inFlight > 0) {
          await new Promise<void>((r) => idle.push(r));
          quiet = 0;
        } else {
          await new Promise((r) => setImmediate(r));
          quiet++;
        }
      }
    },
  };
}
