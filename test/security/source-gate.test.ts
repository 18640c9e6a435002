/** The per-source gate and the ban list it shares (security/source-gate.ts, security/ban-list.ts), with a fake clock. */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { AddressSet } from '../../src/security/address-set.js';
import { BanList } from '../../src/security/ban-list.js';
import { ScannerFilter } from '../../src/security/scanner-filter.js';
import { SourceGate } from '../../src/security/source-gate.js';
import type { SipMessage } from '../../src/sip/message.js';
import type { Inbound } from '../../src/transport/types.js';

function inbound(address: string, userAgent?: string, flowId?: string): Inbound {
  const msg: SipMessage = {
    kind: 'request',
    method: 'OPTIONS',
    uri: 'sip:example.test',
    headers: userAgent ? [{ name: 'User-Agent', value: userAgent }] : [],
    body: Buffer.alloc(0),
  } as SipMessage;
  return { msg, source: { transport: flowId ? 'tcp' : 'udp', remoteAddress: address, remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060, flowId } };
}

describe('SourceGate', () => {
  function setup(exempt: string[] = [], nowMs = { t: 0 }) {
    const changes: number[] = [];
    const bans = new BanList({ logger: silentLogger, nowMs: () => nowMs.t, onChange: (b) => changes.push(b.length) });
    const dropped: string[] = [];
    const gate = new SourceGate({
      bans,
      exempt: new AddressSet(exempt),
      requestsPerSecond: 10,
      burst: 5,
      banSeconds: 60,
      scanners: new ScannerFilter(),
      logger: silentLogger,
      onDroppedBanned: (s) => dropped.push(s.flowId ?? s.remoteAddress),
      nowMs: () => nowMs.t,
    });
    return { bans, gate, nowMs, changes, dropped };
  }

  it('bans a source over its rate, drops it until the ban ends, and leaves others alone', () => {
    const { bans, gate, nowMs, changes, dropped } = setup();
    const results = Array.from({ length: 8 }, () => gate.admit(inbound('192.0.2.1')));
    expect(results).toEqual([true, true, true, true, true, false, false, false]);
    expect(bans.list().map((b) => [b.address, b.reason, b.until])).toEqual([['192.0.2.1', 'request-rate', 60_000]]);
    expect(bans.totalBans).toBe(1);
    expect(bans.droppedMessages).toBe(2);
    expect(dropped).toHaveLength(3);
    expect(gate.admit(inbound('192.0.2.2'))).toBe(true);
    nowMs.t = 59_999;
    expect(gate.admit(inbound('192.0.2.1'))).toBe(false);
    nowMs.t = 60_000;
    expect(gate.admit(inbound('192.0.2.1'))).toBe(true);
    expect(bans.list()).toEqual([]);
    expect(changes).toEqual([1, 0]);
  });

  it('never bans exempt sources, and lifts a ban placed on one', () => {
    const { bans, gate } = setup(['192.0.2.0/24']);
    for (let i = 0; i < 50; i++) expect(gate.admit(inbound('192.0.2.9'))).toBe(true);
    bans.ban('192.0.2.9', 60, 'manual');
    expect(gate.admit(inbound('192.0.2.9'))).toBe(true);
    expect(bans.list()).toEqual([]);
  });

  it('drops scanner requests silently without banning; a banned stream source reports its flow', () => {
    const { bans, gate, dropped } = setup();
    expect(gate.admit(inbound('198.51.100.1', 'friendly-scanner'))).toBe(false);
    expect(gate.scannerDrops).toBe(1);
    expect(bans.list()).toEqual([]);
    bans.ban('198.51.100.2', 10, 'auth-failures');
    expect(gate.admit(inbound('198.51.100.2', undefined, 'tcp-7'))).toBe(false);
    expect(dropped).toEqual(['tcp-7']);
  });
});
