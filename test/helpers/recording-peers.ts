/**
 * A {@link WorkerPeers} of two workers (this one is `self`) whose handlers a
 * test calls directly and whose outgoing messages it reads: for driving the
 * mesh entry points of a security piece many thousand times without a mesh.
 */
import type { WorkerPeers } from '../../src/security/worker-peers.js';

/** The peers, what was sent through them, and a way to deliver a message as from worker `from`. */
export interface RecordingPeers extends WorkerPeers {
  /** One-way messages sent (send and broadcast), in order: [to (-1 = all), channel, payload]. */
  sent: [number, string, unknown][];
  /** Requests' answers: `answer(channel, payload)` is what `request` resolves with. */
  answer: (channel: string, payload: unknown) => unknown;
  /** Run this worker's handler of `channel` as if `from` sent `payload`; returns the handler's answer. */
  deliver(from: number, channel: string, payload: unknown): unknown;
}

/** Peers of `count` workers (default 2), this one being `self` (default 0); requests are answered with null. */
export function recordingPeers(self = 0, count = 2): RecordingPeers {
  const handlers = new Map<string, (from: number, payload: unknown) => unknown>();
  const peers: RecordingPeers = {
    self,
    count,
    sent: [],
    answer: () => null,
    send: (to, channel, payload) => void peers.sent.push([to, channel, payload]),
    broadcast: (channel, payload) => void peers.sent.push([-1, channel, payload]),
    request: async (_to, channel, payload) => peers.answer(channel, payload),
    on: (channel, handler) => void handlers.set(channel, handler),
    deliver: (from, channel, payload) => handlers.get(channel)?.(from, payload),
  };
  return peers;
}
