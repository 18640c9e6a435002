/**
 * The abuse-resistance pieces composed from `sip.security` (security/security.ts):
 * the source gate and the failed-authentication guard share one ban list, and
 * exempt_sources applies to both.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createSecurity } from '../../src/security/security.js';
import type { SipMessage } from '../../src/sip/message.js';

const options = (address: string) => ({
  msg: { kind: 'request', method: 'OPTIONS', uri: 'sip:example.test', headers: [], body: Buffer.alloc(0) } as SipMessage,
  source: { transport: 'udp', remoteAddress: address, remotePort: 5060 },
});

describe('createSecurity', () => {
  it('a source banned for failed authentications is dropped by the gate; exempt sources never are', () => {
    const settings = parseConfig({ sip: { security: { auth_failures: { per_source: 2 }, exempt_sources: ['127.0.0.0/8'] } } }).sip.security;
    const banned: unknown[] = [];
    const { gate, failures, bans } = createSecurity(settings, silentLogger, { onBansChanged: (b) => banned.push(b.length) });
    failures.failed('alice', '192.0.2.7');
    expect(gate.admit(options('192.0.2.7'))).toBe(true);
    failures.failed('alice', '192.0.2.7');
    expect(bans.isBanned('192.0.2.7')).toBe(true);
    expect(gate.admit(options('192.0.2.7'))).toBe(false);
    expect(banned).toEqual([1]);
    failures.failed('alice', '127.0.0.1');
    failures.failed('alice', '127.0.0.1');
    expect(gate.admit(options('127.0.0.1'))).toBe(true);
  });
});
