/**
 * After a busy period, once the event loop has stayed quiet, one full
 * collection runs and the garbage of the busy period is gone from the heap;
 * sooner when the caller says what the busy period left is gone.
 */
import { expect, it } from 'vitest';
import { PerformanceObserver } from 'node:perf_hooks';
import { EventLoopLoad } from '../../src/transport/event-loop-load.js';
import { collectWhenIdle } from '../../src/transport/idle-collector.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keep the loop ~85 % busy allocating garbage for `ms`; resolves with heapUsed right after. */
async function busyAllocating(ms: number): Promise<number> {
  let garbage: { i: number }[][] = [];
  const busy = setInterval(() => {
    const end = performance.now() + 85;
    const chunk: { i: number }[] = [];
    while (performance.now() < end) chunk.push({ i: chunk.length });
    garbage.push(chunk);
    if (garbage.length > 20) garbage = [];
  }, 100);
  await sleep(ms);
  clearInterval(busy);
  garbage = [];
  return process.memoryUsage().heapUsed;
}

/** Counts full (mark-compact) collections from when `start()` is called. */
function majorCollections() {
  const counter = { count: 0, start: () => obs.observe({ entryTypes: ['gc'] }), stop: () => obs.disconnect() };
  const obs = new PerformanceObserver((l) => {
    for (const e of l.getEntries()) if ((e as { detail?: { kind?: number } }).detail?.kind === 4) counter.count++;
  });
  return counter;
}

/** Wait up to `tries` × 100 ms for a full collection, then check the busy period's garbage is gone. */
async function expectCollected(majors: ReturnType<typeof majorCollections>, heapAfterLoad: number, tries: number): Promise<void> {
  for (let i = 0; i < tries && majors.count === 0; i++) await sleep(100);
  expect(majors.count).toBeGreaterThanOrEqual(1);
  expect(process.memoryUsage().heapUsed).toBeLessThan(heapAfterLoad);
}

it('collects once the loop is quiet after being busy, and the garbage of the busy period is gone', async () => {
  const load = new EventLoopLoad(0);
  load.start();
  const stop = collectWhenIdle(load, 300);
  const majors = majorCollections();
  try {
    const heapAfterLoad = await busyAllocating(2000);
    majors.start();
    await expectCollected(majors, heapAfterLoad, 150);
  } finally {
    majors.stop();
    stop();
    load.stop();
  }
}, 30_000);

it('collects sooner, long before quietMs, once settled() says what the busy period left is gone', async () => {
  const load = new EventLoopLoad(0);
  load.start();
  let settled = false;
  const stop = collectWhenIdle(load, 60_000, { settled: () => settled, settledQuietMs: 300 });
  const majors = majorCollections();
  try {
    const heapAfterLoad = await busyAllocating(2000);
    await sleep(500);
    settled = true;
    majors.start();
    // Well within the 60 s of quietMs (and before V8's own memory reducer would step in).
    await expectCollected(majors, heapAfterLoad, 30);
  } finally {
    majors.stop();
    stop();
    load.stop();
  }
}, 30_000);
