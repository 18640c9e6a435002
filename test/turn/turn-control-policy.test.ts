/** TurnControl: peer policy, quotas, bandwidth cap, challenge rate, REST API secrets, SHA-256/USERHASH, IPv6 and dual allocations. */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RelayHandle } from '../../src/turn/allocation.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';
import { restApiPassword } from '../../src/turn/rest-credentials.js';
import {
  decodeAddressErrorCode,
  decodeErrorCode,
  decodePasswordAlgorithms,
  decodeText,
  decodeXorAddress,
  encodeAddressFamily,
  encodeChannelNumber,
  encodePasswordAlgorithms,
  encodeRequestedTransport,
  encodeUint32,
  encodeXorAddress,
  type TransportAddress,
} from '../../src/stun/stun-attributes.js';
import { longTermKey, longTermKeySha256, userhash, verifyMessageIntegritySha256 } from '../../src/stun/stun-integrity.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, getAttributes, type StunAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { REFUSED_SPECIAL_PURPOSE } from './special-purpose-table.js';
import { documentationPeersAllowed } from './documentation-prefixes.js';
import { NONCE_COOKIE, TurnControl, type TurnControlOptions } from '../../src/turn/turn-control.js';
import { TurnError } from '../../src/turn/turn-error.js';

const REALM = 'example.test';
const MD5 = (u: string, p: string) => longTermKey(u, REALM, p);
const SHA = (u: string, p: string) => longTermKeySha256(u, REALM, p);
const PW: Record<string, string> = { alice: 'alicepw', bob: 'bobpw' };

class RecordingRelay implements RelayHandle {
  sent: Array<{ peer: TransportAddress; data: Buffer }> = [];
  closed = false;
  constructor(readonly relayed: TransportAddress) {}
  send(peer: TransportAddress, data: Buffer): void {
    this.sent.push({ peer, data: Buffer.from(data) });
  }
  close(): void {
    this.closed = true;
  }
}

interface Harness {
  control: TurnControl;
  relays: RecordingRelay[];
  clock: { now: number };
}

function harness(over: Partial<TurnControlOptions> = {}): Harness {
  const relays: RecordingRelay[] = [];
  const clock = { now: 1_700_000_000_000 };
  let port = 50000;
  const control = new TurnControl({
    realm: REALM,
    defaultLifetimeS: 600,
    maxLifetimeS: 3600,
    nonceTtlS: 600,
    nonceSecret: Buffer.from('secret'),
    allowLoopbackPeers: false,
    peerAllowed: documentationPeersAllowed(false),
    getKey: async (u, _r, alg) => (PW[u] === undefined ? undefined : alg === 'SHA-256' ? SHA(u, PW[u]!) : MD5(u, PW[u]!)),
    openRelay: async ({ family }) => {
      const r = new RecordingRelay(family === 'IPv6' ? { family: 'IPv6', address: '2001:db8::100', port: port++ } : { family: 'IPv4', address: '192.0.2.100', port: port++ });
      relays.push(r);
      return r;
    },
    nowMs: () => clock.now,
    ...over,
  });
  return { control, relays, clock };
}

let clientPort = 41000;
const tuple = (address = '198.51.100.7'): FiveTuple => ({ transport: 'udp', clientAddress: address, clientPort: clientPort++, serverAddress: '192.0.2.1', serverPort: 3478 });
const udpTransport: StunAttribute = { type: A.RequestedTransport, value: encodeRequestedTransport(17) };

interface Creds {
  username: string;
  key: Buffer;
  nonce: string;
  sha256?: boolean;
  extra?: StunAttribute[];
  hideName?: boolean;
}

function request(method: number, attrs: StunAttribute[], c?: Creds, tid = randomBytes(12)): Buffer {
  const attributes = [...attrs];
  if (c) {
    if (c.hideName) attributes.push({ type: A.Userhash, value: userhash(c.username, REALM) });
    else attributes.push({ type: A.Username, value: Buffer.from(c.username) });
    attributes.push({ type: A.Realm, value: Buffer.from(REALM) }, { type: A.Nonce, value: Buffer.from(c.nonce) }, ...(c.extra ?? []));
  }
  return encodeStunMessage({ method, class: 'request', transactionId: tid, attributes }, { integrityKey: c?.key, integrity: c?.sha256 ? 'sha256' : 'sha1', fingerprint: true });
}

