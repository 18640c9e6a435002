/**
 * After a busy period, once the event loop has stayed quiet, one full
 * collection runs and the garbage of the busy period is gone from the heap.
 */
import { expect, it } from 'vitest';
import { PerformanceObserver } from 'node:perf_hooks';
import { EventLoopLoad } from '../../src/transport/event-loop-load.js';
import { collectWhenIdle } from '../../src/transport/idle-collector.js';

it('collects once the loop is quiet after being busy, and the garbage of the busy period is gone', async () => {
  const load = new EventLoopLoad(0);
  load.start();
  const stop = collectWhenIdle(load, 300);
  let majors = 0;
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === 4) majors++;
  });
  try {
    let garbage: { i: number }[][] = [];
    const busy = setInterval(() => {
      const end = performance.now() + 85;
      const chunk: { i: number }[] = [];
      while (performance.now() < end) chunk.push({ i: chunk.length });
      garbage.push(chunk);
      if (garbage.length > 20) garbage = [];
    }, 100);
    await new Promise((r) => setTimeout(r, 2000));
    clearInterval(busy);
    garbage = [];
    const heapAfterLoad = process.memoryUsage().heapUsed;
    obs.observe({ entryTypes: ['gc'] });
    for (let i = 0; i < 150 && majors === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(majors).toBeGreaterThanOrEqual(1);
    expect(process.memoryUsage().heapUsed).toBeLessThan(heapAfterLoad);
  } finally {
    obs.disconnect();
    stop();
    load.stop();
  }
}, 30_000);
