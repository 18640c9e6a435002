/**
 * Checks of the interop harness itself against the real peers, with no
 * rtcedge involved: two baresip UAs calling each other directly (UDP and TLS),
 * and sipsak sending OPTIONS to a baresip UA.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { reginfoAllOk, startBaresip, type BaresipUa } from './harness/baresip.js';
import { assertPortsFree } from './harness/ports.js';
import { stopAllStarted } from './harness/process.js';
import { runSipsak } from './harness/sipsak.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const ALICE_SIP = 25100;
const BOB_SIP = 25200;
const ALICE_CTRL = 25444;
const BOB_CTRL = 25445;

describeWithPeers(['baresip', 'sipsak'])('harness against real peers (peer to peer)', () => {
  let dir: string;
  let alice: BaresipUa | undefined;
  let bob: BaresipUa | undefined;

  beforeAll(async () => {
    await assertPortsFree('127.0.0.1', [ALICE_SIP, ALICE_SIP + 1, BOB_SIP, BOB_SIP + 1, ALICE_CTRL, BOB_CTRL]);
    dir = makeTempDir('harness');
    [alice, bob] = await Promise.all([
      startBaresip({
        name: 'alice',
        parentDir: dir,
        sipPort: ALICE_SIP,
        ctrlPort: ALICE_CTRL,
        rtpPorts: [25300, 25399],
        accounts: [{ aor: `sip:alice@127.0.0.1:${ALICE_SIP}`, regint: 0 }],
        lifetimeS: 60, sipTrace: !!process.env.TRACE,
      }),
      startBaresip({
        name: 'bob',
        parentDir: dir,
        sipPort: BOB_SIP,
        ctrlPort: BOB_CTRL,
        rtpPorts: [25400, 25499],
        accounts: [{ aor: `sip:bob@127.0.0.1:${BOB_SIP}`, regint: 0, answermode: 'auto' }],
        lifetimeS: 60, sipTrace: !!process.env.TRACE,
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await stopAllStarted();
    removeTempDir(dir);
  });

  for (const [label, uri] of [
    ['UDP', `sip:bob@127.0.0.1:${BOB_SIP}`],
    ['TLS', `sip:bob@127.0.0.1:${BOB_SIP + 1};transport=tls`],
  ] as const) {
    it(`alice calls bob directly over ${label}; both see the call established and closed`, async () => {
      const a0 = alice!.events.length;
      const b0 = bob!.events.length;
      const r = await alice!.dial(uri);
      expect(r.ok).toBe(true);
      const ea = await alice!.waitForEventType('CALL_ESTABLISHED', 8000, a0);
      const eb = await bob!.waitForEventType('CALL_ESTABLISHED', 8000, b0);
      // The event id is the dialog's Call-ID, the same on both ends.
      expect(ea.id).toBeTruthy();
      expect(eb.id).toBe(ea.id);
      expect(ea.direction).toBe('outgoing');
      expect(eb.direction).toBe('incoming');
      expect(eb.peeruri).toContain('alice');
      await new Promise((res) => setTimeout(res, 1000));
      expect((await alice!.hangup()).ok).toBe(true);
      await alice!.waitForEventType('CALL_CLOSED', 5000, a0);
      await bob!.waitForEventType('CALL_CLOSED', 5000, b0);
    });
  }

  it('reginfo of an account that never registers does not count as registered', async () => {
    const r = await alice!.command('reginfo');
    expect(r.ok).toBe(true);
    expect(r.data).toContain('sip:alice@127.0.0.1');
    expect(reginfoAllOk(r.data ?? '')).toBe(false);
    await expect(alice!.waitForRegistered(600)).rejects.toThrow(/not registered/);
  });

  it('sipsak OPTIONS to a baresip UA gets 200', async () => {
    const r = await runSipsak(['-s', `sip:bob@127.0.0.1:${BOB_SIP}`, '-v'], { timeoutMs: 10_000 });
    expect(r.output).toMatch(/SIP\/2\.0 200/);
    expect(r.code).toBe(0);
  });

  it('sipsak OPTIONS to a closed port fails', async () => {
    const r = await runSipsak(['-s', 'sip:nobody@127.0.0.1:25199'], { timeoutMs: 15_000 });
    expect(r.code).not.toBe(0);
  });
});
