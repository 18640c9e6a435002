/**
 * The primary's questions to its SIP workers over node:cluster IPC (the
 * process channel every cluster worker has): the primary asks every worker
 * the same operation and collects their answers; a worker answers with the
 * handler of that operation. Used by the admin API and `/metrics` of an
 * instance with several workers (cluster-metrics.ts, primary-admin.ts).
 *
 * Messages: `{ type: 'rtcedge:control', id, op, payload }` to a worker,
 * `{ type: 'rtcedge:control-answer', id, value }` or `{ ..., error }` back.
 */
import cluster, { type Worker } from 'node:cluster';

const ASK = 'rtcedge:control';
const ANSWER = 'rtcedge:control-answer';
/** Questions awaiting answers at most; more are refused at once. */
export const MAX_PENDING_QUESTIONS = 256;

/** One worker's answer: its value, or why there is none (its handler threw, or it did not answer in time). */
export type WorkerAnswer = { worker: number; ok: true; value: unknown } | { worker: number; ok: false; error: string };

/** How the primary asks its workers. */
export interface WorkerControl {
  /**
   * Ask every connected worker `op` with `payload` and wait for all answers,
   * at most `timeoutMs` ms (the missing ones are answers with `ok: false`).
   * `worker` is the cluster worker id. Never rejects.
   */
  ask(op: string, payload: unknown, timeoutMs: number): Promise<WorkerAnswer[]>;
  /** Stop listening (pending questions end with what they have). */
  close(): void;
}

interface Pending {
  answers: WorkerAnswer[];
  waiting: Set<number>;
  finish(): void;
}

interface AnswerMessage {
  type: typeof ANSWER;
  id: number;
  value?: unknown;
  error?: string;
}

/**
 * The primary's {@link WorkerControl} over `cluster.workers`.
 * @throws Error when called outside the cluster primary.
 */
export function clusterWorkerControl(): WorkerControl {
  if (!cluster.isPrimary) throw new Error('clusterWorkerControl runs in the cluster primary');
  const pending = new Map<number, Pending>();
  let nextId = 1;
  const onMessage = (worker: Worker, msg: unknown): void => {
    const m = msg as Partial<AnswerMessage> | null;
    if (!m || m.type !== ANSWER || typeof m.id !== 'number') return;
    const p = pending.get(m.id);
    if (!p || !p.waiting.delete(worker.id)) return;
    p.answers.push(m.error !== undefined ? { worker: worker.id, ok: false, error: String(m.error) } : { worker: worker.id, ok: true, value: m.value });
    if (p.waiting.size === 0) p.finish();
  };
  cluster.on('message', onMessage);
  return {
    ask(op, payload, timeoutMs) {
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
      if (workers.length === 0) return Promise.resolve([]);
      if (pending.size >= MAX_PENDING_QUESTIONS) {
        return Promise.resolve(workers.map((w) => ({ worker: w.id, ok: false as const, error: 'too many questions pending' })));
      }
      const id = nextId++;
      return new Promise((resolve) => {
        const p: Pending = {
          answers: [],
          waiting: new Set(workers.map((w) => w.id)),
          finish() {
            clearTimeout(timer);
            pending.delete(id);
            for (const w of p.waiting) p.answers.push({ worker: w, ok: false, error: `no answer within ${timeoutMs} ms` });
            p.waiting.clear();
            resolve(p.answers.sort((a, b) => a.worker - b.worker));
          },
        };
        const timer = setTimeout(() => p.finish(), timeoutMs);
        pending.set(id, p);
        for (const w of workers) w.send({ type: ASK, id, op, payload });
      });
    },
    close() {
      cluster.off('message', onMessage);
      for (const p of [...pending.values()]) p.finish();
    },
  };
}

/** A worker's handlers, by operation; the return value (or promise) is the answer, a throw an error answer. */
export type ControlHandlers = Record<string, (payload: unknown) => unknown>;

/**
 * In a cluster worker: answer the primary's questions with `handlers` (an
 * unknown operation is answered with an error). Returns a function that stops.
 * @throws Error when the process has no IPC channel (not a cluster worker).
 */
export function answerControl(handlers: ControlHandlers): () => void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('answerControl runs in a cluster worker (no IPC channel)');
  const onMessage = (msg: unknown): void => {
    const m = msg as { type?: unknown; id?: unknown; op?: unknown; payload?: unknown } | null;
    if (!m || m.type !== ASK || typeof m.id !== 'number' || typeof m.op !== 'string') return;
    const id = m.id;
    const handler = Object.hasOwn(handlers, m.op) ? handlers[m.op] : undefined;
    const reply = (a: Omit<AnswerMessage, 'type' | 'id'>): void => {
      if (process.connected) send({ type: ANSWER, id, ...a });
    };
    if (!handler) return reply({ error: `no operation ${m.op}` });
    Promise.resolve()
      .then(() => handler(m.payload))
      .then(
        (value) => reply({ value: value ?? null }),
        (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
      );
  };
  process.on('message', onMessage);
  return () => void process.off('message', onMessage);
}
