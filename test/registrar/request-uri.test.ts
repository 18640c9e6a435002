import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestUriDomain } from '../../src/registrar/steps/request-uri.js';
import { requireExtensions } from '../../src/registrar/steps/require-extensions.js';
import { DOMAIN, openSipWorld, registerContext, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('registrar steps 1 and 2 (RFC 3261 §10.3): Request-URI domain, Require', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());

  it('step 1: accepts a served domain or our address, 404 for another domain', () => {
    expect(requestUriDomain(registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`)))).toBeUndefined();
    expect(requestUriDomain(registerContext(world, sipRequest('REGISTER', 'sip:127.0.0.1:5060')))).toBeUndefined();
    expect(requestUriDomain(registerContext(world, sipRequest('REGISTER', 'sip:other.test')))).toEqual({ status: 404, reason: 'Not Found: domain not served here' });
  });

  it('step 2: accepts path, outbound and gruu, 420 listing any other Require', () => {
    const ok = sipRequest('REGISTER', `sip:${DOMAIN}`, { headers: [{ name: 'Require', value: 'path, outbound, gruu' }] });
    expect(requireExtensions(registerContext(world, ok))).toBeUndefined();
    const bad = sipRequest('REGISTER', `sip:${DOMAIN}`, { headers: [{ name: 'Require', value: 'outbound, 100rel' }] });
    expect(requireExtensions(registerContext(world, bad))).toEqual({ status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: '100rel' }] });
  });
});
