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
import { createHistogram, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';

/** Sampling period of the lag/utilisation timer, ms. */
export const SAMPLE_INTERVAL_MS = 100;

/** Resolution of the event-loop delay histogram (perf_hooks monitorEventLoopDelay), ms. */
export const DELAY_RESOLUTION_MS = 5;

/**
 * Utilisation of one sample (0–1) at or above which the delay histogram runs.
 * Below it the loop sleeps most of the time: a 5 ms timer would be what wakes
 * an idle or lightly loaded process most (200 times a second), and it can
 * only be late by the length of the few tasks that run.
 */
export const DELAY_ACTIVE_UTILIZATION = 0.2;

/** Consecutive samples below {@link DELAY_ACTIVE_UTILIZATION} after which the delay histogram stops (1 s). */
export const DELAY_IDLE_SAMPLES = 10;

/** Event-loop lag figures for the metrics scrape, s (lateness of the sampling timer, every SAMPLE_INTERVAL_MS). */
export interface EventLoopLagStats {
  minS: number;
  maxS: number;
  meanS: number;
  stddevS: number;
  p50S: number;
  p90S: number;
  p99S: number;
}

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
  /**
   * The delay histogram (perf_hooks monitorEventLoopDelay: a native timer every
   * DELAY_RESOLUTION_MS, cheaper than a JavaScript one) and whether it runs.
   */
  private delay: ReturnType<typeof monitorEventLoopDelay> | undefined;
  private delayRunning = false;
  /** The sampling timer's lateness, ns (at least 1), since the last {@link takeLagForMetrics}. */
  private readonly sampledLags = createHistogram();
  /** Samples in a row below {@link DELAY_ACTIVE_UTILIZATION} while the delay histogram runs. */
  private quietSamples = 0;
  /** Largest sampled lag since the last {@link takeDelay}, ms (the histogram's max may have been off meanwhile). */
  private delayMaxLagMs = 0;

  constructor(overloadLagMs = 200) {
    this.overloadLagMs = overloadLagMs;
  }

  /** True while the last sampled lag exceeds `overloadLagMs`. */
  get overloaded(): boolean {
    return this.overloadLagMs > 0 && this.lagMs > this.overloadLagMs;
  }

  /**
   * True while the delay histogram runs: from start() until the loop has been
   * below {@link DELAY_ACTIVE_UTILIZATION} for {@link DELAY_IDLE_SAMPLES}
   * samples, and again from the first sample at or above it.
   */
  get delayMonitored(): boolean {
    return this.delayRunning;
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
    // Start-up is busy: the histogram runs until the first second of quiet.
    this.runDelay(true);
  }

  /** Stop sampling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
    this.runDelay(false);
    this.delay = undefined;
  }

  /** Start or stop the delay histogram's timer (while sampling). */
  private runDelay(on: boolean): void {
    this.quietSamples = 0;
    if (on === this.delayRunning || !this.delay) return;
    this.delayRunning = on;
    if (on) this.delay.enable();
    else this.delay.disable();
  }

  /**
   * Event-loop delay since the previous call, for the summary line: from
   * perf_hooks monitorEventLoopDelay (a timer every DELAY_RESOLUTION_MS; how
   * late it fired) while it ran ({@link delayMonitored}): p99, p99.9 and max,
   * ms, one decimal. The max also counts the sampling timer's own lag, which
   * is measured all the time. Zeros before start().
   */
  takeDelay(): { p99Ms: number; p999Ms: number; maxMs: number } {
    const h = this.delay;
    const sampledMaxMs = Math.round(this.delayMaxLagMs * 10) / 10;
    this.delayMaxLagMs = 0;
    if (!h || h.count === 0) return { p99Ms: 0, p999Ms: 0, maxMs: sampledMaxMs };
    // The histogram holds ns, and counts the resolution itself as delay.
    const ms = (ns: number) => Math.max(0, Math.round((ns / 1e6 - DELAY_RESOLUTION_MS) * 10) / 10);
    const r = { p99Ms: ms(h.percentile(99)), p999Ms: ms(h.percentile(99.9)), maxMs: Math.max(ms(h.max), sampledMaxMs) };
    h.reset();
    return r;
  }

  /**
   * Event-loop lag since the previous call, for the metrics scrape (the
   * `nodejs_eventloop_lag_*_seconds` gauges): how late the sampling timer
   * (every SAMPLE_INTERVAL_MS, always running) fired, s; all zeros before
   * the first sample.
   */
  takeLagForMetrics(): EventLoopLagStats {
    const h = this.sampledLags;
    if (h.count === 0) return { minS: 0, maxS: 0, meanS: 0, stddevS: 0, p50S: 0, p90S: 0, p99S: 0 };
    const s = (ns: number) => ns / 1e9;
    const r = {
      minS: s(h.min),
      maxS: s(h.max),
      meanS: s(h.mean),
      stddevS: s(h.stddev),
      p50S: s(h.percentile(50)),
      p90S: s(h.percentile(90)),
      p99S: s(h.percentile(99)),
    };
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
    if (lag > this.delayMaxLagMs) this.delayMaxLagMs = lag;
    this.sampledLags.record(Math.max(1, Math.round(lag * 1e6)));
    const elu = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(elu, this.lastElu).utilization;
    this.utilization = 0.9 * this.utilization + 0.1 * u;
    this.lastElu = elu;
    if (u >= DELAY_ACTIVE_UTILIZATION) this.runDelay(true);
    else if (this.delayRunning && ++this.quietSamples >= DELAY_IDLE_SAMPLES) this.runDelay(false);
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

/** The running monitor's lag since the previous call, for the metrics scrape; undefined when no monitor runs. */
export function takeEventLoopLagForMetrics(): EventLoopLagStats | undefined {
  return current?.takeLagForMetrics();
}

/**
 * True when the event loop lags past the configured bound (`sip.overload.lag_ms`):
 * new work (a new SIP transaction, a new TURN allocation) should be refused
 * with 503 / 508 rather than queued. False when no monitor runs.
 */
export function isEventLoopOverloaded(): boolean {
  return current?.overloaded ?? false;
}
