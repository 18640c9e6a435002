/**
 * Schema of the configuration file (config/rtcedge.example.yaml is the
 * reference: keys are snake_case as in YAML, every default shown there is
 * filled in here). Objects are strict: an unknown key is an error.
 *
 * Every `error` text below is phrased to follow `key.path: ` and to be
 * followed by `, got <value>` (see load.ts).
 */
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DIGEST_ALGORITHMS } from '../auth/digest.js';
import { DEFAULT_SCANNER_USER_AGENTS } from '../security/scanner-filter.js';

/** Integer in [min, max], with an error text naming the range. */
function int(min: number, max: number, what = 'a number'): z.ZodNumber {
  const error = `expected ${what} ${min}-${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** Positive integer (>= 1), with an error text saying so. */
function positiveInt(unit?: string): z.ZodNumber {
  const error = `expected a whole number >= 1${unit ? ` (${unit})` : ''}`;
  return z.number({ error }).int({ error }).min(1, { error });
}

const port = () => int(0, 65535);

const hostString = z.string({ error: 'expected a host name or address' }).min(1, { error: 'expected a host name or address' });

/**
 * A SIP listener: `{ transport: udp | tcp | tls | ws | wss, host, port, client_cert }`.
 * `client_cert` (TLS/WSS): none | optional | required; absent means optional
 * (it only takes effect when `sip.tls.ca` lists CAs).
 */
export const sipListenerSchema = z.strictObject({
  transport: z.enum(['udp', 'tcp', 'tls', 'ws', 'wss'], { error: 'expected one of udp, tcp, tls, ws, wss' }),
  host: hostString.default('0.0.0.0'),
  port: port(),
  client_cert: z.enum(['none', 'optional', 'required'], { error: 'expected one of none, optional, required' }).optional(),
});

/**
 * A TURN listener: `{ transport: udp | tcp | tls | dtls, host, port }`; tls and dtls (RFC 7350, usually 5349/udp)
 * use the SIP TLS certificate (`sip.tls.cert`/`key` or the generated one).
 */
export const turnListenerSchema = z.strictObject({
  transport: z.enum(['udp', 'tcp', 'tls', 'dtls'], { error: 'expected one of udp, tcp, tls, dtls' }),
  host: hostString.default('0.0.0.0'),
  port: port(),
});

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const domainName = z
  .string({ error: 'expected a domain name' })
  .regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/, {
    error: 'expected a domain name',
  })
  .transform((d) => d.toLowerCase());

const ipAddress = z.string({ error: 'expected an IP address' }).refine((s) => isIP(s) !== 0, {
  error: 'expected an IP address',
});

const tlsSchema = z
  .strictObject({
    cert: z.string({ error: 'expected a file path' }).min(1).optional(),
    key: z.string({ error: 'expected a file path' }).min(1).optional(),
    /** PEM files of the CAs client certificates are verified against; absent or []: client certificates are not asked for. */
    ca: z.array(z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }), { error: 'expected a list of file paths' }).optional(),
    /**
     * A certificate per domain of ours (SNI picks it on our TLS listeners; our TLS client presents the one of
     * the From domain to other domains, RFC 5922 §7); `cert`/`key` above (or the generated one) is the default.
     */
    certificates: z
      .array(
        z.strictObject({
          domain: domainName,
          cert: z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }),
          key: z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }),
        }),
        { error: 'expected a list of { domain, cert, key }' },
      )
      .default([]),
    /** SubjectAltName entries of a verified client certificate that name an AOR: `uri` (URI:sip:user@domain), `email` (rfc822Name); absent: [uri]. */
    client_identity: z
      .array(z.enum(['uri', 'email'], { error: 'expected one of uri, email' }), { error: 'expected a list of uri, email' })
      .optional(),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [t.cert === undefined ? 'cert' : 'key'],
        message: 'cert and key must be given together',
      });
    }
  });

const registrarSchema = z
  .strictObject({
    min_expires: positiveInt('s').default(60),
    max_expires: positiveInt('s').default(86400),
    default_expires: positiveInt('s').default(3600),
    max_bindings_per_aor: positiveInt().default(10),
    flow_timer: positiveInt('s').default(120),
  })
  .superRefine((r, ctx) => {
    if (r.min_expires > r.max_expires) {
      ctx.addIssue({ code: 'custom', path: ['min_expires'], message: `must not exceed max_expires (${r.max_expires})` });
    } else if (r.default_expires < r.min_expires || r.default_expires > r.max_expires) {
      ctx.addIssue({
        code: 'custom',
        path: ['default_expires'],
        message: `must lie between min_expires (${r.min_expires}) and max_expires (${r.max_expires})`,
      });
    }
  });

/** A digest algorithm name of RFC 7616 §3.2 / RFC 8760 §2, case-insensitive in YAML, canonical case out. */
const digestAlgorithm = z
  .string({ error: `expected one of ${DIGEST_ALGORITHMS.join(', ')}` })
  .transform((s) => s.toUpperCase())
  .pipe(z.enum(DIGEST_ALGORITHMS, { error: `expected one of ${DIGEST_ALGORITHMS.join(', ')}` }));

/** LDAP attribute names (RFC 4512 §1.4 descr or numericoid). */
const ldapAttribute = z
  .string({ error: 'expected an LDAP attribute name' })
  .regex(/^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+)$/, { error: 'expected an LDAP attribute name' });

/**
 * `directory:` where users come from. `none` (default): the SQLite store. `ldap`: an LDAP
 * directory searched per user (see src/directory/ldap-directory.ts).
 */
const directorySchema = z
  .strictObject({
    type: z.enum(['none', 'ldap'], { error: 'expected one of none, ldap' }).default('none'),
    url: z
      .string({ error: 'expected an ldap:// or ldaps:// URL' })
      .regex(/^ldaps?:\/\/[^\s/]+\/?$/i, { error: 'expected an ldap:// or ldaps:// URL' })
      .optional(),
    bind_dn: z.string({ error: 'expected a DN' }).optional(),
    bind_password: z.string({ error: 'expected a string' }).optional(),
    base_dn: z.string({ error: 'expected a DN' }).optional(),
    filter: z
      .string({ error: 'expected an LDAP filter' })
      .refine((f) => f.startsWith('(') && f.endsWith(')') && f.includes('{user}'), {
        error: 'expected an LDAP filter in parentheses containing {user}',
      })
      .default('(uid={user})'),
    attributes: z
      .strictObject({
        password: z.array(ldapAttribute, { error: 'expected a list of attribute names' }).default(['SIPIdentityPassword']),
        ha1_md5: ldapAttribute.optional(),
        ha1_sha256: ldapAttribute.optional(),
        ha1_sha512_256: ldapAttribute.optional(),
      })
      .prefault({}),
    cache_ttl: int(0, 86400, 'seconds').default(60),
    timeout: positiveInt('ms').default(3000),
    retry_after: positiveInt('s').default(30),
  })
  .superRefine((d, ctx) => {
    if (d.type !== 'ldap') return;
    for (const key of ['url', 'base_dn'] as const) {
      if (d[key] === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'required when type is ldap' });
    }
    if ((d.bind_dn === undefined) !== (d.bind_password === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['bind_password'], message: 'bind_dn and bind_password must be given together' });
    }
  });

/** `host:port` of a Redis Sentinel. */
const sentinelAddress = z
  .string({ error: 'expected host:port' })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s:]+):[0-9]{1,5}$/, { error: 'expected host:port' });

/**
 * `store:` where users, bindings and the shared secret live. `sqlite` (default): `data_dir/rtcedge.db`,
 * one node. `redis`: a Redis server (or a Sentinel-managed one) shared by several nodes (src/store/redis-store.ts).
 */
const storeSchema = z
  .strictObject({
    type: z.enum(['sqlite', 'redis'], { error: 'expected one of sqlite, redis' }).default('sqlite'),
    redis: z
      .strictObject({
        /**
         * redis:// or rediss:// URL (user, password and database number in it), or a Unix socket of a Redis on
         * the same machine: `unix:/run/redis/redis-server.sock` (also `unix:///…`; `?db=N&password=…` after
         * the path); ignored with sentinels.
         */
        url: z
          .string({ error: 'expected a redis://, rediss:// or unix:/path URL' })
          .regex(/^(rediss?:\/\/\S+|unix:(\/\/)?\/[^\s?]+(\?\S*)?)$/i, { error: 'expected a redis://, rediss:// or unix:/path URL' })
          .default('redis://127.0.0.1:6379'),
        /** Sentinels (host:port) that name the current primary of `sentinel_name`; empty: use `url`. */
        sentinels: z.array(sentinelAddress, { error: 'expected a list of host:port' }).default([]),
        sentinel_name: z.string({ error: 'expected a name' }).min(1, { error: 'expected a name' }).default('mymaster'),
        /** Prefix of every key and of the pub/sub channel, so several deployments can share one Redis. */
        key_prefix: z.string({ error: 'expected a string' }).regex(/^[A-Za-z0-9:_.-]{0,64}$/, { error: 'expected up to 64 of A-Z a-z 0-9 : _ . -' }).default('rtcedge:'),
        /** A command without an answer after this many ms fails (the request gets 503). */
        command_timeout: positiveInt('ms').default(1000),
        /** Connecting (and each reconnection attempt) gives up after this many ms. */
        connect_timeout: positiveInt('ms').default(3000),
        /** Retry-After of the 503 answered while Redis cannot be reached, s. */
        retry_after: positiveInt('s').default(5),
        /**
         * AORs whose bindings a node keeps read from Redis at most (least recently used dropped first;
         * as many contact URIs known to have no binding). Redis tells the node when one changes.
         */
        cache_aors: positiveInt('AORs').default(10_000),
      })
      .prefault({}),
  });

