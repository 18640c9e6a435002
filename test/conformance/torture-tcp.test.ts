/**
 * The RFC 4475 messages whose handling depends on stream framing (RFC 3261
 * §18.3: Content-Length delimits messages on a stream), sent over TCP to a
 * server started in-process: clerr.dat (a Content-Length larger than what
 * arrived means "wait for the rest"), ncl.dat and mcl01.dat (no way to find
 * the next message: 400, then the connection is closed), dblreq.dat (two
 * messages back to back: both are processed). Each message's top Via is
 * rewritten to the connection's own address (responses go back on the
 * connection anyway).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpPeer, toLoopback, vector } from './torture-wire.js';
import { startTestServer, type TestServer } from '../helpers/test-server.js';

const PORT = 27062;
const DOMAIN = 'example.test';

/** Status lines of every response in the bytes received so far. */
function statusLines(data: Buffer): string[] {
  return [...data.toString('latin1').matchAll(/(?:^|\r\n\r\n)(SIP\/2\.0 \d{3} [^\r]*)/g)].map((m) => m[1]);
}

describe('RFC 4475 stream-framing messages over TCP', () => {
  let test: TestServer;

  beforeAll(async () => {
    test = await startTestServer({
      name: 'torture-tcp',
      domain: DOMAIN,
      sip: { listen: [{ transport: 'tcp', host: '127.0.0.1', port: PORT }] },
    });
  });

  afterAll(async () => {
    await test?.stop();
  });

  async function send(name: string): Promise<TcpPeer> {
    const peer = await TcpPeer.connect(PORT);
    peer.write(toLoopback(vector(`rfc4475/${name}`), { uaPort: peer.port, domain: DOMAIN }));
    return peer;
  }

  it('clerr.dat: waits for the announced 9999 body octets, then handles the INVITE', async () => {
    const peer = await send('clerr.dat');
    try {
      expect(await peer.until((p) => p.data.length > 0 || p.closed, 500)).toBe(false);
      // The rest of the announced body arrives: the message is complete and routed (user@example.test does not exist).
      const sent = toLoopback(vector('rfc4475/clerr.dat'), { uaPort: peer.port, domain: DOMAIN });
      const bodySoFar = sent.length - (sent.indexOf('\r\n\r\n') + 4);
      peer.write(Buffer.alloc(9999 - bodySoFar, 0x61));
      expect(await peer.until((p) => statusLines(p.data).some((l) => !l.startsWith('SIP/2.0 100')), 3000)).toBe(true);
      // Answered at once: the 404 goes alone, without a 100 Trying before it (RFC 3261 §17.2.1).
      expect(statusLines(peer.data)).toEqual(['SIP/2.0 404 Not Found']);
      expect(peer.closed).toBe(false);
    } finally {
      peer.close();
    }
  });

  for (const [name, reason] of [
    ['ncl.dat', /^SIP\/2\.0 400 Bad Request: malformed Content-Length$/],
    ['mcl01.dat', /^SIP\/2\.0 400 Bad Request: (malformed|multiple) Content-Length/],
  ] as const) {
    it(`${name}: 400 naming Content-Length, then the connection is closed`, async () => {
      const peer = await send(name);
      try {
        expect(await peer.until((p) => p.closed, 3000)).toBe(true);
        const lines = statusLines(peer.data);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(reason);
      } finally {
        peer.close();
      }
    });
  }

  it('dblreq.dat: on a stream the trailing INVITE is a second message and is handled too', async () => {
    const peer = await TcpPeer.connect(PORT);
    try {
      // Both messages pointed at loopback; the stream ends where the INVITE's 150 body octets end
      // (the archive has 5 octets more, which on a stream would be the start of a third message).
      const raw = vector('rfc4475/dblreq.dat');
      const at = raw.indexOf('INVITE sip:joe');
      const register = toLoopback(raw.subarray(0, at), { uaPort: peer.port, domain: DOMAIN });
      const invite = toLoopback(raw.subarray(at), { uaPort: peer.port, domain: DOMAIN });
      const inviteEnd = invite.indexOf('\r\n\r\n') + 4 + 150;
      peer.write(Buffer.concat([register, invite.subarray(0, inviteEnd)]));
      const done = await peer.until((p) => statusLines(p.data).length >= 2, 3000);
      expect(done, peer.data.toString('latin1')).toBe(true);
      const text = peer.data.toString('latin1');
      expect(statusLines(peer.data).sort()).toEqual(['SIP/2.0 401 Unauthorized', 'SIP/2.0 404 Not Found']);
      expect(text).toContain('CSeq: 8 REGISTER');
      expect(text).toContain('CSeq: 8 INVITE');
      expect(peer.closed).toBe(false);
    } finally {
      peer.close();
    }
  });
});
