import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressOfRecord } from '../../src/registrar/steps/address-of-record.js';
import { DOMAIN, openSipWorld, registerContext, sipRequest, type SipWorld } from '../helpers/sip-world.js';

describe('registrar step 5 (RFC 3261 §10.3): the AOR from To', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());
  const register = (to: string) => registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`, { to }));

  it('takes the To URI as AOR, lowercasing the domain and ignoring a port', () => {
    const ctx = register('<sip:Alice@EXAMPLE.test>');
    expect(addressOfRecord(ctx)).toBeUndefined();
    expect(ctx.aor).toBe('sip:Alice@example.test');
    const byAddress = register('<sip:alice@127.0.0.1:7777>');
    expect(addressOfRecord(byAddress)).toBeUndefined();
    expect(byAddress.aor).toBe('sip:alice@example.test');
  });

  it('answers 400 for a To that is not a SIP URI and 404 for another domain', () => {
    expect(addressOfRecord(register('<tel:+15551234>'))).toEqual({ status: 400, reason: 'Bad Request: To is not a SIP or SIPS URI' });
    expect(addressOfRecord(register('<sip:alice@other.test>'))).toEqual({ status: 404, reason: 'Not Found' });
  });
});