/**
 * `node:` this node's identity among several on one shared store. `uri`: a SIP URI other nodes reach this
 * one at (`sip:10.0.0.2:5060;transport=tcp`); the registrar puts it in a Path (RFC 3327) of bindings made
 * over a connection (TCP, TLS, WS), so requests arriving at another node are routed through this one.
 */
const nodeSchema = z.strictObject({
  uri: z
    .string({ error: 'expected a SIP URI (sip:host:port;transport=...)' })
    .regex(/^sips?:[^\s@<>;]+(;[^\s<>]*)?$/i, { error: 'expected a SIP URI without a user part (sip:host:port;transport=...)' })
    .optional(),
});

/** Whole number >= 0 (0 turns the limit off). */
function nonNegativeInt(unit?: string): z.ZodNumber {
  const error = `expected a whole number >= 0${unit ? ` (${unit})` : ''}`;
  return z.number({ error }).int({ error }).min(0, { error });
}

/** An IPv4/IPv6 address or CIDR prefix (`127.0.0.0/8`, `::1`, `2001:db8::/32`). */
const addressOrPrefix = z.string({ error: 'expected an IP address or CIDR prefix' }).refine(
  (s) => {
    const [a, len, extra] = s.split('/');
    const kind = isIP(a);
    if (kind === 0 || extra !== undefined) return false;
    return len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= (kind === 4 ? 32 : 128));
  },
  { error: 'expected an IP address or CIDR prefix' },
);