async function send(h: Harness, ft: FiveTuple, buf: Buffer): Promise<{ raw: Buffer; msg: StunMessage }> {
  const raw = await h.control.handleClientPacket(ft, buf);
  expect(raw).toBeDefined();
  return { raw: raw!, msg: decodeStunMessage(raw!) };
}

const code = (m: StunMessage) => (m.class === 'error' ? decodeErrorCode(getAttribute(m, A.ErrorCode)!.value).code : 0);

async function nonceFor(h: Harness, ft: FiveTuple): Promise<{ nonce: string; msg: StunMessage }> {
  const { msg } = await send(h, ft, request(StunMethod.Allocate, [udpTransport]));
  expect(code(msg)).toBe(401);
  return { nonce: decodeText(getAttribute(msg, A.Nonce)!.value), msg };
}

async function allocate(h: Harness, ft: FiveTuple, username: string, key: Buffer, attrs: StunAttribute[] = [udpTransport]): Promise<{ creds: Creds; msg: StunMessage }> {
  const { nonce } = await nonceFor(h, ft);
  const creds = { username, key, nonce };
  const { msg } = await send(h, ft, request(StunMethod.Allocate, attrs, creds));
  return { creds, msg };
}

const peer = (p: TransportAddress, tid: Buffer): StunAttribute => ({ type: A.XorPeerAddress, value: encodeXorAddress(p, tid) });
const v4 = (address: string, port = 5000): TransportAddress => ({ family: 'IPv4', address, port });
const v6 = (address: string, port = 5000): TransportAddress => ({ family: 'IPv6', address, port });

describe('peer policy on the wire (RFC 8656 §9.2, §11.2)', () => {
  it('refuses loopback, private and mapped peers with 403 by default, and installs none of a refused list', async () => {
    const h = harness();
    const ft = tuple();
    const { creds, msg } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'));
    expect(msg.class).toBe('success');
    for (const bad of [v4('127.0.0.1'), v4('10.0.0.1'), v4('169.254.1.1'), v6('::ffff:127.0.0.1')]) {
      const tid = randomBytes(12);
      const r = await send(h, ft, request(StunMethod.CreatePermission, [peer(bad, tid)], creds, tid));
      expect(code(r.msg), bad.address).toBe(bad.family === 'IPv6' ? 443 : 403);
    }
    const tid = randomBytes(12);
    const mixed = await send(h, ft, request(StunMethod.CreatePermission, [peer(v4('192.0.2.50'), tid), peer(v4('192.168.1.1'), tid)], creds, tid));
    expect(code(mixed.msg)).toBe(403);
    const a = h.control.getAllocation(ft)!;
    expect(a.permissions.has('192.0.2.50', h.clock.now)).toBe(false);
    const tid2 = randomBytes(12);
    const ok = await send(h, ft, request(StunMethod.CreatePermission, [peer(v4('192.0.2.50'), tid2), peer(v4('198.51.100.99'), tid2)], creds, tid2));
    expect(ok.msg.class).toBe('success');
    expect(a.permissions.has('192.0.2.50', h.clock.now) && a.permissions.has('198.51.100.99', h.clock.now)).toBe(true);
    const tid3 = randomBytes(12);
    const cb = await send(h, ft, request(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(0x7fff) }, peer(v4('100.64.1.1'), tid3)], creds, tid3));
    expect(code(cb.msg)).toBe(403);
    const tid4 = randomBytes(12);
    const cb2 = await send(h, ft, request(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(0x7fff) }, peer(v4('192.0.2.50'), tid4)], creds, tid4));
    expect(cb2.msg.class).toBe('success');
  });
});

describe('special-purpose peers (RFC 6890) on the wire', () => {
  it('answers CreatePermission toward each refused range with 403 under the default policy', async () => {
    const h = harness({ peerAllowed: undefined, relayFamilies: ['IPv4', 'IPv6'] });
    const ft = tuple();
    const { creds, msg } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'), [udpTransport, { type: A.AdditionalAddressFamily, value: encodeAddressFamily('IPv6') }]);
    expect(msg.class).toBe('success');
    for (const [range, address] of REFUSED_SPECIAL_PURPOSE) {
      const tid = randomBytes(12);
      const r = await send(h, ft, request(StunMethod.CreatePermission, [peer(address.includes(':') ? v6(address) : v4(address), tid)], creds, tid));
      expect(code(r.msg), `${range} ${address}`).toBe(403);
    }
    expect(h.control.getAllocation(ft)!.permissions.size).toBe(0);
  });
});

