import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import {
  cloneMessage,
  getHeader,
  getHeaderValues,
  prependHeader,
  removeFirstValue,
  setHeader,
  type SipHeader,
  type SipRequest,
  type SipResponse,
} from '../sip/message.js';
import { getTag, parseNameAddr, parseVia, formatVia } from '../sip/headers.js';
import { parseUri, type SipUri } from '../sip/uri.js';
import { createResponse } from '../sip/response.js';
import { SipError } from '../sip/errors.js';
import type { Authenticate } from '../auth/request-authenticator.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import { responseDestination } from '../transaction/server-transaction.js';
import type { TransactionLayer, TransactionUser } from '../transaction/transaction-layer.js';
import { newBranch, MAGIC_COOKIE } from '../transaction/timers.js';
import type { TransportLayer } from '../transport/transport-layer.js';
import type { Destination, Source, TransportName } from '../transport/types.js';
import type { LocalDomains } from '../registrar/aor.js';
import type { LocationService } from '../registrar/location-service.js';
import type { BindingRecord } from '../store/index.js';
import { resolveUri } from './destination.js';
import { decodeFlowToken, encodeFlowToken, type FlowRef } from './flow-token.js';
import { loopHash, detectLoop } from './loop-detection.js';
import { targetGroups } from './target-set.js';
import { ResponseContext } from './response-context.js';

/** Methods this server proxies or answers (sent in Allow). */
export const ALLOWED_METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'MESSAGE', 'INFO', 'UPDATE', 'REFER', 'NOTIFY', 'SUBSCRIBE', 'PRACK', 'REGISTER'];

/** Option tags this server implements as registrar (RFC 3327, RFC 5626). */
export const SUPPORTED_EXTENSIONS = ['path', 'outbound'];

/** Requests that create a dialog and so get a Record-Route (RFC 3261 §16.6 step 4). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** Dependencies and policy of the proxy core. */
export interface ProxyOptions {
  transport: TransportLayer;
  transactions: TransactionLayer;
  domains: LocalDomains;
  location: LocationService;
  /** True when a user exists in a served domain (404 versus 480, §16.5); may ask a directory. */
  userExists(username: string, domain: string): boolean | Promise<boolean>;
  /** Establishes who sent a request (digest, client certificate...). */
  authenticate: Authenticate;
  /** Key of the flow tokens this proxy puts in Record-Route (RFC 5626 §5.2). */
  flowTokenSecret: Buffer;
  /**
   * Per-user call policy for an authenticated local user's new INVITE
   * (auth/call-limits.ts): undefined admits it, else the response to send.
   */
  admitCall?(username: string, st: ServerTransaction): { status: number; reason: string; headers: SipHeader[] } | undefined;
  /** The REGISTER handler (registrar). */
  register(req: SipRequest, st: ServerTransaction): Promise<void>;
  logger: Logger;
}

/**
 * The stateful proxy (RFC 3261 §16) as transaction user: request validation
 * (§16.3), Route pre-processing (§16.4), target determination through the
 * location service (§16.5), forwarding with Record-Route and Via (§16.6) to
 * every binding of the AOR in parallel, response handling (§16.7, in
 * {@link ResponseContext}), CANCEL (§16.10) and stateless forwarding of the ACK
 * for 2xx and of stray 2xx retransmissions.
 *
 * Policy: requests whose From is in a served domain are digest-challenged
 * (407) unless they are in-dialog (To tag), ACK or CANCEL; requests to other
 * domains are only forwarded for authenticated local users (403 "Relaying
 * denied" otherwise). REGISTER goes to the registrar; OPTIONS to the server
 * itself gets 200 with Allow.
 *
 * No user enumeration: senders of other domains (not authenticated) get 404
 * for unknown users and users without bindings alike; the 480 of a known user
 * without bindings is only told to authenticated local users. Requests whose
 * From is local (scanners put the target's address there) are challenged
 * before any lookup.
 */
export class ProxyCore implements TransactionUser {
  private readonly log: Logger;

  constructor(private readonly opts: ProxyOptions) {
    this.log = opts.logger.child({ component: 'proxy' });
  }

  onRequest(req: SipRequest, st: ServerTransaction): void {
    this.process(req, st).catch((err) => {
      if (err instanceof SipError) this.reply(st, err.status, err.reason);
      else {
        this.log.error({ err }, 'request processing failed');
        this.reply(st, 500, 'Server Internal Error');
      }
    });
  }

  onAck(ack: SipRequest, source: Source): void {
    this.forwardStateless(ack, source).catch((err) => this.log.debug({ err: (err as Error).message }, 'ACK dropped'));
  }

