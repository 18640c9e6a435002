import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loopDetection, loopHash } from '../../src/proxy/processors/loop-detection.js';
import { prependHeader, removeHeaders } from '../../src/sip/message.js';
import { newBranch } from '../../src/sip/branch.js';
import { DOMAIN, openSipWorld, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('loop-detection processor (RFC 3261 §16.3 step 4)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('keeps the hash of the request in the context and goes on', () => {
    const ctx = world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`));
    expect(loopDetection.process(ctx)).toBe('continue');
    expect(ctx.loopHash).toMatch(/^[A-Za-z0-9_-]{10}$/);
    expect(ctx.loopHash).toBe(loopHash(ctx.req, 'f1', undefined));
  });

  it('the hash is that of the request as received, even after Route pre-processing changed the Request-URI and Route', () => {
    const req = sipRequest('INVITE', `sip:bob@${DOMAIN}`);
    prependHeader(req, 'Route', `<sip:${DOMAIN};lr>`);
    const asReceived = loopHash(req, 'f1', undefined);
    const ctx = world.context(req);
    expect(loopDetection.process(ctx)).toBe('continue');
    req.uri = 'sip:bob@127.0.0.1:40002';
    removeHeaders(req, 'route');
    expect(loopHash(req, 'f1', undefined)).not.toBe(asReceived);
    expect(ctx.loopHash).toBe(asReceived);
  });

  it('answers 482 when our own Via carries the same hash', () => {
    const req = sipRequest('INVITE', `sip:bob@${DOMAIN}`);
    const hash = loopHash(req, 'f1', undefined);
    prependHeader(req, 'Via', `SIP/2.0/UDP 127.0.0.1:5060;branch=${newBranch(hash)}`);
    expect(loopDetection.process(world.context(req))).toEqual({ kind: 'reply', status: 482, reason: 'Loop Detected' });
  });

  it('takes a spiral (the Request-URI changed) or another element\'s Via with that hash for no loop', () => {
    const req = sipRequest('INVITE', `sip:bob@${DOMAIN}`);
    prependHeader(req, 'Via', `SIP/2.0/UDP 127.0.0.1:5060;branch=${newBranch(loopHash(req, 'f1', undefined))}`);
    req.uri = 'sip:bob@127.0.0.1:40002';
    expect(loopDetection.process(world.context(req))).toBe('continue');
    const other = sipRequest('INVITE', `sip:bob@${DOMAIN}`);
    prependHeader(other, 'Via', `SIP/2.0/UDP 127.0.0.1:6060;branch=${newBranch(loopHash(other, 'f1', undefined))}`);
    expect(loopDetection.process(world.context(other))).toBe('continue');
  });
});
