/**
 * The log output's buffer (log.ts, `log.max_buffer_bytes`): a process whose
 * stdout nobody reads keeps at most that many bytes of lines waiting, drops
 * (and counts) the rest, and logs again once its output is read.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LOG_JS = fileURLToPath(new URL('../../dist/log.js', import.meta.url));
const BUFFER = 256 * 1024;
const LINES = 20_000;

/**
 * The child: floods `LINES` lines of about 200 bytes (16 times the buffer) into a logger with
 * `maxBufferBytes: BUFFER` while its stdout is not read, reports on stderr how many were dropped,
 * then, once told on stdin that its stdout is read, logs one more line and exits.
 */
const CHILD = `
import { createLogger, droppedLogLines } from ${JSON.stringify(LOG_JS)};
const log = createLogger('info', { maxBufferBytes: ${BUFFER} });
const pad = 'x'.repeat(150);
for (let i = 0; i < ${LINES}; i++) log.info({ i, pad }, 'flood');
process.stderr.write(JSON.stringify({ dropped: droppedLogLines() }) + '\\n');
process.stdin.once('data', () => {
  log.info('after');
  process.stdin.destroy();
});
`;

describe('log output buffer (docs/LIMITS.md)', () => {
  it('holds at most log.max_buffer_bytes of unread lines: the rest are dropped and counted; lines flow again once read', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.pause();
    let stderr = '';
    const report = await new Promise<{ dropped: number }>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const nl = stderr.indexOf('\n');
        if (nl >= 0) resolve(JSON.parse(stderr.slice(0, nl)) as { dropped: number });
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    child.stdout.resume();
    child.stdin.write('go\n');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const raw = out.split('\n').filter(Boolean);
    const lines = raw.map((l) => JSON.parse(l) as { msg: string; i?: number });
    const flood = lines.filter((l) => l.msg === 'flood');
    // Every line either came out or was counted as dropped; most were dropped.
    expect(flood.length + report.dropped).toBe(LINES);
    expect(report.dropped).toBeGreaterThan(LINES / 2);
    // What came out is what the buffer took while nothing could leave (the loop never yields): the bound,
    // give or take the first write (one line), well under one more pipe's worth (64 KiB).
    const floodBytes = raw.filter((_, k) => lines[k]!.msg === 'flood').reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    expect(floodBytes).toBeGreaterThan(BUFFER / 2);
    expect(floodBytes).toBeLessThanOrEqual(BUFFER + 64 * 1024);
    // The lines that came out are the first ones, in order (the newest were dropped).
    expect(flood.map((l) => l.i)).toEqual(flood.map((_, k) => k));
    expect(lines.at(-1)?.msg).toBe('after');
  });
});
