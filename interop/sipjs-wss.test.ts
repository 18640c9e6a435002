/**
 * A browser-style UA (OnSIP's sip.js library, over WSS, RFC 7118) and baresip
 * (over UDP) call each other through rtcedge; the call is answered and torn
 * down once from each side.
 *
 * sip.js runs in Node with `ws` as its WebSocket and a session description
 * handler that offers a fixed PCMU audio stream (there is no WebRTC stack in
 * Node; SIP signalling is what is under test).
 *
 * Ports: rtcedge 26360 (UDP), 26361 (WSS); baresip bob 26370, ctrl 26375, RTP 26380-26389.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPeers } from './harness/peers.js';
import { WebSocket as NodeWebSocket } from 'ws';
import { Inviter, Registerer, RegistererState, SessionState, UserAgent, type Session, type SessionDescriptionHandler } from 'sip.js';
import { startBaresip, type BaresipUa } from './harness/baresip.js';
import { stopAllStarted } from './harness/process.js';
import { startRtcedge, type Rtcedge } from './harness/rtcedge.js';
import { makeTempDir, removeTempDir } from './harness/temp-dir.js';

const UDP_PORT = 26360;
const WSS_PORT = 26361;
const BOB_SIP = 26370;
const BOB_CTRL = 26375;

/** A session description handler with a fixed audio offer/answer on 127.0.0.1. */
function staticSdh(): SessionDescriptionHandler {
  const sdp = [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=audio 26390 RTP/AVP 0',
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    '',
  ].join('\r\n');
  return {
    close: () => {},
    getDescription: async () => ({ body: sdp, contentType: 'application/sdp' }),
    hasDescription: (contentType: string) => contentType === 'application/sdp',
    sendDtmf: () => false,
    setDescription: async () => {},
  };
}

function waitForState(session: Session, state: SessionState, timeoutMs: number): Promise<void> {
  if (session.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`session not ${state} within ${timeoutMs} ms (is ${session.state})`)), timeoutMs);
    session.stateChange.addListener((s) => {
      if (s === state) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

describeWithPeers(['baresip'])('sip.js over WSS calls baresip over UDP through rtcedge', () => {
  let dir: string;
  let server: Rtcedge | undefined;
  let bob: BaresipUa | undefined;
  let alice: UserAgent | undefined;
  let registerer: Registerer | undefined;

  beforeAll(async () => {
    dir = makeTempDir('sipjs');
    server = await startRtcedge({
      dir: join(dir, 'server'),
      ports: { udp: UDP_PORT },
      config: {
        sip: {
          listen: [
            { transport: 'udp', host: '127.0.0.1', port: UDP_PORT },
            { transport: 'wss', host: '127.0.0.1', port: WSS_PORT },
          ],
        },
      },
      users: [
        { aor: 'alice@example.test', password: 'alice-ws-1' },
        { aor: 'bob@example.test', password: 'bob-udp-2' },
      ],
    });
    const ca = readFileSync(server.certPath);
    // sip.js opens `new WebSocket(url, 'sip')`; give it ws, trusting the server's certificate.
    (globalThis as Record<string, unknown>).WebSocket = class extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { ca });
      }
    };
    bob = await startBaresip({
      name: 'bob',
      parentDir: dir,
      sipPort: BOB_SIP,
      ctrlPort: BOB_CTRL,
      rtpPorts: [26380, 26389],
      cafile: server.certPath,
      tlsListener: false,
      accounts: [{ aor: `sip:bob@127.0.0.1:${UDP_PORT}`, password: 'bob-udp-2', regint: 3600, answermode: 'auto' }],
      lifetimeS: 80,
    });
    alice = new UserAgent({
      uri: UserAgent.makeURI('sip:alice@example.test'),
      transportOptions: { server: `wss://127.0.0.1:${WSS_PORT}` },
      authorizationUsername: 'alice',
      authorizationPassword: 'alice-ws-1',
      sessionDescriptionHandlerFactory: () => staticSdh(),
      logBuiltinEnabled: false,
      delegate: {
        onInvite: async (invitation) => {
          await invitation.accept();
        },
      },
    });
    await alice.start();
    registerer = new Registerer(alice, { expires: 600 });
    const registered = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('sip.js did not register')), 10_000);
      registerer!.stateChange.addListener((s) => {
        if (s === RegistererState.Registered) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    await registerer.register();
    await registered;
    await bob.waitForRegistered(10_000);
  });

  afterAll(async () => {
    await alice?.stop().catch(() => {});
    await bob?.stop();
    await server?.stop();
    await stopAllStarted();
    removeTempDir(dir);
  });

  it('registered alice over WSS: the binding came in on a wss flow', () => {
    const regs = server!.sipLog({ direction: 'recv', method: 'REGISTER', transport: 'wss' });
    expect(regs.length).toBeGreaterThanOrEqual(2);
    const rows = server!.bindings('sip:alice@example.test');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.contact_uri).toMatch(/transport=ws/);
  });

  it('sip.js calls baresip, baresip answers, sip.js hangs up', async () => {
    const b0 = bob!.events.length;
    const inviter = new Inviter(alice!, UserAgent.makeURI('sip:bob@example.test')!);
    await inviter.invite();
    await waitForState(inviter, SessionState.Established, 10_000);
    await bob!.waitForEventType('CALL_ESTABLISHED', 5000, b0);
    await new Promise((r) => setTimeout(r, 500));
    await inviter.bye();
    await waitForState(inviter, SessionState.Terminated, 5000);
    await bob!.waitForEventType('CALL_CLOSED', 5000, b0);
    const callId = inviter.request.callId;
    await server!.waitForLog((l) => l.msg === 'sip send' && l.callId === callId && /^BYE /.test(String(l.startLine)), 3000);
    const byeOut = server!.sipLog({ callId }).filter((e) => e.direction === 'send' && e.method === 'BYE');
    expect(byeOut.map((e) => e.transport)).toEqual(['udp']);
  });

  it('baresip calls sip.js, sip.js answers, baresip hangs up', async () => {
    const b0 = bob!.events.length;
    let incoming: Session | undefined;
    const got = new Promise<Session>((resolve) => {
      alice!.delegate = {
        onInvite: async (invitation) => {
          incoming = invitation;
          resolve(invitation);
          await invitation.accept();
        },
      };
    });
    expect((await bob!.dial(`sip:alice@127.0.0.1:${UDP_PORT}`)).ok).toBe(true);
    const session = await Promise.race([got, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no INVITE reached sip.js')), 10_000))]);
    await waitForState(session, SessionState.Established, 10_000);
    await bob!.waitForEventType('CALL_ESTABLISHED', 5000, b0);
    await new Promise((r) => setTimeout(r, 500));
    expect((await bob!.hangup()).ok).toBe(true);
    await waitForState(incoming!, SessionState.Terminated, 5000);
    await bob!.waitForEventType('CALL_CLOSED', 5000, b0);
    // The BYE went to sip.js over its WSS flow (the log line may trail the WebSocket frame).
    const byeOut = await server!.waitForLog((l) => l.msg === 'sip send' && l.transport === 'wss' && /^BYE /.test(String(l.startLine)), 3000);
    expect(byeOut.transport).toBe('wss');
  });
});
