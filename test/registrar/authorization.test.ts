import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authorization } from '../../src/registrar/steps/authorization.js';
import { getHeader, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { DOMAIN, openSipWorld, registerContext, sipRequest, UA_SOURCE, type SipWorld } from '../helpers/sip-world.js';
import { UdpUa } from '../helpers/udp-ua.js';

describe('registrar steps 3 and 4 (RFC 3261 §10.3): authentication, authorization for the AOR', () => {
  let world: SipWorld;
  let ua: UdpUa;
  beforeAll(async () => (ua = await UdpUa.open()));
  afterAll(() => ua.close());
  beforeEach(() => (world = openSipWorld({ alice: 'alicepw', bob: 'bobpw' })));
  afterEach(() => world.close());

  it('challenges with 401 and WWW-Authenticate', async () => {
    const answer = await authorization(registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`), { aor: `sip:alice@${DOMAIN}` }));
    expect(answer?.status).toBe(401);
    expect(answer?.headers?.[0]).toMatchObject({ name: 'WWW-Authenticate' });
  });

  it('accepts the AOR owner and answers 403 to another user with valid credentials', async () => {
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { to: `<sip:alice@${DOMAIN}>` });
    /** A 401 carrying a fresh challenge (each nonce count is used once): the challenge to a new request, since a retransmission gets the same one. */
    const challenge = async (): Promise<SipResponse> => {
      const fresh = sipRequest('REGISTER', `sip:${DOMAIN}`, { to: `<sip:alice@${DOMAIN}>` });
      const answer = (await authorization(registerContext(world, fresh, { aor: `sip:alice@${DOMAIN}` })))!;
      return createResponse(req, 401, { reason: 'Unauthorized', headers: answer.headers });
    };
    const asBob = ua.authorize(req, await challenge(), 'bob', 'bobpw');
    expect(getHeader(asBob, 'authorization')).toMatch(/^Digest username="bob"/);
    expect(await authorization(registerContext(world, asBob, { aor: `sip:alice@${DOMAIN}` }))).toEqual({ status: 403, reason: 'Forbidden' });
    const asAlice = ua.authorize(req, await challenge(), 'alice', 'alicepw');
    expect(await authorization(registerContext(world, asAlice, { aor: `sip:alice@${DOMAIN}` }))).toBeUndefined();
  });

  it('accepts a verified client certificate naming the AOR', async () => {
    const source = { ...UA_SOURCE, transport: 'tls' as const, flowId: 'c1', tlsIdentities: [`sip:alice@${DOMAIN}`] };
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { to: `<sip:alice@${DOMAIN}>` });
    expect(await authorization(registerContext(world, req, { aor: `sip:alice@${DOMAIN}` }, source))).toBeUndefined();
  });
});
