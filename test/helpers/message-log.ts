import type { SipMessage } from '../../src/sip/message.js';

/**
 * The messages a test UA received, in order, and waiters for the first one
 * that matches a predicate.
 */
export class MessageLog {
  readonly received: SipMessage[] = [];
  private waiters: { pred: (m: SipMessage) => boolean; resolve: (m: SipMessage) => void }[] = [];

  /** Record a message and resolve every waiter it matches. */
  add(msg: SipMessage): void {
    this.received.push(msg);
    for (const w of [...this.waiters]) {
      if (w.pred(msg)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  }

  /**
   * The first message from index `since` on (already received or arriving) that matches;
   * rejects after timeoutMs (ms) with `describe()` of what came in.
   */
  waitFor(pred: (m: SipMessage) => boolean, timeoutMs: number, describe: () => string, since = 0): Promise<SipMessage> {
    const seen = this.received.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i < 0) return;
        this.waiters.splice(i, 1);
        reject(new Error(`no matching message within ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
    });
  }
}
