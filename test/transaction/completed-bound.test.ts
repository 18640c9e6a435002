/**
 * The bound on completed server transactions held for Timer J
 * (`sip.limits.completed_transactions`), on a running server over UDP: past
 * the bound the oldest is released early and counted in /metrics
 * (`rtcedge_sip_completed_released_total`); a retransmission of a held one is
 * answered with the very response sent first (RFC 3261 §17.2.2), one of a
 * released one is handled as a new request (here: a new 401 with a new nonce).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { getHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { UdpUa } from '../helpers/udp-ua.js';

const SIP_PORT = 27460;
const ADMIN = 'http://127.0.0.1:27461';
const DOMAIN = 'example.test';
const BOUND = 3;

async function releasedCount(): Promise<number> {
  const text = await (await fetch(`${ADMIN}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('rtcedge_sip_completed_released_total '));
  expect(line).toBeDefined();
  return Number(line!.split(' ')[1]);
}

describe('completed transactions held for Timer J, bounded', () => {
  let dir: string;
  let server: RunningServer;
  let ua: UdpUa;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rtcedge-completed-bound-'));
    const config = parseConfig({
      data_dir: dir,
      domains: [DOMAIN],
      log: { level: 'silent' },
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: SIP_PORT }], limits: { completed_transactions: BOUND } },
      turn: { enabled: false },
      admin: { listen: ADMIN.slice('http://'.length) },
    });
    server = await startServer(config, silentLogger);
    ua = await UdpUa.open();
  });

  afterAll(async () => {
    ua?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The nonce of every 401 received for `req` (same Call-ID and CSeq), in order. */
  const noncesFor = (req: SipRequest): string[] =>
    ua.received
      .filter((m): m is SipResponse => m.kind === 'response' && m.status === 401 && getHeader(m, 'call-id') === getHeader(req, 'call-id'))
      .map((m) => /nonce="([^"]+)"/.exec(getHeader(m, 'www-authenticate') ?? '')![1]!);

  /** Send `req` and wait until its `n`-th 401 has arrived. */
  async function sendAndWait(req: SipRequest, n: number): Promise<void> {
    ua.send(req, SIP_PORT);
    const deadline = Date.now() + 3000;
    while (noncesFor(req).length < n) {
      if (Date.now() > deadline) throw new Error(`no 401 #${n} for ${getHeader(req, 'call-id')}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it('releases the oldest past the bound and counts it; a held one is still answered from memory', async () => {
    expect(await releasedCount()).toBe(0);
    const reqs = Array.from({ length: BOUND + 1 }, (_, i) =>
      ua.request('REGISTER', `sip:${DOMAIN}`, { from: `sip:u${i}@${DOMAIN}`, to: `sip:u${i}@${DOMAIN}`, contactUser: `u${i}` }),
    );
    for (const req of reqs) await sendAndWait(req, 1);
    // Four completed, three held: the first was released before its Timer J.
    expect(await releasedCount()).toBe(1);

    // The newest is held: its retransmission gets the same 401, same nonce.
    const newest = reqs[BOUND]!;
    await sendAndWait(newest, 2);
    expect(noncesFor(newest)[1]).toBe(noncesFor(newest)[0]);

    // The first was released: its retransmission is a new request, answered with a new challenge,
    // which completes and releases the next oldest.
    const first = reqs[0]!;
    await sendAndWait(first, 2);
    expect(noncesFor(first)[1]).not.toBe(noncesFor(first)[0]);
    expect(await releasedCount()).toBe(2);
  });
});
