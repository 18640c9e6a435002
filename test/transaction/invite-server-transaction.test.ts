/**
 * INVITE server transaction, RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1:
 * Timer G (retransmit the 3xx–6xx, T1 doubling up to T2, UDP only), Timer H
 * (64·T1 wait for the ACK), Timer I (absorb ACKs in Confirmed: T4 on UDP, 0 on
 * streams), Timer L (Accepted, 64·T1).
 */
import { describe, expect, test } from 'vitest';
import { createResponse } from '../../src/sip/response.js';
import type { InviteServerTransaction } from '../../src/transaction/server-transaction.js';
import type { TransportName } from '../../src/transport/types.js';
import { advance, Harness, parseRequest, PEER, requestText, schedule, T1, T2, T4, useFakeTimersPerTest } from './harness.js';

useFakeTimersPerTest();

const BRANCH = 'z9hG4bKist1';

function arrive(transport: TransportName = 'udp', wire = false) {
  const h = new Harness({ wire });
  const invite = () => parseRequest(requestText('INVITE', BRANCH, transport));
  const ack = () => parseRequest(requestText('ACK', BRANCH, transport));
  h.receive(invite(), transport);
  expect(h.requests).toHaveLength(1);
  const { req, st } = h.requests[0]!;
  return { h, invite, ack, req, st: st as InviteServerTransaction };
}

