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
 * once when the transaction terminates.
 */
export class TimerSet {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  /** (Re)start timer `name` to fire after `ms` milliseconds. */
  start(name: string, ms: number, fn: () => void): void {
    this.stop(name);
    const t = setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, ms);
    t.unref?.();
    this.timers.set(name, t);
  }

  stop(name: string): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
  }

  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
