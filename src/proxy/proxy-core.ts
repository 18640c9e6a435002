import { hash } from 'node:crypto';
import type { Logger } from '../log.js';
import {
  cloneMessage,
  getHeader,
  getHeaderValues,
  nameIs,
  prependHeader,
  removeFirstValue,
  setHeader,
  type SipRequest,
  type SipResponse,
} from '../sip/message.js';
import { parseNameAddr, parseVia, formatVia } from '../sip/headers.js';
import { parseUri, type SipUri } from '../sip/uri.js';
import { SipError } from '../sip/errors.js';
import { createResponse } from '../sip/response.js';
import type { Authenticate } from '../auth/request-authenticator.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import { responseDestination } from '../transaction/server-transaction.js';
import type { TransactionLayer, TransactionUser } from '../transaction/transaction-layer.js';
import { newBranch, MAGIC_COOKIE } from '../sip/branch.js';
import type { TransportLayer } from '../transport/transport-layer.js';
import type { Destination, Source, TransportName } from '../transport/types.js';
import type { LocalDomains } from '../registrar/local-domains.js';
import type { LocationService } from '../registrar/location-service.js';
import type { BindingRecord } from '../store/index.js';
import type { Awaitable } from '../auth/user-source.js';
import { nextHops, resolveNumericUri } from './destination.js';
import type { Federation } from './federation.js';
import { decodeFlowToken, encodeFlowToken } from './flow-token.js';
import type { Target } from './target-set.js';
import { ResponseContext } from './response-context.js';
import { AckOrder } from './ack-order.js';
import { CONTINUE, ownPathEntry, RequestContext, type Outcome, type ProxyEnv, type Refusal } from './request-context.js';
import { REQUEST_PROCESSORS } from './processors/index.js';
import { strictRoute } from './processors/strict-route.js';
import { ownRoute } from './processors/own-route.js';
import { bindingTargets } from './processors/location-lookup.js';
import { gruuRouting } from './processors/gruu-routing.js';
import { gruuOf } from '../registrar/gruu.js';

export { ALLOWED_METHODS } from './processors/local-handling.js';
export { SUPPORTED_EXTENSIONS } from '../registrar/steps/require-extensions.js';

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
  /** Key of temp-GRUUs (RFC 5627, registrar/gruu.ts tempGruuKey); without it temp-GRUUs get 404. */
  tempGruuKey?: Buffer;
  /**
   * Per-user call policy for an authenticated local user's new INVITE
   * (security/call-limits.ts): undefined admits it, else the response to send.
   */
  admitCall?(username: string, st: ServerTransaction): Refusal | undefined | Promise<Refusal | undefined>;
  /** The REGISTER handler (registrar); a promise only while it waits (the store commit, a directory). */
  register(req: SipRequest, st: ServerTransaction): void | Promise<void>;
  /** DNS and policy for other domains (RFC 3263 server location, RFC 5922 TLS, ENUM); absent: A/AAAA only, no domain policy. */
  federation?: Federation;
  logger: Logger;
}

/**
 * A prepared copy of a request for one target (§16.6 steps 1–8), where it
 * goes, and `retry`: after that destination failed (transport error or 503,
 * RFC 3263 §4.3) the copy for the next one, with a new branch, or undefined
 * when there is none.
 */
interface PreparedBranch {
  msg: SipRequest;
  dest: Destination;
  retry?(reason: string): Promise<PreparedBranch | undefined>;
}

/**
 * The stateful proxy (RFC 3261 §16) as transaction user: it runs every
 * request through the processors of {@link REQUEST_PROCESSORS} (validation
 * §16.3, Route pre-processing §16.4, local handling, authentication,
 * responsibility and target determination §16.5), then carries out their
 * outcome: a final response, or forwarding with Record-Route and Via (§16.6)
 * to the target groups through one {@link ResponseContext} (§16.7). ACKs for
 * 2xx and stray 2xx retransmissions are forwarded without state (§16.11).
 *
 * Nothing is ever forwarded to one of this server's own listeners: such a
 * branch fails with 482 (an ACK is dropped).
 */