/** `sip.security`: abuse resistance (see config/rtcedge.example.yaml and src/auth/). */
const securitySchema = z.strictObject({
  exempt_sources: z.array(addressOrPrefix, { error: 'expected a list of addresses or CIDR prefixes' }).default(['127.0.0.0/8', '::1']),
  source_rate: z
    .strictObject({
      requests_per_second: nonNegativeInt('messages/s').default(50),
      burst: positiveInt('messages').default(200),
      ban_seconds: positiveInt('s').default(60),
    })
    .prefault({}),
  auth_failures: z
    .strictObject({
      per_source: nonNegativeInt().default(10),
      per_user: nonNegativeInt().default(20),
      window_seconds: positiveInt('s').default(60),
      ban_seconds: positiveInt('s').default(600),
    })
    .prefault({}),
  scanner_user_agents: z.array(z.string({ error: 'expected a string' }), { error: 'expected a list of strings' }).default(() => [...DEFAULT_SCANNER_USER_AGENTS]),
  calls: z
    .strictObject({
      max_concurrent_per_user: nonNegativeInt().default(10),
      max_attempts_per_minute: nonNegativeInt().default(30),
      max_call_seconds: positiveInt('s').default(14400),
    })
    .prefault({}),
});

const sipSchema = z.strictObject({
  listen: z.array(sipListenerSchema, { error: 'expected a list of listeners' }).default([
    { transport: 'udp', host: '0.0.0.0', port: 5060 },
    { transport: 'tcp', host: '0.0.0.0', port: 5060 },
    { transport: 'tls', host: '0.0.0.0', port: 5061 },
    // IPv6 beside IPv4 (IPv6-only sockets on the same ports); skipped with a warning on a host without IPv6.
    { transport: 'udp', host: '::', port: 5060 },
    { transport: 'tcp', host: '::', port: 5060 },
    { transport: 'tls', host: '::', port: 5061 },
  ]),
  advertised_host: hostString.optional(),
  /**
   * How SIP leaves UDP listeners: `native` (the datagrams of one event-loop turn in one sendmmsg per socket,
   * native/src/udp_send.cc), `dgram` (node:dgram, one send each); unset = native when the addon loads.
   */
  udp_send: z.enum(['native', 'dgram'], { error: 'expected native or dgram' }).optional(),
  /**
   * With several workers, each UDP datagram read by the worker that owns its Call-ID: one SO_REUSEPORT socket per
   * worker and an eBPF program that picks it (cluster/udp-steering.ts); `auto` when the kernel loads the program, else
   * (and with `off`) one socket shared by the workers, messages handed to their owner.
   */
  udp_steering: z.enum(['auto', 'off'], { error: 'expected auto or off' }).default('auto'),
  /** SIP worker processes serving the listeners: `auto` (one per core, os.availableParallelism()) or 1..64. */
  workers: z
    .union([z.literal('auto'), int(1, 64, "'auto' or a whole number")], { error: "expected 'auto' or a whole number 1-64" })
    .default('auto'),
  /** Absent or null (only comments under `tls:`) both give `{}`: a generated certificate. */
  tls: tlsSchema.prefault({}),
  limits: z
    .strictObject({
      max_message_bytes: positiveInt('bytes').default(65535),
      max_headers: positiveInt().default(256),
      max_line_bytes: positiveInt('bytes').default(8192),
      // Stream write-queue bounds (TCP/TLS/WS): stop reading past pause, close past close or after a stall.
      stream_pause_bytes: positiveInt('bytes').default(262144),
      stream_close_bytes: positiveInt('bytes').default(4194304),
      // Receive buffer of each SIP UDP socket (SO_RCVBUF): datagrams that arrive while the workers are busy or
      // descheduled wait here instead of being dropped (each drop costs the sender a 500 ms retransmission).
      udp_receive_buffer_bytes: positiveInt('bytes').default(4194304),
      stream_stall_ms: positiveInt('ms').default(10000),
      // Open connections per TCP/TLS/WS/WSS listener; one more is closed when accepted.
      max_connections: positiveInt('connections').default(10000),
      // Completed server transactions held for Timer J (non-INVITE) or H/I (INVITE 3xx-6xx), per kind; past it the
      // oldest is released early (a later retransmission of it is handled as a new request).
      completed_transactions: positiveInt('transactions').default(150000),
    })
    .prefault({}),
  // Admission control: past these bounds new requests get 503 + Retry-After (RFC 3261 §21.5.4).
  overload: z
    .strictObject({
      lag_ms: nonNegativeInt('ms').default(200),
      drop_lag_ms: nonNegativeInt('ms').default(1000),
      target_utilization: z
        .number({ error: 'expected a number 0.1-1' })
        .min(0.1, { error: 'expected a number 0.1-1' })
        .max(1, { error: 'expected a number 0.1-1' })
        .default(0.95),
      max_pending_transactions: positiveInt('transactions').default(10000),
      max_transactions: positiveInt('transactions').default(200000),
      max_new_per_s: nonNegativeInt('requests/s').default(0),
      retry_after: positiveInt('s').default(5),
    })
    .prefault({}),
  registrar: registrarSchema.prefault({}),
  security: securitySchema.prefault({}),
  auth: z
    .strictObject({
      nonce_ttl: positiveInt('s').default(300),
      algorithms: z
        .array(digestAlgorithm, { error: 'expected a list of digest algorithms' })
        .min(1, { error: 'expected at least one algorithm' })
        .refine((a) => new Set(a).size === a.length, { error: 'expected each algorithm once' })
        .default(['MD5']),
      strict_uri: z.boolean({ error: 'expected true or false' }).default(false),
      // Most HA1/user-exists answers kept in memory (0: every request reads the store); see auth/credential-cache.ts.
      credential_cache_entries: nonNegativeInt('entries').default(20_000),
      // Most nonces whose highest nonce-count is remembered (replay protection, RFC 7616 §3.3); ~53 bytes each (auth/nonce.ts).
      nonce_count_entries: positiveInt('entries').default(100_000),
    })
    .prefault({}),
  timers: z
    .strictObject({
      t1: positiveInt('ms').default(500),
      t2: positiveInt('ms').default(4000),
      t4: positiveInt('ms').default(5000),
    })
    .prefault({}),
}).superRefine((sip, ctx) => {
  sip.listen.forEach((l, i) => {
    if (l.client_cert === 'required' && (l.transport === 'tls' || l.transport === 'wss') && (sip.tls.ca ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['listen', i, 'client_cert'], message: 'required needs CA files in sip.tls.ca' });
    }
  });
});

