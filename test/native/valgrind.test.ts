/**
 * The data-plane addon under valgrind memcheck: a scripted workload
 * (fixtures/data-plane-workload.mjs) in a child process must show no memory
 * errors and no definitely lost blocks, and relay every datagram.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';
import { loadNativeAddon, NATIVE_ADDON_PATH } from '../../src/turn/native-addon.js';

const WORKLOAD = fileURLToPath(new URL('./fixtures/data-plane-workload.mjs', import.meta.url));

function run(cmd: string, args: string[], timeoutS: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('timeout', ['-s', 'KILL', String(timeoutS), cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describeWithPeers(['valgrind'])('data-plane addon under valgrind', () => {
  it('runs a relay workload with no memory errors and nothing definitely lost', async () => {
    expect(loadNativeAddon()).toHaveProperty('addon');
    const rounds = 40;
    const r = await run(
      'valgrind',
      ['--tool=memcheck', '--error-exitcode=99', '--leak-check=full', '--errors-for-leak-kinds=definite', 'node', WORKLOAD, NATIVE_ADDON_PATH, '31980', String(rounds)],
      150,
    );
    if (r.code !== 0) console.log(r.out.slice(-4000));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/ERROR SUMMARY: 0 errors from 0 contexts/);
    expect(r.out).toMatch(/definitely lost: 0 bytes in 0 blocks|no leaks are possible/);
    const line = r.out.split('\n').find((l) => l.startsWith('{"atPeer"'));
    expect(line).toBeDefined();
    const res = JSON.parse(line!) as { atPeer: number; atClient: number; handed: number; stats: Record<string, number> };
    // ChannelData and Send indications to the peer; ChannelData, 10 Data indications and one control reply to the client.
    expect(res).toMatchObject({ atPeer: 2 * rounds, atClient: rounds + 11, handed: rounds });
    expect(res.stats).toMatchObject({
      toPeerPackets: 2 * rounds,
      toClientPackets: rounds + 10,
      toControlPackets: rounds,
      fromControlPackets: 1,
      dropNoAllocation: 0,
      dropNoPermission: 0,
      dropNoChannel: 0,
      dropMalformed: 0,
      dropSendFailed: 0,
    });
  }, 170_000);
});
