/**
 * The RFC 4475 (SIP torture) and RFC 5118 (IPv6 torture) replay shared by the
 * conformance tests over every transport: what the server answers to each
 * message (as the RFCs describe it for a proxy + registrar), how a message is
 * pointed at the sender and the server, the callee every registered user is
 * bound to, and the replay itself, one sender (socket or connection) per message.
 *
 * Every address the server could answer to or contact is rewritten first (see
 * torture-wire.ts): the top Via names the sending socket with rport, Route
 * hosts name the sender, in-dialog Request-URIs name the sender, and the
 * domain example.com becomes the served domain example.test, so requests
 * target this server's users. The users user, j.user, j_user and UserB are
 * registered to a callee socket that answers 486 to INVITE and 200 to
 * anything else, so a request the proxy forwards shows up there.
 */
import { readdirSync } from 'node:fs';
import { expect } from 'vitest';
import { parseMessage } from '../../src/sip/parser.js';
import { getHeader, getHeaderValues, type SipRequest } from '../../src/sip/message.js';
import { getTag } from '../../src/sip/headers.js';
import { UdpUa } from '../helpers/udp-ua.js';
import { toLoopback, vector, vectorCrlf, type ReceivedMessages, type UdpPeer } from './torture-wire.js';

export const DOMAIN = 'example.test';
export const PASSWORD = 'torture-pw';
/** Users whose single binding is the callee socket. */
export const REGISTERED = ['user', 'j.user', 'j_user', 'UserB'];
/** Users that exist without bindings (REGISTER tests authenticate as them). */
export const UNREGISTERED = ['watson', 'reguser'];
/** The `users` of startTestServer for a torture server. */
export const TORTURE_USERS: Record<string, string> = Object.fromEntries([...REGISTERED, ...UNREGISTERED].map((u) => [u, PASSWORD]));

/** Where a forwarded request must show up: at the registered callee, or back at the sender (Route / in-dialog target). */
export type Where = 'callee' | 'self';

export interface Expectation {
  /** Status of the final response the sender gets, or null when nothing at all may come back. */
  status: number | null;
  /** The reason phrase must match (400s name the problem). */
  reason?: RegExp;
  /** The request must have been forwarded to the callee or back to the sender (Route / in-dialog target). */
  forwarded?: Where;
  /** Edits applied to the message text (latin1) before the loopback rewrite. */
  edit?: (s: string) => string;
  /**
   * The in-dialog request follows a route this proxy recorded: a Route naming
   * the proxy is put on top. Without it an in-dialog request to a foreign
   * target is not relayed for a sender of a served domain before it authenticates (407).
   */
  recorded?: boolean;
  /**
   * The answer to wait for is the final response carrying the message's own CSeq: on a stream a second
   * message in the same bytes is answered too, and its response may come first.
   */
  ownCseq?: boolean;
}