export class ProxyCore implements TransactionUser {
  private readonly log: Logger;
  /** The response context of each INVITE server transaction still in progress, for CANCEL. */
  private readonly contexts = new WeakMap<ServerTransaction, ResponseContext>();
  private readonly env: ProxyEnv;

  constructor(private readonly opts: ProxyOptions) {
    this.log = opts.logger.child({ component: 'proxy' });
    const { transport, transactions } = opts;
    this.env = {
      domains: opts.domains,
      location: opts.location,
      authenticate: opts.authenticate,
      userExists: opts.userExists,
      admitCall: opts.admitCall,
      register: opts.register,
      flowTokenSecret: opts.flowTokenSecret,
      tempGruuKey: opts.tempGruuKey,
      listensOn: (port) => transport.listeners().some((l) => l.port === port),
      isOurSentBy: (host, port) => this.isOurVia(host, port),
      flowAlive: (ref) => ref.transport === 'udp' || transport.hasFlowTo(ref.transport, ref.address, ref.port),
      findInviteFor: (cancel) => transactions.findInviteFor(cancel),
      responseContextOf: (st) => this.contexts.get(st),
      federation: opts.federation,
    };
  }

  /**
   * A new request (not ACK) with its server transaction: runs the request
   * processors (RFC 3261 §16.3–16.6) and answers on `st`. A {@link SipError}
   * thrown on the way is answered with its status and headers; anything else
   * with 500 and an error log. A request of a dialog whose 2xx has just gone
   * upstream waits for the caller's ACK first (ack-order.ts).
   */
  onRequest(req: SipRequest, st: ServerTransaction): void {
    const ctx = new RequestContext(req, st.source, this.env, st);
    const go = (): void => {
      this.process(ctx).catch((err) => {
        if (err instanceof SipError) ctx.respond(err.status, err.reason, [...err.headers]);
        else {
          this.log.error({ err }, 'request processing failed');
          ctx.respond(500, 'Server Internal Error');
        }
      });
    };
    // A request of a dialog whose 2xx just went upstream goes after the caller's ACK (ack-order.ts).
    if (!this.ackOrder.holdUntilAcked(req, go)) go();
  }

  /** An ACK matching no INVITE server transaction (for a 2xx, RFC 3261 §16.7 note, §17.2.3): forwarded statelessly; one that cannot be routed is dropped (debug log). */
  onAck(ack: SipRequest, source: Source): void {
    this.forwardStateless(ack, source)
      .catch((err) => this.log.debug({ err: (err as Error).message }, 'ACK dropped'))
      .finally(() => this.ackOrder.acked(ack));
  }

  /** Dialogs whose 2xx went upstream and whose ACK has not passed yet (ack-order.ts). */
  private readonly ackOrder = new AckOrder();
  private readonly onAnswered = (res: SipResponse): void => this.ackOrder.answered(res);

  /** A response matching no client transaction (a 2xx retransmission, RFC 3261 §16.7, RFC 6026 §8.4): forwarded statelessly when the top Via is ours, else dropped. */
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

  /**
   * Run the processors in order; the first final outcome is carried out. An INVITE gets its 100 Trying
   * (RFC 3261 §16.2, §17.2.1) when it is forwarded, or on the next turn of the event loop while no
   * response has gone (a processor waiting on the store, a directory or DNS): one the processors answer
   * at once (a 407 challenge, a 404) gets its final response alone, as §17.2.1 allows when the TU
   * answers within 200 ms.
   */
  private async process(ctx: RequestContext): Promise<void> {
    if (ctx.req.method === 'INVITE') setImmediate(sendTryingIfSilent, ctx.transaction);
    for (const processor of REQUEST_PROCESSORS) {
      const result = processor.process(ctx);
      const verdict = result instanceof Promise ? await result : result;
      if (verdict !== CONTINUE) return this.carryOut(ctx, verdict);
    }
    ctx.respond(404, 'Not Found');
  }

  private async carryOut(ctx: RequestContext, outcome: Outcome): Promise<void> {
    if (outcome.kind === 'reply') return ctx.respond(outcome.status, outcome.reason, outcome.headers);
    if (outcome.kind === 'forward') return this.forward(ctx, outcome.targets);
  }

