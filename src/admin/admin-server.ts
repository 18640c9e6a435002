/**
 * The admin HTTP listener (node:http; `admin.listen`, 127.0.0.1:9060 by default):
 *
 * - `GET /metrics`  Prometheus text format (metrics.ts); no token.
 * - `GET /healthz`  200 `ok` while the process serves HTTP; no token.
 * - `GET /readyz`   200 when the store and the directory answer and every listener is bound, else 503;
 *                   body `{ ready, checks: { name: "ok" | reason } }`; no token.
 * - `/api/...`      JSON, with `Authorization: Bearer <data_dir/admin-token>` (401 without):
 *   - `GET /api/users[?domain=D]`            users (no HA1s): `{ username, domain, phones, algorithms, createdAt }[]`
 *   - `GET /api/users/USER@DOMAIN`           one user, 404 if none
 *   - `GET /api/registrations[?aor=AOR]`     `{ aor, bindings: { contact, expires (unix s), q, instance, regId, source, userAgent }[] }[]`
 *   - `DELETE /api/registrations?aor=AOR[&contact=URI]`  removes bindings: `{ removed: n }`
 *   - `POST /api/reload`                     re-reads certificates: `{ reloaded: string[] }`
 *
 * Errors are JSON `{ error: text }` with 400/401/404/405/500. Request bodies are not read.
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.js';
import type { BindingRecord, UserRecord } from '../store/index.js';
import type { MetricsExposition } from './metrics.js';

/** What the admin API reads and acts on. */
export interface AdminContext {
  token: string;
  /** One process's metrics, or the sum over the primary and its SIP workers (cluster-metrics.ts). */
  metrics: MetricsExposition;
  /** Readiness checks by name: resolve to true when fine, or a reason text. */
  readiness: Record<string, () => Promise<true | string> | true | string>;
  users: {
    list(domain?: string): UserRecord[] | Promise<UserRecord[]>;
    get(username: string, domain: string): UserRecord | undefined | Promise<UserRecord | undefined>;
  };
  registrations: {
    /** Every AOR's unexpired bindings (with a shared store: every node's, read from the store). */
    registrations(): Promise<{ aor: string; bindings: BindingRecord[] }[]>;
    /** One AOR's unexpired bindings (read through the store when not in memory). */
    read(aor: string): BindingRecord[] | Promise<BindingRecord[]>;
    remove(aor: string, contactUri: string): boolean;
    removeAll(aor: string): number;
  };
  /** Re-read certificates (and what else can change safely); returns what was reloaded. */
  reload(): Promise<string[]>;
  logger: Logger;
}

/** A user as the API shows it: no credentials, only which algorithms have an HA1. */
export function userView(u: UserRecord): Record<string, unknown> {
  return { username: u.username, domain: u.domain, phones: u.phones ?? [], algorithms: Object.keys(u.ha1), createdAt: u.createdAt };
}

function bindingView(b: BindingRecord): Record<string, unknown> {
  return { contact: b.contact, contactUri: b.contactUri, expires: b.expires, q: b.q, instance: b.instance, regId: b.regId, source: b.source, userAgent: b.userAgent };
}

/** Most simultaneous connections to the admin listener; more are refused. */
export const ADMIN_MAX_CONNECTIONS = 64;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The running admin listener. */
export class AdminServer {
  private readonly server: http.Server;
  private readonly log: Logger;

  constructor(private readonly ctx: AdminContext) {
    this.log = ctx.logger.child({ component: 'admin' });
    this.server = http.createServer((req, res) => {
      this.route(req).then(
        (out) => send(res, out.status ?? 200, out.body, out.contentType),
        (err: unknown) => {
          if (err instanceof HttpError) return send(res, err.status, { error: err.message });
          this.log.warn({ err: (err as Error).message, url: req.url }, 'admin request failed');
          send(res, 500, { error: (err as Error).message });
        },
      );
    });
    this.server.requestTimeout = 10_000;
    this.server.maxHeadersCount = 50;
    this.server.maxConnections = ADMIN_MAX_CONNECTIONS;
  }

