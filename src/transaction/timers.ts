/** Timer base values of RFC 3261 §17 and Table 4, in ms. */
export interface TimerConfig {
  /** RTT estimate; default 500 ms. */
  t1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses; default 4000 ms. */
  t2: number;
  /** Maximum duration a message remains in the network; default 5000 ms. */
  t4: number;
}

export const DEFAULT_TIMERS: TimerConfig = { t1: 500, t2: 4000, t4: 5000 };

/**
 * A set of named one-shot timers owned by one transaction, all cancelled at
 * once when the transaction terminates. The map is made by the first timer:
 * most server transactions (non-INVITE on UDP, handed to the layer's
 * completed log; any on a stream) never start one.
 */
export class TimerSet {
  private timers: Map<string, NodeJS.Timeout> | undefined;

  /** (Re)start timer `name` to fire after `ms` milliseconds. */
  start(name: string, ms: number, fn: () => void): void {
    this.stop(name);
    const timers = (this.timers ??= new Map());
    const t = setTimeout(() => {
      timers.delete(name);
      fn();
    }, ms);
    t.unref?.();
    timers.set(name, t);
  }

  /** Stop timer `name` if it runs. */
  stop(name: string): void {
    const t = this.timers?.get(name);
    if (t) clearTimeout(t);
    this.timers?.delete(name);
  }

  /** Stop every timer (the transaction terminated). */
  clear(): void {
    if (!this.timers) return;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