  /**
   * §16.6: forward a copy of the request to each target through one response
   * context: the targets of a group in parallel, the groups one after the
   * other (sequential forking by q-value, §16.6 / RFC 3261 §16.6 step 1).
   */
  private async forward(ctx: RequestContext, groups: Target[][]): Promise<void> {
    const st = ctx.transaction;
    if (st.request.method === 'INVITE' && (st as { cancelled?: boolean }).cancelled) return ctx.respond(487, 'Request Terminated');
    // §16.3 step 3: OPTIONS and REGISTER passed Max-Forwards zero only to be answered here.
    if (ctx.maxForwards <= 0) return ctx.respond(483, 'Too Many Hops');
    if (st.request.method === 'INVITE') sendTryingIfSilent(st);
    const prepareGroup = async (targets: Target[]) => {
      const prepared: PreparedBranch[] = [];
      let lastError: SipError | undefined;
      for (const target of targets) {
        try {
          prepared.push(await this.prepare(ctx, target));
        } catch (err) {
          if (!(err instanceof SipError)) throw err;
          lastError = err;
        }
      }
      if (prepared.length === 0) throw lastError ?? new SipError(480, 'Temporarily Unavailable');
      return prepared;
    };
    const first = await prepareGroup(groups[0]);
    const rc = new ResponseContext(st, this.opts.transactions, this.log, groups.slice(1).map((g) => () => prepareGroup(g)), st.request.method === 'INVITE' ? this.onAnswered : undefined);
    if (st.request.method === 'INVITE') this.contexts.set(st, rc);
    for (const p of first) rc.addBranch(p.msg, p.dest, p.retry);
  }

  /**
   * The copy of a request for one target (§16.6 steps 1–3, 6): Request-URI,
   * Max-Forwards decremented, the binding's Path as Route (RFC 3327 §5.3).
   */
  private copyFor(ctx: RequestContext, target: Target): SipRequest {
    const msg = cloneMessage(ctx.req);
    msg.uri = target.uri;
    setHeader(msg, 'Max-Forwards', String(ctx.forwardedMaxForwards));
    if (target.binding?.path.length) for (const p of [...target.binding.path].reverse()) prependHeader(msg, 'Route', p);
    return msg;
  }

  /**
   * Build one outgoing copy (§16.6 steps 1–8) and find where it goes; its
   * `retry` walks on through the next hops of server location (RFC 3263 §4.3),
   * recording each failed one in the failed-target table.
   *
   * A `sips:` request goes over TLS on every hop (RFC 5630 §3.1.3, RFC 3261
   * §26.2.2): a next hop over another transport gets 480.
   */
  private async prepare(ctx: RequestContext, given: Target): Promise<PreparedBranch> {
    const target = this.throughOwnPath(given);
    const base = this.copyFor(ctx, target);
    // Credentials addressed to this server's realm are consumed (RFC 3261 §22.3 allows it; they mean nothing downstream).
    this.consumeCredentials(base);
    const parsedUri = target.uri === ctx.req.uri ? ctx.ruri : undefined;
    // The one next hop when it is known at once (a flow, a numeric host); else server location, which may give several.
    const now = this.onlyHopNow(base, target.binding, target.flow, parsedUri);
    const hops = now === undefined || now instanceof Promise ? this.hopsFor(base, now ?? target.binding, target.flow, parsedUri) : undefined;
    const secure = /^sips:/i.test(ctx.req.uri) || /^sips:/i.test(base.uri);
    const localDomain = ctx.fromLocal ? ctx.fromUri!.host.toLowerCase() : this.opts.domains.defaultDomain;
    // `base` is copied for each hop (RFC 3263 §4.3 failover starts again from it), unless it is the only one.
    const build = (dest: Destination, only = false): PreparedBranch => {
      if (secure && dest.transport !== 'tls' && dest.transport !== 'wss') {
        throw new SipError(480, `Temporarily Unavailable: sips: needs TLS, the next hop is ${dest.transport.toUpperCase()} (RFC 5630)`);
      }
      const hop: Destination = dest.transport === 'tls' ? { ...dest, localDomain } : dest;
      return { msg: this.finishCopy(ctx, only ? base : cloneMessage(base), hop), dest: hop, retry: (reason) => retry(hop, reason) };
    };
    const retry = async (failed: Destination, reason: string): Promise<PreparedBranch | undefined> => {
      const fed = this.opts.federation;
      if (fed && failed.flowId === undefined) fed.failedTargets.markFailed(failed, reason);
      try {
        if (!hops) return undefined;
        const next = await hops.next();
        if (next.done) return undefined;
        this.log.info({ failed: `${failed.transport}:${failed.address}:${failed.port}`, reason, next: `${next.value.transport}:${next.value.address}:${next.value.port}` }, 'target failed, trying the next one');
        return build(next.value);
      } catch (err) {
        if (err instanceof SipError) return undefined;
        throw err;
      }
    };
    if (!hops) return build(now as Destination, true);
    const first = await hops.next();
    if (first.done) throw new SipError(503, 'Service Unavailable: no next hop');
    return build(first.value);
  }

