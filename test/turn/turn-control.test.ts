import { createHash, randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RelayHandle } from '../../src/turn/allocation.js';
import { decodeChannelData, encodeChannelData } from '../../src/turn/channel-data.js';
import type { FiveTuple } from '../../src/turn/five-tuple.js';
import {
  decodeErrorCode,
  decodeText,
  decodeUint32,
  decodeUnknownAttributes,
  decodeXorAddress,
  encodeChannelNumber,
  encodeRequestedTransport,
  encodeUint32,
  encodeXorAddress,
  type TransportAddress,
} from '../../src/stun/stun-attributes.js';
import { verifyFingerprint, verifyMessageIntegrity } from '../../src/stun/stun-integrity.js';
import { AttributeType as A, decodeStunMessage, encodeStunMessage, getAttribute, type StunAttribute, type StunMessage, StunMethod } from '../../src/stun/stun-message.js';
import { documentationPeersAllowed } from './documentation-prefixes.js';
import { TurnControl } from '../../src/turn/turn-control.js';

const REALM = 'example.test';
const md5 = (s: string) => createHash('md5').update(s).digest();
const KEYS: Record<string, Buffer> = { alice: md5(`alice:${REALM}:alicepw`), bob: md5(`bob:${REALM}:bobpw`) };

/** In-memory relay: records what the control plane sends to peers. */
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

let now = 1_700_000_000_000;
let relays: RecordingRelay[];
let evenRequests: boolean[];
let control: TurnControl;
let allowLoopback = false;

function makeControl(): TurnControl {
  let nextPort = 50001;
  return new TurnControl({
    realm: REALM,
    defaultLifetimeS: 600,
    maxLifetimeS: 3600,
    nonceTtlS: 600,
    nonceSecret: Buffer.from('secret'),
    allowLoopbackPeers: allowLoopback,
    peerAllowed: documentationPeersAllowed(allowLoopback),
    getKey: async (u) => KEYS[u],
    openRelay: async ({ evenPort, port: wanted }) => {
      evenRequests.push(evenPort);
      if (wanted !== undefined) {
        const r = new RecordingRelay({ family: 'IPv4', address: '192.0.2.100', port: wanted });
        relays.push(r);
        return r;
      }
      let port = nextPort++;
      if (evenPort && port % 2) port = nextPort++;
      const r = new RecordingRelay({ family: 'IPv4', address: '192.0.2.100', port });
      relays.push(r);
      return r;
    },
    nowMs: () => now,
  });
}

const UDP: FiveTuple = { transport: 'udp', clientAddress: '198.51.100.7', clientPort: 40000, serverAddress: '192.0.2.1', serverPort: 3478 };
const TCP: FiveTuple = { ...UDP, transport: 'tcp', clientPort: 40001 };

interface Creds { username: string; key: Buffer; nonce: string; realm?: string }

function request(method: number, attrs: StunAttribute[], creds?: Creds, tid = randomBytes(12)): Buffer {
  const attributes = [...attrs];
  if (creds) {
    attributes.push({ type: A.Username, value: Buffer.from(creds.username) });
    attributes.push({ type: A.Realm, value: Buffer.from(creds.realm ?? REALM) });
    attributes.push({ type: A.Nonce, value: Buffer.from(creds.nonce) });
  }
  return encodeStunMessage({ method, class: 'request', transactionId: tid, attributes }, { integrityKey: creds?.key, fingerprint: true });
}

async function send(ft: FiveTuple, buf: Buffer): Promise<{ raw: Buffer; msg: StunMessage }> {
  const raw = await control.handleClientPacket(ft, buf);
  expect(raw).toBeDefined();
  return { raw: raw!, msg: decodeStunMessage(raw!) };
}

function errorCode(m: StunMessage): number {
  expect(m.class).toBe('error');
  return decodeErrorCode(getAttribute(m, A.ErrorCode)!.value).code;
}

async function login(ft: FiveTuple, user = 'alice'): Promise<Creds> {
  const { msg } = await send(ft, request(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(17) }]));
  expect(errorCode(msg)).toBe(401);
  return { username: user, key: KEYS[user]!, nonce: decodeText(getAttribute(msg, A.Nonce)!.value) };
}

const udpTransport = { type: A.RequestedTransport, value: encodeRequestedTransport(17) };