/** What RFC 4475 §3 and RFC 5118 §4 say an element like this one (proxy + registrar) does with each message. */
export const EXPECT: Record<string, Expectation> = {
  // §3.1.1 valid messages: parsed, routed, never 400.
  'rfc4475/wsinv.dat': { status: 486, forwarded: 'self', recorded: true }, // in-dialog, our Route, then a Route to the sender
  'rfc4475/intmeth.dat': { status: 407 }, // unknown method from a local user: challenged like any request
  'rfc4475/esc01.dat': { status: 403, reason: /Relaying denied/ }, // target in a foreign domain, sender not local
  'rfc4475/escnull.dat': { status: 401 },
  'rfc4475/esc02.dat': { status: 407 }, // RE%47IST%45R is not REGISTER: proxy challenge, not the registrar's 401
  'rfc4475/lwsdisp.dat': { status: 407 },
  'rfc4475/longreq.dat': { status: 486, forwarded: 'callee' },
  'rfc4475/dblreq.dat': { status: 401, ownCseq: true }, // the trailing INVITE octets are ignored (on streams it is answered too)
  'rfc4475/semiuri.dat': { status: 404 }, // user part is "user;par=u@example.net", not "user"
  'rfc4475/transports.dat': { status: 407 },
  'rfc4475/mpart01.dat': { status: 407 },
  'rfc4475/unreason.dat': { status: null }, // responses matching no transaction of ours: dropped
  'rfc4475/noreason.dat': { status: null },
  // §3.1.2 invalid messages: 400 naming the problem, 505 for the version, responses discarded.
  'rfc4475/badinv01.dat': { status: 400, reason: /Via/ },
  'rfc4475/clerr.dat': { status: 400, reason: /Content-Length/ },
  'rfc4475/ncl.dat': { status: 400, reason: /Content-Length/ },
  'rfc4475/scalar02.dat': { status: 400, reason: /CSeq|Max-Forwards|Expires/ },
  'rfc4475/scalarlg.dat': { status: null },
  'rfc4475/quotbal.dat': { status: 400, reason: /To/ },
  'rfc4475/ltgtruri.dat': { status: 400, reason: /Request-URI/ },
  'rfc4475/lwsruri.dat': { status: 400, reason: /Request-(Line|URI)/ },
  'rfc4475/lwsstart.dat': { status: 400, reason: /Request-Line/ },
  'rfc4475/trws.dat': { status: 400, reason: /Request-Line/ },
  'rfc4475/escruri.dat': { status: 400, reason: /Request-URI/ },
  'rfc4475/baddate.dat': { status: 486, forwarded: 'callee' }, // a proxy forwards it, Date untouched
  // regbadct needs authentication first: see the REGISTER tests below; unauthenticated it is challenged.
  'rfc4475/regbadct.dat': { status: 401, edit: (s) => s.replace(/sip:user@example\.com\r\n/g, 'sip:reguser@example.com\r\n').replace(/sip:user@example\.com;/, 'sip:reguser@example.com;') },
  'rfc4475/badaspec.dat': { status: 400, reason: /To/ },
  'rfc4475/baddn.dat': { status: 400, reason: /From/ },
  'rfc4475/badvers.dat': { status: 505 },
  'rfc4475/mismatch01.dat': { status: 400, reason: /CSeq/ },
  'rfc4475/mismatch02.dat': { status: 400, reason: /CSeq/ },
  'rfc4475/bigcode.dat': { status: null },
  // §3.2 / §3.3 transaction- and application-layer messages.
  'rfc4475/badbranch.dat': { status: 200, forwarded: 'callee' },
  'rfc4475/insuf.dat': { status: 400, reason: /missing (From|To|Call-ID)/ },
  'rfc4475/unkscm.dat': { status: 416 },
  'rfc4475/novelsc.dat': { status: 416 },
  'rfc4475/unksm2.dat': { status: 400, reason: /To/ }, // a registrar: the To of a REGISTER must be a SIP/SIPS URI
  'rfc4475/bext01.dat': { status: 420 },
  'rfc4475/invut.dat': { status: 486, forwarded: 'callee' }, // a proxy does not judge the body type
  'rfc4475/regaut01.dat': { status: 401 }, // the unknown scheme is ignored and a Digest challenge sent
  'rfc4475/multi01.dat': { status: 400, reason: /multiple/ },
  'rfc4475/mcl01.dat': { status: 400, reason: /Content-Length/ },
  'rfc4475/bcast.dat': { status: null },
  'rfc4475/zeromf.dat': { status: 483 },
  'rfc4475/cparam01.dat': { status: 401 },
  'rfc4475/cparam02.dat': { status: 401 },
  'rfc4475/regescrt.dat': { status: 401, edit: (s) => s.replace(/^(To|From): sip:user@/gm, '$1: sip:reguser@') },
  'rfc4475/sdp01.dat': { status: 486, forwarded: 'callee' },
  'rfc4475/inv2543.dat': { status: 486, forwarded: 'callee' }, // RFC 2543 syntax, no branch: still proxied
  // RFC 5118 §4: all valid but ipv6-bad.
  'rfc5118/ipv6-good.dat': { status: 407 },
  'rfc5118/ipv6-bad.dat': { status: 400, reason: /Request-URI/ },
  'rfc5118/port-ambiguous.dat': { status: 407 },
  'rfc5118/port-unambiguous.dat': { status: 407 },
  'rfc5118/via-received-param-with-delim.dat': { status: 200, forwarded: 'self', recorded: true },
  'rfc5118/via-received-param-no-delim.dat': { status: 407 },
  'rfc5118/ipv6-in-sdp.dat': { status: 407 },
  'rfc5118/mult-ip-in-header.dat': { status: 200, forwarded: 'self', recorded: true },
  'rfc5118/mult-ip-in-sdp.dat': { status: 407 },
  'rfc5118/ipv4-mapped-ipv6.dat': { status: 486, forwarded: 'callee' },
  'rfc5118/ipv6-bug-abnf-3-colons.dat': { status: 407 },
  'rfc5118/ipv6-correct-abnf-2-colons.dat': { status: 407 },
};