describe('quotas (486, RFC 8656 §7.2)', () => {
  it('limits allocations per user and in all, and frees a slot on delete', async () => {
    const h = harness({ maxAllocationsPerUser: 2, maxAllocations: 3 });
    const key = MD5('alice', 'alicepw');
    const a1 = await allocate(h, tuple(), 'alice', key);
    const second = tuple();
    const a2 = await allocate(h, second, 'alice', key);
    expect([a1.msg.class, a2.msg.class]).toEqual(['success', 'success']);
    expect(code((await allocate(h, tuple(), 'alice', key)).msg)).toBe(486);
    expect((await allocate(h, tuple(), 'bob', MD5('bob', 'bobpw'))).msg.class).toBe('success');
    expect(code((await allocate(h, tuple(), 'bob', MD5('bob', 'bobpw'))).msg)).toBe(486); // total 3 reached
    const del = await send(h, second, request(StunMethod.Refresh, [{ type: A.Lifetime, value: encodeUint32(0) }], a2.creds));
    expect(del.msg.class).toBe('success');
    expect((await allocate(h, tuple(), 'alice', key)).msg.class).toBe('success');
    expect(h.control.stats().allocations).toBe(3);
  });
});

describe('permissions per allocation (508, RFC 8656 §18)', () => {
  it('refuses a CreatePermission or ChannelBind that would pass the limit, installs none of it, refreshes and reuses expired slots', async () => {
    const h = harness({ maxPermissionsPerAllocation: 3 });
    const ft = tuple();
    const { creds } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'));
    const permit = async (...addresses: string[]) => {
      const tid = randomBytes(12);
      return (await send(h, ft, request(StunMethod.CreatePermission, addresses.map((x) => peer(v4(x), tid)), creds, tid))).msg;
    };
    expect((await permit('192.0.2.1', '192.0.2.2')).class).toBe('success');
    const over = await permit('192.0.2.3', '192.0.2.4');
    expect(code(over)).toBe(508);
    expect(decodeErrorCode(getAttribute(over, A.ErrorCode)!.value).reason).toBe('Insufficient Capacity: at most 3 permissions per allocation');
    const a = h.control.getAllocation(ft)!;
    expect([a.permissions.size, a.permissions.has('192.0.2.3', h.clock.now)]).toEqual([2, false]);
    expect((await permit('192.0.2.3', '192.0.2.1')).class).toBe('success'); // one new, one refreshed: 3
    expect((await permit('192.0.2.2')).class).toBe('success'); // refreshing needs no room
    const tid = randomBytes(12);
    const cb = await send(h, ft, request(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(0x4000) }, peer(v4('192.0.2.9'), tid)], creds, tid));
    expect(code(cb.msg)).toBe(508);
    expect(a.channels.size).toBe(0);
    h.clock.now += 301_000; // every permission expired: their slots are free again
    expect((await permit('192.0.2.5', '192.0.2.6', '192.0.2.7')).class).toBe('success');
    expect(a.permissions.size).toBe(3);
  });
});

describe('bandwidth cap', () => {
  it('drops and counts payload above the per-allocation rate', async () => {
    const h = harness({ bandwidthLimitBytesPerS: 100, allowLoopbackPeers: false });
    const ft = tuple();
    const { creds } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'));
    const tid = randomBytes(12);
    await send(h, ft, request(StunMethod.CreatePermission, [peer(v4('192.0.2.50'), tid)], creds, tid));
    const sendInd = () => {
      const t = randomBytes(12);
      return encodeStunMessage({ method: StunMethod.Send, class: 'indication', transactionId: t, attributes: [peer(v4('192.0.2.50'), t), { type: A.Data, value: Buffer.alloc(60) }] });
    };
    for (let i = 0; i < 3; i++) await h.control.handleClientPacket(ft, sendInd());
    expect(h.relays[0]!.sent.length).toBe(1);
    expect(h.control.stats()).toMatchObject({ packetsRelayed: 1, packetsDropped: 2, bytesDropped: 120 });
    h.clock.now += 1000;
    await h.control.handleClientPacket(ft, sendInd());
    expect(h.relays[0]!.sent.length).toBe(2);
  });
});