const turnSchema = z
  .strictObject({
    enabled: z.boolean({ error: 'expected true or false' }).default(true),
    listen: z.array(turnListenerSchema, { error: 'expected a list of listeners' }).default([
      { transport: 'udp', host: '0.0.0.0', port: 3478 },
      { transport: 'tcp', host: '0.0.0.0', port: 3478 },
    ]),
    realm: z.string({ error: 'expected a realm (string)' }).min(1, { error: 'expected a realm (string)' }).optional(),
    relay_address: ipAddress.optional(),
    relay_port_min: int(1, 65535, 'a port').default(49152),
    relay_port_max: int(1, 65535, 'a port').default(65535),
    default_lifetime: positiveInt('s').default(600),
    max_lifetime: positiveInt('s').default(3600),
    nonce_ttl: positiveInt('s').default(600),
    allow_loopback_peers: z.boolean({ error: 'expected true or false' }).default(false),
    // IPv6 relay address (RFC 6156); unset: the first global IPv6 address of the host, if any, else IPv4 relays only.
    relay_address_v6: ipAddress.refine((s) => isIP(s) === 6, { error: 'expected an IPv6 address' }).optional(),
    // Peers allowed despite the default-denied ranges (wins over denied_peers), and peers refused besides them.
    allowed_peers: z.array(addressOrPrefix, { error: 'expected a list of addresses or CIDR prefixes' }).default([]),
    denied_peers: z.array(addressOrPrefix, { error: 'expected a list of addresses or CIDR prefixes' }).default([]),
    // TURN REST API shared secrets (coturn's use-auth-secret), newest first; [] = off.
    auth_secrets: z.array(z.string({ error: 'expected a secret (string)' }).min(1, { error: 'expected a secret (string)' }), { error: 'expected a list of secrets' }).default([]),
    // Password algorithms offered (RFC 8489 §9.2.3), most preferred first.
    password_algorithms: z
      .array(z.enum(['MD5', 'SHA-256'], { error: 'expected MD5 or SHA-256' }), { error: 'expected a list of MD5, SHA-256' })
      .min(1, { error: 'expected at least one algorithm' })
      .default(['MD5']),
    max_allocations_per_user: nonNegativeInt('allocations').default(10),
    max_allocations: nonNegativeInt('allocations').default(1000),
    bandwidth_limit: nonNegativeInt('bytes/s').default(0),
    // Peer IP addresses with a permission per allocation (RFC 8656 §9); a request that would add more gets 508.
    permissions_per_allocation: positiveInt('permissions').default(1024),
    // RFC 6062 peer data connections per TCP allocation (bound or waiting), and of those waiting for their
    // ConnectionBind; a Connect beyond gets 508, a peer connecting beyond is closed.
    tcp_connections_per_allocation: positiveInt('connections').default(256),
    tcp_pending_per_allocation: positiveInt('connections').default(32),
    // Open connections per TURN TCP/TLS listener (clients and RFC 6062 data connections); one more is closed.
    max_connections: positiveInt('connections').default(10000),
    // Unauthenticated answers (401/438/400) per second per client 5-tuple, and per source address; sources in
    // sip.security.exempt_sources are not limited; retransmissions are answered from a cache, uncounted.
    challenge_rate: nonNegativeInt('responses/s').default(20),
    challenge_address_rate: nonNegativeInt('responses/s').default(1000),
    // Who moves TURN UDP data: the native addon (native/) or node:dgram; unset = native when the addon loads.
    data_plane: z.enum(['native', 'typescript'], { error: 'expected native or typescript' }).optional(),
    // TURN over DTLS listeners (transport: dtls): session limits and optional PSK identities for PSK-only clients.
    dtls: z
      .strictObject({
        max_sessions: positiveInt('sessions').default(1000),
        max_handshakes: positiveInt('handshakes').default(100),
        idle_timeout: positiveInt('s').default(600),
        psk: z
          .array(
            z.strictObject({
              identity: z.string({ error: 'expected an identity (string)' }).min(1, { error: 'expected an identity (string)' }),
              key: z.string({ error: 'expected a hex key' }).regex(/^([0-9a-fA-F]{2}){1,64}$/, { error: 'expected a hex key of 1-64 bytes' }),
            }),
            { error: 'expected a list of { identity, key }' },
          )
          .default([]),
      })
      .prefault({}),
  })
  .superRefine((t, ctx) => {
    if (t.relay_port_min > t.relay_port_max) {
      ctx.addIssue({ code: 'custom', path: ['relay_port_min'], message: `must not exceed relay_port_max (${t.relay_port_max})` });
    }
    if (t.default_lifetime > t.max_lifetime) {
      ctx.addIssue({ code: 'custom', path: ['default_lifetime'], message: `must not exceed max_lifetime (${t.max_lifetime})` });
    }
    if (t.bandwidth_limit > 0 && t.data_plane === 'native') {
      ctx.addIssue({ code: 'custom', path: ['bandwidth_limit'], message: 'is enforced by the typescript data plane only: set data_plane: typescript or leave it unset' });
    }
  });

