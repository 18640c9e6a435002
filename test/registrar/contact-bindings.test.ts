import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerHeaders } from '../../src/registrar/steps/expires.js';
import { contactBindings } from '../../src/registrar/steps/contact-bindings.js';
import { wildcardContact } from '../../src/registrar/steps/wildcard.js';
import type { SipHeader } from '../../src/sip/message.js';
import { DOMAIN, openSipWorld, registerContext, sipRequest, type SipWorld } from '../helpers/sip-world.js';

const AOR = `sip:alice@${DOMAIN}`;

describe('registrar steps 6 and 7 (RFC 3261 §10.3): Contact processing', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());
  /** The context after steps 1–5 and the header reading of step 6. */
  const read = (headers: SipHeader[]) => {
    const ctx = registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`, { to: `<${AOR}>`, headers }), { aor: AOR });
    expect(registerHeaders(ctx)).toBeUndefined();
    return ctx;
  };

  it('gives each contact its expiry: parameter, else Expires, else the default; lowered to the maximum', () => {
    const ctx = read([
      { name: 'Contact', value: '<sip:a@127.0.0.1:40001>;expires=120, <sip:a@127.0.0.1:40002>' },
      { name: 'Contact', value: '<sip:a@127.0.0.1:40003>;expires=99999' },
      { name: 'Expires', value: '300' },
    ]);
    expect(contactBindings(ctx)).toBeUndefined();
    expect(ctx.changes.map((c) => [c.contactUri, c.record!.expires - ctx.nowS])).toEqual([
      ['sip:a@127.0.0.1:40001', 120],
      ['sip:a@127.0.0.1:40002', 300],
      ['sip:a@127.0.0.1:40003', 3600],
    ]);
    expect(ctx.changes[0].record).toMatchObject({ aor: AOR, callId: 'world-call@127.0.0.1', cseq: 1, source: { transport: 'udp', address: '127.0.0.1', port: 40000 } });
  });

  it('answers 423 with Min-Expires below the minimum, and 400 for a malformed Expires', () => {
    expect(contactBindings(read([{ name: 'Contact', value: '<sip:a@127.0.0.1:40001>;expires=10' }]))).toEqual({
      status: 423,
      reason: 'Interval Too Brief',
      headers: [{ name: 'Min-Expires', value: '60' }],
    });
    expect(() => read([{ name: 'Expires', value: 'soon' }])).toThrow(/malformed expires/);
  });

  it('answers 500 to a REGISTER out of order (same Call-ID, CSeq not higher)', () => {
    world.bind('alice', 'sip:a@127.0.0.1:40001', { callId: 'world-call@127.0.0.1', cseq: 5 });
    expect(contactBindings(read([{ name: 'Contact', value: '<sip:a@127.0.0.1:40001>' }]))).toEqual({ status: 500, reason: 'Server Internal Error: out-of-order REGISTER' });
  });

  it('replaces the flow of the same instance and reg-id for an Outbound UA (RFC 5626 §6)', () => {
    const instance = '"<urn:uuid:00000000-0000-4000-8000-000000000001>"';
    world.bind('alice', 'sip:a@127.0.0.1:40001;ob', { instance, regId: 1, callId: 'older' });
    const ctx = read([
      { name: 'Supported', value: 'outbound, path' },
      { name: 'Contact', value: `<sip:a@127.0.0.1:40009;ob>;+sip.instance=${instance};reg-id=1` },
    ]);
    expect(contactBindings(ctx)).toBeUndefined();
    expect(ctx.outboundUsed).toBe(true);
    expect(ctx.changes.map((c) => [c.contactUri, !!c.record])).toEqual([
      ['sip:a@127.0.0.1:40001;ob', false],
      ['sip:a@127.0.0.1:40009;ob', true],
    ]);
  });

  it('Contact: * removes every binding only alone and with Expires: 0', async () => {
    world.bind('alice', 'sip:a@127.0.0.1:40001', { callId: 'older' });
    expect(await wildcardContact(read([{ name: 'Contact', value: '*' }]))).toEqual({ status: 400, reason: 'Bad Request: Contact * requires Expires: 0' });
    expect(await wildcardContact(read([{ name: 'Contact', value: '*, <sip:a@127.0.0.1:40001>' }, { name: 'Expires', value: '0' }]))).toMatchObject({ status: 400 });
    expect(world.location.lookup(AOR)).toHaveLength(1);
    expect(await wildcardContact(read([{ name: 'Contact', value: '*' }, { name: 'Expires', value: '0' }]))).toMatchObject({ status: 200 });
    expect(world.location.lookup(AOR)).toEqual([]);
  });
});
