import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodeMappedAddress, decodeText, decodeUint32, decodeXorAddress } from '../../src/stun/stun-attributes.js';
import { longTermKey, verifyFingerprint, verifyMessageIntegrity } from '../../src/stun/stun-integrity.js';
import {
  AttributeType as A,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  messageType,
  splitMessageType,
  StunDecodeError,
  StunMethod,
} from '../../src/stun/stun-message.js';

const DIR = fileURLToPath(new URL('../vectors/rfc5769', import.meta.url));
const load = (name: string): Buffer => readFileSync(`${DIR}/${name}.bin`);
const SHORT_TERM = Buffer.from('VOkJxbRl1RmTxUk/WvJxBt', 'utf8');
const LONG_TERM = Buffer.from('e8ca7ad59d5eb0518e312911d2dab2a9', 'hex');

/** Re-encodes a decoded message: attributes before MESSAGE-INTEGRITY, MI and FINGERPRINT recomputed. */
function reencode(raw: Buffer, key: Buffer, fingerprint: boolean): Buffer {
  const msg = decodeStunMessage(raw);
  const mi = msg.attributes.findIndex((a) => a.type === A.MessageIntegrity);
  return encodeStunMessage({ ...msg, attributes: msg.attributes.slice(0, mi) }, { integrityKey: key, fingerprint });
}

function flip(buf: Buffer, index: number): Buffer {
  const b = Buffer.from(buf);
  b[index] = b[index]! ^ 0x01;
  return b;
}

describe('RFC 5769 §2.1 sample request', () => {
  const raw = load('sample_request');
  it('decodes', () => {
    expect(raw.length).toBe(108);
    const m = decodeStunMessage(raw);
    expect(m.method).toBe(StunMethod.Binding);
    expect(m.class).toBe('request');
    expect(m.transactionId.toString('hex')).toBe('b7e7a701bc34d686fa87dfae');
    expect(m.attributes.map((a) => a.type)).toEqual([A.Software, A.Priority, A.IceControlled, A.Username, A.MessageIntegrity, A.Fingerprint]);
    expect(decodeText(getAttribute(m, A.Software)!.value)).toBe('STUN test client');
    expect(decodeUint32(getAttribute(m, A.Priority)!.value)).toBe(0x6e0001ff);
    expect(getAttribute(m, A.IceControlled)!.value.toString('hex')).toBe('932ff9b151263b36');
    expect(decodeText(getAttribute(m, A.Username)!.value)).toBe('evtj:h6vY');
  });
  it('verifies MESSAGE-INTEGRITY and FINGERPRINT', () => {
    expect(verifyMessageIntegrity(raw, SHORT_TERM)).toBe(true);
    expect(verifyMessageIntegrity(raw, Buffer.from('wrong'))).toBe(false);
    expect(verifyFingerprint(raw)).toBe(true);
  });
  it('re-encodes to the same bytes', () => {
    expect(reencode(raw, SHORT_TERM, true).equals(raw)).toBe(true);
    const m = decodeStunMessage(raw);
    expect(encodeStunMessage(m).equals(raw)).toBe(true);
  });
  it('detects a flipped byte', () => {
    expect(verifyMessageIntegrity(flip(raw, 30), SHORT_TERM)).toBe(false);
    expect(verifyFingerprint(flip(raw, 30))).toBe(false);
    expect(verifyMessageIntegrity(flip(raw, raw.length - 1), SHORT_TERM)).toBe(true);
    expect(verifyFingerprint(flip(raw, raw.length - 1))).toBe(false);
  });
});

describe('RFC 5769 §2.2 IPv4 response', () => {
  const raw = load('sample_ipv4_response');
  it('decodes, verifies, re-encodes', () => {
    const m = decodeStunMessage(raw);
    expect(m.method).toBe(StunMethod.Binding);
    expect(m.class).toBe('success');
    expect(decodeText(getAttribute(m, A.Software)!.value)).toBe('test vector');
    expect(decodeXorAddress(getAttribute(m, A.XorMappedAddress)!.value, m.transactionId)).toEqual({ family: 'IPv4', address: '192.0.2.1', port: 32853 });
    expect(verifyMessageIntegrity(raw, SHORT_TERM)).toBe(true);
    expect(verifyFingerprint(raw)).toBe(true);
    expect(reencode(raw, SHORT_TERM, true).toString('hex')).toBe(raw.toString('hex'));
  });
});