  onStrayResponse(res: SipResponse, _source: Source): void {
    // §16.7 / RFC 6026 §8.4: forward statelessly when the top Via is ours.
    const top = getHeader(res, 'via');
    if (!top) return;
    let via;
    try {
      via = parseVia(top.split(',')[0]);
    } catch {
      return;
    }
    if (!via.params.branch?.startsWith(MAGIC_COOKIE) || !this.isOurVia(via.host, via.port)) return;
    const out = cloneMessage(res);
    removeFirstValue(out, 'via');
    if (!getHeader(out, 'via')) return;
    const next = parseVia(getHeaderValues(out, 'via')[0]);
    const transport = next.transport.toLowerCase() as TransportName;
    const dest = responseDestination(out, {
      transport: ['tcp', 'tls', 'ws', 'wss'].includes(transport) ? transport : 'udp',
      remoteAddress: next.params.received ?? next.host,
      remotePort: next.params.rport ? Number(next.params.rport) : next.port ?? 5060,
      localAddress: '',
      localPort: 0,
    });
    this.opts.transport.send(out, dest).catch(() => {});
  }

  private reply(st: ServerTransaction, status: number, reason?: string, headers: SipHeader[] = []): void {
    const toTag = getTag(getHeader(st.request, 'to') ?? '') ? undefined : localTag(st.request);
    st.respond(createResponse(st.request, status, { reason, headers, toTag }));
  }

  private async process(req: SipRequest, st: ServerTransaction): Promise<void> {
    if (req.method === 'INVITE') st.respond(createResponse(req, 100, { reason: 'Trying' }));

    // §16.3 step 3: Max-Forwards.
    const mfHeader = getHeader(req, 'max-forwards');
    const maxForwards = mfHeader === undefined ? 70 : Number(mfHeader.trim());
    // §16.3 step 6: Proxy-Require.
    const proxyRequire = getHeaderValues(req, 'proxy-require');
    if (proxyRequire.length) return this.reply(st, 420, 'Bad Extension', [{ name: 'Unsupported', value: proxyRequire.join(', ') }]);

    if (req.method === 'CANCEL') return this.handleCancel(req, st);

    // §16.3 step 4: a request carrying our Via with this request's loop hash has looped.
    const hash = loopHash(req);
    if (detectLoop(req, hash, (host, port) => this.isOurVia(host, port))) return this.reply(st, 482, 'Loop Detected');

    // §16.4: Route pre-processing.
    this.fixStrictRoute(req);
    const { flow, removed } = this.removeOwnRoutes(req);

    const ruri = parseUri(req.uri);
    const hasRoute = getHeader(req, 'route') !== undefined;
    const toTag = getTag(getHeader(req, 'to') ?? '');
    const addressedToUs = !ruri.user && this.isUs(ruri);

    if (!hasRoute && (addressedToUs || req.method === 'REGISTER') && this.opts.domains.isLocal(ruri.host)) {
      // §8.2.2.3: as UAS, refuse extensions we do not support with 420 listing them.
      const unsupported = getHeaderValues(req, 'require').filter((o) => !SUPPORTED_EXTENSIONS.includes(o.toLowerCase()));
      if (unsupported.length) return this.reply(st, 420, 'Bad Extension', [{ name: 'Unsupported', value: unsupported.join(', ') }]);
      if (req.method === 'REGISTER') return this.opts.register(req, st);
      if (maxForwards === 0 && req.method !== 'OPTIONS') return this.reply(st, 483, 'Too Many Hops');
      if (req.method === 'OPTIONS') {
        return this.reply(st, 200, 'OK', [
          { name: 'Allow', value: ALLOWED_METHODS.join(', ') },
          { name: 'Accept', value: 'application/sdp' },
          { name: 'Accept-Language', value: 'en' },
        ]);
      }
      return this.reply(st, 404, 'Not Found');
    }
    if (maxForwards <= 0) return this.reply(st, 483, 'Too Many Hops');

    // In-dialog requests and requests to a registered contact go where they point;
    // an in-dialog request to an AOR of ours (sip:bob@127.0.0.1) is looked up like any other.
    const binding = hasRoute ? undefined : this.opts.location.findByContact(req.uri);
    const localAor = this.opts.domains.aorOf(ruri);
    // An in-dialog request passes unauthenticated only along a route this proxy recorded
    // or to a registered contact or local AOR; anything else would make it an open relay.
    const recorded = !!toTag && removed > 0;
    if (hasRoute || binding || flow || (toTag && !localAor)) {
      if (!recorded && !binding && !(await this.authorizedLocal(req, st))) return;
      return this.forward(req, st, [[{ uri: req.uri, binding, flow }]], hash);
    }

    const fromLocal = this.isFromLocalDomain(req);
    if (fromLocal && !recorded && !toTag) {
      const outcome = await this.opts.authenticate(req, 'proxy', st.source);
      if (!outcome.ok) return this.reply(st, outcome.status, outcome.reason, outcome.headers);
      const fromUser = parseUri(parseNameAddr(getHeader(req, 'from') ?? '').uri).user;
      if (fromUser !== outcome.username) return this.reply(st, 403, 'Forbidden: From does not match the authenticated user');
      const refusal = req.method === 'INVITE' ? this.opts.admitCall?.(outcome.username, st) : undefined;
      if (refusal) return this.reply(st, refusal.status, refusal.reason, refusal.headers);
    }

    const aor = this.opts.domains.aorOf(ruri);
    if (!aor) {
      if (!this.opts.domains.isLocal(ruri.host)) {
        if (!fromLocal) return this.reply(st, 403, 'Relaying denied');
        return this.forward(req, st, [[{ uri: req.uri }]], hash);
      }
      return this.reply(st, 404, 'Not Found');
    }
    const domain = aor.slice(aor.lastIndexOf('@') + 1);
    if (!(await this.opts.userExists(ruri.user!, domain))) return this.reply(st, 404, 'Not Found');
    const groups = targetGroups(this.opts.location.lookup(aor), (flowRef) => this.flowAlive(flowRef));
    // No user enumeration by senders of other domains (not authenticated): a user without bindings gets
    // the same 404 as an unknown user; only authenticated local users see 480.
    if (groups.length === 0) return fromLocal ? this.reply(st, 480, 'Temporarily Unavailable') : this.reply(st, 404, 'Not Found');
    return this.forward(
      req,
      st,
      groups.map((g) => g.map((b) => ({ uri: b.contactUri, binding: b }))),
      hash,
    );
  }

