/**
 * The RFC 4475 / RFC 5118 replay (torture-suite.ts) over TLS and over SIP
 * over WebSocket (RFC 7118), each message on a connection of its own, against
 * a server started in-process with a UDP listener (where the callee is
 * registered and requests are forwarded to), a TLS and a WS listener.
 *
 * What differs from UDP is framing. On TLS, a stream, Content-Length
 * delimits messages (RFC 3261 §18.3): clerr.dat announces more body than
 * arrives, so the server waits and answers nothing; dblreq.dat's trailing
 * INVITE is a second message and is answered too (the REGISTER still gets
 * its 401); baddn.dat, whose archive copy lacks the blank line that ends the
 * header section, never ends either; inv2543.dat has no Content-Length,
 * which a stream requires (§20.14): 400. On WebSocket each frame is one message (RFC 7118 §5), as a
 * datagram is on UDP, so the UDP expectations hold unchanged. Route entries
 * and in-dialog Request-URIs name the callee (the server does not open
 * connections back to a TLS or WS sender's ephemeral port), so requests
 * expected back at the sender are expected at the callee.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.js';
import { StreamPeer, UdpPeer, WsPeer, leftoverAddresses, type ReceivedMessages } from './torture-wire.js';
import { DOMAIN, TORTURE_USERS, allVectors, prepare, registerCallee, replayAll, type Replay, type Where } from './torture-suite.js';

const UDP_PORT = 27064;
const TLS_PORT = 27065;
const WS_PORT = 27066;

describe('RFC 4475 and RFC 5118 torture messages over TLS and WebSocket', () => {
  let test: TestServer;
  let callee: UdpPeer;
  const vectors = allVectors();

  beforeAll(async () => {
    test = await startTestServer({
      name: 'torture-tls-ws',
      domain: DOMAIN,
      sip: {
        listen: [
          { transport: 'udp', host: '127.0.0.1', port: UDP_PORT },
          { transport: 'tls', host: '127.0.0.1', port: TLS_PORT },
          { transport: 'ws', host: '127.0.0.1', port: WS_PORT },
        ],
        timers: { t1: 50, t2: 400, t4: 500 },
      },
      users: TORTURE_USERS,
    });
    callee = await UdpPeer.open(true);
    await registerCallee(UDP_PORT, callee);
  });

  afterAll(async () => {
    callee?.close();
    await test?.stop();
  });

  /** The replay over one stream transport, Route and in-dialog targets naming the callee. */
  function over(open: () => Promise<ReceivedMessages>, viaTransport: string, port: number, overrides?: Replay['overrides']): Replay {
    return {
      vectors,
      open,
      serverPort: port,
      sender: (ua) => ({ uaPort: ua.port, viaTransport, selfTarget: `127.0.0.1:${callee.port}`, proxy: `127.0.0.1:${port}` }),
      callee,
      selfIs: 'callee',
      proxyVia: (_where: Where) => `SIP/2.0/UDP 127.0.0.1:${UDP_PORT};branch=z9hG4bK`,
      overrides,
    };
  }

  it('prepares every message with loopback addresses only', () => {
    expect(vectors.length).toBe(49 + 12);
    for (const v of vectors) expect(leftoverAddresses(prepare(v.name, v.raw, { uaPort: 1, viaTransport: 'TLS', selfTarget: '127.0.0.1:2', proxy: `127.0.0.1:${TLS_PORT}` }))).toEqual([]);
  });

  it('over TLS: answers each message as the RFCs say, with stream framing', async () => {
    const failures = await replayAll(
      over(() => StreamPeer.connect(TLS_PORT, { tls: true }), 'TLS', TLS_PORT, {
        'rfc4475/clerr.dat': { status: null, reason: undefined }, // waits for the 9999 announced body octets
        'rfc4475/dblreq.dat': { status: 401 }, // the REGISTER's answer; the INVITE is answered as well (torture-tcp)
        'rfc4475/baddn.dat': { status: null, reason: undefined }, // the archive has no blank line after the headers: the message never ends
        'rfc4475/inv2543.dat': { status: 400, reason: /Content-Length/, forwarded: undefined }, // Content-Length is mandatory on streams (§20.14)
      }),
    );
    expect(failures).toEqual([]);
  });

  it('over WebSocket: answers each message as the RFCs say, one message per frame', async () => {
    const failures = await replayAll(over(() => WsPeer.connect(WS_PORT), 'WS', WS_PORT));
    expect(failures).toEqual([]);
  });
});
