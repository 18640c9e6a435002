import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bindingsResponse } from '../../src/registrar/steps/bindings-response.js';
import { openTempGruu, publicGruu, tempGruu, tempGruuKey } from '../../src/registrar/gruu.js';
import { parseNameAddr } from '../../src/sip/headers.js';
import { atOnce, DOMAIN, openSipWorld, registerContext, registrarOptions, sipRequest, type SipWorld } from '../helpers/sip-world.js';

const INSTANCE = '"<urn:uuid:00000000-0000-4000-8000-0000000a11ce>"';
const KEY = tempGruuKey(Buffer.alloc(32, 5));
const AOR = `sip:alice@${DOMAIN}`;

/** The pub-gruu and temp-gruu parameters of each Contact of a reply, unquoted. */
function gruus(headers: { name: string; value: string }[] = []): { pub?: string; temp?: string }[] {
  return headers
    .filter((h) => h.name === 'Contact')
    .map((h) => parseNameAddr(h.value).params)
    .map((p) => ({ pub: p['pub-gruu']?.replace(/"/g, ''), temp: p['temp-gruu']?.replace(/"/g, '') }));
}

describe('GRUUs in the REGISTER 200 (RFC 5627 §5)', () => {
  let world: SipWorld;
  beforeEach(() => (world = openSipWorld({ alice: 'alicepw' })));
  afterEach(() => world.close());

  function respond(supported: string[]) {
    const req = sipRequest('REGISTER', `sip:${DOMAIN}`, { from: `<${AOR}>;tag=r`, to: `<${AOR}>` });
    return atOnce(bindingsResponse({ ...registerContext(world, req, { aor: AOR, supported }), opts: registrarOptions(world, { tempGruuKey: KEY }) }));
  }

  it('gives a Contact with +sip.instance its pub-gruu and a temp-gruu that opens to the AOR and instance', () => {
    world.bind('alice', 'sip:alice@127.0.0.1:40010', { contact: `<sip:alice@127.0.0.1:40010>;+sip.instance=${INSTANCE}`, instance: INSTANCE, callId: 'reg-1' });
    world.bind('alice', 'sip:alice@127.0.0.1:40011');
    const res = respond(['gruu']);
    expect(res.status).toBe(200);
    // The two bindings may carry the same or different update times (ms): pick each Contact by its URI, not its place.
    const contacts = (res.headers ?? []).filter((h) => h.name === 'Contact');
    expect(contacts).toHaveLength(2);
    const byUri = (port: number) => gruus([contacts.find((h) => parseNameAddr(h.value).uri === `sip:alice@127.0.0.1:${port}`)!])[0];
    const withInstance = byUri(40010);
    const plain = byUri(40011);
    expect(withInstance.pub).toBe(`sip:alice@${DOMAIN};gr=urn:uuid:00000000-0000-4000-8000-0000000a11ce`);
    expect(withInstance.temp).toMatch(new RegExp(`^sip:tgruu\\.[A-Za-z0-9_-]+@${DOMAIN.replace('.', '\\.')};gr$`));
    // The temp-GRUU does not show the AOR (§3.2) but opens to it under our key.
    expect(withInstance.temp).not.toContain('alice');
    const user = withInstance.temp!.slice(4, withInstance.temp!.indexOf('@'));
    expect(openTempGruu(KEY, user)).toMatchObject({ aor: AOR, instance: 'urn:uuid:00000000-0000-4000-8000-0000000a11ce' });
    expect(openTempGruu(tempGruuKey(Buffer.alloc(32, 6)), user)).toBeUndefined();
    expect(plain).toEqual({ pub: undefined, temp: undefined });
    expect(res.headers?.find((h) => h.name === 'Supported')?.value).toBe('path, outbound, gruu');
  });

  it('hands out no GRUU to a UA that did not send Supported: gruu', () => {
    world.bind('alice', 'sip:alice@127.0.0.1:40010', { instance: INSTANCE });
    expect(gruus(respond([]).headers)).toEqual([{ pub: undefined, temp: undefined }]);
  });

  it('each REGISTER gets a new temp-gruu (§5.1)', () => {
    world.bind('alice', 'sip:alice@127.0.0.1:40010', { instance: INSTANCE });
    expect(gruus(respond(['gruu']).headers)[0].temp).not.toBe(gruus(respond(['gruu']).headers)[0].temp);
  });

  it('a temp-gruu with a changed octet does not open', () => {
    const temp = tempGruu(KEY, AOR, INSTANCE, 'c', 1, DOMAIN);
    const user = temp.slice(4, temp.indexOf('@'));
    const flipped = user.slice(0, -3) + (user.at(-3) === 'A' ? 'B' : 'A') + user.slice(-2);
    expect(openTempGruu(KEY, user)).toBeDefined();
    expect(openTempGruu(KEY, flipped)).toBeUndefined();
    expect(openTempGruu(KEY, 'tgruu.' + 'A'.repeat(5000))).toBeUndefined();
    expect(publicGruu(AOR, INSTANCE)).toBe(`${AOR};gr=urn:uuid:00000000-0000-4000-8000-0000000a11ce`);
  });
});
