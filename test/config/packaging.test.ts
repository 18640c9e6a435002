/**
 * Packaging files in config/: the systemd unit's hardening as systemd-analyze
 * judges it (interop/harness/peers.ts: skipped with a reason where
 * systemd-analyze is missing, a failure in CI), and the unit's settings.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { describeWithPeers } from '../../interop/harness/peers.js';

const UNIT = resolve(__dirname, '../../config/rtcedge.service');
describeWithPeers(['systemd-analyze'])('config/rtcedge.service under systemd-analyze', () => {
  test('systemd-analyze security rates it 3.0 or below', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', UNIT], { encoding: 'utf8' });
    const m = /Overall exposure level for rtcedge\.service: (\d+\.\d)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(3.0);
  });
});

describe('config/rtcedge.service', () => {
  test('own user, state directory 0700, only CAP_NET_BIND_SERVICE, reload by SIGHUP', () => {
    const unit = readFileSync(UNIT, 'utf8');
    for (const line of ['DynamicUser=yes', 'StateDirectory=rtcedge', 'StateDirectoryMode=0700', 'WorkingDirectory=/var/lib/rtcedge', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      expect(unit.split('\n')).toContain(line);
    }
  });
});
