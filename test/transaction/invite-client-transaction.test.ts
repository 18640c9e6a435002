/**
 * INVITE client transaction, RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2:
 * Timer A (retransmit, T1 doubling, UDP only), Timer B (64·T1 timeout),
 * Timer D (wait in Completed: 32 s on UDP, 0 on streams), Timer M (Accepted, 64·T1).
 */
import { describe, expect, test } from 'vitest';
import type { InviteClientTransaction } from '../../src/transaction/client-transaction.js';
import type { TransportName } from '../../src/transport/types.js';
import { advance, responseTo, schedule, sentHeader, startClient, startLine, T1, useFakeTimersPerTest } from './harness.js';

useFakeTimersPerTest();

function start(transport: TransportName = 'udp') {
  const { h, user, req: invite, ct } = startClient<InviteClientTransaction>('INVITE', 'z9hG4bKict1', transport);
  return { h, user, invite, ct };
}

describe('INVITE client transaction (RFC 3261 §17.1.1)', () => {
  test('UDP: Timer A retransmits at T1, 2·T1, 4·T1… until Timer B fires at 64·T1 and the TU hears a timeout', async () => {
    const { h, user, ct } = start();
    await advance(64 * T1 - 1);
    expect(h.sendTimes('INVITE ')).toEqual(schedule(T1, Infinity, 64 * T1));
    expect(h.sendTimes('INVITE ')).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(user.timeouts).toBe(0);
    await advance(1);
    expect(user.timeouts).toBe(1);
    expect(h.layer.size().client).toBe(0);
    await advance(64 * T1);
    expect(h.sendTimes('INVITE ')).toHaveLength(7);
    expect(ct.state).toBe('calling');
  });

  test('TCP: no Timer A (reliable transport), Timer B still fires at 64·T1', async () => {
    const { h, user } = start('tcp');
    await advance(64 * T1);
    expect(h.sendTimes('INVITE ')).toEqual([0]);
    expect(user.timeouts).toBe(1);
  });

  test('a provisional response stops Timer A and Timer B: Proceeding waits for the final response', async () => {
    const { h, user, invite, ct } = start();
    await advance(T1 + 10);
    h.receive(responseTo(invite, 180));
    expect(ct.state).toBe('proceeding');
    await advance(64 * T1 * 2);
    expect(h.sendTimes('INVITE ')).toEqual([0, 500]);
    expect(user).toMatchObject({ responses: [180], timeouts: 0 });
  });

  test('3xx–6xx: ACK sent with the same branch and the response To tag, TU told once; retransmissions re-ACKed; Timer D = 32 s', async () => {
    const { h, user, invite, ct } = start();
    h.receive(responseTo(invite, 486));
    await advance(0);
    expect(ct.state).toBe('completed');
    const acks = h.sent.filter((s) => startLine(s).startsWith('ACK '));
    expect(acks).toHaveLength(1);
    expect(startLine(acks[0]!)).toBe('ACK sip:bob@example.test SIP/2.0');
    expect(sentHeader(acks[0]!, 'via')).toContain('branch=z9hG4bKict1');
    expect(sentHeader(acks[0]!, 'to')).toBe('<sip:bob@example.test>;tag=b1');
    expect(sentHeader(acks[0]!, 'cseq')).toBe('1 ACK');

    h.receive(responseTo(invite, 486));
    await advance(0);
    expect(h.sendTimes('ACK ')).toHaveLength(2);
    expect(user.responses).toEqual([486]);

    await advance(32_000 - 1);
    expect(h.layer.size().client).toBe(1);
    expect(h.sendTimes('INVITE ')).toEqual([0]);
    await advance(1);
    expect(h.layer.size().client).toBe(0);
  });

  test('TCP: Timer D is 0, the transaction ends right after the ACK', async () => {
    const { h, invite } = start('tcp');
    h.receive(responseTo(invite, 404), 'tcp');
    await advance(0);
    expect(h.sendTimes('ACK ')).toEqual([0]);
    expect(h.layer.size().client).toBe(0);
  });

  test('2xx: Accepted (RFC 6026), 2xx retransmissions go to the TU, no ACK from the transaction, Timer M ends it at 64·T1', async () => {
    const { h, user, invite, ct } = start();
    h.receive(responseTo(invite, 200));
    expect(ct.state).toBe('accepted');
    await advance(T1);
    h.receive(responseTo(invite, 200));
    expect(user.responses).toEqual([200, 200]);
    expect(h.sendTimes('ACK ')).toEqual([]);
    expect(h.sendTimes('INVITE ')).toEqual([0]);
    await advance(64 * T1 - T1 - 1);
    expect(h.layer.size().client).toBe(1);
    await advance(1);
    expect(h.layer.size().client).toBe(0);
  });
});
