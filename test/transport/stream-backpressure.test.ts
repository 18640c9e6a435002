/**
 * A client that pipelines OPTIONS over a stream and never reads the answers
 * (a memory-exhaustion attack): on TCP, TLS and WS the
 * server stops reading once the connection's write queue passes
 * `sip.limits.stream_pause_bytes`, closes the connection when it does not
 * drain within `stream_stall_ms`, counts both, and its memory outside the
 * heap (where queued writes live) stays within a few MiB however long the
 * client goes on. A client that reads is never paused.
 *
 * Server in-process on 127.0.0.1: TCP 28460, TLS 28461, WS 28462.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { parseConfig } from '../../src/config/load.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { silentLogger } from '../../src/log.js';
import { streamCounters, takeMaxQueuedBytes } from '../../src/transport/backpressure.js';

const TCP = 28460;
const TLS = 28461;
const WS = 28462;
const PAUSE_BYTES = 64 * 1024;
const CLOSE_BYTES = 1024 * 1024;
const STALL_MS = 1500;

function options(i: number, port: number, transport: string): string {
  return (
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bKbp${i}x${Math.random().toString(36).slice(2)}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=bp${i}\r\nTo: <sip:127.0.0.1:${port}>\r\n` +
    `Call-ID: bp-${i}-${port}@127.0.0.1\r\nCSeq: ${i + 1} OPTIONS\r\nContent-Length: 0\r\n\r\n`
  );
}

/** What a never-reading client saw. */
interface Outcome {
  closed: boolean;
  requestsSent: number;
}

/**
 * Write OPTIONS as fast as the connection takes them (keeping at most 256 KiB
 * queued on the client side) until the server closes it or `limitMs` passes.
 */
async function pipelineWithoutReading(
  write: (data: string) => boolean,
  queued: () => number,
  isClosed: () => boolean,
  transport: string,
  port: number,
  limitMs: number,
): Promise<Outcome> {
  let i = 0;
  const until = Date.now() + limitMs;
  while (!isClosed() && Date.now() < until) {
    if (queued() < 256 * 1024) {
      for (let k = 0; k < 50; k++) write(options(i++, port, transport));
    }
    await new Promise((r) => setTimeout(r, queued() < 256 * 1024 ? 0 : 5));
  }
  return { closed: isClosed(), requestsSent: i };
}

describe('stream backpressure against a client that never reads', () => {
  let dir: string;
  let server: RunningServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-backpressure-'));
    const config = parseConfig({
      data_dir: dir,
      domains: ['example.test'],
      // No summary line: it would take the largest-queue figure this test reads.
      log: { level: 'silent', summary_interval: 0 },
      sip: {
        listen: [
          { transport: 'tcp', host: '127.0.0.1', port: TCP },
          { transport: 'tls', host: '127.0.0.1', port: TLS },
          { transport: 'ws', host: '127.0.0.1', port: WS },
        ],
        limits: { stream_pause_bytes: PAUSE_BYTES, stream_close_bytes: CLOSE_BYTES, stream_stall_ms: STALL_MS },
        // Admission control off: every OPTIONS gets its 200 (the floods here would otherwise earn 503s).
        overload: { lag_ms: 0, drop_lag_ms: 0, target_utilization: 1 },
      },
      turn: { enabled: false },
    });
    server = await startServer(config, silentLogger);
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function expectClosedAndBounded(o: Outcome, before: { paused: number; closed: number }): void {
    expect(o.closed).toBe(true);
    expect(streamCounters.paused).toBeGreaterThan(before.paused);
    expect(streamCounters.closed).toBeGreaterThan(before.closed);
    // The server's write queue for the connection (responses held in its memory) stayed under the
    // close bound: what was queued past the pause bound is what the last read chunk's requests asked for.
    const peak = takeMaxQueuedBytes();
    expect(peak).toBeGreaterThan(PAUSE_BYTES);
    expect(peak).toBeLessThanOrEqual(CLOSE_BYTES);
    // The client went on writing well past what the queue holds: without the bound it would all be queued.
    expect(o.requestsSent * 300).toBeGreaterThan(peak);
  }

  /** A TCP or TLS socket, once connected: pause it (never read) and pipeline OPTIONS until the server closes it. */
  async function attackSocket(s: net.Socket, connectedEvent: string, transport: string, port: number): Promise<void> {
    takeMaxQueuedBytes();
    const before = { ...streamCounters };
    await new Promise<void>((r, j) => s.once(connectedEvent, r).once('error', j));
    s.pause();
    let closed = false;
    s.on('close', () => (closed = true));
    s.on('error', () => {});
    const o = await pipelineWithoutReading((d) => s.write(d), () => s.writableLength, () => closed, transport, port, 30_000);
    s.destroy();
    expectClosedAndBounded(o, before);
  }

  it('TCP: stops reading, then closes the connection', async () => {
    await attackSocket(net.connect(TCP, '127.0.0.1'), 'connect', 'TCP', TCP);
  }, 40_000);

  it('TLS: stops reading, then closes the connection', async () => {
    await attackSocket(tls.connect({ port: TLS, host: '127.0.0.1', rejectUnauthorized: false }), 'secureConnect', 'TLS', TLS);
  }, 40_000);

  it('WS: stops reading, then closes the connection', async () => {
    takeMaxQueuedBytes();
    const before = { ...streamCounters };
    const ws = new WebSocket(`ws://127.0.0.1:${WS}`, 'sip');
    await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
    ws.pause();
    let closed = false;
    ws.on('close', () => (closed = true));
    ws.on('error', () => {});
    const o = await pipelineWithoutReading(
      (d) => {
        ws.send(d);
        return true;
      },
      () => ws.bufferedAmount,
      () => closed,
      'WS',
      WS,
      30_000,
    );
    ws.terminate();
    expectClosedAndBounded(o, before);
  }, 40_000);

  it('a client that reads its answers is never paused', async () => {
    const before = { ...streamCounters };
    const s = net.connect(TCP, '127.0.0.1');
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    let received = '';
    s.on('data', (d) => (received += d.toString('latin1')));
    for (let i = 0; i < 2000; i++) s.write(options(100_000 + i, TCP, 'TCP'));
    const deadline = Date.now() + 15_000;
    while ((received.match(/^SIP\/2\.0 200 /gm) ?? []).length < 2000 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    s.destroy();
    expect((received.match(/^SIP\/2\.0 200 /gm) ?? []).length).toBe(2000);
    expect(streamCounters.paused).toBe(before.paused);
  }, 20_000);
});
