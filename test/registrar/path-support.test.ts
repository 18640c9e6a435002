import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pathSupport } from '../../src/registrar/steps/path-support.js';
import { registerHeaders } from '../../src/registrar/steps/expires.js';
import type { SipHeader } from '../../src/sip/message.js';
import { DOMAIN, openSipWorld, registerContext, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('registrar: Path (RFC 3327 §5.3)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());
  const check = (headers: SipHeader[]) => {
    const ctx = registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`, { headers }), { aor: `sip:alice@${DOMAIN}` });
    registerHeaders(ctx);
    return pathSupport(ctx);
  };
  const path = { name: 'Path', value: '<sip:edge.test;lr>' };

  it('refuses Path from a UA that did not list path in Supported with 420 and Unsupported: path', () => {
    expect(check([path])).toEqual({ status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: 'path' }] });
    expect(check([path, { name: 'Supported', value: 'outbound' }])).toMatchObject({ status: 420 });
  });

  it('accepts Path with Supported: path, and a REGISTER without Path', () => {
    expect(check([path, { name: 'Supported', value: 'outbound, Path' }])).toBeUndefined();
    expect(check([])).toBeUndefined();
  });
});
