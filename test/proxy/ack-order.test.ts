import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader, getHeaderValues, type SipRequest } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { ACK_WAIT_MAX_HELD, ACK_WAIT_MS, AckOrder } from '../../src/proxy/ack-order.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 26480;
const DOMAIN = 'example.test';

/**
 * A request of a dialog that reaches the proxy before the caller's ACK of
 * its 2xx (two workers reading one socket can swap them) is forwarded after
 * that ACK, or ACK_WAIT_MS after the 2xx went upstream when no ACK comes
 * (src/proxy/ack-order.ts). Callers come from another domain: no digest.
 */
describe('proxy: the ACK of a 2xx before the next request of its dialog', () => {
  let test: TestServer;
  let bob: UdpUa;
  let caller: UdpUa;

  beforeAll(async () => {
    test = await startTestServer({ name: 'ack-order', domain: DOMAIN, sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: PORT }] }, users: { bob: 'bobpw' } });
    bob = await UdpUa.open();
    caller = await UdpUa.open();
    expect((await bob.register(PORT, 'bob', 'bobpw', DOMAIN)).status).toBe(200);
  });

  afterAll(async () => {
    bob?.close();
    caller?.close();
    await test?.stop();
  });

  /** A call from carol answered 200 by bob through the proxy; returns the caller's ACK and BYE of the dialog, not sent. */
  async function answeredCall(): Promise<{ ack: SipRequest; bye: SipRequest; callId: string }> {
    const invite = caller.request('INVITE', `sip:bob@${DOMAIN}`, { from: 'sip:carol@elsewhere.test', to: `sip:bob@${DOMAIN}`, contactUser: 'carol' });
    const callId = getHeader(invite, 'call-id')!;
    caller.send(invite, PORT);
    const atBob = (await bob.waitFor((m) => m.kind === 'request' && m.method === 'INVITE' && getHeader(m, 'call-id') === callId)) as SipRequest;
    const recordRoute = getHeaderValues(atBob, 'record-route').map((value) => ({ name: 'Record-Route', value }));
    bob.send(createResponse(atBob, 200, { toTag: 'b0b', headers: [...recordRoute, { name: 'Contact', value: `<sip:bob@127.0.0.1:${bob.port}>` }] }), PORT);
    const ok = await caller.response(invite, 200);
    const fromTag = /tag=([^;]+)/.exec(getHeader(invite, 'from')!)![1];
    const route = [...getHeaderValues(ok, 'record-route')].reverse().map((value) => ({ name: 'Route', value }));
    expect(route.length).toBeGreaterThan(0);
    const inDialog = (method: string, cseq: number) =>
      caller.request(method, `sip:bob@127.0.0.1:${bob.port}`, { from: 'sip:carol@elsewhere.test', to: `sip:bob@${DOMAIN}`, callId, fromTag, toTag: 'b0b', cseq, headers: route, contactUser: 'carol' });
    return { ack: inDialog('ACK', 1), bye: inDialog('BYE', 2), callId };
  }

  /** Methods of the requests of a call that reached bob, in order. */
  const atBob = (callId: string) => bob.received.filter((m) => m.kind === 'request' && getHeader(m, 'call-id') === callId).map((m) => (m as SipRequest).method);

  it('forwards a BYE that arrived before the ACK after that ACK', async () => {
    const { ack, bye, callId } = await answeredCall();
    caller.send(bye, PORT);
    await new Promise((r) => setTimeout(r, 30));
    caller.send(ack, PORT);
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'BYE' && getHeader(m, 'call-id') === callId);
    expect(atBob(callId)).toEqual(['INVITE', 'ACK', 'BYE']);
  });

  it('forwards the BYE without the ACK once ACK_WAIT_MS have passed since the 2xx', async () => {
    const { bye, callId } = await answeredCall();
    const sentMs = performance.now();
    caller.send(bye, PORT);
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'BYE' && getHeader(m, 'call-id') === callId, 2000);
    expect(performance.now() - sentMs).toBeLessThan(ACK_WAIT_MS + 1000);
    expect(atBob(callId)).toEqual(['INVITE', 'BYE']);
  });

  it('forwards a BYE after its ACK at once', async () => {
    const { ack, bye, callId } = await answeredCall();
    caller.send(ack, PORT);
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'ACK' && getHeader(m, 'call-id') === callId);
    caller.send(bye, PORT);
    await bob.waitFor((m) => m.kind === 'request' && m.method === 'BYE' && getHeader(m, 'call-id') === callId, ACK_WAIT_MS / 2);
    expect(atBob(callId)).toEqual(['INVITE', 'ACK', 'BYE']);
  });
});

describe('AckOrder bounds', () => {
  const dialog = (i: number, method = 'BYE') => ({
    kind: 'request' as const,
    method,
    uri: 'sip:bob@127.0.0.1:40002',
    headers: [
      { name: 'Call-ID', value: `c${i}` },
      { name: 'From', value: '<sip:carol@elsewhere.test>;tag=f' },
      { name: 'To', value: '<sip:bob@example.test>;tag=t' },
      { name: 'CSeq', value: `2 ${method}` },
    ],
    body: Buffer.alloc(0),
  });
  const ok = (i: number) => ({ ...dialog(i), kind: 'response' as const, status: 200, reason: 'OK' });

  it('forgets the oldest dialog past its bound, running what it held, and entries that ran out', () => {
    let nowMs = 0;
    const order = new AckOrder(250, 2, () => nowMs);
    const ran: number[] = [];
    order.answered(ok(1));
    order.answered(ok(2));
    expect(order.holdUntilAcked(dialog(1), () => ran.push(1))).toBe(true);
    order.answered(ok(3));
    expect(ran).toEqual([1]);
    expect(order.size).toBe(2);
    expect(order.holdUntilAcked(dialog(1), () => ran.push(11))).toBe(false);
    expect(order.holdUntilAcked(dialog(2, 'ACK'), () => ran.push(2))).toBe(false);
    nowMs = 300;
    expect(order.holdUntilAcked(dialog(3), () => ran.push(3))).toBe(false);
    order.answered(ok(4));
    expect(order.size).toBe(1);
    expect(order.holdUntilAcked(dialog(4), () => ran.push(4))).toBe(true);
    order.acked(dialog(4, 'ACK'));
    expect(ran).toEqual([1, 4]);
    expect(order.size).toBe(0);
  });

  it('holds at most ACK_WAIT_MAX_HELD requests of one dialog, forwarding the next at once', () => {
    const order = new AckOrder(250, 10, () => 0);
    const ran: number[] = [];
    order.answered(ok(1));
    for (let i = 0; i < ACK_WAIT_MAX_HELD; i++) expect(order.holdUntilAcked(dialog(1), () => ran.push(i))).toBe(true);
    expect(order.holdUntilAcked(dialog(1), () => ran.push(-1))).toBe(false);
    expect(ran).toEqual([]);
    order.acked(dialog(1, 'ACK'));
    expect(ran).toEqual([...Array(ACK_WAIT_MAX_HELD).keys()]);
  });
});