/** A DNS server for `dns.servers`: `host` or `host:port`, IPv6 as `[addr]:port` or a bare address. */
const dnsServer = z.string({ error: 'expected an address or address:port' }).refine(
  (s) => {
    if (isIP(s) !== 0) return true;
    const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([0-9.]+):(\d{1,5})$/.exec(s);
    return m !== null && isIP(m[1]) !== 0 && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
  },
  { error: 'expected an IP address or address:port (IPv6 as [addr]:port)' },
);

/** `dns:` the resolver for RFC 3263 server location and ENUM (see src/dns/). */
const dnsSchema = z.strictObject({
  /** DNS servers asked; [] = the system's (/etc/resolv.conf). */
  servers: z.array(dnsServer, { error: 'expected a list of addresses' }).default([]),
  timeout_ms: positiveInt('ms').default(2000),
  tries: int(1, 10, 'tries').default(2),
  cache_entries: positiveInt('entries').default(10000),
  max_ttl_seconds: positiveInt('s').default(3600),
  naptr_srv_ttl_seconds: nonNegativeInt('s').default(60),
  negative_ttl_seconds: nonNegativeInt('s').default(30),
  failed_target_seconds: nonNegativeInt('s').default(30),
  failed_targets_max: positiveInt('entries').default(1000),
  enum_suffixes: z.array(domainName, { error: 'expected a list of domain names' }).default(['e164.arpa']),
});