/** Every torture message of the given archives, in wire form (RFC 5118 ones with CRLF and a correct Content-Length). */
export function allVectors(dirs: readonly ('rfc4475' | 'rfc5118')[] = ['rfc4475', 'rfc5118']): { name: string; raw: Buffer }[] {
  const list = (dir: string) =>
    readdirSync(new URL(`../vectors/${dir}/`, import.meta.url))
      .filter((f) => f.endsWith('.dat'))
      .sort()
      .map((f) => `${dir}/${f}`);
  return dirs.flatMap((dir) => list(dir).map((name) => ({ name, raw: dir === 'rfc4475' ? vector(name) : vectorCrlf(name) })));
}

/** True when the message is a request with a To tag (in-dialog): its Request-URI is a target the proxy forwards to. */
function inDialog(raw: Buffer): boolean {
  try {
    const m = parseMessage(raw);
    return m.kind === 'request' && getTag(getHeader(m, 'to') ?? '') !== undefined;
  } catch {
    return false;
  }
}

/** Who sends a torture message and to which server. */
export interface Sender {
  /** The sending socket's (or connection's) local port. */
  uaPort: number;
  /** Its address as written in Via: `127.0.0.1` (default) or `[::1]`. */
  uaHost?: string;
  /** Via transport token of the sender (`TLS`, `WS`); default as in the archive (UDP). */
  viaTransport?: string;
  /** host:port that Route entries and in-dialog Request-URIs name; default the sender itself (uaHost:uaPort). */
  selfTarget?: string;
  /** host:port of the server's listener, named by the Route of `recorded` messages. */
  proxy: string;
}

/** A torture message rewritten for a sender: loopback addresses, the served domain, and the recorded Route when expected. */
export function prepare(name: string, raw: Buffer, sender: Sender): Buffer {
  const edit = EXPECT[name]?.edit;
  const edited = edit ? Buffer.from(edit(raw.toString('latin1')), 'latin1') : raw;
  const self = sender.selfTarget ?? `${sender.uaHost ?? '127.0.0.1'}:${sender.uaPort}`;
  const wire = toLoopback(edited, {
    uaPort: sender.uaPort,
    uaHost: sender.uaHost,
    viaTransport: sender.viaTransport,
    routeHost: self,
    domain: DOMAIN,
    ...(inDialog(edited) ? { ruriHost: self } : {}),
  });
  if (!EXPECT[name]?.recorded) return wire;
  const eol = wire.indexOf('\r\n');
  return Buffer.concat([wire.subarray(0, eol + 2), Buffer.from(`Route: <sip:${sender.proxy};lr>\r\n`), wire.subarray(eol + 2)]);
}

/** Call-ID, CSeq and body of a message that parses, to find it at the callee. */
export function ids(raw: Buffer): { callId?: string; cseq?: string; body?: Buffer } {
  try {
    const m = parseMessage(raw);
    return { callId: getHeader(m, 'call-id'), cseq: getHeader(m, 'cseq'), body: m.body };
  } catch {
    return {};
  }
}

/**
 * Register every REGISTERED user with the callee's address as its one Contact
 * (`contactHost`: `127.0.0.1` or `[::1]`), digest over UDP to the server on
 * 127.0.0.1:serverPort.
 */
export async function registerCallee(serverPort: number, callee: UdpPeer, contactHost = '127.0.0.1'): Promise<void> {
  const reg = await UdpUa.open();
  try {
    for (const u of REGISTERED) {
      const req = reg.request('REGISTER', `sip:${DOMAIN}`, {
        from: `sip:${u}@${DOMAIN}`,
        to: `sip:${u}@${DOMAIN}`,
        contact: `<sip:${u}@${contactHost}:${callee.port}>`,
        headers: [{ name: 'Expires', value: '600' }],
      });
      reg.send(req, serverPort);
      const challenge = await reg.response(req);
      expect(challenge.status).toBe(401);
      const authed = reg.authorize(req, challenge, u, PASSWORD);
      reg.send(authed, serverPort);
      const ok = await reg.response(authed);
      expect(ok.status).toBe(200);
      expect(getHeaderValues(ok, 'contact')[0]).toContain(`${contactHost}:${callee.port}`);
    }
  } finally {
    reg.close();
  }
}

