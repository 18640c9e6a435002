import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bindingLimit, storeBindings } from '../../src/registrar/steps/store-bindings.js';
import { bindingsResponse, dateHeader } from '../../src/registrar/steps/bindings-response.js';
import type { BindingChange } from '../../src/registrar/steps/register-context.js';
import { atOnce, DOMAIN, openSipWorld, registerContext, sipRequest, type SipWorld } from '../helpers/sip-world.js';

const AOR = `sip:alice@${DOMAIN}`;

describe('registrar steps 7 and 8 (RFC 3261 §10.3): store the bindings, answer with them', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld()));
  afterEach(() => world.close());
  const added = (port: number, expires: number): BindingChange => {
    const b = world.bind('alice', `sip:a@127.0.0.1:${port}`, { expires });
    world.location.remove(AOR, b.contactUri);
    return { contactUri: b.contactUri, record: b };
  };

  it('refuses with 403 what would exceed the bindings per AOR, and changes nothing', () => {
    world.bind('alice', 'sip:a@127.0.0.1:40001');
    const ctx = registerContext(world, sipRequest('REGISTER', `sip:${DOMAIN}`), { aor: AOR, changes: [added(40002, 1_800_000_100), added(40003, 1_800_000_100), added(40004, 1_800_000_100)] });
    expect(bindingLimit(ctx)).toEqual({ status: 403, reason: 'Forbidden: too many bindings' });
    ctx.changes.push({ contactUri: 'sip:a@127.0.0.1:40001' });
    expect(bindingLimit(ctx)).toBeUndefined();
  });

  it('stores the changes in SQLite, then lists every binding with its remaining expiry, Date and Supported', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { headers: [{ name: 'Path', value: '<sip:edge.test;lr>' }] });
    const ctx = registerContext(world, req, { aor: AOR, nowS, changes: [added(40002, nowS + 120)] });
    expect(await storeBindings(ctx)).toBeUndefined();
    expect(world.store.allBindings().map((b) => b.contactUri)).toEqual(['sip:a@127.0.0.1:40002']);
    const answer = atOnce(bindingsResponse(ctx));
    expect(answer.status).toBe(200);
    expect(answer.headers).toEqual([
      { name: 'Contact', value: '<sip:a@127.0.0.1:40002>;expires=120' },
      { name: 'Date', value: new Date(nowS * 1000).toUTCString() },
      { name: 'Supported', value: 'path, outbound, gruu' },
    ]);
  });

  it('echoes Path when the UA supports path and adds Require: outbound and Flow-Timer for Outbound', () => {
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { headers: [{ name: 'Path', value: '<sip:edge.test;lr>' }] });
    const ctx = registerContext(world, req, { aor: AOR, supported: ['path', 'outbound'], outboundUsed: true });
    const names = atOnce(bindingsResponse(ctx)).headers!.map((h) => `${h.name}: ${h.value}`);
    expect(names).toEqual(expect.arrayContaining(['Path: <sip:edge.test;lr>', 'Require: outbound', 'Flow-Timer: 120']));
  });
});

describe('the Date of a 200 (RFC 3261 §20.17), formatted once per second', () => {
  it('gives the HTTP date of the second asked, also when the second goes back', () => {
    const s = 1_764_300_000;
    for (const t of [s, s, s + 1, s, s + 86_400]) {
      expect(dateHeader(t)).toEqual({ name: 'Date', value: new Date(t * 1000).toUTCString() });
    }
    expect(dateHeader(s + 1).value).toBe('Fri, 28 Nov 2025 03:20:01 GMT');
  });
});
