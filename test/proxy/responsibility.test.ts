import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { responsibility } from '../../src/proxy/processors/responsibility.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('responsibility processor (RFC 3261 §16.5)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('goes on for an AOR of ours, by domain or by our address', () => {
    expect(responsibility.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
    expect(responsibility.process(world.context(sipRequest('INVITE', 'sip:bob@127.0.0.1:5060')))).toBe('continue');
  });

  it('relays to another domain for local senders only', () => {
    expect(responsibility.process(world.context(sipRequest('INVITE', 'sip:carol@far.test')))).toEqual({ kind: 'forward', targets: [[{ uri: 'sip:carol@far.test' }]] });
    expect(responsibility.process(world.context(sipRequest('INVITE', 'sip:carol@far.test', { from: '<sip:eve@other.test>;tag=e' })))).toEqual({ kind: 'reply', status: 403, reason: 'Relaying denied' });
  });

  it('answers 404 for our domain without a user part', () => {
    expect(responsibility.process(world.context(sipRequest('INVITE', `sip:${DOMAIN}`)))).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });
});
