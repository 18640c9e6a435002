import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localHandling } from '../../src/proxy/processors/local-handling.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('local-handling processor (RFC 3261 §16.4, §10.3, §11)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('hands a REGISTER for a served domain to the registrar', async () => {
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { to: `<sip:alice@${DOMAIN}>` });
    expect(await localHandling.process(world.context(req))).toEqual({ kind: 'handled' });
    expect(world.registered).toEqual([req]);
  });

  it('answers OPTIONS to the server with 200 and Allow', () => {
    const outcome = localHandling.process(world.context(sipRequest('OPTIONS', 'sip:127.0.0.1:5060')));
    expect(outcome).toMatchObject({ kind: 'reply', status: 200 });
    const allow = (outcome as { headers: { name: string; value: string }[] }).headers.find((h) => h.name === 'Allow')!.value;
    expect(allow.split(', ')).toContain('REGISTER');
  });

  it('answers 420 for an unsupported Require and 404 for other methods to the server itself', () => {
    const req = sipRequest('OPTIONS', `sip:${DOMAIN}`, { headers: [{ name: 'Require', value: 'path, 100rel' }] });
    expect(localHandling.process(world.context(req))).toEqual({ kind: 'reply', status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: '100rel' }] });
    expect(localHandling.process(world.context(sipRequest('MESSAGE', `sip:${DOMAIN}`)))).toMatchObject({ status: 404 });
  });

  it('goes on for a user, a Route, another domain, or a port we do not listen on', () => {
    expect(localHandling.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
    expect(localHandling.process(world.context(sipRequest('OPTIONS', `sip:${DOMAIN}`, { headers: [{ name: 'Route', value: '<sip:next.test;lr>' }] })))).toBe('continue');
    expect(localHandling.process(world.context(sipRequest('OPTIONS', 'sip:other.test')))).toBe('continue');
    expect(localHandling.process(world.context(sipRequest('OPTIONS', 'sip:127.0.0.1:6060')))).toBe('continue');
  });
});