/** `host:port` or `[v6]:port` of a TCP listener, as `{ host, port }`. */
const hostPort = z
  .string({ error: 'expected host:port, e.g. 127.0.0.1:9060' })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):\d{1,5}$/, { error: 'expected host:port, e.g. 127.0.0.1:9060' })
  .transform((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) };
  })
  .refine((hp) => hp.port <= 65535, { error: 'expected a port 0-65535' });

/** `admin:` the admin HTTP listener (metrics, health, the JSON API the CLI uses); see src/admin/admin-server.ts. */
const adminSchema = z.strictObject({
  enabled: z.boolean({ error: 'expected true or false' }).default(true),
  listen: hostPort.default({ host: '127.0.0.1', port: 9060 }),
});

/**
 * `federation:` requests between our domains and other domains (RFC 5922, RFC 5630, RFC 3263).
 * require_tls: requests to other domains leave over TLS with a verified certificate naming the target
 * domain, and requests from other domains are accepted only over mutual TLS naming the From domain.
 */
const federationSchema = z.strictObject({
  require_tls: z.boolean({ error: 'expected true or false' }).default(true),
  /** PEM files of CAs trusted for peer domains' certificates, besides the system CAs. */
  ca: z.array(z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }), { error: 'expected a list of file paths' }).default([]),
  /** Trust the system CA store (Node's bundled Mozilla roots) for peer domains. */
  system_ca: z.boolean({ error: 'expected true or false' }).default(true),
  /** Peer domains allowed; [] = every domain not denied. */
  allow_domains: z.array(domainName, { error: 'expected a list of domain names' }).default([]),
  /** Peer domains refused (checked before allow_domains). */
  deny_domains: z.array(domainName, { error: 'expected a list of domain names' }).default([]),
  /** Accept `*.example.test` certificates for `sip.example.test` (RFC 5922 §7.2 says no). */
  wildcard_certificates: z.boolean({ error: 'expected true or false' }).default(false),
});

