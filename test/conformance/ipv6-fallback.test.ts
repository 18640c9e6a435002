/**
 * rtcedge still starts on a host without IPv6: the `rtcedge serve` command
 * runs in a network namespace of its own whose loopback has IPv6 disabled
 * (`net.ipv6.conf.lo.disable_ipv6 = 1`, so ::1 does not exist there); its
 * IPv6 listener on ::1 is skipped with a warning naming it, the IPv4 one
 * serves, and `rtcedge ready` lists only that. Needs root and `unshare`
 * (as every test here runs: in a private namespace) and a built dist/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const PORT = 27074;

let child: ChildProcess | undefined;
let dir: string | undefined;

afterAll(async () => {
  const c = child;
  if (c?.pid && c.exitCode === null && c.signalCode === null) {
    // SIGTERM, then SIGKILL if the server has not exited within 5 s: no server outlives the test.
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    process.kill(c.pid, 'SIGTERM');
    const timer = setTimeout(() => c.exitCode === null && c.signalCode === null && process.kill(c.pid!, 'SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// It runs the built CLI in a network namespace of its own (`unshare -n`), which needs root; `npm test` builds first.
const canRun = existsSync(CLI) && process.getuid?.() === 0;
if (!canRun) process.stderr.write('ipv6-fallback: skipped, needs root (unshare -n) and dist/ (npm run build)\n');
it.skipIf(!canRun)(`skips the IPv6 listener with a warning when the host has no IPv6, and serves on IPv4${canRun ? '' : ' [skipped: needs root and dist/]'}`, async () => {
  dir = mkdtempSync(join(tmpdir(), 'rtcedge-ipv6-fallback-'));
  const config = join(dir, 'rtcedge.yaml');
  writeFileSync(
    config,
    [
      `data_dir: ${join(dir, 'data')}`,
      'domains: [example.test]',
      'log: { level: info }',
      'turn: { enabled: false }',
      'sip:',
      '  listen:',
      `    - { transport: udp, host: 127.0.0.1, port: ${PORT} }`,
      `    - { transport: udp, host: "::1", port: ${PORT} }`,
      '',
    ].join('\n'),
  );
  const script = `ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 && exec "${process.execPath}" "${CLI}" serve -c "${config}"`;
  child = spawn('unshare', ['-n', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    const check = () => {
      if (out.includes('rtcedge ready')) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child!.stdout!.on('data', check);
    child!.on('exit', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  expect(ready, out).toBe(true);
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const warning = lines.find((l) => l.msg === 'IPv6 unavailable on this host: listener skipped');
  expect(warning, out).toMatchObject({ component: 'transport', transport: 'udp', listen: `[::1]:${PORT}` });
  expect(lines.find((l) => l.msg === 'rtcedge ready')?.sip).toEqual([`udp:127.0.0.1:${PORT}`]);
});
