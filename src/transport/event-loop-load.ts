/**
 * How busy the process is: event-loop lag and utilisation, sampled by one
 * timer. SIP admission control (transaction/admission.ts) reads it to answer
 * 503 instead of silence under overload, and the TURN server can call
 * {@link isEventLoopOverloaded} before it grants a new allocation (RFC 8656
 * §7.2 step 5 answers 508 Insufficient Capacity).
 *
 * One monitor serves the process (there is one event loop); `startEventLoopLoad`
 * is idempotent and returns the running one.
 */
import { monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';

/** Sampling period of the lag/utilisation timer, ms. */
export const SAMPLE_INTERVAL_MS = 100;

/** Resolution of the event-loop delay histogram (perf_hooks monitorEventLoopDelay), ms. */
export const DELAY_RESOLUTION_MS = 5;

/** A process-wide event-loop load monitor. */
export class EventLoopLoad {
  /**
   * Sustained lag: the smaller of the last two samples' lag (how late the
   * sampling timer fired), ms. One long synchronous task (start-up, a config
   * reload) does not count as overload; two lagging samples in a row do.
   */
  lagMs = 0;
  private lastSampleLagMs = 0;
  /** Largest lag seen since the last {@link takeMaxLagMs}, ms. */
  private maxLagMs = 0;
  /**
   * Event-loop utilisation (0–1), smoothed over about a second (exponential
   * moving average of the per-sample utilisation, weight 0.1).
   */
  utilization = 0;
  /** Lag (ms) above which {@link overloaded} is true; 0 = never. */
  overloadLagMs: number;
  private timer: NodeJS.Timeout | undefined;
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  private expectedMs = 0;
  private readonly listeners = new Set<() => void>();
  private gcObserver: PerformanceObserver | undefined;
  private gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0 };
  private delay: ReturnType<typeof monitorEventLoopDelay> | undefined;

  constructor(overloadLagMs = 200) {
    this.overloadLagMs = overloadLagMs;
  }

  /** True while the last sampled lag exceeds `overloadLagMs`. */
  get overloaded(): boolean {
    return this.overloadLagMs > 0 && this.lagMs > this.overloadLagMs;
  }

  /** Start sampling (unref'd timer). */
  start(): void {
    if (this.timer) return;
    this.expectedMs = performance.now() + SAMPLE_INTERVAL_MS;
    this.lastElu = performance.eventLoopUtilization();
    this.timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        this.gc.count++;
        this.gc.totalMs += e.duration;
        if (e.duration > this.gc.maxMs) this.gc.maxMs = e.duration;
        // NODE_PERFORMANCE_GC_MAJOR = 4 (mark-compact)
        if ((e as { detail?: { kind?: number } }).detail?.kind === 4) this.gc.majorCount++;
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
    this.delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
    this.delay.enable();
  }

  /** Stop sampling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
    this.delay?.disable();
    this.delay = undefined;
  }

  /**
   * Event-loop delay since the previous call, from perf_hooks
   * monitorEventLoopDelay (a timer every DELAY_RESOLUTION_MS; how late it
   * fired): p99, p99.9 and max, ms, one decimal; zeros before start().
   */
  takeDelay(): { p99Ms: number; p999Ms: number; maxMs: number } {
    const h = this.delay;
    if (!h || h.count === 0) return { p99Ms: 0, p999Ms: 0, maxMs: 0 };
    // The histogram holds ns, and counts the resolution itself as delay.
    const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - DELAY_RESOLUTION_MS) * 10) / 10);
    const r = { p99Ms: ms(h.percentile(99)), p999Ms: ms(h.percentile(99.9)), maxMs: ms(h.max) };
    h.reset();
    return r;
  }

  /** Garbage collections since the previous call: how many, how many full (mark-compact), total and longest pause, ms. */
  takeGcStats(): { count: number; majorCount: number; totalMs: number; maxMs: number } {
    const g = this.gc;
    this.gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0 };
    return { count: g.count, majorCount: g.majorCount, totalMs: Math.round(g.totalMs), maxMs: Math.round(g.maxMs * 10) / 10 };
  }

  /** Call `fn` after every sample (admission control adapts its share there). Returns an unsubscribe function. */
  onSample(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The largest lag since the previous call (for the periodic summary line), ms. */
  takeMaxLagMs(): number {
    const m = this.maxLagMs;
    this.maxLagMs = 0;
    return m;
  }

  private sample(): void {
    const now = performance.now();
    const lag = Math.max(0, now - this.expectedMs);
    this.expectedMs = now + SAMPLE_INTERVAL_MS;
    this.lagMs = Math.min(lag, this.lastSampleLagMs);
    this.lastSampleLagMs = lag;
    if (lag > this.maxLagMs) this.maxLagMs = lag;
    const elu = performance.eventLoopUtilization();
    this.utilization = 0.9 * this.utilization + 0.1 * performance.eventLoopUtilization(elu, this.lastElu).utilization;
    this.lastElu = elu;
    for (const fn of this.listeners) fn();
  }
}

let current: EventLoopLoad | undefined;

/** The process's monitor, started on first call (later calls return the same one and ignore the argument). */
export function startEventLoopLoad(overloadLagMs?: number): EventLoopLoad {
  if (!current) current = new EventLoopLoad(overloadLagMs);
  else if (overloadLagMs !== undefined) current.overloadLagMs = overloadLagMs;
  current.start();
  return current;
}

/** Stop and forget the process's monitor (server shutdown). */
export function stopEventLoopLoad(): void {
  current?.stop();
  current = undefined;
}

/**
 * True when the event loop lags past the configured bound (`sip.overload.lag_ms`):
 * new work (a new SIP transaction, a new TURN allocation) should be refused
 * with 503 / 508 rather than queued. False when no monitor runs.
 */
export function isEventLoopOverloaded(): boolean {
  return current?.overloaded ?? false;
}
