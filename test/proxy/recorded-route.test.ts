import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordedRoute } from '../../src/proxy/processors/recorded-route.js';
import { ownRoute } from '../../src/proxy/processors/own-route.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('recorded-route processor (RFC 3261 §16.4, §12.2)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld({ alice: 'alicepw' })));
  afterEach(() => world.close());

  it('sends an in-dialog request along the route this proxy recorded, unauthenticated', async () => {
    const req = sipRequest('BYE', 'sip:bob@127.0.0.1:40002', { to: `<sip:bob@${DOMAIN}>;tag=t1`, headers: [{ name: 'Route', value: '<sip:127.0.0.1:5060;lr>' }] });
    const ctx = world.context(req);
    ownRoute.process(ctx);
    expect(await recordedRoute.process(ctx)).toEqual({ kind: 'forward', targets: [[{ uri: 'sip:bob@127.0.0.1:40002', binding: undefined, flow: undefined }]] });
  });

  it('sends a request for a registered contact to its binding', async () => {
    const b = world.bind('bob', 'sip:bob@127.0.0.1:40002');
    const outcome = await recordedRoute.process(world.context(sipRequest('MESSAGE', 'sip:bob@127.0.0.1:40002', { from: '<sip:eve@other.test>;tag=e' })));
    expect(outcome).toEqual({ kind: 'forward', targets: [[{ uri: 'sip:bob@127.0.0.1:40002', binding: b, flow: undefined }]] });
  });

  it('refuses to relay along a foreign Route for other domains (403) and challenges local senders (407)', async () => {
    const route = [{ name: 'Route', value: '<sip:next.test;lr>' }];
    expect(await recordedRoute.process(world.context(sipRequest('INVITE', 'sip:x@far.test', { from: '<sip:eve@other.test>;tag=e', headers: route })))).toEqual({ kind: 'reply', status: 403, reason: 'Relaying denied' });
    expect(await recordedRoute.process(world.context(sipRequest('INVITE', 'sip:x@far.test', { headers: route })))).toMatchObject({ status: 407 });
  });

  it('goes on for an out-of-dialog request to an AOR of ours', async () => {
    expect(await recordedRoute.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)))).toBe('continue');
  });
});
