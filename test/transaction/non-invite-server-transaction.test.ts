/**
 * Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8): Trying →
 * Proceeding → Completed, Timer J (64·T1 on UDP, 0 on streams) absorbing
 * request retransmissions; responses go where RFC 3261 §18.2.2 and RFC 3581
 * say (Via received/rport on UDP, the flow on streams).
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { createResponse } from '../../src/sip/response.js';
import type { NonInviteServerTransaction } from '../../src/transaction/server-transaction.js';
import type { TransportName } from '../../src/transport/types.js';
import { advance, Harness, parseRequest, requestText, T1, useFakeTimersPerTest } from './harness.js';

useFakeTimersPerTest();

let wire = false;
function arrive(transport: TransportName = 'udp', text = requestText('REGISTER', 'z9hG4bKnist1', transport)) {
  const h = new Harness({ wire });
  const request = () => parseRequest(text);
  h.receive(request(), transport);
  const { req, st } = h.requests[0]!;
  return { h, request, req, st: st as NonInviteServerTransaction };
}

describe.each([
  ['its own object', false],
  ['response bytes only (CompletedResponses)', true],
])('non-INVITE server transaction (RFC 3261 §17.2.2), completed kept as %s', (_kept, keepWire) => {
  beforeEach(() => {
    wire = keepWire;
  });

  test('Trying: a retransmission before any response is absorbed silently', async () => {
    const { h, request, st } = arrive();
    h.receive(request());
    await advance(0);
    expect(h.requests).toHaveLength(1);
    expect(h.sent).toHaveLength(0);
    expect(h.state(st)).toBe('trying');
  });

  test('Proceeding: a retransmission gets the last provisional response again', async () => {
    const { h, request, req, st } = arrive();
    st.respond(createResponse(req, 100));
    expect(h.state(st)).toBe('proceeding');
    h.receive(request());
    await advance(0);
    expect(h.sendTimes('SIP/2.0 100')).toEqual([0, 0]);
  });

  test('a 401 challenge answered statelessly (§8.2.7): nothing held, no Timer J; a retransmission is a new request', async () => {
    const { h, request, req, st } = arrive();
    st.respondStateless(createResponse(req, 401, { toTag: st.challengeTag }));
    expect(h.state(st)).toBe('terminated');
    expect(h.layer.size()).toEqual({ server: 0, client: 0, completed: 0, pending: 0 });
    expect(h.layer.heldResponseBytes()).toBe(0);
    h.receive(request());
    expect(h.requests).toHaveLength(2);
    expect(h.sendTimes('SIP/2.0 401')).toEqual([0]);
    expect(h.layer.counters).toMatchObject({ statelessChallenges: 1, retransmissions: 0, finals: { '4xx': 1 } });
  });

  test('UDP Completed: the final response is re-sent for each retransmission until Timer J = 64·T1; then a new transaction', async () => {
    const { h, request, req, st } = arrive();
    st.respond(createResponse(req, 200, { toTag: 's1' }));
    expect(h.state(st)).toBe('completed');
    await advance(64 * T1 - 1);
    h.receive(request());
    await advance(0);
    expect(h.sendTimes('SIP/2.0 200')).toEqual([0, 64 * T1 - 1]);
    expect(h.requests).toHaveLength(1);
    await advance(wire ? 1 + 20 : 1); // CompletedResponses lets entries due within 20 ms expire together
    expect(h.state(st)).toBe('terminated');
    expect(h.layer.size().server).toBe(0);
    h.receive(request());
    expect(h.requests).toHaveLength(2);
  });

  test('a final response is never followed by another one, and the response is not retransmitted by itself', async () => {
    const { h, req, st } = arrive();
    st.respond(createResponse(req, 200, { toTag: 's1' }));
    st.respond(createResponse(req, 500));
    await advance(64 * T1);
    expect(h.sent.map((s) => s.bytes.toString('latin1', 0, 12))).toEqual(['SIP/2.0 200 ']);
  });

  test('TCP: Timer J is 0 and the response goes back over the flow', async () => {
    const { h, req, st } = arrive('tcp');
    st.respond(createResponse(req, 200, { toTag: 's1' }));
    await advance(0);
    expect(h.state(st)).toBe('terminated');
    expect(h.sent[0]!.dest).toMatchObject({ transport: 'tcp', flowId: 'flow-1' });
  });

  test('UDP: the response goes to the Via received address and rport (RFC 3581 §4)', async () => {
    const text = requestText('OPTIONS', 'z9hG4bKnist2').replace(';branch=', ';received=127.0.0.9;rport=6000;branch=');
    const { h, req, st } = arrive('udp', text);
    st.respond(createResponse(req, 200, { toTag: 's1' }));
    await advance(0);
    expect(h.sent[0]!.dest).toEqual({ transport: 'udp', address: '127.0.0.9', port: 6000 });
  });
});
