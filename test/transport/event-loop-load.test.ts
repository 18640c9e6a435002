/**
 * EventLoopLoad's delay histogram (perf_hooks monitorEventLoopDelay), the
 * source of the summary line's loopDelayP99Ms/P999Ms/MaxMs: a loop blocked
 * for 60 ms shows at least that (less the histogram's resolution) as its max,
 * and taking the figures resets them. The delay timer stops after a second
 * of an idle loop and runs again once the loop is busy, so a block under load
 * shows in the figures and one while idle only in the max (the sampler's lag).
 */
import { describe, expect, it } from 'vitest';
import { DELAY_IDLE_SAMPLES, DELAY_RESOLUTION_MS, EventLoopLoad, SAMPLE_INTERVAL_MS } from '../../src/transport/event-loop-load.js';

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

describe('EventLoopLoad delay timer', () => {
  /** Keep the loop busy (about 60 % of each 10 ms) for `ms`. */
  const busy = async (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const until = performance.now() + 6;
      while (performance.now() < until);
      await turn(4);
    }
  };
  const block = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };

  it('stops on an idle loop, runs again under load, and measures a block under load', async () => {
    const load = new EventLoopLoad();
    load.start();
    try {
      expect(load.delayMonitored).toBe(true); // start-up counts as busy
      await turn(SAMPLE_INTERVAL_MS * (DELAY_IDLE_SAMPLES + 3));
      expect(load.delayMonitored).toBe(false);
      load.takeDelay();
      load.takeLagForMetrics();
      await turn(SAMPLE_INTERVAL_MS * 3);
      // Idle: no figures from the delay histogram; the sampler's lag is measured all the same.
      expect(load.takeDelay().p99Ms).toBe(0);
      const idle = load.takeLagForMetrics();
      expect(idle.maxS).toBeGreaterThan(0);

      await busy(SAMPLE_INTERVAL_MS * 3);
      expect(load.delayMonitored).toBe(true);
      block(60); // blocked 60 ms while busy
      await busy(30);
      const d = load.takeDelay();
      expect(d.maxMs).toBeGreaterThanOrEqual(60 - 2 * DELAY_RESOLUTION_MS);
      expect(d.p999Ms).toBeGreaterThan(0);

      // A block longer than the sampling period makes the sampler late: the metrics' lag shows it.
      load.takeLagForMetrics();
      block(SAMPLE_INTERVAL_MS + 50);
      await turn(SAMPLE_INTERVAL_MS * 2);
      const m = load.takeLagForMetrics();
      expect(m.maxS).toBeGreaterThanOrEqual(0.04);
      expect(m.p50S).toBeLessThanOrEqual(m.p99S);
      expect(m.minS).toBeLessThanOrEqual(m.meanS);
      expect(load.takeLagForMetrics().maxS).toBe(0); // taken: reset
    } finally {
      load.stop();
    }
    expect(load.delayMonitored).toBe(false);
  });
});