async function allocate(ft: FiveTuple, user = 'alice'): Promise<{ creds: Creds; relayed: TransportAddress }> {
  const creds = await login(ft, user);
  const { msg } = await send(ft, request(StunMethod.Allocate, [udpTransport], creds));
  expect(msg.class).toBe('success');
  return { creds, relayed: decodeXorAddress(getAttribute(msg, A.XorRelayedAddress)!.value, msg.transactionId) };
}

const peerAttr = (p: TransportAddress, tid: Buffer): StunAttribute => ({ type: A.XorPeerAddress, value: encodeXorAddress(p, tid) });

beforeEach(() => {
  relays = [];
  evenRequests = [];
  allowLoopback = false;
  control = makeControl();
});

describe('Binding (RFC 8489 §3)', () => {
  it('answers with XOR-MAPPED-ADDRESS, FINGERPRINT only if the request had one', async () => {
    const tid = randomBytes(12);
    const withFp = encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: tid, attributes: [] }, { fingerprint: true });
    const { raw, msg } = await send(UDP, withFp);
    expect(msg.class).toBe('success');
    expect(msg.transactionId.equals(tid)).toBe(true);
    expect(decodeXorAddress(getAttribute(msg, A.XorMappedAddress)!.value, tid)).toEqual({ family: 'IPv4', address: '198.51.100.7', port: 40000 });
    expect(verifyFingerprint(raw)).toBe(true);
    const plain = encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: tid, attributes: [] });
    const r2 = await send(UDP, plain);
    expect(getAttribute(r2.msg, A.Fingerprint)).toBeUndefined();
  });
  it('answers 400 to a malformed request and ignores garbage', async () => {
    const bad = Buffer.from(encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: Buffer.alloc(12, 3), attributes: [{ type: A.Software, value: Buffer.from('abcd') }] }));
    bad.writeUInt16BE(200, 22); // attribute length overruns the message
    const { msg } = await send(UDP, bad);
    expect(errorCode(msg)).toBe(400);
    expect(await control.handleClientPacket(UDP, Buffer.from('hello world, not stun'))).toBeUndefined();
    expect(await control.handleClientPacket(UDP, Buffer.alloc(0))).toBeUndefined();
  });
  it('drops a request with a bad FINGERPRINT', async () => {
    const req = encodeStunMessage({ method: StunMethod.Binding, class: 'request', transactionId: randomBytes(12), attributes: [] }, { fingerprint: true });
    req[req.length - 1] ^= 1;
    expect(await control.handleClientPacket(UDP, req)).toBeUndefined();
  });
});