describe('challenge rate', () => {
  it('answers at most challengeRatePerS unauthenticated requests per second per 5-tuple, and challengeAddressRatePerS per address', async () => {
    const h = harness({ challengeRatePerS: 2, challengeAddressRatePerS: 3 });
    const a = tuple('198.51.100.8');
    const b = tuple('198.51.100.8');
    const answers = [];
    for (const ft of [a, a, a, b, b]) answers.push(await h.control.handleClientPacket(ft, request(StunMethod.Allocate, [udpTransport])));
    // a: 2 per 5-tuple, then held back; b: its own 5-tuple budget, but the address has spent 3.
    expect(answers.map((x) => x !== undefined)).toEqual([true, true, false, true, false]);
    expect(await h.control.handleClientPacket(tuple('198.51.100.9'), request(StunMethod.Allocate, [udpTransport]))).toBeDefined();
    expect(h.control.stats().challengesSuppressed).toBe(2);
    h.clock.now += 1000;
    expect(await h.control.handleClientPacket(a, request(StunMethod.Allocate, [udpTransport]))).toBeDefined();
  });

  it('answers a retransmission from the same 5-tuple with the same bytes, uncounted', async () => {
    const h = harness({ challengeRatePerS: 1 });
    const ft = tuple();
    const first = request(StunMethod.Allocate, [udpTransport]);
    const answer = await h.control.handleClientPacket(ft, first);
    expect(answer).toBeDefined();
    for (let i = 0; i < 3; i++) expect((await h.control.handleClientPacket(ft, first))!.equals(answer!)).toBe(true);
    expect(h.control.stats()).toMatchObject({ challengesSuppressed: 0, retransmissionsAnswered: 3 });
    // A new transaction on the same 5-tuple is over the limit.
    expect(await h.control.handleClientPacket(ft, request(StunMethod.Allocate, [udpTransport]))).toBeUndefined();
    // An authenticated Allocate retransmitted after its success gets the same success, not 437.
    const ft2 = tuple();
    const { nonce } = await nonceFor(h, ft2);
    const alloc = request(StunMethod.Allocate, [udpTransport], { username: 'alice', key: MD5('alice', 'alicepw'), nonce });
    const ok = await h.control.handleClientPacket(ft2, alloc);
    expect(decodeStunMessage(ok!).class).toBe('success');
    expect((await h.control.handleClientPacket(ft2, alloc))!.equals(ok!)).toBe(true);
  });

  it('does not limit exempt sources', async () => {
    const h = harness({ challengeRatePerS: 1, challengeAddressRatePerS: 1, challengeExempt: (x) => x === '198.51.100.10' });
    const ft = tuple('198.51.100.10');
    for (let i = 0; i < 50; i++) expect(await h.control.handleClientPacket(ft, request(StunMethod.Allocate, [udpTransport]))).toBeDefined();
    expect(h.control.stats().challengesSuppressed).toBe(0);
  });
});

describe('TURN REST API secrets', () => {
  const secrets = ['new-secret', 'old-secret'];
  it('accepts EXPIRY:user signed with any configured secret until EXPIRY', async () => {
    const h = harness({ authSecrets: secrets, maxAllocationsPerUser: 2 });
    const expiry = Math.floor(h.clock.now / 1000) + 60;
    for (const s of secrets) {
      const name = `${expiry}:carol`;
      const r = await allocate(h, tuple(), name, MD5(name, restApiPassword(s, name)));
      expect(r.msg.class, s).toBe('success');
    }
    // Quota counts the user part whatever the expiry.
    const other = `${expiry + 1}:carol`;
    expect(code((await allocate(h, tuple(), other, MD5(other, restApiPassword(secrets[0]!, other)))).msg)).toBe(486);
    const wrong = `${expiry}:dave`;
    expect(code((await allocate(h, tuple(), wrong, MD5(wrong, restApiPassword('guess', wrong)))).msg)).toBe(401);
    const expired = `${Math.floor(h.clock.now / 1000) - 1}:erin`;
    expect(code((await allocate(h, tuple(), expired, MD5(expired, restApiPassword(secrets[0]!, expired)))).msg)).toBe(401);
    // Ordinary users still work beside the secrets.
    expect((await allocate(h, tuple(), 'alice', MD5('alice', 'alicepw'))).msg.class).toBe('success');
  });
});