describe.each([
  ['its own object', false],
  ['response bytes only (CompletedInvite)', true],
])('INVITE server transaction (RFC 3261 §17.2.1), completed kept as %s', (_kept, wire) => {
  test('Proceeding: a retransmitted INVITE gets the last provisional response again, not a new transaction', async () => {
    const { h, invite, req, st } = arrive('udp', wire);
    st.respond(createResponse(req, 180, { toTag: 's1' }));
    h.receive(invite());
    await advance(0);
    expect(h.requests).toHaveLength(1);
    expect(h.sendTimes('SIP/2.0 180')).toEqual([0, 0]);
    expect(h.sent[0]!.dest).toEqual({ transport: 'udp', address: PEER.address, port: PEER.port });
    expect(h.state(st)).toBe('proceeding');
  });

  test('UDP 3xx–6xx: Timer G retransmits at T1, 2·T1… capped at T2, Timer H ends it at 64·T1 without an ACK', async () => {
    const { h, req, st } = arrive('udp', wire);
    st.respond(createResponse(req, 486, { toTag: 's1' }));
    expect(h.state(st)).toBe('completed');
    await advance(64 * T1 - 1);
    expect(h.sendTimes('SIP/2.0 486')).toEqual(schedule(T1, T2, 64 * T1));
    expect(h.sendTimes('SIP/2.0 486')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(h.layer.size().server).toBe(1);
    await advance(1);
    expect(h.state(st)).toBe('terminated');
    expect(h.layer.size().server).toBe(0);
  });

  test('the ACK stops Timer G and H; Confirmed absorbs ACKs for Timer I = T4, then the transaction ends', async () => {
    const { h, ack, req, st } = arrive('udp', wire);
    st.respond(createResponse(req, 486, { toTag: 's1' }));
    await advance(T1 + 100);
    h.receive(ack());
    expect(h.state(st)).toBe('confirmed');
    await advance(T4 - 1);
    h.receive(ack());
    expect(h.acks).toHaveLength(0); // absorbed, never given to the TU (§17.2.1)
    expect(h.sendTimes('SIP/2.0 486')).toEqual([0, 500]);
    await advance(1);
    expect(h.state(st)).toBe('terminated');
    expect(h.layer.size().server).toBe(0);
  });

  test('Completed: a retransmitted INVITE gets the final response again', async () => {
    const { h, invite, req, st } = arrive('udp', wire);
    st.respond(createResponse(req, 603, { toTag: 's1' }));
    await advance(100);
    h.receive(invite());
    await advance(0);
    expect(h.sendTimes('SIP/2.0 603')).toEqual([0, 100]);
  });

  test('a CANCEL finds the INVITE transaction until it ends; after a 3xx–6xx it only learns that the final response went', async () => {
    const { h, req, st } = arrive('udp', wire);
    const cancel = parseRequest(requestText('CANCEL', BRANCH));
    expect(h.layer.findInviteFor(cancel)).toBe(st);
    st.respond(createResponse(req, 486, { toTag: 's1' }));
    expect(h.layer.findInviteFor(cancel)).toBe(wire ? 'final' : st);
    await advance(64 * T1);
    expect(h.layer.findInviteFor(cancel)).toBeUndefined();
  });

  test('TCP: no Timer G, and Timer I is 0 after the ACK', async () => {
    const { h, ack, req, st } = arrive('tcp', wire);
    st.respond(createResponse(req, 486, { toTag: 's1' }));
    await advance(10 * T1);
    expect(h.sendTimes('SIP/2.0 486')).toEqual([0]);
    expect(h.sent[0]!.dest.flowId).toBe('flow-1');
    h.receive(ack(), 'tcp');
    await advance(0);
    expect(h.state(st)).toBe('terminated');
  });

  test('TCP: Timer H still ends a transaction whose ACK never came, at 64·T1', async () => {
    const { h, req, st } = arrive('tcp', wire);
    st.respond(createResponse(req, 486, { toTag: 's1' }));
    await advance(64 * T1 - 1);
    expect(h.state(st)).toBe('completed');
    await advance(1);
    expect(h.layer.size().server).toBe(0);
  });

  test.each(['udp', 'tcp'] as const)('%s: a 407 challenge answered statelessly (§8.2.7) holds nothing; its ACK is absorbed, a retransmission is a new request, a CANCEL finds nothing', async (transport) => {
    const { h, invite, req, st } = arrive(transport, wire);
    st.respondStateless(createResponse(req, 407, { toTag: st.challengeTag }));
    expect(h.state(st)).toBe('terminated');
    expect(h.layer.size()).toEqual({ server: 0, client: 0, completed: 0, pending: 0 });
    expect([h.layer.counters.statelessChallenges, h.layer.counters.finals['4xx']]).toEqual([1, 1]);
    const cancel = parseRequest(requestText('CANCEL', BRANCH, transport));
    expect(h.layer.findInviteFor(cancel)).toBeUndefined();
    const tagged = (method: string, tag: string) => parseRequest(requestText(method, BRANCH, transport).replace('To: <sip:bob@example.test>', `To: <sip:bob@example.test>;tag=${tag}`));
    h.receive(tagged('ACK', st.challengeTag), transport);
    expect(h.acks).toHaveLength(0);
    expect(h.layer.counters.challengeAcks).toBe(1);
    h.receive(tagged('ACK', 'other'), transport); // not the challenge's: the TU's (a proxy forwards it)
    expect(h.acks).toHaveLength(1);
    await advance(64 * T1);
    expect(h.sendTimes('SIP/2.0 407')).toEqual([0]); // no Timer G
    h.receive(invite(), transport);
    expect(h.requests).toHaveLength(2);
    expect(h.requests[1]!.st.challengeTag).toBe(st.challengeTag);
  });

  test('a challenge after a provisional response is held as any final response (the peer knows the transaction)', async () => {
    const { h, ack, req, st } = arrive('udp', wire);
    st.respond(createResponse(req, 100));
    st.respondStateless(createResponse(req, 407, { toTag: st.challengeTag }));
    expect(h.state(st)).toBe('completed');
    expect(h.layer.counters.statelessChallenges).toBe(0);
    h.receive(ack());
    expect(h.state(st)).toBe('confirmed');
    expect(h.acks).toHaveLength(0);
  });

  test('2xx: Accepted (RFC 6026), retransmitted INVITEs absorbed, the ACK goes to the TU, Timer L ends it at 64·T1', async () => {
    const { h, invite, ack, req, st } = arrive('udp', wire);
    const ok = createResponse(req, 200, { toTag: 's1' });
    st.respond(ok);
    expect(h.state(st)).toBe('accepted');
    h.receive(invite());
    await advance(T1);
    st.respond(ok); // the TU's own 2xx retransmission passes through
    h.receive(ack());
    await advance(0);
    expect(h.sendTimes('SIP/2.0 200')).toEqual([0, T1]);
    expect(h.acks).toHaveLength(1);
    expect(h.requests).toHaveLength(1);
    await advance(64 * T1 - T1 - 1);
    expect(h.layer.size().server).toBe(1);
    await advance(1);
    expect(h.layer.size().server).toBe(0);
  });
});

describe('INVITE server transactions completed with 3xx–6xx, bounded', () => {
  test('past the bound the oldest is released before Timer H, counted; its retransmitted INVITE is a new transaction', async () => {
    const h = new Harness({ wire: true, maxCompleted: 2 });
    const invite = (i: number) => parseRequest(requestText('INVITE', `z9hG4bKbound${i}`));
    for (let i = 0; i < 3; i++) {
      h.receive(invite(i));
      const { req, st } = h.requests[i]!;
      st.respond(createResponse(req, 486, { toTag: `s${i}` }));
    }
    const [first, , third] = h.requests.map((r) => r.st);
    expect(h.state(first!)).toBe('terminated');
    expect(h.state(third!)).toBe('completed');
    expect(h.layer.completedReleasedEarly).toBe(1);
    expect(h.layer.size().completed).toBe(2);
    h.receive(invite(2));
    await advance(0);
    expect(h.requests).toHaveLength(3);
    expect(h.sendTimes('SIP/2.0 486')).toHaveLength(4);
    h.receive(invite(0));
    expect(h.requests).toHaveLength(4);
  });
});
