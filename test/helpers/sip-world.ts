import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMessage } from '../../src/sip/parser.js';
import type { SipHeader, SipRequest, SipResponse } from '../../src/sip/message.js';
import { silentLogger } from '../../src/log.js';
import { SqliteStore, credentialsFor, type BindingRecord } from '../../src/store/index.js';
import { storeUserSource } from '../../src/auth/user-source.js';
import { NonceCountTracker } from '../../src/auth/nonce.js';
import { createAuthenticator } from '../../src/auth/request-authenticator.js';
import { parseUri } from '../../src/sip/uri.js';
import { LocalDomains } from '../../src/registrar/local-domains.js';
import { LocationService } from '../../src/registrar/location-service.js';
import { InviteServerTransaction, NonInviteServerTransaction, type ServerTransaction } from '../../src/transaction/server-transaction.js';
import { DEFAULT_TIMERS } from '../../src/transaction/timers.js';
import type { Source } from '../../src/transport/types.js';
import { RequestContext, type ProxyEnv } from '../../src/proxy/request-context.js';
import { newRegisterContext, type RegisterContext, type RegistrarOptions } from '../../src/registrar/steps/register-context.js';

/** The served domain of every world. */
export const DOMAIN = 'example.test';
/** The address and the one UDP port this server listens on in a world. */
export const OWN_ADDRESS = '127.0.0.1';
export const OWN_PORT = 5060;
/** A UA's source: UDP from 127.0.0.1:40000 to our listener. */
export const UA_SOURCE: Source = { transport: 'udp', remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: OWN_ADDRESS, localPort: OWN_PORT };

/**
 * What the proxy processors and registrar steps run against in unit tests,
 * without sockets: the served domain, a location service over a real SQLite
 * store in a temporary directory, real digest and client-certificate
 * authentication over the store's users, and a server listening on
 * 127.0.0.1:5060 (UDP only).
 */
export interface SipWorld {
  env: ProxyEnv;
  store: SqliteStore;
  location: LocationService;
  /** REGISTERs handed to `env.register`. */
  registered: SipRequest[];
  /** Every message the server transactions of `context()` sent, in order. */
  sent: SipResponse[];
  /** A binding of `user` at `contactUri`, stored (expires in an hour). */
  bind(user: string, contactUri: string, extra?: Partial<BindingRecord>): BindingRecord;
  /** A server transaction for `req` (INVITE or non-INVITE), its responses recorded in `sent`. */
  transaction(req: SipRequest, source?: Source): ServerTransaction;
  /** A request context for `req` with a recording server transaction. */
  context(req: SipRequest, source?: Source): RequestContext;
  close(): void;
}

