/** The primary's questions to its workers (cluster/worker-questions.ts): bounded, each answered by its own reply. */
import { describe, expect, it } from 'vitest';
import type { ToWorker } from '../../src/cluster/ipc.js';
import { MAX_PENDING_ASKS, WorkerQuestions, type WorkerReply } from '../../src/cluster/worker-questions.js';

describe('WorkerQuestions (docs/LIMITS.md)', () => {
  it('holds at most MAX_PENDING_ASKS questions; one more is answered "no reply" at once and not sent; replies settle each; new ones go out again', async () => {
    const sent: ToWorker[] = [];
    const worker = { isConnected: () => true, send: (m: ToWorker) => void sent.push(m) };
    const q = new WorkerQuestions();
    const asks: Promise<WorkerReply | undefined>[] = [];
    let most = 0;
    for (let i = 0; i < MAX_PENDING_ASKS; i++) {
      asks.push(q.ask(worker, (id) => ({ type: 'ask', id, topic: 'metrics', payload: i }), 60_000));
      most = Math.max(most, q.size);
    }
    expect(most).toBe(MAX_PENDING_ASKS);
    expect(await q.ask(worker, (id) => ({ type: 'ask', id, topic: 'metrics', payload: 'one more' }), 60_000)).toBeUndefined();
    expect(q.size).toBe(MAX_PENDING_ASKS);
    expect(sent.length).toBe(MAX_PENDING_ASKS);
    // Each reply settles the question with its id (answered in reverse order).
    for (const m of [...sent].reverse()) if (m.type === 'ask') q.answer({ type: 'reply', id: m.id, ok: true, value: m.payload });
    const replies = await Promise.all(asks);
    expect(replies.map((r) => r?.value)).toEqual(asks.map((_, i) => i));
    expect(q.size).toBe(0);
    // A reply nobody waits for changes nothing; a new question is sent and answered.
    q.answer({ type: 'reply', id: 1, ok: true });
    const next = q.ask(worker, (id) => ({ type: 'bindings', id, aors: ['sip:alice@example.test'] }), 60_000);
    const last = sent.at(-1)!;
    expect(last.type).toBe('bindings');
    q.answer({ type: 'reply', id: (last as { id: number }).id, ok: true });
    expect(await next).toEqual({ type: 'reply', id: (last as { id: number }).id, ok: true });
    // Not connected: no reply, nothing sent.
    expect(await q.ask({ isConnected: () => false, send: () => expect.unreachable() }, (id) => ({ type: 'bindings', id, aors: [] }), 60_000)).toBeUndefined();
  });
});