  /**
   * Listen on host:port. Resolves with the bound address.
   * @throws Error `cannot listen on admin host:port: <reason>` (e.g. EADDRINUSE).
   */
  async start(host: string, port: number): Promise<{ address: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err) => reject(new Error(`cannot listen on admin ${host.includes(':') ? `[${host}]` : host}:${port}: ${err.message}`)));
      this.server.listen(port, host, () => resolve());
    });
    const a = this.server.address() as { address: string; port: number };
    return { address: a.address, port: a.port };
  }

  /** Close the listener and its keep-alive connections. */
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private authorized(req: http.IncomingMessage): boolean {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const given = Buffer.from(m[1]!);
    const want = Buffer.from(this.ctx.token);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  private async route(req: http.IncomingMessage): Promise<{ status?: number; body: unknown; contentType?: string }> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/metrics' || path === '/healthz' || path === '/readyz') {
      if (method !== 'GET') throw new HttpError(405, 'use GET');
      if (path === '/healthz') return { body: 'ok\n', contentType: 'text/plain' };
      if (path === '/metrics') {
        const m = await this.ctx.metrics.exposition();
        return { body: m.body, contentType: m.contentType };
      }
      return this.readiness();
    }
    if (!path.startsWith('/api/')) throw new HttpError(404, `no such path ${path}`);
    if (!this.authorized(req)) throw new HttpError(401, 'missing or wrong bearer token (see data_dir/admin-token)');

    if (path === '/api/users' && method === 'GET') {
      return { body: (await this.ctx.users.list(url.searchParams.get('domain') ?? undefined)).map(userView) };
    }
    const userMatch = /^\/api\/users\/([^/]+)$/.exec(path);
    if (userMatch && method === 'GET') {
      const spec = decodeURIComponent(userMatch[1]!);
      const at = spec.lastIndexOf('@');
      if (at <= 0) throw new HttpError(400, 'expected /api/users/USER@DOMAIN');
      const u = await this.ctx.users.get(spec.slice(0, at), spec.slice(at + 1));
      if (!u) throw new HttpError(404, `no user ${spec}`);
      return { body: userView(u) };
    }
    if (path === '/api/registrations') {
      const aor = url.searchParams.get('aor') ?? undefined;
      if (method === 'GET') {
        const found = aor === undefined ? await this.ctx.registrations.registrations() : [{ aor, bindings: await this.ctx.registrations.read(aor) }];
        return { body: found.filter((r) => r.bindings.length > 0).map((r) => ({ aor: r.aor, bindings: r.bindings.map(bindingView) })) };
      }
      if (method === 'DELETE') {
        if (aor === undefined) throw new HttpError(400, 'give ?aor=');
        const contact = url.searchParams.get('contact');
        // Read first, so that with a shared store the AOR is in memory and the count is true.
        await this.ctx.registrations.read(aor);
        const removed = contact === null ? this.ctx.registrations.removeAll(aor) : Number(this.ctx.registrations.remove(aor, contact));
        this.log.info({ aor, contact, removed }, 'bindings removed by the admin API');
        return { body: { removed } };
      }
      throw new HttpError(405, 'use GET or DELETE');
    }
    if (path === '/api/reload') {
      if (method !== 'POST') throw new HttpError(405, 'use POST');
      return { body: { reloaded: await this.ctx.reload() } };
    }
    throw new HttpError(404, `no such path ${path}`);
  }

  private async readiness(): Promise<{ status: number; body: unknown }> {
    const checks: Record<string, string> = {};
    let ready = true;
    for (const [name, check] of Object.entries(this.ctx.readiness)) {
      let result: true | string;
      try {
        result = await check();
      } catch (err) {
        result = (err as Error).message;
      }
      checks[name] = result === true ? 'ok' : result;
      if (result !== true) ready = false;
    }
    return { status: ready ? 200 : 503, body: { ready, checks } };
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, contentType?: string): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': contentType ?? 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
