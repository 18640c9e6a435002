/**
 * Questions of the primary to its SIP workers (binding changes, reloads,
 * metrics) waiting for the worker's reply over the cluster IPC channel
 * (cluster/ipc.ts). Each waits at most its timeout; at most
 * {@link MAX_PENDING_ASKS} wait at once, and one more is answered "no reply"
 * (undefined) at once without being sent.
 */
import type { FromWorker, ToWorker } from './ipc.js';

/** Questions to the workers waiting for an answer at once; beyond, a question gets no answer (undefined). */
export const MAX_PENDING_ASKS = 10_000;

/** A worker's reply to one question. */
export type WorkerReply = Extract<FromWorker, { type: 'reply' }>;

/** What a question needs of a worker (node:cluster's Worker has this shape). */
export interface AskedWorker {
  isConnected(): boolean;
  send(message: ToWorker): unknown;
}

/** The questions waiting for a reply, by id (see the module comment). */
export class WorkerQuestions {
  private readonly pending = new Map<number, (m: WorkerReply | undefined) => void>();
  private nextId = 1;

  /** Questions waiting now, 0 ≤ n ≤ {@link MAX_PENDING_ASKS}. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Send `build(id)` to `worker` and wait for its reply.
   * @param timeoutMs how long to wait, ms.
   * @returns the reply, or undefined when the worker is absent or not connected, {@link MAX_PENDING_ASKS}
   *   questions already wait, or no reply came within `timeoutMs`. Never rejects.
   */
  ask(worker: AskedWorker | undefined, build: (id: number) => ToWorker, timeoutMs: number): Promise<WorkerReply | undefined> {
    if (!worker || !worker.isConnected() || this.pending.size >= MAX_PENDING_ASKS) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(m);
      });
      worker.send(build(id));
    });
  }

  /** A reply from a worker: settles the question with its id (ignored when none waits, e.g. after its timeout). */
  answer(m: WorkerReply): void {
    this.pending.get(m.id)?.(m);
  }
}