  /**
   * A binding whose Path starts with this node's own entry (several nodes on
   * one store, registrar `nodePath`) is reached over the flow that entry's
   * token names, without the entry: routing to it would send the request to
   * ourselves (RFC 3327 §5.3, RFC 5626 §5.3).
   */
  private throughOwnPath(target: Target): Target {
    const b = target.binding;
    const own = b && ownPathEntry(this.env, b);
    if (!b || !own) return target;
    const flow = own.user ? decodeFlowToken(own.user, this.opts.flowTokenSecret) : undefined;
    return { ...target, binding: { ...b, path: b.path.slice(1) }, flow: target.flow ?? flow };
  }

  /** §16.6 steps 4 and 8 on a copy going to `dest`: Record-Route and our Via (from the listener of the destination's address family). */
  private finishCopy(ctx: RequestContext, msg: SipRequest, dest: Destination): SipRequest {
    const { req, source } = ctx;
    const outListener = this.opts.transport.listenerFor(dest.transport, dest.address);
    if (!outListener) throw new SipError(503, `Service Unavailable: no ${dest.transport} listener`);

    // Step 4: Record-Route. Each side that is a connection the UA opened (or
    // changes transport) gets its own entry with a flow token, so in-dialog
    // requests go back over the right flow (RFC 5626 §5.3, RFC 3261 §16.6 step 4).
    if (!ctx.toTag && DIALOG_CREATING.has(req.method)) {
      const inListener = this.opts.transport.listenerOf(source) ?? this.opts.transport.listenerFor(source.transport, source.remoteAddress);
      const inFlow: Destination | undefined = source.transport !== 'udp' ? { transport: source.transport, address: source.remoteAddress, port: source.remotePort, flowId: source.flowId } : undefined;
      const outFlow: Destination | undefined = dest.transport !== 'udp' ? dest : undefined;
      const double = inListener && (inFlow || outFlow || inListener.transport !== outListener.transport || inListener.port !== outListener.port);
      if (double && inListener) prependHeader(msg, 'Record-Route', this.recordRoute(inListener.advertisedHost, inListener.port, inListener.transport, inFlow));
      prependHeader(msg, 'Record-Route', this.recordRoute(outListener.advertisedHost, outListener.port, outListener.transport, outFlow));
    }
    // Step 8: our Via, its branch starting with the loop-detection hash; `alias` asks a peer domain
    // to send its requests back over this connection (RFC 5923 §5).
    const alias = dest.tlsName ? ';alias' : '';
    prependHeader(msg, 'Via', `SIP/2.0/${dest.transport.toUpperCase()} ${outListener.advertisedHost}:${outListener.port};branch=${newBranch(ctx.loopHash)};rport${alias}`);
    return msg;
  }