describe('Allocate authentication (RFC 8489 §9.2, RFC 8656 §7.2)', () => {
  it('challenges with 401, REALM and NONCE and no MESSAGE-INTEGRITY', async () => {
    const { msg } = await send(UDP, request(StunMethod.Allocate, [udpTransport]));
    expect(errorCode(msg)).toBe(401);
    expect(decodeText(getAttribute(msg, A.Realm)!.value)).toBe(REALM);
    expect(decodeText(getAttribute(msg, A.Nonce)!.value)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(getAttribute(msg, A.MessageIntegrity)).toBeUndefined();
  });
  it('answers a wrong password and an unknown user alike with 401', async () => {
    const creds = await login(UDP);
    const wrong = await send(UDP, request(StunMethod.Allocate, [udpTransport], { ...creds, key: md5(`alice:${REALM}:nope`) }));
    const unknown = await send(UDP, request(StunMethod.Allocate, [udpTransport], { ...creds, username: 'mallory', key: md5(`mallory:${REALM}:x`) }));
    for (const r of [wrong, unknown]) {
      expect(errorCode(r.msg)).toBe(401);
      expect(getAttribute(r.msg, A.Nonce)).toBeDefined();
      expect(getAttribute(r.msg, A.Realm)).toBeDefined();
      expect(getAttribute(r.msg, A.MessageIntegrity)).toBeUndefined();
    }
    expect(relays.length).toBe(0);
  });
  it('answers a stale nonce with 438 and a fresh NONCE', async () => {
    const creds = await login(UDP);
    now += 601_000;
    const { msg } = await send(UDP, request(StunMethod.Allocate, [udpTransport], creds));
    expect(errorCode(msg)).toBe(438);
    const fresh = decodeText(getAttribute(msg, A.Nonce)!.value);
    expect(fresh).not.toBe(creds.nonce);
    const ok = await send(UDP, request(StunMethod.Allocate, [udpTransport], { ...creds, nonce: fresh }));
    expect(ok.msg.class).toBe('success');
  });
  it('answers 400 when MESSAGE-INTEGRITY comes without USERNAME/REALM/NONCE', async () => {
    const req = encodeStunMessage({ method: StunMethod.Allocate, class: 'request', transactionId: randomBytes(12), attributes: [udpTransport] }, { integrityKey: KEYS.alice });
    expect(errorCode((await send(UDP, req)).msg)).toBe(400);
  });
});

describe('Allocate (RFC 8656 §7.2)', () => {
  it('succeeds with XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME, MESSAGE-INTEGRITY, FINGERPRINT', async () => {
    const creds = await login(UDP);
    const tid = randomBytes(12);
    const req = request(StunMethod.Allocate, [udpTransport, { type: A.Lifetime, value: encodeUint32(100_000) }], creds, tid);
    const { raw, msg } = await send(UDP, req);
    expect(msg.class).toBe('success');
    expect(decodeXorAddress(getAttribute(msg, A.XorRelayedAddress)!.value, tid)).toEqual({ family: 'IPv4', address: '192.0.2.100', port: 50001 });
    expect(decodeXorAddress(getAttribute(msg, A.XorMappedAddress)!.value, tid)).toEqual({ family: 'IPv4', address: '198.51.100.7', port: 40000 });
    expect(decodeUint32(getAttribute(msg, A.Lifetime)!.value)).toBe(3600);
    expect(verifyMessageIntegrity(raw, KEYS.alice!)).toBe(true);
    expect(verifyFingerprint(raw)).toBe(true);
    expect(control.stats().allocations).toBe(1);
    // Retransmission: same bytes; new transaction: 437.
    expect((await send(UDP, req)).raw.equals(raw)).toBe(true);
    const second = await send(UDP, request(StunMethod.Allocate, [udpTransport], creds));
    expect(errorCode(second.msg)).toBe(437);
    expect(getAttribute(second.msg, A.MessageIntegrity)).toBeDefined();
    expect(relays.length).toBe(1);
  });
  it('clamps short lifetimes up to the default', async () => {
    const creds = await login(UDP);
    const { msg } = await send(UDP, request(StunMethod.Allocate, [udpTransport, { type: A.Lifetime, value: encodeUint32(30) }], creds));
    expect(decodeUint32(getAttribute(msg, A.Lifetime)!.value)).toBe(600);
  });
  it('refuses TCP relaying with 442, missing REQUESTED-TRANSPORT with 400, IPv6 with 440', async () => {
    const creds = await login(UDP);
    const tcp = await send(UDP, request(StunMethod.Allocate, [{ type: A.RequestedTransport, value: encodeRequestedTransport(6) }], creds));
    expect(errorCode(tcp.msg)).toBe(442);
    expect(verifyMessageIntegrity(tcp.raw, KEYS.alice!)).toBe(true);
    expect(errorCode((await send(UDP, request(StunMethod.Allocate, [], creds))).msg)).toBe(400);
    const v6 = await send(UDP, request(StunMethod.Allocate, [udpTransport, { type: A.RequestedAddressFamily, value: Buffer.from([2, 0, 0, 0]) }], creds));
    expect(errorCode(v6.msg)).toBe(440);
    const v4 = await send(UDP, request(StunMethod.Allocate, [udpTransport, { type: A.RequestedAddressFamily, value: Buffer.from([1, 0, 0, 0]) }, { type: A.DontFragment, value: Buffer.alloc(0) }], creds));
    expect(v4.msg.class).toBe('success');
  });
  it('honours EVEN-PORT', async () => {
    const creds = await login(UDP);
    const { msg } = await send(UDP, request(StunMethod.Allocate, [udpTransport, { type: A.EvenPort, value: Buffer.from([0x80]) }], creds));
    // The R bit reserves the next port too and hands out a RESERVATION-TOKEN for it.
    expect(evenRequests).toEqual([true, false]);
    const port = decodeXorAddress(getAttribute(msg, A.XorRelayedAddress)!.value, msg.transactionId).port;
    expect(port % 2).toBe(0);
    const token = getAttribute(msg, A.ReservationToken)!.value;
    expect(token.length).toBe(8);
    const other = { ...UDP, clientPort: 40100 };
    const c2 = await login(other);
    const withToken = await send(other, request(StunMethod.Allocate, [udpTransport, { type: A.ReservationToken, value: token }], c2));
    expect(decodeXorAddress(getAttribute(withToken.msg, A.XorRelayedAddress)!.value, withToken.msg.transactionId).port).toBe(port + 1);
    // A token is good once.
    const third = { ...UDP, clientPort: 40101 };
    const c3 = await login(third);
    expect(errorCode((await send(third, request(StunMethod.Allocate, [udpTransport, { type: A.ReservationToken, value: token }], c3))).msg)).toBe(508);
    // EVEN-PORT together with a token is a bad request.
    const bad = await send(third, request(StunMethod.Allocate, [udpTransport, { type: A.ReservationToken, value: token }, { type: A.EvenPort, value: Buffer.from([0]) }], c3));
    expect(errorCode(bad.msg)).toBe(400);
  });
  it('answers unknown comprehension-required attributes with 420 and UNKNOWN-ATTRIBUTES', async () => {
    const creds = await login(UDP);
    const { raw, msg } = await send(UDP, request(StunMethod.Allocate, [udpTransport, { type: 0x0033, value: Buffer.alloc(4) }, { type: 0x8033, value: Buffer.alloc(4) }], creds));
    expect(errorCode(msg)).toBe(420);
    expect(decodeUnknownAttributes(getAttribute(msg, A.UnknownAttributes)!.value)).toEqual([0x0033]);
    expect(verifyMessageIntegrity(raw, KEYS.alice!)).toBe(true);
  });
});

describe('Refresh, CreatePermission, ChannelBind, data (RFC 8656 §8-12)', () => {
  const PEER: TransportAddress = { family: 'IPv4', address: '203.0.113.5', port: 6000 };

  it('relays Send indications only with a permission, and peer data as Data indications', async () => {
    const { creds, relayed } = await allocate(UDP);
    const sendInd = (data: string) => {
      const tid = randomBytes(12);
      return encodeStunMessage({ method: StunMethod.Send, class: 'indication', transactionId: tid, attributes: [peerAttr(PEER, tid), { type: A.Data, value: Buffer.from(data) }] }, { fingerprint: true });
    };
    expect(await control.handleClientPacket(UDP, sendInd('early'))).toBeUndefined();
    expect(relays[0]!.sent.length).toBe(0);
    expect(control.handlePeerPacket(relayed, PEER, Buffer.from('x'))).toBeUndefined();

    const tid = randomBytes(12);
    const other: TransportAddress = { family: 'IPv4', address: '203.0.113.6', port: 1 };
    const cp = await send(UDP, request(StunMethod.CreatePermission, [peerAttr(PEER, tid), peerAttr(other, tid)], creds, tid));
    expect(cp.msg.class).toBe('success');
    expect(verifyMessageIntegrity(cp.raw, KEYS.alice!)).toBe(true);

    await control.handleClientPacket(UDP, sendInd('hello'));
    expect(relays[0]!.sent.map((s) => [s.peer.address, s.peer.port, s.data.toString()])).toEqual([['203.0.113.5', 6000, 'hello']]);

    const out = control.handlePeerPacket(relayed, { ...PEER, port: 7777 }, Buffer.from('reply'))!;
    expect(out.fiveTuple).toEqual(UDP);
    const data = decodeStunMessage(out.data);
    expect([data.method, data.class]).toEqual([StunMethod.Data, 'indication']);
    expect(decodeXorAddress(getAttribute(data, A.XorPeerAddress)!.value, data.transactionId)).toEqual({ ...PEER, port: 7777 });
    expect(getAttribute(data, A.Data)!.value.toString()).toBe('reply');
    expect(control.stats()).toMatchObject({ allocations: 1, packetsRelayed: 2, bytesRelayed: 10, packetsDropped: 0 });

    now += 300_000;
    expect(control.handlePeerPacket(relayed, PEER, Buffer.from('late'))).toBeUndefined();
  });

  it('binds channels 0x4000-0x7FFF, refreshes, refuses conflicts, relays ChannelData both ways', async () => {
    const { creds, relayed } = await allocate(TCP);
    const bind = async (channel: number, peer: TransportAddress) => {
      const tid = randomBytes(12);
      return send(TCP, request(StunMethod.ChannelBind, [{ type: A.ChannelNumber, value: encodeChannelNumber(channel) }, peerAttr(peer, tid)], creds, tid));
    };
    expect((await bind(0x7abc, PEER)).msg.class).toBe('success');
    expect((await bind(0x7abc, PEER)).msg.class).toBe('success');
    expect(errorCode((await bind(0x7abc, { ...PEER, port: 6001 })).msg)).toBe(400);
    expect(errorCode((await bind(0x4001, PEER)).msg)).toBe(400);
    expect(errorCode((await bind(0x8000, { ...PEER, port: 6002 })).msg)).toBe(400);
    expect(errorCode((await bind(0x3fff, { ...PEER, port: 6002 })).msg)).toBe(400);

    await control.handleClientPacket(TCP, encodeChannelData(0x7abc, Buffer.from('abc'), true));
    await control.handleClientPacket(TCP, encodeChannelData(0x4002, Buffer.from('unbound')));
    expect(relays[0]!.sent.map((s) => s.data.toString())).toEqual(['abc']);

    const out = control.handlePeerPacket(relayed, PEER, Buffer.from('hello'))!;
    expect(out.data.toString('hex')).toBe('7abc000568656c6c6f000000');
    expect(decodeChannelData(out.data).data.toString()).toBe('hello');
  });

  it('refuses loopback, unspecified and multicast peers with 403, and family mismatch with 443', async () => {
    const { creds } = await allocate(UDP);
    for (const address of ['127.0.0.1', '0.0.0.0', '224.0.0.9']) {
      const tid = randomBytes(12);
      const r = await send(UDP, request(StunMethod.CreatePermission, [peerAttr({ family: 'IPv4', address, port: 1 }, tid)], creds, tid));
      expect(errorCode(r.msg)).toBe(403);
    }
    const tid = randomBytes(12);
    const v6 = await send(UDP, request(StunMethod.CreatePermission, [peerAttr({ family: 'IPv6', address: '2001:db8::1', port: 1 }, tid)], creds, tid));
    expect(errorCode(v6.msg)).toBe(443);
    expect(errorCode((await send(UDP, request(StunMethod.CreatePermission, [], creds))).msg)).toBe(400);
  });

  it('allows loopback peers when configured', async () => {
    allowLoopback = true;
    control = makeControl();
    const { creds } = await allocate(UDP);
    const tid = randomBytes(12);
    const r = await send(UDP, request(StunMethod.CreatePermission, [peerAttr({ family: 'IPv4', address: '127.0.0.1', port: 1 }, tid)], creds, tid));
    expect(r.msg.class).toBe('success');
  });

  it('answers 437 without an allocation and 441 for another user', async () => {
    const creds = await login(UDP);
    expect(errorCode((await send(UDP, request(StunMethod.Refresh, [], creds))).msg)).toBe(437);
    await allocate(UDP, 'alice');
    const bob = { ...creds, username: 'bob', key: KEYS.bob! };
    const r = await send(UDP, request(StunMethod.Refresh, [], bob));
    expect(errorCode(r.msg)).toBe(441);
    expect(verifyMessageIntegrity(r.raw, KEYS.bob!)).toBe(true);
  });

  it('refreshes, and deletes with LIFETIME 0, closing the relay', async () => {
    const { creds } = await allocate(UDP);
    const r = await send(UDP, request(StunMethod.Refresh, [{ type: A.Lifetime, value: encodeUint32(1200) }], creds));
    expect(decodeUint32(getAttribute(r.msg, A.Lifetime)!.value)).toBe(1200);
    const d = await send(UDP, request(StunMethod.Refresh, [{ type: A.Lifetime, value: encodeUint32(0) }], creds));
    expect(d.msg.class).toBe('success');
    expect(decodeUint32(getAttribute(d.msg, A.Lifetime)!.value)).toBe(0);
    expect(relays[0]!.closed).toBe(true);
    expect(control.stats().allocations).toBe(0);
  });

  it('expires allocations on sweep and closes the relay', async () => {
    await allocate(UDP);
    now += 599_000;
    control.sweep();
    expect(relays[0]!.closed).toBe(false);
    now += 1_000;
    control.sweep();
    expect(relays[0]!.closed).toBe(true);
    expect(control.stats().allocations).toBe(0);
  });

  it('deletes the allocation when its TCP connection closes', async () => {
    await allocate(TCP);
    control.closeFiveTuple(TCP);
    expect(relays[0]!.closed).toBe(true);
  });
});
