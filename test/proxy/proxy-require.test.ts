import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { proxyRequire } from '../../src/proxy/processors/proxy-require.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('proxy-require processor (RFC 3261 §16.3 step 5)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('goes on without Proxy-Require', () => {
    expect(proxyRequire.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
  });

  it('answers 420 listing every tag in Unsupported', () => {
    const req = sipRequest('INVITE', `sip:bob@${DOMAIN}`, { headers: [{ name: 'Proxy-Require', value: 'foo, bar' }] });
    expect(proxyRequire.process(world.context(req))).toEqual({
      kind: 'reply',
      status: 420,
      reason: 'Bad Extension',
      headers: [{ name: 'Unsupported', value: 'foo, bar' }],
    });
  });
});
