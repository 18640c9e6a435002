/**
 * The STUN keepalive of SIP Outbound on the SIP UDP port (RFC 5626 §4.4.2, §8):
 * a Binding request gets a Binding success response with the client's
 * address in XOR-MAPPED-ADDRESS (RFC 8489 §14.2). Requests and answers are
 * built and read byte by byte here, not with the server's STUN codec.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, expect, test } from 'vitest';
import { isStunDatagram, stunKeepaliveResponse } from '../../src/transport/stun-keepalive.js';
import { ServerSide, until } from './harness.js';

const COOKIE = 0x2112a442;

/** A STUN message header of RFC 8489 §5: type, length 0, magic cookie, 12-byte transaction id. */
function stunHeader(type: number, transactionId: Buffer): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt32BE(COOKIE, 4);
  transactionId.copy(b, 8);
  return b;
}

/** The IPv4 XOR-MAPPED-ADDRESS (type 0x0020) of a STUN message, decoded by hand. */
function xorMappedIPv4(msg: Buffer): { address: string; port: number } | undefined {
  let off = 20;
  while (off + 4 <= msg.length) {
    const type = msg.readUInt16BE(off);
    const len = msg.readUInt16BE(off + 2);
    if (type === 0x0020 && msg[off + 5] === 0x01) {
      const port = msg.readUInt16BE(off + 6) ^ (COOKIE >>> 16);
      const addr = (msg.readUInt32BE(off + 8) ^ COOKIE) >>> 0;
      return { address: [addr >>> 24, (addr >>> 16) & 255, (addr >>> 8) & 255, addr & 255].join('.'), port };
    }
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return undefined;
}

describe('stunKeepaliveResponse (plain buffers)', () => {
  test('a Binding request gets a success response (0x0101) with the same transaction id and the mapped address', () => {
    const tid = randomBytes(12);
    const res = stunKeepaliveResponse(stunHeader(0x0001, tid), '127.0.0.7', 40000)!;
    expect(res.readUInt16BE(0)).toBe(0x0101);
    expect(res.readUInt16BE(2)).toBe(res.length - 20);
    expect(res.readUInt32BE(4)).toBe(COOKIE);
    expect(res.subarray(8, 20).equals(tid)).toBe(true);
    expect(xorMappedIPv4(res)).toEqual({ address: '127.0.0.7', port: 40000 });
  });

  test('anything but a Binding request gets no answer', () => {
    const tid = randomBytes(12);
    expect(stunKeepaliveResponse(stunHeader(0x0011, tid), '127.0.0.7', 40000)).toBeUndefined(); // Binding indication
    expect(stunKeepaliveResponse(stunHeader(0x0003, tid), '127.0.0.7', 40000)).toBeUndefined(); // Allocate request
    const noCookie = stunHeader(0x0001, tid);
    noCookie.writeUInt32BE(0, 4);
    expect(stunKeepaliveResponse(noCookie, '127.0.0.7', 40000)).toBeUndefined();
    expect(isStunDatagram(Buffer.from('OPTIONS sip:x SIP/2.0\r\n\r\n'))).toBe(false);
    expect(isStunDatagram(stunHeader(0x0001, tid))).toBe(true);
  });
});

describe('STUN keepalive on the SIP UDP listener', () => {
  let server: ServerSide | undefined;
  let sock: dgram.Socket | undefined;
  afterEach(async () => {
    sock?.close();
    sock = undefined;
    await server?.stop();
    server = undefined;
  });

  test('a Binding request to the SIP port is answered with the client address; nothing reaches the SIP layer', async () => {
    server = await ServerSide.start(['udp']);
    const s = dgram.createSocket('udp4');
    sock = s;
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    const answers: Buffer[] = [];
    s.on('message', (m) => answers.push(m));
    const tid = randomBytes(12);
    s.send(stunHeader(0x0001, tid), server.listener('udp').port, '127.0.0.1');
    await until(() => answers.length === 1, 'the Binding response');
    expect(answers[0]!.readUInt16BE(0)).toBe(0x0101);
    expect(answers[0]!.subarray(8, 20).equals(tid)).toBe(true);
    expect(xorMappedIPv4(answers[0]!)).toEqual({ address: '127.0.0.1', port: s.address().port });
    expect(server.inbound).toHaveLength(0);
  });
});