/** A world with `users` (name → password) in the store; `env` fields can be replaced. */
export function openSipWorld(users: Record<string, string> = {}, env: Partial<ProxyEnv> = {}): SipWorld {
  const dir = mkdtempSync(join(tmpdir(), 'rtcedge-world-'));
  const store = new SqliteStore(join(dir, 'rtcedge.db'));
  for (const [u, pw] of Object.entries(users)) store.addUser(u, DOMAIN, credentialsFor(u, DOMAIN, pw, ['MD5']));
  const location = new LocationService(store, silentLogger);
  location.start();
  const domains = new LocalDomains([DOMAIN], (host, port) => host === OWN_ADDRESS && (port === undefined || port === OWN_PORT));
  const source = storeUserSource(store);
  const authenticate = createAuthenticator(
    {
      realm: DOMAIN,
      secret: Buffer.alloc(32, 7),
      nonceTtlS: 300,
      algorithms: ['MD5'],
      strictUri: false,
      isOwnHost: (host) => domains.isLocal(host),
      lookupHa1: (u, r, alg) => source.lookupHa1(u, r, alg),
      nonceCounts: new NonceCountTracker(100),
      logger: silentLogger,
    },
    { certificates: { aorOf: (uri) => domains.aorOf(parseUri(uri)) } },
  );
  const registered: SipRequest[] = [];
  const sent: SipResponse[] = [];
  const transactions: ServerTransaction[] = [];
  const world: SipWorld = {
    env: {
      domains,
      location,
      authenticate,
      userExists: (u, d) => source.userExists(u, d),
      register: async (req) => {
        registered.push(req);
      },
      flowTokenSecret: Buffer.alloc(32, 9),
      listensOn: (port) => port === OWN_PORT,
      isOurSentBy: (host, port) => host === OWN_ADDRESS && (port === undefined || port === OWN_PORT),
      flowAlive: (ref) => ref.transport === 'udp',
      findInviteFor: () => undefined,
      responseContextOf: () => undefined,
      ...env,
    },
    store,
    location,
    registered,
    sent,
    bind(user, contactUri, extra = {}) {
      const nowS = Math.floor(Date.now() / 1000);
      const b: BindingRecord = {
        aor: `sip:${user}@${DOMAIN}`,
        contact: `<${contactUri}>`,
        contactUri,
        expires: nowS + 3600,
        q: null,
        callId: 'bind-call',
        cseq: 1,
        instance: null,
        regId: null,
        path: [],
        source: null,
        userAgent: null,
        updatedAt: nowS,
        ...extra,
      };
      location.put(b);
      return b;
    },
    transaction(req, src = UA_SOURCE) {
      const sender = { send: async (msg: SipRequest | SipResponse) => (sent.push(msg as SipResponse), undefined) };
      const Kind = req.method === 'INVITE' ? InviteServerTransaction : NonInviteServerTransaction;
      const st = new Kind(`${req.method}-${transactions.length}`, req, src, sender, DEFAULT_TIMERS, () => {});
      transactions.push(st);
      return st;
    },
    context(req, src = UA_SOURCE) {
      return new RequestContext(req, src, world.env, world.transaction(req, src));
    },
    close() {
      for (const st of transactions) st.terminate();
      location.stop();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/** Options of {@link sipRequest}. */
export interface RequestOptions {
  from?: string;
  to?: string;
  /** Extra header lines, after the mandatory ones. */
  headers?: SipHeader[];
  /** Omit Max-Forwards. */
  noMaxForwards?: boolean;
}

/**
 * A request parsed from its text, as it arrives from a UA on 127.0.0.1:40000:
 * Via with a fresh branch, Max-Forwards 70, From with a tag, To, Call-ID, CSeq.
 */
export function sipRequest(method: string, uri: string, opts: RequestOptions = {}): SipRequest {
  const from = opts.from ?? `<sip:alice@${DOMAIN}>;tag=f1`;
  const to = opts.to ?? `<${uri}>`;
  const lines = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-${method.toLowerCase()}-${Math.random().toString(36).slice(2, 10)};rport`,
    ...(opts.noMaxForwards ? [] : ['Max-Forwards: 70']),
    `From: ${from}`,
    `To: ${to}`,
    'Call-ID: world-call@127.0.0.1',
    `CSeq: 1 ${method}`,
    ...(opts.headers ?? []).map((h) => `${h.name}: ${h.value}`),
    'Content-Length: 0',
    '',
    '',
  ];
  return parseMessage(Buffer.from(lines.join('\r\n'))) as SipRequest;
}

/** Registrar settings of {@link registerContext}: min 60 s, max 3600 s, default 600 s, 3 bindings per AOR. */
export function registrarOptions(world: SipWorld, overrides: Partial<RegistrarOptions> = {}): RegistrarOptions {
  return {
    domains: world.env.domains,
    location: world.location,
    authenticate: world.env.authenticate,
    minExpiresS: 60,
    maxExpiresS: 3600,
    defaultExpiresS: 600,
    maxBindingsPerAor: 3,
    logger: silentLogger,
    ...overrides,
  };
}

/**
 * A registrar step context for a REGISTER, as the registrar builds it, at
 * unix time `nowS`; `fields` sets what earlier steps would have found.
 */
export function registerContext(world: SipWorld, req: SipRequest, fields: Partial<RegisterContext> = {}, source: Source = UA_SOURCE): RegisterContext {
  const ctx = { ...newRegisterContext(req, world.transaction(req, source), registrarOptions(world), silentLogger, 1_800_000_000), ...fields };
  // As the current-bindings step leaves it (the world's location service holds every binding in memory).
  if (fields.existing === undefined) ctx.existing = ctx.opts.location.lookup(ctx.aor);
  return ctx;
}

/** The value of a step or lookup that must answer at once (bindings in memory): throws when it is a promise. */
export function atOnce<T>(value: T | Promise<T>): T {
  if (value instanceof Promise) throw new Error('expected an answer at once, got a promise');
  return value;
}