describe('PASSWORD-ALGORITHMS, MESSAGE-INTEGRITY-SHA256, USERHASH (RFC 8489 §9.2)', () => {
  const offered = encodePasswordAlgorithms([0x0002, 0x0001]);
  it('offers SHA-256 with the security-feature nonce and answers with MESSAGE-INTEGRITY-SHA256', async () => {
    const h = harness({ passwordAlgorithms: ['SHA-256', 'MD5'] });
    const ft = tuple();
    const { nonce, msg } = await nonceFor(h, ft);
    expect(nonce.startsWith(NONCE_COOKIE)).toBe(true);
    expect(decodePasswordAlgorithms(getAttribute(msg, A.PasswordAlgorithms)!.value)).toEqual([2, 1]);
    const extra = [{ type: A.PasswordAlgorithm, value: encodePasswordAlgorithms([0x0002]) }, { type: A.PasswordAlgorithms, value: offered }];
    const creds: Creds = { username: 'alice', key: SHA('alice', 'alicepw'), nonce, sha256: true, extra };
    const ok = await send(h, ft, request(StunMethod.Allocate, [udpTransport], creds));
    expect(ok.msg.class).toBe('success');
    expect(getAttribute(ok.msg, A.MessageIntegritySha256)).toBeDefined();
    expect(verifyMessageIntegritySha256(ok.raw, SHA('alice', 'alicepw'))).toBe(true);
    // The MD5 key does not pass for SHA-256.
    const ft2 = tuple();
    const n2 = (await nonceFor(h, ft2)).nonce;
    expect(code((await send(h, ft2, request(StunMethod.Allocate, [udpTransport], { ...creds, nonce: n2, key: MD5('alice', 'alicepw') }))).msg)).toBe(401);
    // PASSWORD-ALGORITHMS not as offered: 400.
    const bad = [extra[0]!, { type: A.PasswordAlgorithms, value: encodePasswordAlgorithms([0x0001]) }];
    expect(code((await send(h, ft2, request(StunMethod.Allocate, [udpTransport], { ...creds, nonce: n2, extra: bad }))).msg)).toBe(400);
    // Without the algorithm attributes: MD5 (offered), with HMAC-SHA1.
    expect((await send(h, ft2, request(StunMethod.Allocate, [udpTransport], { username: 'alice', key: MD5('alice', 'alicepw'), nonce: n2 }))).msg.class).toBe('success');
    // A nonce without the cookie is stale.
    const ft3 = tuple();
    const n3 = (await nonceFor(h, ft3)).nonce.slice(NONCE_COOKIE.length);
    expect(code((await send(h, ft3, request(StunMethod.Allocate, [udpTransport], { ...creds, nonce: n3 }))).msg)).toBe(438);
  });
  it('accepts USERHASH for a known user and 401s an unknown hash', async () => {
    const resolved: string[] = [];
    const h = harness({
      passwordAlgorithms: ['SHA-256', 'MD5'],
      resolveUserhash: async (hash) => {
        const u = Object.keys(PW).find((x) => userhash(x, REALM).equals(hash));
        if (u) resolved.push(u);
        return u;
      },
    });
    const ft = tuple();
    const { nonce } = await nonceFor(h, ft);
    const extra = [{ type: A.PasswordAlgorithm, value: encodePasswordAlgorithms([0x0002]) }, { type: A.PasswordAlgorithms, value: offered }];
    const r = await send(h, ft, request(StunMethod.Allocate, [udpTransport], { username: 'bob', key: SHA('bob', 'bobpw'), nonce, sha256: true, extra, hideName: true }));
    expect(r.msg.class).toBe('success');
    expect(resolved).toEqual(['bob']);
    expect(h.control.getAllocation(ft)!.username).toBe('bob');
    const ft2 = tuple();
    const n2 = (await nonceFor(h, ft2)).nonce;
    expect(code((await send(h, ft2, request(StunMethod.Allocate, [udpTransport], { username: 'mallory', key: SHA('mallory', 'x'), nonce: n2, sha256: true, extra, hideName: true }))).msg)).toBe(401);
  });
});

