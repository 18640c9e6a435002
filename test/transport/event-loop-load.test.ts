/**
 * EventLoopLoad's delay histogram (perf_hooks monitorEventLoopDelay), the
 * source of the summary line's loopDelayP99Ms/P999Ms/MaxMs: a loop blocked
 * for 60 ms shows at least that (less the histogram's resolution) as its max,
 * and taking the figures resets them.
 */
import { describe, expect, it } from 'vitest';
import { DELAY_RESOLUTION_MS, EventLoopLoad } from '../../src/transport/event-loop-load.js';

const turn = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('EventLoopLoad.takeDelay', () => {
  it('reports zeros before start, a 60 ms block after it, and resets when taken', async () => {
    const load = new EventLoopLoad();
    expect(load.takeDelay()).toEqual({ p99Ms: 0, p999Ms: 0, maxMs: 0 });
    load.start();
    try {
      await turn(30);
      const until = performance.now() + 60;
      while (performance.now() < until); // the event loop is blocked 60 ms
      await turn(30);
      const d = load.takeDelay();
      expect(d.maxMs).toBeGreaterThanOrEqual(60 - 2 * DELAY_RESOLUTION_MS);
      expect(d.p99Ms).toBeLessThanOrEqual(d.maxMs);
      expect(d.p999Ms).toBeLessThanOrEqual(d.maxMs);
      expect(load.takeDelay().maxMs).toBeLessThan(d.maxMs);
    } finally {
      load.stop();
    }
  });
});