/** `enum:` what happens to E.164 numbers (RFC 6116) that no local user owns and ENUM does not know. */
const enumSchema = z.strictObject({
  /** SIP URI the request goes to when ENUM has no entry (a PSTN gateway); absent: 404. */
  pstn_route: z
    .string({ error: 'expected a sip: or sips: URI' })
    .regex(/^sips?:[^\s]+$/i, { error: 'expected a sip: or sips: URI' })
    .optional(),
});

/**
 * The whole configuration file. Parse output (`Config`) has every default
 * filled in; optional keys without a default (`sip.advertised_host`,
 * `sip.tls.cert`/`key`, `turn.realm`, `turn.relay_address`) may be undefined.
 * `domains` come out lowercase. `data_dir` is as written; loadConfig resolves it.
 */
export const configSchema = z.strictObject({
  data_dir: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }).default('./rtcedge-data'),
  domains: z
    .array(domainName, { error: 'expected a list of domain names' })
    .min(1, { error: 'expected at least one domain' })
    .default(['example.test']),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
      // Period of the info-level summary line (counts per interval); 0 = none.
      summary_interval: nonNegativeInt('s').default(60),
      // Log lines waiting to be written beyond this are dropped (and counted), never blocking the event loop.
      max_buffer_bytes: positiveInt('bytes').default(4194304),
    })
    .prefault({}),
  // V8's heap, set by the process serving SIP on itself (transport/heap-tuning.ts): how far the old space grows past the live
  // data before a full collection (percent; 0: V8's own, up to 300), and the young generation's cap (MB per
  // semi-space, 1-16; 0: V8's own, 16).
  memory: z
    .strictObject({
      heap_growing_percent: int(0, 300, 'a whole number (percent)').default(30),
      young_generation_mb: int(0, 16, 'a whole number (MB)').default(4),
    })
    .prefault({}),
  sip: sipSchema.prefault({}),
  turn: turnSchema.prefault({}),
  directory: directorySchema.prefault({}),
  dns: dnsSchema.prefault({}),
  federation: federationSchema.prefault({}),
  enum: enumSchema.prefault({}),
  admin: adminSchema.prefault({}),
  store: storeSchema.prefault({}),
  node: nodeSchema.prefault({}),
}).superRefine((c, ctx) => {
  if (c.store.type === 'redis' && c.node.uri === undefined) {
    ctx.addIssue({ code: 'custom', path: ['node', 'uri'], message: 'required when store.type is redis (the URI other nodes reach this one at)' });
  }
});

/** The parsed configuration, snake_case keys as in the YAML file. */
export type Config = z.infer<typeof configSchema>;
/** One entry of `sip.listen`. */
export type SipListener = z.infer<typeof sipListenerSchema>;
/** The `dns` section. */
export type DnsConfig = z.infer<typeof dnsSchema>;
/** The `federation` section. */
export type FederationConfig = z.infer<typeof federationSchema>;
/** The `store` section. */
export type StoreConfig = z.infer<typeof storeSchema>;
/** The `directory` section. */
export type DirectoryConfig = z.infer<typeof directorySchema>;
/** One entry of `turn.listen`. */
export type TurnListener = z.infer<typeof turnListenerSchema>;

/** How many SIP workers `sip.workers` asks for: the number, or for `auto` the host's available parallelism (`cores`). */
export function sipWorkerCount(workers: 'auto' | number, cores: number = availableParallelism()): number {
  return workers === 'auto' ? Math.max(1, Math.min(64, cores)) : workers;
}