describe('IPv6 and dual allocations (RFC 6156, RFC 8656 §7.2)', () => {
  const fam = (t: number, f: 'IPv4' | 'IPv6'): StunAttribute => ({ type: t, value: encodeAddressFamily(f) });
  it('gives an IPv6 relayed address, two with ADDITIONAL-ADDRESS-FAMILY, and relays by peer family', async () => {
    const h = harness({ relayFamilies: ['IPv4', 'IPv6'] });
    const only6 = await allocate(h, tuple(), 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.RequestedAddressFamily, 'IPv6')]);
    expect(decodeXorAddress(getAttribute(only6.msg, A.XorRelayedAddress)!.value, only6.msg.transactionId).family).toBe('IPv6');
    const ft = tuple();
    const { creds, msg } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.AdditionalAddressFamily, 'IPv6')]);
    const relayed = getAttributes(msg, A.XorRelayedAddress).map((x) => decodeXorAddress(x.value, msg.transactionId).family);
    expect(relayed).toEqual(['IPv4', 'IPv6']);
    const tid = randomBytes(12);
    const perm = await send(h, ft, request(StunMethod.CreatePermission, [peer(v6('2001:db8:5::1'), tid), peer(v4('192.0.2.60'), tid)], creds, tid));
    expect(perm.msg.class).toBe('success');
    const t = randomBytes(12);
    await h.control.handleClientPacket(ft, encodeStunMessage({ method: StunMethod.Send, class: 'indication', transactionId: t, attributes: [peer(v6('2001:db8:5::1'), t), { type: A.Data, value: Buffer.from('six') }] }));
    const [r4, r6] = h.control.getAllocation(ft)!.relays as RecordingRelay[];
    expect(r6!.sent.map((x) => x.data.toString())).toEqual(['six']);
    expect(r4!.sent).toEqual([]);
    const back = h.control.handlePeerPacket(r6!.relayed, v6('2001:db8:5::1'), Buffer.from('back'));
    expect(back?.fiveTuple).toEqual(ft);
    // both families together is a bad request
    expect(code((await allocate(h, tuple(), 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.RequestedAddressFamily, 'IPv4'), fam(A.AdditionalAddressFamily, 'IPv6')])).msg)).toBe(400);
  });
  it('without an IPv6 relay address: 440 for IPv6, IPv4 plus ADDRESS-ERROR-CODE for dual, 443 for IPv6 peers', async () => {
    const h = harness({
      relayFamilies: ['IPv4'],
    });
    expect(code((await allocate(h, tuple(), 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.RequestedAddressFamily, 'IPv6')])).msg)).toBe(440);
    const ft = tuple();
    const { creds, msg } = await allocate(h, ft, 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.AdditionalAddressFamily, 'IPv6')]);
    expect(getAttributes(msg, A.XorRelayedAddress).length).toBe(1);
    expect(decodeAddressErrorCode(getAttribute(msg, A.AddressErrorCode)!.value)).toMatchObject({ family: 2, code: 440 });
    const tid = randomBytes(12);
    expect(code((await send(h, ft, request(StunMethod.CreatePermission, [peer(v6('2001:db8:5::1'), tid)], creds, tid))).msg)).toBe(443);
  });
  it('reports 508 in ADDRESS-ERROR-CODE when the IPv6 relay cannot open', async () => {
    const h = harness({
      relayFamilies: ['IPv4', 'IPv6'],
      openRelay: async ({ family }) => {
        if (family === 'IPv6') throw new TurnError(508);
        return new RecordingRelay(v4('192.0.2.100', 50500));
      },
    });
    const { msg } = await allocate(h, tuple(), 'alice', MD5('alice', 'alicepw'), [udpTransport, fam(A.AdditionalAddressFamily, 'IPv6')]);
    expect(msg.class).toBe('success');
    expect(decodeAddressErrorCode(getAttribute(msg, A.AddressErrorCode)!.value).code).toBe(508);
  });
});

it('hashes USERHASH as SHA-256(username:realm)', () => {
  expect(userhash('alice', REALM)).toEqual(createHash('sha256').update(`alice:${REALM}`).digest());
});
