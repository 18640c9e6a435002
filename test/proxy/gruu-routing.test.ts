import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gruuRouting } from '../../src/proxy/processors/gruu-routing.js';
import { publicGruu, tempGruu, tempGruuKey } from '../../src/registrar/gruu.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

const KEY = tempGruuKey(Buffer.alloc(32, 5));
const PHONE = '"<urn:uuid:00000000-0000-4000-8000-00000000b0b1>"';
const LAPTOP = '"<urn:uuid:00000000-0000-4000-8000-00000000b0b2>"';
const AOR = `sip:bob@${DOMAIN}`;
const fromOther = { from: '<sip:eve@other.test>;tag=e' };

describe('gruu-routing processor (RFC 5627 §8.4.1)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld({ bob: 'bobpw', carol: 'carolpw' }, { tempGruuKey: KEY })));
  afterEach(() => world.close());

  const route = (uri: string) => gruuRouting.process(world.context(sipRequest('INVITE', uri, fromOther)));

  it('a public GRUU reaches only the bindings of its instance', async () => {
    const phone = world.bind('bob', 'sip:bob@127.0.0.1:40020', { instance: PHONE, callId: 'phone-reg' });
    world.bind('bob', 'sip:bob@127.0.0.1:40021', { instance: LAPTOP, callId: 'laptop-reg' });
    world.bind('bob', 'sip:bob@127.0.0.1:40022');
    expect(await route(publicGruu(AOR, PHONE))).toEqual({ kind: 'forward', targets: [[{ uri: phone.contactUri, binding: phone }]] });
  });

  it('a temp-GRUU reaches its instance across refreshes with the same Call-ID, and ends with a new Call-ID', async () => {
    world.bind('bob', 'sip:bob@127.0.0.1:40021', { instance: LAPTOP, callId: 'laptop-reg' });
    const first = tempGruu(KEY, AOR, LAPTOP, 'laptop-reg', 1, DOMAIN);
    // A refresh (same Call-ID, higher CSeq): the earlier temp-GRUU still routes (§5.1).
    const refreshed = world.bind('bob', 'sip:bob@127.0.0.1:40021', { instance: LAPTOP, callId: 'laptop-reg', cseq: 2 });
    expect(await route(first)).toEqual({ kind: 'forward', targets: [[{ uri: refreshed.contactUri, binding: refreshed }]] });
    // The instance registers anew with another Call-ID: the old temp-GRUU is invalid (404).
    world.bind('bob', 'sip:bob@127.0.0.1:40021', { instance: LAPTOP, callId: 'laptop-reg-2' });
    expect(await route(first)).toEqual({ kind: 'reply', status: 404, reason: 'Not Found' });
  });

  it('480 when the instance has no binding; 404 for a forged temp-GRUU or a GRUU of an unknown user', async () => {
    world.bind('bob', 'sip:bob@127.0.0.1:40022');
    expect(await route(publicGruu(AOR, PHONE))).toEqual({ kind: 'reply', status: 480, reason: 'Temporarily Unavailable' });
    expect(await route(tempGruu(KEY, AOR, PHONE, 'gone', 1, DOMAIN))).toMatchObject({ status: 480 });
    expect(await route(tempGruu(tempGruuKey(Buffer.alloc(32, 1)), AOR, PHONE, 'x', 1, DOMAIN))).toMatchObject({ status: 404 });
    expect(await route(`sip:tgruu.bm90LWEtdG9rZW4@${DOMAIN};gr`)).toMatchObject({ status: 404 });
    expect(await route(publicGruu(`sip:nobody@${DOMAIN}`, PHONE))).toMatchObject({ status: 404 });
  });

  it('lets a Request-URI without gr go on to the location lookup', async () => {
    expect(await route(AOR)).toBe('continue');
    expect(await route('sip:bob@other.test;gr=urn:uuid:1')).toBe('continue');
  });
});