  /** Authenticate an out-of-dialog request that is routed onwards by its Route or Request-URI (no open relay). */
  private async authorizedLocal(req: SipRequest, st: ServerTransaction): Promise<boolean> {
    if (!this.isFromLocalDomain(req)) {
      this.reply(st, 403, 'Relaying denied');
      return false;
    }
    const outcome = await this.opts.authenticate(req, 'proxy', st.source);
    if (!outcome.ok) {
      this.reply(st, outcome.status, outcome.reason, outcome.headers);
      return false;
    }
    return true;
  }

  private handleCancel(cancel: SipRequest, st: ServerTransaction): void {
    const invite = this.opts.transactions.findInviteFor(cancel);
    if (!invite) return this.reply(st, 481, 'Call/Transaction Does Not Exist');
    this.reply(st, 200, 'OK');
    invite.cancelled = true;
    const ctx = contexts.get(invite);
    if (ctx) ctx.cancel();
    else if (!invite.finalSent) invite.respond(createResponse(invite.request, 487, { reason: 'Request Terminated', toTag: localTag(invite.request) }));
  }

  /**
   * §16.6: forward a copy of the request to each target through one response
   * context: the targets of a group in parallel, the groups one after the
   * other (sequential forking by q-value, §16.6 / RFC 3261 §16.6 step 1).
   */
  private async forward(req: SipRequest, st: ServerTransaction, groups: Target[][], hash: string): Promise<void> {
    if (st.request.method === 'INVITE' && (st as { cancelled?: boolean }).cancelled) {
      return this.reply(st, 487, 'Request Terminated');
    }
    const prepareGroup = async (targets: Target[]) => {
      const prepared: { msg: SipRequest; dest: Destination }[] = [];
      let lastError: SipError | undefined;
      for (const target of targets) {
        try {
          prepared.push(await this.prepare(req, st.source, target, hash));
        } catch (err) {
          if (!(err instanceof SipError)) throw err;
          lastError = err;
        }
      }
      if (prepared.length === 0) throw lastError ?? new SipError(480, 'Temporarily Unavailable');
      return prepared;
    };
    const first = await prepareGroup(groups[0]);
    const ctx = new ResponseContext(st, this.opts.transactions, this.log, groups.slice(1).map((g) => () => prepareGroup(g)));
    if (st.request.method === 'INVITE') contexts.set(st, ctx);
    for (const p of first) ctx.addBranch(p.msg, p.dest);
  }

