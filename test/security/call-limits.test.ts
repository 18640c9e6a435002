import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallLimits, MAX_ROUTED_CALLS, type CallTransaction } from '../../src/security/call-limits.js';
import { ownerOf, SECURITY_CHANNELS } from '../../src/security/worker-peers.js';
import { recordingPeers } from '../helpers/recording-peers.js';
import { silentLogger } from '../../src/log.js';
import { getHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import type { ServerTransaction } from '../../src/transaction/server-transaction.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

describe('CallLimits', () => {
  it('refuses over the concurrent limit with 486 and over the per-minute limit with 503 + Retry-After', () => {
    const nowMs = { t: 0 };
    const limits = new CallLimits({ maxConcurrent: 2, maxPerMinute: 3, logger: silentLogger, nowMs: () => nowMs.t });
    expect(limits.admit('alice', 'c1')).toBeUndefined();
    expect(limits.admit('alice', 'c1')).toBeUndefined(); // the same call again (after a 407) is one call
    expect(limits.admit('alice', 'c2')).toBeUndefined();
    expect(limits.admit('alice', 'c3')).toEqual({ status: 486, reason: 'Busy Here: concurrent call limit', headers: [] });
    expect(limits.admit('bob', 'b1')).toBeUndefined();
    limits.ended('c1');
    expect(limits.activeCalls('alice')).toBe(1);
    expect(limits.admit('alice', 'c4')).toBeUndefined();
    limits.ended('c4');
    nowMs.t = 20_000;
    expect(limits.admit('alice', 'c5')).toEqual({ status: 503, reason: 'Service Unavailable: call rate limit', headers: [{ name: 'Retry-After', value: '40' }] });
    nowMs.t = 60_000;
    expect(limits.admit('alice', 'c5')).toBeUndefined();
  });

  it('a BYE or a non-2xx final response ends the call; a forgotten call expires', () => {
    const nowMs = { t: 0 };
    const limits = new CallLimits({ maxConcurrent: 1, maxPerMinute: 0, maxCallSeconds: 100, logger: silentLogger, nowMs: () => nowMs.t });
    const sent: number[] = [];
    const st = { request: { kind: 'request', method: 'INVITE', uri: 'sip:b@x', headers: [{ name: 'Call-ID', value: 'k1' }], body: Buffer.alloc(0) }, respond: (r: SipResponse) => sent.push(r.status) } as unknown as ServerTransaction;
    expect(limits.admitTransaction('alice', st)).toBeUndefined();
    st.respond({ status: 180 } as SipResponse);
    expect(limits.activeCalls('alice')).toBe(1);
    st.respond({ status: 486 } as SipResponse);
    expect(sent).toEqual([180, 486]);
    expect(limits.activeCalls('alice')).toBe(0);

    expect(limits.admit('alice', 'k2')).toBeUndefined();
    limits.observe({ kind: 'request', method: 'BYE', uri: 'sip:x', headers: [{ name: 'Call-ID', value: 'k2' }], body: Buffer.alloc(0) } as unknown as SipMessage);
    expect(limits.activeCalls('alice')).toBe(0);

    expect(limits.admit('alice', 'k3')).toBeUndefined();
    nowMs.t = 100_000;
    expect(limits.admit('alice', 'k4')).toBeUndefined();
  });
});

describe('CallLimits: calls admitted through another worker (docs/LIMITS.md)', () => {
  it('remembers at most MAX_ROUTED_CALLS of them: the oldest is forgotten, and its BYE then tells the owner nothing', async () => {
    const peers = recordingPeers(0, 2);
    const limits = new CallLimits({ maxConcurrent: 1, maxPerMinute: 0, logger: silentLogger, peers });
    let user = 'carol';
    for (let i = 0; ownerOf(user, 2) !== 1; i++) user = `carol${i}`;
    const invite = (callId: string): CallTransaction => ({
      request: { kind: 'request', method: 'INVITE', uri: 'sip:b@x', headers: [{ name: 'Call-ID', value: callId }], body: Buffer.alloc(0) } as never,
      respond: () => {},
    });
    const bye = (callId: string) => ({ kind: 'request', method: 'BYE', uri: 'sip:x', headers: [{ name: 'Call-ID', value: callId }], body: Buffer.alloc(0) }) as unknown as SipMessage;
    let most = 0;
    let refused = 0;
    for (let i = 0; i <= MAX_ROUTED_CALLS; i++) {
      if ((await limits.admitTransaction(user, invite(`r${i}`))) !== undefined) refused++;
      most = Math.max(most, limits.routedCalls);
    }
    expect(refused).toBe(0);
    expect(most).toBe(MAX_ROUTED_CALLS);
    const ends = () => peers.sent.filter(([, channel]) => channel === SECURITY_CHANNELS.callEnd).map(([to, , p]) => [to, (p as { callId: string }).callId]);
    limits.observe(bye('r0'));
    expect(ends()).toEqual([]);
    limits.observe(bye('r1'));
    limits.observe(bye(`r${MAX_ROUTED_CALLS}`));
    expect(ends()).toEqual([[1, 'r1'], [1, `r${MAX_ROUTED_CALLS}`]]);
    expect(limits.routedCalls).toBe(MAX_ROUTED_CALLS - 2);
    // Still admitting (the owner's answer decides): a refusal is passed on, nothing remembered for it.
    peers.answer = () => ({ status: 486, reason: 'Busy Here: concurrent call limit', headers: [] });
    expect((await limits.admitTransaction(user, invite('refused')))?.status).toBe(486);
    expect(limits.routedCalls).toBe(MAX_ROUTED_CALLS - 2);
  });
});

describe('per-user call limits through the proxy (UDP, in process)', () => {
  const PORT = 29530;
  const DOMAIN = 'example.test';
  let test: TestServer;
  let alice: UdpUa;
  let bob: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'calls',
      domain: DOMAIN,
      sip: {
        listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }],
        security: { exempt_sources: [], calls: { max_concurrent_per_user: 1, max_attempts_per_minute: 2 } },
      },
      users: { alice: 'alicepw', bob: 'bobpw' },
    });
    alice = await UdpUa.open();
    bob = await UdpUa.open();
    expect((await bob.register(PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    alice?.close();
    bob?.close();
    await test?.stop();
  });

  /** alice INVITEs bob with digest; returns the authenticated INVITE and its first final response (or the one bob sees). */
  async function call(): Promise<{ invite: SipRequest; final?: SipResponse; atBob?: SipRequest }> {
    const invite = alice.request('INVITE', `sip:bob@${DOMAIN}`, { from: `sip:alice@${DOMAIN}`, to: `sip:bob@${DOMAIN}`, contactUser: 'alice' });
    alice.send(invite, PORT);
    const challenge = await alice.response(invite, 407);
    const authed = alice.authorize(invite, challenge, 'alice', 'alicepw');
    const callId = getHeader(authed, 'call-id');
    const cseq = getHeader(authed, 'cseq');
    const since = bob.received.length;
    alice.send(authed, PORT);
    const first = await Promise.race([
      alice.waitFor((m) => m.kind === 'response' && m.status >= 200 && getHeader(m, 'call-id') === callId && getHeader(m, 'cseq') === cseq, 3000),
      bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId, 3000, since),
    ]);
    return first.kind === 'response' ? { invite: authed, final: first } : { invite: authed, atBob: first as SipRequest };
  }

  it('a second concurrent call gets 486; once calls end, the attempt over 2 per minute gets 503', async () => {
    const first = await call();
    expect(first.atBob).toBeDefined();
    const second = await call();
    expect(second.final?.status).toBe(486);
    expect(second.final?.reason).toBe('Busy Here: concurrent call limit');
    // bob declines the first call: it ends.
    bob.send(createResponse(first.atBob!, 603, { toTag: 'b1' }), PORT);
    expect((await alice.response(first.invite, 603)).status).toBe(603);
    // Attempts so far: 1 admitted (the refused one does not count); the third is the second admitted.
    const third = await call();
    expect(third.atBob).toBeDefined();
    bob.send(createResponse(third.atBob!, 603, { toTag: 'b3' }), PORT);
    expect((await alice.response(third.invite, 603)).status).toBe(603);
    const fourth = await call();
    expect(fourth.final?.status).toBe(503);
    expect(fourth.final?.reason).toBe('Service Unavailable: call rate limit');
    expect(getHeader(fourth.final!, 'retry-after')).toMatch(/^[1-6]?\d$/);
  });
});
