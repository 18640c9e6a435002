/**
 * Admission control decisions (sip.overload): transaction bounds first, then
 * the rate ceiling and lag, then the adaptive share; requests with
 * credentials are spared by the ceiling and the share.
 */
import { describe, expect, it } from 'vitest';
import { Admission, DEFAULT_ADMISSION } from '../../src/transaction/admission.js';
import { EventLoopLoad } from '../../src/transport/event-loop-load.js';

describe('Admission', () => {
  it('refuses past the held and pending bounds, whatever the credentials', () => {
    const a = new Admission({ ...DEFAULT_ADMISSION, maxTransactions: 10, maxPendingTransactions: 5 }, new EventLoopLoad());
    expect(a.check(false, 0, 0)).toBeUndefined();
    expect(a.check(true, 0, 10)).toBe('transactions');
    expect(a.check(true, 5, 9)).toBe('pending');
    a.close();
  });

  it('a rate ceiling spends tokens of requests without credentials only', () => {
    const a = new Admission({ ...DEFAULT_ADMISSION, maxNewPerS: 3 }, new EventLoopLoad());
    expect([a.check(false, 0, 0), a.check(false, 0, 0), a.check(false, 0, 0), a.check(false, 0, 0)]).toEqual([undefined, undefined, undefined, 'rate']);
    expect(a.check(true, 0, 0)).toBeUndefined();
    a.close();
  });

  it('sustained lag refuses every new request; none when lag_ms is 0', () => {
    const load = new EventLoopLoad();
    load.lagMs = 500;
    const a = new Admission({ ...DEFAULT_ADMISSION, lagMs: 200, dropLagMs: 400 }, load);
    expect(a.check(true, 0, 0)).toBe('lag');
    expect(a.dropBeforeParse()).toBe(true);
    const off = new Admission({ ...DEFAULT_ADMISSION, lagMs: 0, dropLagMs: 0 }, load);
    expect(off.check(true, 0, 0)).toBeUndefined();
    expect(off.dropBeforeParse()).toBe(false);
    a.close();
    off.close();
  });

  it('the admitted share shrinks above the target utilisation and grows back below it', () => {
    const load = new EventLoopLoad();
    const draws = [0.5, 0.99];
    const a = new Admission({ ...DEFAULT_ADMISSION, targetUtilization: 0.9 }, load, () => draws.shift() ?? 0);
    const sample = (u: number) => {
      load.utilization = u;
      (load as unknown as { listeners: Set<() => void> }).listeners.forEach((fn) => fn());
    };
    for (let i = 0; i < 10; i++) sample(1);
    expect(a.share).toBeLessThan(0.5);
    expect(a.check(false, 0, 0)).toBe('share'); // draw 0.5 ≥ share
    expect(a.check(true, 0, 0)).toBeUndefined(); // credentials spared
    for (let i = 0; i < 40; i++) sample(0.5);
    expect(a.share).toBe(1);
    expect(a.check(false, 0, 0)).toBeUndefined();
    a.close();
  });
});