  private consumeCredentials(msg: SipRequest): void {
    const realm = this.opts.domains.defaultDomain;
    if (!msg.headers.some((h) => nameIs(h.name, 'proxy-authorization'))) return;
    msg.headers = msg.headers.filter((h) => {
      if (!nameIs(h.name, 'proxy-authorization')) return true;
      const m = /realm\s*=\s*"([^"]*)"/i.exec(h.value);
      return !m || m[1].toLowerCase() !== realm;
    });
  }

  /** A Record-Route value naming this listener, with a flow token as user part when given. */
  private recordRoute(host: string, port: number, transport: TransportName, flow?: Destination): string {
    const user = flow ? `${encodeFlowToken(flow, this.opts.flowTokenSecret)}@` : '';
    return `<sip:${user}${host}:${port};transport=${transport};lr>`;
  }

  /**
   * Next hops (§16.6 step 7), in the order to try them: the top Route when
   * one remains; else the flow a Record-Route token named, or the flow the
   * target's binding registered over, while it is open; else the
   * Request-URI (`parsedUri`: the Request-URI already parsed, when it is the
   * request's own). A URI of another domain goes through RFC 3263 server
   * location (destination.ts `nextHops`), which may give several.
   *
   * @throws SipError 482 when the first next hop is one of this server's own listeners
   *   (a request sent there would only loop until Max-Forwards runs out); later ones are skipped.
   */
  private async *hopsFor(msg: SipRequest, binding?: Awaitable<BindingRecord | undefined>, flow?: Destination, parsedUri?: SipUri): AsyncGenerator<Destination, void, undefined> {
    const route = getHeaderValues(msg, 'route')[0];
    if (!route) {
      const open = this.openFlow(flow);
      if (open) {
        yield open;
        return;
      }
      const found = binding ?? this.opts.location.findByContact(msg.uri);
      const registered = this.bindingFlow(found instanceof Promise ? await found : found);
      if (registered) {
        yield registered;
        return;
      }
    }
    const next = route ? parseUri(parseNameAddr(route).uri) : parsedUri ?? parseUri(msg.uri);
    let first = true;
    for await (const dest of nextHops(next, {
      available: this.available,
      isOurHost: (host) => this.opts.domains.isLocal(host),
      federation: this.opts.federation,
    })) {
      if (this.isOwnListener(dest)) {
        if (first) throw new SipError(482, 'Loop Detected: the next hop is this server');
        continue;
      }
      first = false;
      yield dest;
    }
  }

  /**
   * The next hops of {@link hopsFor} when they are known without waiting and
   * are one: the flow (a Record-Route token's, a binding's connection while
   * open), else a Route or Request-URI whose host is an IP address (no lookup,
   * no other hop to fail over to). Otherwise undefined, or the binding lookup
   * under way (a promise, to hand to hopsFor): ask {@link hopsFor}.
   *
   * @throws SipError as hopsFor (482 when the hop is one of this server's listeners; 416, 503 from resolveNumericUri).
   */
  private onlyHopNow(msg: SipRequest, binding?: BindingRecord, flow?: Destination, parsedUri?: SipUri): Destination | Promise<BindingRecord | undefined> | undefined {
    const route = getHeaderValues(msg, 'route')[0];
    if (!route) {
      const open = this.openFlow(flow);
      if (open) return open;
      const found = binding ?? this.opts.location.findByContact(msg.uri);
      if (found instanceof Promise) return found;
      const registered = this.bindingFlow(found);
      if (registered) return registered;
    }
    const next = route ? parseUri(parseNameAddr(route).uri) : parsedUri ?? parseUri(msg.uri);
    const dest = resolveNumericUri(next, this.available);
    if (dest !== undefined && this.isOwnListener(dest)) throw new SipError(482, 'Loop Detected: the next hop is this server');
    return dest;
  }

  /** `flow` (a Record-Route token's) as the next hop while its connection is open, else undefined. */
  private openFlow(flow: Destination | undefined): Destination | undefined {
    return flow && this.env.flowAlive(flow) ? { transport: flow.transport, address: flow.address, port: flow.port, flowId: flow.flowId } : undefined;
  }

  /** The stream connection `binding` was registered over, while it is open (RFC 5626 §5.3), else undefined. */
  private bindingFlow(binding: BindingRecord | undefined): Destination | undefined {
    const src = binding?.source;
    if (!src || src.transport === 'udp') return undefined;
    const ref: Destination = { transport: src.transport as TransportName, address: src.address, port: src.port };
    return this.env.flowAlive(ref) ? ref : undefined;
  }

  /** True when this server has a listener of that transport (so can send over it). */
  private readonly available = (t: TransportName): boolean => this.opts.transport.listenerFor(t) !== undefined;

  /** The first next hop of {@link hopsFor}. @throws SipError as hopsFor, 503 when there is none. */
  private async destinationFor(msg: SipRequest, binding?: BindingRecord, flow?: Destination, parsedUri?: SipUri): Promise<Destination> {
    const now = this.onlyHopNow(msg, binding, flow, parsedUri);
    if (now !== undefined && !(now instanceof Promise)) return now;
    const first = await this.hopsFor(msg, now ?? binding, flow, parsedUri).next();
    if (first.done) throw new SipError(503, 'Service Unavailable: no next hop');
    return first.value;
  }

  /** True when a destination is one of this server's own listeners (transport, port, and an address of this host). */
  private isOwnListener(dest: Destination): boolean {
    return this.opts.transport
      .listeners()
      .some((l) => l.transport === dest.transport && l.port === dest.port && (l.address === dest.address || (isWildcard(l.address) && this.opts.transport.isLocal(dest.address))));
  }

  /**
   * Forward an ACK for a 2xx (or any request outside a transaction) without
   * state (§16.11), after the same Route pre-processing as other requests
   * (§16.4). An ACK whose Request-URI is an AOR of ours (a UA that sends the
   * ACK to the Request-URI of its INVITE and ignores the Record-Route) goes to
   * every binding of that AOR, as the INVITE did (§16.5; a GRUU only to its
   * instance's, RFC 5627 §8.4.1); one whose next hop
   * is this server is dropped.
   */
  /** Every target of an AOR's bindings, or of one instance's when the Request-URI is a GRUU (RFC 5627 §8.4.1); none when it routes nowhere. */
  private async aorTargets(ctx: RequestContext, aor: string): Promise<Target[]> {
    if (!gruuOf(ctx.ruri)) return (await bindingTargets(this.env, aor)).flat();
    const outcome = await gruuRouting.process(ctx);
    return typeof outcome === 'object' && outcome.kind === 'forward' ? outcome.targets.flat() : [];
  }

  private async forwardStateless(req: SipRequest, source: Source): Promise<void> {
    const ctx = new RequestContext(req, source, this.env);
    strictRoute.process(ctx);
    ownRoute.process(ctx);
    if (getHeader(req, 'max-forwards') !== undefined && ctx.maxForwards <= 0) return;
    const found = ctx.hasRoute ? undefined : this.opts.location.findByContact(req.uri);
    const binding = found instanceof Promise ? await found : found;
    const aor = ctx.hasRoute || ctx.flow || binding ? undefined : ctx.aor;
    const targets: Target[] = aor ? await this.aorTargets(ctx, aor) : [{ uri: req.uri, binding, flow: ctx.flow }];
    const topVia = getHeaderValues(req, 'via')[0] ?? '';
    const cseq = getHeader(req, 'cseq') ?? '';
    for (const target of targets.map((t) => this.throughOwnPath(t))) {
      const msg = this.copyFor(ctx, target);
      let dest: Destination;
      try {
        dest = await this.destinationFor(msg, target.binding, target.flow, target.uri === req.uri ? ctx.ruri : undefined);
      } catch (err) {
        this.log.debug({ err: (err as Error).message, uri: msg.uri }, 'ACK not forwarded');
        continue;
      }
      const out = this.opts.transport.listenerFor(dest.transport, dest.address);
      if (!out) continue;
      // §16.11: a branch derived from the incoming request, so retransmissions map to the same value.
      const branch = MAGIC_COOKIE + hash('sha1', topVia + msg.uri + cseq, 'base64url').slice(0, 22);
      prependHeader(msg, 'Via', formatVia({ transport: dest.transport.toUpperCase(), host: out.advertisedHost, port: out.port, params: { branch, rport: null } }));
      await this.opts.transport.send(msg, dest);
    }
  }

  private isOurVia(host: string, port?: number): boolean {
    return this.opts.transport.listeners().some((l) => l.advertisedHost.toLowerCase() === host.toLowerCase() && (port === undefined || l.port === port));
  }
}

/** 100 Trying for an INVITE server transaction that has sent no response yet (RFC 3261 §16.2). */
function sendTryingIfSilent(st: ServerTransaction): void {
  if (st.lastResponse === undefined && !st.finalSent) st.respond(createResponse(st.request, 100, { reason: 'Trying' }));
}

/** True for the any-address a listener may be bound to. */
function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '[::]';
}
