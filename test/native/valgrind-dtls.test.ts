/**
 * The DTLS engine addon under valgrind memcheck: a scripted workload
 * (fixtures/dtls-workload.mjs) with node-dtls-client clients in a forked process outside valgrind
 * (fixtures/dtls-clients.mjs: echo, wrong PSK,
 * a session replaced on the same port, idle expiry, open at destroy) must show no memory errors and no definitely
 * lost blocks, and echo every datagram. Each step of the workload waits for the engine's counters, not for a
 * fixed time: under valgrind on a busy machine a handshake takes seconds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { runCommand } from '../../interop/harness/process.js';
import { DTLS_ADDON_PATH, loadDtlsAddon } from '../../src/turn/dtls-addon.js';

const WORKLOAD = fileURLToPath(new URL('./fixtures/dtls-workload.mjs', import.meta.url));

describeWithPeers(['valgrind', 'openssl'])('DTLS engine addon under valgrind', () => {
  it('runs handshakes, echoes, a failed handshake, idle expiry and destroy with no memory errors and nothing definitely lost', async () => {
    expect(loadDtlsAddon()).toHaveProperty('addon');
    const dir = mkdtempSync(join(tmpdir(), 'rtcedge-dtls-vg-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });
      const rounds = 20;
      // The workload takes about 18 s of CPU under memcheck (45 s at a load average of 10 on 2 cores); this bound
      // only ends a run that hangs, and leaves it a tenth of a core.
      const vg = await runCommand(
        'valgrind',
        ['--tool=memcheck', '--error-exitcode=99', '--leak-check=full', '--errors-for-leak-kinds=definite', 'node', WORKLOAD, DTLS_ADDON_PATH, join(dir, 'cert.pem'), join(dir, 'key.pem'), String(rounds)],
        { timeoutMs: 240_000 },
      );
      const r = { code: vg.code, out: vg.output };
      // On a failure: the workload's own lines (its steps, its result), then the end of valgrind's report.
      if (r.code !== 0) console.log(`${r.out.split('\n').filter((l) => !/^==\d+==/.test(l)).join('\n')}\n${r.out.slice(-2000)}`);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/ERROR SUMMARY: 0 errors from 0 contexts/);
      expect(r.out).toMatch(/definitely lost: 0 bytes in 0 blocks|no leaks are possible/);
      const line = r.out.split('\n').find((l) => l.startsWith('{"echoed"'));
      expect(line).toBeDefined();
      const res = JSON.parse(line!) as { echoed: number; atClient: number; closeNotify: number; badOk: unknown; againOk: boolean; idleExpired: boolean; stats: Record<string, number> };
      expect(res).toMatchObject({ echoed: rounds, atClient: rounds, closeNotify: 1, againOk: true, idleExpired: true });
      expect(res.badOk).not.toBe(true);
      // Six clients each went through the cookie exchange; all but the wrong-PSK one finished the handshake; one replaced a vanished one.
      expect(res.stats).toMatchObject({ cookiesSent: 6, sessionsOpened: 6, handshakesDone: 5, sessionsReplaced: 1, idleClosed: 1, recordsIn: rounds, sessions: 1 });
      expect(res.stats.handshakesFailed! + res.stats.handshakesTimedOut!).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 260_000);
});
