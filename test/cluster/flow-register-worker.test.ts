/**
 * flowRegisterWorker (server.ts): which SIP worker processes a REGISTER that
 * came over a stream flow of worker `self`: the nonce's issuer for one with
 * credentials, `self` for one without while the worker is not busy, the
 * Call-ID's owner (undefined) for one the proxy forwards or when busy.
 */
import { describe, expect, it } from 'vitest';
import { flowRegisterWorker, answeredByRegistrar, KEEP_FLOW_REGISTERS_BELOW_UTILIZATION } from '../../src/server.js';
import { LocalDomains } from '../../src/registrar/local-domains.js';
import { createNonce } from '../../src/auth/nonce.js';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipRequest } from '../../src/sip/message.js';

const domains = new LocalDomains(['example.test'], (host) => host === '127.0.0.1');
const secret = Buffer.alloc(32, 7);

function register(uri: string, extra: string[] = []): SipRequest {
  const text = [
    `REGISTER ${uri} SIP/2.0`,
    'Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bKflow1',
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=1',
    'To: <sip:alice@example.test>',
    'Call-ID: flow-register-worker@127.0.0.1',
    'CSeq: 1 REGISTER',
    'Contact: <sip:alice@127.0.0.1:40000;transport=tls>',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

function credentials(nonce: string): string {
  return `Authorization: Digest username="alice", realm="example.test", nonce="${nonce}", uri="sip:example.test", response="00000000000000000000000000000000", algorithm=MD5`;
}

describe('flowRegisterWorker', () => {
  it('keeps a REGISTER without credentials on the flow’s worker below the utilisation bound, and hands it to the Call-ID’s owner above', () => {
    expect(flowRegisterWorker(register('sip:example.test'), domains, 1, 0)).toBe(1);
    expect(flowRegisterWorker(register('sip:127.0.0.1'), domains, 0, KEEP_FLOW_REGISTERS_BELOW_UTILIZATION - 0.01)).toBe(0);
    expect(flowRegisterWorker(register('sip:example.test'), domains, 1, KEEP_FLOW_REGISTERS_BELOW_UTILIZATION)).toBeUndefined();
    expect(flowRegisterWorker(register('sip:example.test'), domains, 1, 0.99)).toBeUndefined();
  });

  it('sends credentials to the worker that issued their nonce, busy or not', () => {
    const nonce = createNonce(secret, Date.now(), { issuer: 3 });
    for (const u of [0, 0.99]) expect(flowRegisterWorker(register('sip:example.test', [credentials(nonce)]), domains, 1, u)).toBe(3);
    const own = createNonce(secret, Date.now(), { issuer: 1 });
    expect(flowRegisterWorker(register('sip:example.test', [credentials(own)]), domains, 1, 0.99)).toBe(1);
    // A nonce that does not decode is answered where the request is (a 401 from any worker).
    expect(flowRegisterWorker(register('sip:example.test', [credentials('not-a-nonce')]), domains, 1, 0.99)).toBe(1);
  });

  it('leaves a REGISTER the proxy forwards to the Call-ID’s owner: another domain, or a Route', () => {
    expect(answeredByRegistrar(register('sip:other.test'), domains)).toBe(false);
    expect(flowRegisterWorker(register('sip:other.test'), domains, 1, 0)).toBeUndefined();
    expect(flowRegisterWorker(register('sip:127.0.0.2:5070'), domains, 1, 0)).toBeUndefined();
    const nonce = createNonce(secret, Date.now(), { issuer: 0 });
    expect(flowRegisterWorker(register('sip:other.test', [credentials(nonce)]), domains, 1, 0)).toBeUndefined();
    expect(flowRegisterWorker(register('sip:example.test', ['Route: <sip:proxy.other.test;lr>']), domains, 1, 0)).toBeUndefined();
    expect(answeredByRegistrar(register('sip:example.test'), domains)).toBe(true);
  });
});
