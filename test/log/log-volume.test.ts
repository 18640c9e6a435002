/**
 * Log volume at the default level: a transaction writes no
 * line at info (one at debug), and the summary line reports the interval's
 * counts instead.
 */
import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { startServer } from '../../src/server.js';
import { difference, startSummaryLog } from '../../src/log.js';

const PORT = 28466;

/** A pino logger at `level` whose lines are collected, parsed. */
function capture(level: string): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

/** Start a UDP server logging into `logger`, send `n` OPTIONS, wait for their answers, stop. */
async function optionsThrough(logger: pino.Logger, n: number, summaryS: number, waitMs: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rtcedge-logvol-'));
  const server = await startServer(
    parseConfig({
      data_dir: dir,
      domains: ['example.test'],
      log: { summary_interval: summaryS },
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }] },
      turn: { enabled: false },
    }),
    logger,
  );
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let answers = 0;
    sock.on('message', () => answers++);
    for (let i = 0; i < n; i++) {
      sock.send(
        `OPTIONS sip:127.0.0.1:${PORT} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=z9hG4bKlog${i};rport\r\n` +
          `Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=l${i}\r\nTo: <sip:127.0.0.1:${PORT}>\r\n` +
          `Call-ID: log${i}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
        PORT,
        '127.0.0.1',
      );
    }
    for (let i = 0; i < 100 && answers < n; i++) await new Promise((r) => setTimeout(r, 20));
    expect(answers).toBe(n);
    await new Promise((r) => setTimeout(r, waitMs));
  } finally {
    sock.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('log volume', () => {
  it('info: no line per transaction, a summary line with the counts; debug: one line per transaction', async () => {
    const info = capture('info');
    await optionsThrough(info.logger, 20, 1, 1300);
    expect(info.lines.filter((l) => l.msg === 'transaction')).toHaveLength(0);
    const summaries = info.lines.filter((l) => l.msg === 'summary');
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.reduce((a, l) => a + ((l.finals as Record<string, number>)['2xx'] ?? 0), 0)).toBe(20);
    expect(summaries[0]).toMatchObject({ component: 'summary', intervalS: 1 });

    const debug = capture('debug');
    await optionsThrough(debug.logger, 5, 0, 0);
    expect(debug.lines.filter((l) => l.msg === 'transaction')).toHaveLength(5);
  });

  it('the summary reports increases per interval, nested counts key by key', () => {
    expect(difference({ a: 5, n: { x: 3, y: 1 } }, { a: 2, n: { x: 1 } })).toEqual({ a: 3, n: { x: 2, y: 1 } });
    const { logger, lines } = capture('info');
    const stop = startSummaryLog(logger, 0, () => ({ a: 1 }));
    stop();
    expect(lines).toHaveLength(0);
  });
});
