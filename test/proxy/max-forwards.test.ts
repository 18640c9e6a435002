import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { maxForwards } from '../../src/proxy/processors/max-forwards.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('max-forwards processor (RFC 3261 §16.3 step 3)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());
  const withMf = (method: string, mf: string) => sipRequest(method, `sip:bob@${DOMAIN}`, { noMaxForwards: true, headers: [{ name: 'Max-Forwards', value: mf }] });

  it('lets a request with hops left go on, and counts a missing Max-Forwards as 70', () => {
    expect(maxForwards.process(world.context(withMf('INVITE', '1')))).toBe('continue');
    const ctx = world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`, { noMaxForwards: true }));
    expect(maxForwards.process(ctx)).toBe('continue');
    expect(ctx.maxForwards).toBe(70);
    expect(ctx.forwardedMaxForwards).toBe(70);
  });

  it('answers 483 at zero', () => {
    expect(maxForwards.process(world.context(withMf('INVITE', '0')))).toEqual({ kind: 'reply', status: 483, reason: 'Too Many Hops' });
    expect(maxForwards.process(world.context(withMf('MESSAGE', '0')))).toMatchObject({ status: 483 });
  });

  it('lets OPTIONS, REGISTER and CANCEL at zero go on (this server may answer them itself)', () => {
    expect(maxForwards.process(world.context(withMf('OPTIONS', '0')))).toBe('continue');
    expect(maxForwards.process(world.context(withMf('REGISTER', '0')))).toBe('continue');
    expect(maxForwards.process(world.context(withMf('CANCEL', '0')))).toBe('continue');
  });

  it('decrements for the forwarded copy', () => {
    const ctx = world.context(withMf('INVITE', '5'));
    expect(ctx.forwardedMaxForwards).toBe(4);
  });
});
