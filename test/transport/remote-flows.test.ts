/**
 * The table of the other workers' flows (transport/remote-flows.ts) at its
 * bound: an announcement past `maxFlows` is refused and not recorded, a flow
 * already recorded may be announced again, and a closed flow frees its place.
 */
import { describe, expect, it } from 'vitest';
import { RemoteFlows, type FlowAnnouncement } from '../../src/transport/remote-flows.js';

function flow(n: number): FlowAnnouncement {
  return { id: `f${n}`, transport: 'tls', remoteAddress: '192.0.2.7', remotePort: 40000 + n, localAddress: '127.0.0.1', localPort: 5061 };
}

describe('RemoteFlows bound', () => {
  it('refuses the announcement past maxFlows, keeps the ones it has, takes one again after a close', () => {
    const t = new RemoteFlows(3);
    expect([1, 2, 3, 4, 5].map((n) => t.add(1, flow(n)))).toEqual([true, true, true, false, false]);
    expect(t.size).toBe(3);
    expect(t.get('f4')).toBeUndefined();
    expect(t.find('tls', '192.0.2.7', 40004)).toBeUndefined();
    expect(t.find('tls', '192.0.2.7', 40003)).toMatchObject({ id: 'f3', worker: 1 });
    // A flow already in the table is announced again (its worker restarted its announcements): still recorded.
    expect(t.add(2, flow(2))).toBe(true);
    expect(t.get('f2')?.worker).toBe(2);
    t.delete('f1');
    expect(t.add(1, flow(4))).toBe(true);
    expect(t.size).toBe(3);
    expect(t.find('tls', '192.0.2.7', 40004)?.id).toBe('f4');
  });
});
