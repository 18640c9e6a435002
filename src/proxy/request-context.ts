import { hash } from 'node:crypto';
import { getHeader, getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { parseNameAddr, type NameAddr } from '../sip/headers.js';
import { parseUri, type SipUri } from '../sip/uri.js';
import { fromHeader, fromUri, requestUri, toHeader } from '../sip/parsed-headers.js';
import { createResponse } from '../sip/response.js';
import type { Authenticate } from '../auth/request-authenticator.js';
import { isChallenge, type ServerTransaction } from '../transaction/server-transaction.js';
import type { Destination, Source } from '../transport/types.js';
import type { LocalDomains } from '../registrar/local-domains.js';
import type { LocationService } from '../registrar/location-service.js';
import type { ResponseContext } from './response-context.js';
import type { Target } from './target-set.js';
import type { Federation } from './federation.js';
import { loopHash, type LoopHashInputs } from './loop-hash.js';

/** A call policy's refusal: the final response to send instead of routing the call. */
export interface Refusal {
  status: number;
  reason: string;
  headers: SipHeader[];
}

/**
 * What the request processors may use of the proxy around them: the local
 * domains and location service, policies (authentication, user existence,
 * call admission), and small questions about this server's own listeners and
 * flows. Built once by ProxyCore; plain functions so that each processor can
 * be tested without sockets.
 */
export interface ProxyEnv {
  domains: LocalDomains;
  location: LocationService;
  /** Establishes who sent a request (digest, client certificate...). */
  authenticate: Authenticate;
  /** True when a user exists in a served domain (404 versus 480, §16.5); may ask a directory. */
  userExists(username: string, domain: string): boolean | Promise<boolean>;
  /** Per-user policy for an authenticated local user's new INVITE: undefined admits it. */
  admitCall?(username: string, st: ServerTransaction): Refusal | undefined | Promise<Refusal | undefined>;
  /** The REGISTER handler (registrar, RFC 3261 §10.3); a promise only while it waits (the store commit, a directory). */
  register(req: SipRequest, st: ServerTransaction): void | Promise<void>;
  /** Key of the flow tokens in our Record-Route and Path entries (RFC 5626 §5.2). */
  flowTokenSecret: Buffer;
  /** Key of the temp-GRUUs the registrar hands out (RFC 5627, registrar/gruu.ts); without it every temp-GRUU is unknown (404). */
  tempGruuKey?: Buffer;
  /** True when `port` is a port one of our listeners is bound to. */
  listensOn(port: number): boolean;
  /** True when a Via sent-by (host, optional port) is one of our listeners' advertised addresses. */
  isOurSentBy(host: string, port?: number): boolean;
  /** True when the flow a token or binding names can still carry requests (open connection, or any UDP 5-tuple). */
  flowAlive(ref: Destination): boolean;
  /** The INVITE server transaction a CANCEL matches (RFC 3261 §9.2), if any; `final` when it is held only to retransmit its 3xx–6xx. */
  findInviteFor(cancel: SipRequest): ServerTransaction | 'final' | undefined;
  /** The response context of an INVITE server transaction still forwarding, if any (for CANCEL, §16.10). */
  responseContextOf(st: ServerTransaction): ResponseContext | undefined;
  /** DNS and policy for other domains (domain policy, ENUM); absent: neither applies. */
  federation?: Federation;
}

/** A processor's answer: the chain goes on. */
export const CONTINUE = 'continue';

/**
 * The final outcome of the chain for one request: answer it with a final
 * response (`reply`), forward it to target groups (`forward`, §16.6: the
 * groups one after the other, the targets of a group in parallel), or
 * `handled` when the processor already answered (REGISTER handed to the
 * registrar, CANCEL).
 */
export type Outcome =
  | { kind: 'reply'; status: number; reason: string; headers?: SipHeader[] }
  | { kind: 'forward'; targets: Target[][] }
  | { kind: 'handled' };

/** What a processor returns: {@link CONTINUE} or a final {@link Outcome}. */
export type Verdict = typeof CONTINUE | Outcome;

/**
 * One step of request processing (RFC 3261 §16.3–§16.5): looks at (and may
 * change) the request in its context, and returns {@link CONTINUE} or a final
 * outcome. The proxy runs the processors of one ordered array (processors/index.ts).
 */
export interface RequestProcessor {
  /** The concept, as in the file name (e.g. `loop-detection`); logged with failures. */
  readonly name: string;
  process(ctx: RequestContext): Verdict | Promise<Verdict>;
}

/** A final response outcome. */
export function reply(status: number, reason: string, headers?: SipHeader[]): Outcome {
  return headers ? { kind: 'reply', status, reason, headers } : { kind: 'reply', status, reason };
}

/** A forwarding outcome to one target group. */
export function forwardTo(...targets: Target[]): Outcome {
  return { kind: 'forward', targets: [targets] };
}

/**
 * One request on its way through the processors: the request (changed in
 * place by Route pre-processing, §16.4), its server transaction (undefined
 * for an ACK forwarded without state, §16.11), the environment, and what the
 * processors found out. The Request-URI, To, From and the tags are parsed
 * once per message (kept on it, sip/parsed-headers.ts: the parser already did
 * most), the AOR found once; each again only when a processor changed its text
 * (strict-route fix-up).
 */
export class RequestContext {
  /** What loop-detection noted of the request as received, for {@link loopHash}. */
  private loopInputs: LoopHashInputs | undefined;
  private loopHashValue: string | undefined;
  /** §16.4: the flow named by the flow token of the last own Route entry removed (set by own-route). */
  flow: Destination | undefined;
  /** §16.4: how many own Route entries were removed (set by own-route). */
  removedRoutes = 0;
  /** The user the request was authenticated as (set by authentication). */
  username: string | undefined;

  /** The parsed Request-URI the AOR was found for. */
  private uri: SipUri | undefined;
  private aorValue: string | undefined | null = null;
  private fromLocalValue: boolean | undefined;
  private maxForwardsValue: number | undefined;
  private maxForwardsAbsent = false;

  constructor(
    readonly req: SipRequest,
    readonly source: Source,
    readonly env: ProxyEnv,
    readonly st?: ServerTransaction,
  ) {}

  /**
   * Note the Request-URI and Route of the request as received (loop-detection
   * does, before Route pre-processing changes them), for {@link loopHash}.
   */
  noteLoopHashInputs(): void {
    this.loopInputs = { uri: this.req.uri, routes: getHeaderValues(this.req, 'route') };
    this.loopHashValue = undefined;
  }

  /**
   * §16.3 step 4, §16.6 step 8: the loop-detection hash of the request as
   * received (Request-URI and Route as noted by loop-detection), computed on first use.
   */
  get loopHash(): string {
    this.loopHashValue ??= loopHash(this.req, this.fromTag, this.toTag, this.loopInputs);
    return this.loopHashValue;
  }

  /** The server transaction; only requests forwarded without state (ACK) have none. */
  get transaction(): ServerTransaction {
    if (!this.st) throw new Error(`${this.req.method} has no server transaction`);
    return this.st;
  }

  /** Max-Forwards as received (§16.3 step 3): 70 when absent; NaN when it is not a number. */
  get maxForwards(): number {
    if (this.maxForwardsValue === undefined) {
      const h = getHeader(this.req, 'max-forwards');
      this.maxForwardsAbsent = h === undefined;
      this.maxForwardsValue = h === undefined ? 70 : Number(h.trim());
    }
    return this.maxForwardsValue;
  }

  /** Max-Forwards for a forwarded copy (§16.6 step 3): one less, not below 0; 70 when the request had none. */
  get forwardedMaxForwards(): number {
    const mf = this.maxForwards;
    return this.maxForwardsAbsent ? 70 : Math.max(0, mf - 1);
  }

  /** The Request-URI, parsed (again only after a processor changed it). @throws SipError 400 when malformed. */
  get ruri(): SipUri {
    const uri = requestUri(this.req);
    if (uri !== this.uri) {
      this.uri = uri;
      this.aorValue = null;
    }
    return uri;
  }

  /** The AOR of ours the Request-URI names (LocalDomains.aorOf), or undefined. */
  get aor(): string | undefined {
    const ruri = this.ruri;
    if (this.aorValue === null) this.aorValue = this.env.domains.aorOf(ruri);
    return this.aorValue;
  }

  /** The To header parsed, or undefined when absent or malformed. */
  get to(): NameAddr | undefined {
    return parsedOrUndefined(toHeader, this.req);
  }

  /** The To tag: set on requests inside a dialog (§12.2). */
  get toTag(): string | undefined {
    return this.to?.params.tag ?? undefined;
  }

  /** The From header parsed, or undefined when absent or malformed. */
  get from(): NameAddr | undefined {
    return parsedOrUndefined(fromHeader, this.req);
  }

  /** The From tag. */
  get fromTag(): string | undefined {
    return this.from?.params.tag ?? undefined;
  }

  /** The From URI parsed, or undefined when absent or malformed. */
  get fromUri(): SipUri | undefined {
    return parsedOrUndefined(fromUri, this.req);
  }

  /** True when the From host is a domain this server serves (or one of its addresses). */
  get fromLocal(): boolean {
    if (this.fromLocalValue === undefined) {
      const from = this.fromUri;
      this.fromLocalValue = from ? this.env.domains.isLocal(from.host) : false;
    }
    return this.fromLocalValue;
  }

  /** True while the request still has a Route header (after own entries were removed, §16.4). */
  get hasRoute(): boolean {
    return getHeader(this.req, 'route') !== undefined;
  }

  /** True when a URI names this server: a served domain or own address, on no port or one we listen on (§16.4). */
  isUs(uri: SipUri): boolean {
    return namesThisServer(this.env, uri);
  }

  /**
   * Send a final response this server generates, with a stable To tag when the request had none.
   * A 401/407 challenge to a request outside a dialog goes statelessly (RFC 3261 §8.2.7,
   * ServerTransaction.respondStateless), its To tag the transaction's challenge tag, by which the
   * layer recognises and absorbs its ACK; inside a dialog the To tag is the dialog's, so an ACK could
   * not be told from one to forward, and the challenge is held as any final response.
   */
  respond(status: number, reason: string, headers: SipHeader[] = []): void {
    const st = this.transaction;
    if (isChallenge(status) && !this.toTag) {
      st.respondStateless(createResponse(st.request, status, { reason, headers, toTag: st.challengeTag }));
      return;
    }
    st.respond(createResponse(st.request, status, { reason, headers, toTag: this.toTag ? undefined : localTag(st.request) }));
  }
}

/** True when a URI names this server: a served domain or own address, on no port or one we listen on (RFC 3261 §16.4). */
export function namesThisServer(env: Pick<ProxyEnv, 'domains' | 'listensOn'>, uri: SipUri): boolean {
  if (!env.domains.isLocal(uri.host)) return false;
  return uri.port === undefined || env.listensOn(uri.port);
}

/**
 * The first Path entry of a binding (RFC 3327) when it names this server (the
 * entry a node on a shared store put in front of the bindings over its own
 * connections, registrar `nodePath`), else undefined: undefined too for a
 * binding without Path or one reached through another node or an edge proxy.
 */
export function ownPathEntry(env: Pick<ProxyEnv, 'domains' | 'listensOn'>, binding: { path: readonly string[] }): SipUri | undefined {
  const first = binding.path[0];
  if (first === undefined) return undefined;
  try {
    const uri = parseUri(parseNameAddr(first).uri);
    return namesThisServer(env, uri) ? uri : undefined;
  } catch {
    return undefined;
  }
}

/** What `parse(req)` gives (a shared parsed form, read-only: sip/parsed-headers.ts), or undefined when it throws. */
function parsedOrUndefined<T>(parse: (req: SipRequest) => T, req: SipRequest): T | undefined {
  try {
    return parse(req);
  } catch {
    return undefined;
  }
}

/** A To tag for responses this server generates, stable per request (so retransmitted requests get the same one). */
export function localTag(req: SipRequest): string {
  return hash('sha1', (getHeader(req, 'call-id') ?? '') + (getHeader(req, 'cseq') ?? '') + (getHeaderValues(req, 'via')[0] ?? ''), 'hex').slice(0, 16);
}
