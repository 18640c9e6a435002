import { describe, expect, it } from 'vitest';
import { decodeFlowToken, encodeFlowToken, looksLikeFlowToken } from '../../src/proxy/flow-token.js';

const secret = Buffer.alloc(32, 7);

describe('flow tokens (RFC 5626 §5.2)', () => {
  it('round-trips a stream flow and a UDP 5-tuple', () => {
    const tcp = { transport: 'tcp' as const, address: '127.0.0.1', port: 40123, flowId: 'tcp-7' };
    expect(decodeFlowToken(encodeFlowToken(tcp, secret), secret)).toEqual(tcp);
    const udp = { transport: 'udp' as const, address: '::1', port: 5060 };
    expect(decodeFlowToken(encodeFlowToken(udp, secret), secret)).toEqual({ ...udp, flowId: undefined });
  });

  it('refuses a token under another secret or with a changed byte', () => {
    const t = encodeFlowToken({ transport: 'tls', address: '127.0.0.1', port: 1, flowId: 'tls-1' }, secret);
    expect(decodeFlowToken(t, Buffer.alloc(32, 8))).toBeUndefined();
    const flipped = (t[0] === 'A' ? 'B' : 'A') + t.slice(1);
    expect(decodeFlowToken(flipped, secret)).toBeUndefined();
    expect(decodeFlowToken('nodot', secret)).toBeUndefined();
  });

  it('tells the shape of a token it writes from other user parts', () => {
    expect(looksLikeFlowToken(encodeFlowToken({ transport: 'tcp', address: '::1', port: 5060, flowId: 'tcp-w1-7' }, secret))).toBe(true);
    expect(looksLikeFlowToken('john.doe')).toBe(false);
    expect(looksLikeFlowToken('alice')).toBe(false);
  });
});