/** How to replay the archives over one transport. */
export interface Replay {
  vectors: { name: string; raw: Buffer }[];
  /** A new sender (socket or connection to the server) for one message. */
  open(): Promise<ReceivedMessages>;
  /** The server port UDP senders send to (streams ignore it). */
  serverPort: number;
  /** The sender description of a peer (see {@link prepare}). */
  sender(peer: ReceivedMessages): Sender;
  callee: UdpPeer;
  /** Start of the Via the proxy puts on requests it forwards to the callee or back to the sender. */
  proxyVia(where: Where): string;
  /** Where `self` forwarding shows up: the sender (default) or the callee (when Route and in-dialog targets name it). */
  selfIs?: 'sender' | 'callee';
  /** Expectations that differ on this transport (stream framing), by message name. */
  overrides?: Record<string, Partial<Expectation>>;
}

/**
 * Send every message from its own sender at once and compare what comes back
 * (and what reaches the callee) with the expectations; returns one line per
 * difference, empty when all match.
 */
export async function replayAll(r: Replay): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    r.vectors.map(async ({ name, raw }) => {
      const exp = { ...EXPECT[name]!, ...r.overrides?.[name] };
      const ua = await r.open();
      try {
        const msg = prepare(name, raw, r.sender(ua));
        const { callId, cseq, body } = ids(msg);
        await ua.send(msg, r.serverPort);
        const answered = (p: typeof ua) => {
          const f = p.final(cseq);
          return f !== undefined && (!exp.ownCseq || !cseq || f.raw.toString('latin1').includes(`CSeq: ${cseq}\r\n`));
        };
        const got = await ua.until(answered, exp.status === null ? 700 : 3000);
        const final = ua.final(cseq);
        const show = `${name}: got ${final ? `${final.status} ${final.reason}` : 'nothing'} (all: ${ua.statuses().join(',')})`;
        if (exp.status === null) {
          if (ua.raw.length > 0) failures.push(`${show}; expected nothing`);
          return;
        }
        if (!got || !final) return void failures.push(`${show}; expected ${exp.status}`);
        if (final.status !== exp.status) failures.push(`${show}; expected ${exp.status}`);
        if (exp.reason && !exp.reason.test(final.reason)) failures.push(`${show}; reason should match ${exp.reason}`);
        // The response goes back with the request's Call-ID and CSeq (when it has them).
        if (cseq && !final.raw.toString('latin1').includes(cseq)) failures.push(`${name}: response lacks CSeq ${cseq}`);
        if (exp.forwarded) {
          const where = exp.forwarded === 'self' && r.selfIs === 'callee' ? 'callee' : exp.forwarded;
          const at = where === 'callee' ? r.callee : ua;
          const fwd = at.messages.find((m): m is SipRequest => m.kind === 'request' && getHeader(m, 'call-id') === callId && getHeader(m, 'cseq') === cseq);
          if (!fwd) failures.push(`${name}: not forwarded to the ${where}`);
          else {
            const vias = getHeaderValues(fwd, 'via');
            if (!vias[0]?.startsWith(r.proxyVia(where))) failures.push(`${name}: forwarded without the proxy's Via on top: ${vias[0]}`);
            if (!body || !fwd.body.equals(body)) failures.push(`${name}: body changed in forwarding`);
          }
        } else if (r.callee.messages.some((m) => m.kind === 'request' && callId !== undefined && getHeader(m, 'call-id') === callId && getHeader(m, 'cseq') === cseq)) {
          failures.push(`${name}: forwarded to the callee although answered ${final.status}`);
        }
        if (exp.status >= 400 && exp.status !== 407 && exp.status !== 401 && final.status === 400 && !exp.reason) failures.push(`${show}; 400 not expected`);
      } finally {
        ua.close();
      }
    }),
  );
  return failures;
}