  /** Build one outgoing copy (§16.6 steps 1–8) and find where it goes. */
  private async prepare(req: SipRequest, source: Source, target: Target, hash: string): Promise<{ msg: SipRequest; dest: Destination }> {
    const msg = cloneMessage(req);
    msg.uri = target.uri;
    // Step 3: Max-Forwards.
    const mf = getHeader(msg, 'max-forwards');
    setHeader(msg, 'Max-Forwards', String(mf === undefined ? 70 : Math.max(0, Number(mf.trim()) - 1)));
    // Credentials addressed to this server's realm are consumed (RFC 3261 §22.3 allows it; they mean nothing downstream).
    this.consumeCredentials(msg);
    // Path of the binding becomes the route set (RFC 3327 §5.3).
    if (target.binding?.path.length) for (const p of [...target.binding.path].reverse()) prependHeader(msg, 'Route', p);

    const dest = await this.destinationFor(msg, target.binding, target.flow);
    const outListener = this.opts.transport.listenerFor(dest.transport);
    if (!outListener) throw new SipError(503, `Service Unavailable: no ${dest.transport} listener`);

    // Step 4: Record-Route. Each side that is a connection the UA opened (or
    // changes transport) gets its own entry with a flow token, so in-dialog
    // requests go back over the right flow (RFC 5626 §5.3, RFC 3261 §16.6 step 4).
    const toTag = getTag(getHeader(req, 'to') ?? '');
    if (!toTag && DIALOG_CREATING.has(req.method)) {
      const inListener = this.opts.transport.listeners().find((l) => l.transport === source.transport && l.port === source.localPort) ?? this.opts.transport.listenerFor(source.transport);
      const inFlow: FlowRef | undefined = source.transport !== 'udp' ? { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId } : undefined;
      const outFlow: FlowRef | undefined = dest.transport !== 'udp' ? { transport: dest.transport, address: dest.address, port: dest.port, flowId: dest.flowId } : undefined;
      const double = inListener && (inFlow || outFlow || inListener.transport !== outListener.transport || inListener.port !== outListener.port);
      if (double && inListener) prependHeader(msg, 'Record-Route', this.recordRoute(inListener.advertisedHost, inListener.port, inListener.transport, inFlow));
      prependHeader(msg, 'Record-Route', this.recordRoute(outListener.advertisedHost, outListener.port, outListener.transport, outFlow));
    }
    // Step 8: our Via, its branch starting with the loop-detection hash.
    prependHeader(msg, 'Via', `SIP/2.0/${dest.transport.toUpperCase()} ${outListener.advertisedHost}:${outListener.port};branch=${newBranch(hash)};rport`);
    return { msg, dest };
  }