describe('RFC 5769 §2.3 IPv6 response', () => {
  const raw = load('sample_ipv6_response');
  it('decodes, verifies, re-encodes', () => {
    const m = decodeStunMessage(raw);
    expect(m.class).toBe('success');
    expect(decodeXorAddress(getAttribute(m, A.XorMappedAddress)!.value, m.transactionId)).toEqual({
      family: 'IPv6',
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
    });
    expect(verifyMessageIntegrity(raw, SHORT_TERM)).toBe(true);
    expect(verifyFingerprint(raw)).toBe(true);
    expect(reencode(raw, SHORT_TERM, true).toString('hex')).toBe(raw.toString('hex'));
  });
});

describe('RFC 5769 §2.4 long-term auth request', () => {
  const raw = load('sample_request_long_term_auth');
  it('derives the key from username, realm, password', () => {
    expect(longTermKey('\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9', 'example.org', 'TheMatrIX').equals(LONG_TERM)).toBe(true);
  });
  it('decodes, verifies, re-encodes', () => {
    const m = decodeStunMessage(raw);
    expect(m.transactionId.toString('hex')).toBe('78ad3433c6ad72c029da412e');
    const user = getAttribute(m, A.Username)!.value;
    expect(user.length).toBe(18);
    expect(user.toString('utf8')).toBe('\u30DE\u30C8\u30EA\u30C3\u30AF\u30B9');
    expect(decodeText(getAttribute(m, A.Nonce)!.value)).toBe('f//499k954d6OL34oL9FSTvy64sA');
    expect(decodeText(getAttribute(m, A.Realm)!.value)).toBe('example.org');
    expect(getAttribute(m, A.Fingerprint)).toBeUndefined();
    expect(verifyMessageIntegrity(raw, LONG_TERM)).toBe(true);
    expect(verifyMessageIntegrity(flip(raw, 25), LONG_TERM)).toBe(false);
    expect(verifyFingerprint(raw)).toBe(false);
    expect(reencode(raw, LONG_TERM, false).toString('hex')).toBe(raw.toString('hex'));
  });
});

describe('header codec', () => {
  it('maps method and class to type (RFC 8489 §5)', () => {
    expect(messageType(StunMethod.Binding, 'request')).toBe(0x0001);
    expect(messageType(StunMethod.Binding, 'success')).toBe(0x0101);
    expect(messageType(StunMethod.Binding, 'error')).toBe(0x0111);
    expect(messageType(StunMethod.Allocate, 'request')).toBe(0x0003);
    expect(messageType(StunMethod.Send, 'indication')).toBe(0x0016);
    expect(messageType(StunMethod.Data, 'indication')).toBe(0x0017);
    expect(messageType(StunMethod.ChannelBind, 'error')).toBe(0x0119);
    expect(splitMessageType(0x0119)).toEqual({ method: StunMethod.ChannelBind, class: 'error' });
    expect(messageType(0xfff, 'indication')).toBe(0x3eff);
    expect(splitMessageType(0x3eff)).toEqual({ method: 0xfff, class: 'indication' });
  });
  it('rejects malformed messages with StunDecodeError (status 400)', () => {
    const raw = load('sample_request');
    /** The error decoding `buf` throws: a StunDecodeError with status 400, its message matching `why`. */
    const refused = (buf: Buffer, why: RegExp) => {
      let err: unknown;
      try {
        decodeStunMessage(buf);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StunDecodeError);
      expect([(err as StunDecodeError).status, (err as Error).message]).toEqual([400, expect.stringMatching(why)]);
    };
    refused(raw.subarray(0, 19), /shorter than its header/);
    refused(raw.subarray(0, 100), /does not match/);
    const badCookie = Buffer.from(raw);
    badCookie[4] = 0;
    refused(badCookie, /magic cookie/);
    const overrun = Buffer.from(raw);
    overrun.writeUInt16BE(200, 22);
    refused(overrun, /overruns/);
  });
  it('drops attributes after MESSAGE-INTEGRITY except FINGERPRINT', () => {
    const tid = Buffer.alloc(12, 7);
    const withMi = encodeStunMessage({ method: 1, class: 'request', transactionId: tid, attributes: [] }, { integrityKey: Buffer.from('k') });
    const tail = Buffer.from([0x80, 0x22, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64]);
    const raw = Buffer.concat([withMi, tail]);
    raw.writeUInt16BE(raw.length - 20, 2);
    const m = decodeStunMessage(raw);
    expect(m.attributes.map((a) => a.type)).toEqual([A.MessageIntegrity]);
  });
  it('decodes MAPPED-ADDRESS', () => {
    expect(decodeMappedAddress(Buffer.from('0001d4310a000001', 'hex'))).toEqual({ family: 'IPv4', address: '10.0.0.1', port: 0xd431 });
  });
});
