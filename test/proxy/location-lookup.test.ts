import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { locationLookup } from '../../src/proxy/processors/location-lookup.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('location-lookup processor (RFC 3261 §16.5, §10.2)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld({ bob: 'bobpw', carol: 'carolpw' })));
  afterEach(() => world.close());
  const fromOther = { from: '<sip:eve@other.test>;tag=e' };

  it('builds the target set from the bindings, highest q first', async () => {
    const low = world.bind('bob', 'sip:bob@127.0.0.1:40002', { q: 0.5 });
    const high = world.bind('bob', 'sip:bob@127.0.0.1:40003', { q: 1 });
    expect(await locationLookup.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`, fromOther)))).toEqual({
      kind: 'forward',
      targets: [[{ uri: high.contactUri, binding: high }], [{ uri: low.contactUri, binding: low }]],
    });
  });

  it('answers 404 for an unknown user', async () => {
    expect(await locationLookup.process(world.context(sipRequest('INVITE', `sip:nobody@${DOMAIN}`)))).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  it('tells 480 for a known user without bindings only to local senders; others get 404', async () => {
    expect(await locationLookup.process(world.context(sipRequest('INVITE', `sip:carol@${DOMAIN}`)))).toMatchObject({ status: 480 });
    expect(await locationLookup.process(world.context(sipRequest('INVITE', `sip:carol@${DOMAIN}`, fromOther)))).toMatchObject({ status: 404 });
  });
});
