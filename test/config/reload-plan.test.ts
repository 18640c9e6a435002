import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { planReload } from '../../src/config/reload-plan.js';

describe('planReload', () => {
  const base = { data_dir: '/srv/rtcedge', sip: { listen: [{ transport: 'tls', port: 5061 }], tls: { cert: '/etc/a.pem', key: '/etc/a.key' } } };

  test('nothing changed: nothing to do', () => {
    expect(planReload(parseConfig(base), parseConfig(base))).toEqual({ changed: [], needRestart: [] });
  });

  test('log.level and sip.tls are applied; listeners, domains and TURN keys wait for a restart', () => {
    const next = parseConfig({
      ...base,
      domains: ['other.test'],
      log: { level: 'debug' },
      sip: { ...base.sip, tls: { cert: '/etc/b.pem', key: '/etc/b.key' }, registrar: { min_expires: 30 }, listen: [{ transport: 'tls', port: 5062 }] },
      turn: { max_allocations: 5 },
    });
    expect(planReload(parseConfig(base), next)).toEqual({
      changed: ['log.level', 'sip.tls'],
      needRestart: ['domains', 'sip.listen', 'sip.registrar', 'turn.max_allocations'],
    });
  });
});
