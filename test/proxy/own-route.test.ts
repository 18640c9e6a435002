import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ownRoute } from '../../src/proxy/processors/own-route.js';
import { encodeFlowToken } from '../../src/proxy/flow-token.js';
import { getHeaderValues } from '../../src/sip/message.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('own-route processor (RFC 3261 §16.4, RFC 5626 §5.3)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('removes both entries of a double Record-Route and reads the flow token of the last', () => {
    const flow = { transport: 'tcp' as const, address: '127.0.0.1', port: 40010, flowId: 'f7' };
    const token = encodeFlowToken(flow, world.env.flowTokenSecret);
    const req = sipRequest('BYE', 'sip:bob@127.0.0.1:40002', {
      headers: [{ name: 'Route', value: `<sip:127.0.0.1:5060;lr>, <sip:${token}@${DOMAIN};lr>, <sip:next.test;lr>` }],
    });
    const ctx = world.context(req);
    expect(ownRoute.process(ctx)).toBe('continue');
    expect(ctx.removedRoutes).toBe(2);
    expect(ctx.flow).toEqual(flow);
    expect(getHeaderValues(req, 'route')).toEqual(['<sip:next.test;lr>']);
  });

  it('answers 403 to a forged flow token (RFC 5626 §5.3)', () => {
    const req = sipRequest('BYE', 'sip:bob@127.0.0.1:40002', { headers: [{ name: 'Route', value: '<sip:Zm9v.AAAAAAAAAAA@127.0.0.1:5060;lr>, <sip:127.0.0.1:6060;lr>' }] });
    const ctx = world.context(req);
    expect(ownRoute.process(ctx)).toEqual({ kind: 'reply', status: 403, reason: 'Forbidden: invalid flow token' });
    expect(ctx.flow).toBeUndefined();
  });

  it('ignores a user part that is no flow token and leaves other elements\' routes', () => {
    const req = sipRequest('BYE', 'sip:bob@127.0.0.1:40002', { headers: [{ name: 'Route', value: '<sip:john.doe@127.0.0.1:5060;lr>, <sip:127.0.0.1:6060;lr>' }] });
    const ctx = world.context(req);
    expect(ownRoute.process(ctx)).toBe('continue');
    expect(ctx.removedRoutes).toBe(1);
    expect(ctx.flow).toBeUndefined();
    expect(getHeaderValues(req, 'route')).toEqual(['<sip:127.0.0.1:6060;lr>']);
  });
});
