import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authentication } from '../../src/proxy/processors/authentication.js';
import { DOMAIN, openSipWorld, sipRequest, UA_SOURCE, type SipWorld } from '../helpers/sip-world.js';

describe('authentication processor (RFC 3261 §16.3 step 6, §22.3)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld({ alice: 'alicepw' })));
  afterEach(() => world.close());
  /** A TLS source whose verified client certificate names `aor`. */
  const certified = (aor: string) => ({ ...UA_SOURCE, transport: 'tls' as const, flowId: 'c1', tlsIdentities: [aor] });

  it('challenges a local sender without credentials with 407', async () => {
    const outcome = await authentication.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`)));
    expect(outcome).toMatchObject({ kind: 'reply', status: 407 });
    const headers = (outcome as { headers: { name: string; value: string }[] }).headers;
    expect(headers[0].name).toBe('Proxy-Authenticate');
    expect(headers[0].value).toMatch(/^Digest realm="example\.test"/);
  });

  it('keeps the user a client certificate naming the From AOR authenticated', async () => {
    const ctx = world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`), certified(`sip:alice@${DOMAIN}`));
    expect(await authentication.process(ctx)).toBe('continue');
    expect(ctx.username).toBe('alice');
  });

  it('lets senders of other domains and in-dialog requests go on unauthenticated', async () => {
    expect(await authentication.process(world.context(sipRequest('INVITE', `sip:bob@${DOMAIN}`, { from: '<sip:eve@other.test>;tag=x' })))).toBe('continue');
    expect(await authentication.process(world.context(sipRequest('BYE', `sip:bob@${DOMAIN}`, { to: `<sip:bob@${DOMAIN}>;tag=t` })))).toBe('continue');
  });
});
