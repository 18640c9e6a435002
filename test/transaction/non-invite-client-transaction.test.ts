/**
 * Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6): Timer E
 * (retransmit, T1 doubling up to T2; T2 in Proceeding; UDP only), Timer F
 * (64·T1 timeout), Timer K (wait in Completed: T4 on UDP, 0 on streams).
 */
import { describe, expect, test } from 'vitest';
import type { NonInviteClientTransaction } from '../../src/transaction/client-transaction.js';
import type { TransportName } from '../../src/transport/types.js';
import { advance, responseTo, schedule, startClient, T1, T2, T4, useFakeTimersPerTest } from './harness.js';

useFakeTimersPerTest();

function start(transport: TransportName = 'udp') {
  const { h, user, req: options, ct } = startClient<NonInviteClientTransaction>('OPTIONS', 'z9hG4bKnict1', transport);
  return { h, user, options, ct };
}

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  test('UDP: Timer E retransmits at T1, 2·T1, 4·T1, then every T2, until Timer F at 64·T1', async () => {
    const { h, user, ct } = start();
    await advance(64 * T1 - 1);
    expect(h.sendTimes('OPTIONS ')).toEqual(schedule(T1, T2, 64 * T1));
    expect(h.sendTimes('OPTIONS ')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(ct.state).toBe('trying');
    await advance(1);
    expect(user.timeouts).toBe(1);
    expect(h.layer.size().client).toBe(0);
    await advance(10 * T2);
    expect(h.sendTimes('OPTIONS ')).toHaveLength(11);
  });

  test('TCP: no Timer E, Timer F still fires at 64·T1', async () => {
    const { h, user } = start('tcp');
    await advance(64 * T1);
    expect(h.sendTimes('OPTIONS ')).toEqual([0]);
    expect(user.timeouts).toBe(1);
  });

  test('Proceeding: a provisional response makes Timer E fire every T2; Timer F still ends it', async () => {
    const { h, user, options, ct } = start();
    await advance(T1 + 100); // sent at 0 and 500
    h.receive(responseTo(options, 100));
    expect(ct.state).toBe('proceeding');
    await advance(64 * T1 - (T1 + 100));
    // Timer E was re-armed at 500 with 2·T1 (fires at 1500), then T2 apart.
    expect(h.sendTimes('OPTIONS ')).toEqual([0, 500, 1500, 5500, 9500, 13500, 17500, 21500, 25500, 29500]);
    expect(user).toMatchObject({ responses: [100], timeouts: 1 });
  });

  test('a final response: TU told once, retransmissions absorbed during Timer K = T4, then terminated', async () => {
    const { h, user, options, ct } = start();
    h.receive(responseTo(options, 200));
    expect(ct.state).toBe('completed');
    await advance(T4 - 1);
    h.receive(responseTo(options, 200));
    expect(user.responses).toEqual([200]);
    expect(h.strays).toHaveLength(0);
    expect(h.sendTimes('OPTIONS ')).toEqual([0]);
    await advance(1);
    expect(h.layer.size().client).toBe(0);
    // After Timer K the response matches nothing: it is a stray for the TU.
    h.receive(responseTo(options, 200));
    expect(h.strays.map((r) => r.status)).toEqual([200]);
  });

  test('TCP: Timer K is 0', async () => {
    const { h, options } = start('tcp');
    h.receive(responseTo(options, 404), 'tcp');
    await advance(0);
    expect(h.layer.size().client).toBe(0);
  });
});