  private consumeCredentials(msg: SipRequest): void {
    const realm = this.opts.domains.defaultDomain;
    msg.headers = msg.headers.filter((h) => {
      if (h.name.toLowerCase() !== 'proxy-authorization') return true;
      const m = /realm\s*=\s*"([^"]*)"/i.exec(h.value);
      return !m || m[1].toLowerCase() !== realm;
    });
  }

  /** A Record-Route value naming this listener, with a flow token as user part when given. */
  private recordRoute(host: string, port: number, transport: TransportName, flow?: FlowRef): string {
    const user = flow ? `${encodeFlowToken(flow, this.opts.flowTokenSecret)}@` : '';
    return `<sip:${user}${host}:${port};transport=${transport};lr>`;
  }

  /** True when the flow a token or binding names can still be used: an open connection, or any UDP 5-tuple. */
  private flowAlive(ref: FlowRef): boolean {
    if (ref.transport === 'udp') return true;
    return this.opts.transport.hasFlowTo(ref.transport, ref.address, ref.port);
  }

  /**
   * Next hop (§16.6 step 7): the top Route when one remains; else the flow a
   * Record-Route token named, or the flow the target's binding registered
   * over, while it is open; else the Request-URI resolved.
   */
  private async destinationFor(msg: SipRequest, binding?: BindingRecord, flow?: FlowRef): Promise<Destination> {
    const route = getHeaderValues(msg, 'route')[0];
    if (!route) {
      if (flow && this.flowAlive(flow)) return { transport: flow.transport, address: flow.address, port: flow.port, flowId: flow.flowId };
      const src = (binding ?? this.opts.location.findByContact(msg.uri))?.source;
      if (src && src.transport !== 'udp') {
        const ref: FlowRef = { transport: src.transport as TransportName, address: src.address, port: src.port };
        if (this.flowAlive(ref)) return ref;
      }
    }
    const next = route ? parseUri(parseNameAddr(route).uri) : parseUri(msg.uri);
    return resolveUri(next, (t) => this.opts.transport.listenerFor(t) !== undefined);
  }

  /** Forward an ACK for a 2xx (or any request outside a transaction) without state (§16.11). */
  private async forwardStateless(req: SipRequest, source: Source): Promise<void> {
    this.fixStrictRoute(req);
    const { flow } = this.removeOwnRoutes(req);
    const mf = getHeader(req, 'max-forwards');
    if (mf !== undefined && Number(mf.trim()) <= 0) return;
    const msg = cloneMessage(req);
    setHeader(msg, 'Max-Forwards', String(mf === undefined ? 70 : Number(mf.trim()) - 1));
    const dest = await this.destinationFor(msg, undefined, flow);
    const out = this.opts.transport.listenerFor(dest.transport);
    if (!out) return;
    // §16.11: a branch derived from the incoming request, so retransmissions map to the same value.
    const topVia = getHeaderValues(req, 'via')[0] ?? '';
    const branch = MAGIC_COOKIE + createHash('sha1').update(topVia + req.uri + (getHeader(req, 'cseq') ?? '')).digest('base64url').slice(0, 22);
    prependHeader(msg, 'Via', formatVia({ transport: dest.transport.toUpperCase(), host: out.advertisedHost, port: out.port, params: { branch, rport: null } }));
    void source;
    await this.opts.transport.send(msg, dest);
  }

  /** §16.4: a Request-URI that is a URI we put in a Record-Route means the previous hop was a strict router. */
  private fixStrictRoute(req: SipRequest): void {
    let ruri: SipUri;
    try {
      ruri = parseUri(req.uri);
    } catch {
      return;
    }
    if (ruri.user || !('lr' in ruri.params) || !this.isUs(ruri)) return;
    const routes = getHeaderValues(req, 'route');
    if (!routes.length) return;
    const last = routes[routes.length - 1];
    req.uri = parseNameAddr(last).uri;
    const kept = routes.slice(0, -1);
    req.headers = req.headers.filter((h) => h.name.toLowerCase() !== 'route');
    for (const r of kept.reverse()) prependHeader(req, 'Route', r);
  }

  /**
   * §16.4: remove every top Route entry that names this server (one or two,
   * after double Record-Route). Returns how many were removed and the flow
   * named by the token of the last one, if it carried a valid one.
   */
  private removeOwnRoutes(req: SipRequest): { flow: FlowRef | undefined; removed: number } {
    let flow: FlowRef | undefined;
    let removed = 0;
    for (let i = 0; i < 4; i++) {
      const top = getHeaderValues(req, 'route')[0];
      if (!top) break;
      let uri: SipUri;
      try {
        uri = parseUri(parseNameAddr(top).uri);
      } catch {
        break;
      }
      if (!this.isUs(uri)) break;
      flow = uri.user ? decodeFlowToken(uri.user, this.opts.flowTokenSecret) : undefined;
      removeFirstValue(req, 'route');
      removed++;
    }
    return { flow, removed };
  }

  /** A URI naming this server: its host is a served domain or own address, and its port (if any) one we listen on. */
  private isUs(uri: SipUri): boolean {
    if (!this.opts.domains.isLocal(uri.host)) return false;
    return uri.port === undefined || this.opts.transport.listeners().some((l) => l.port === uri.port);
  }

  private isOurVia(host: string, port?: number): boolean {
    return this.opts.transport.listeners().some((l) => l.advertisedHost.toLowerCase() === host.toLowerCase() && (port === undefined || l.port === port));
  }

  private isFromLocalDomain(req: SipRequest): boolean {
    try {
      const from = parseUri(parseNameAddr(getHeader(req, 'from') ?? '').uri);
      return this.opts.domains.isLocal(from.host);
    } catch {
      return false;
    }
  }
}

/** The response context of each INVITE server transaction still in progress, for CANCEL. */
const contexts = new WeakMap<ServerTransaction, ResponseContext>();

/** One target of the target set (§16.5): a URI, the binding it came from, and the flow a Route token named. */
interface Target {
  uri: string;
  binding?: BindingRecord;
  flow?: FlowRef;
}

/** A To tag for responses this server generates, stable per request (so retransmitted requests get the same one). */
function localTag(req: SipRequest): string {
  return createHash('sha1')
    .update((getHeader(req, 'call-id') ?? '') + (getHeader(req, 'cseq') ?? '') + (getHeaderValues(req, 'via')[0] ?? ''))
    .digest('hex')
    .slice(0, 16);
}
