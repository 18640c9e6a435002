import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { strictRoute } from '../../src/proxy/processors/strict-route.js';
import { getHeaderValues } from '../../src/sip/message.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('strict-route processor (RFC 3261 §16.4)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('puts the last Route back into the Request-URI when the Request-URI is our Record-Route', () => {
    const req = sipRequest('BYE', 'sip:127.0.0.1:5060;lr', {
      to: `<sip:bob@${DOMAIN}>;tag=t1`,
      headers: [{ name: 'Route', value: '<sip:proxy2.test;lr>, <sip:bob@127.0.0.1:40002>' }],
    });
    const ctx = world.context(req);
    expect(strictRoute.process(ctx)).toBe('continue');
    expect(req.uri).toBe('sip:bob@127.0.0.1:40002');
    expect(getHeaderValues(req, 'route')).toEqual(['<sip:proxy2.test;lr>']);
    expect(ctx.ruri.user).toBe('bob');
  });

  it('leaves a loose-routed request, a URI with a user part and another host alone', () => {
    for (const uri of ['sip:bob@127.0.0.1:5060;lr', 'sip:127.0.0.1:5060', 'sip:other.test;lr', 'sip:127.0.0.1:6060;lr']) {
      const req = sipRequest('BYE', uri, { headers: [{ name: 'Route', value: '<sip:bob@127.0.0.1:40002>' }] });
      strictRoute.process(world.context(req));
      expect(req.uri).toBe(uri);
      expect(getHeaderValues(req, 'route')).toHaveLength(1);
    }
  });
});
