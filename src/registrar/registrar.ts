import type { Logger } from '../log.js';
import { getHeader, getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { parseCSeq, parseNameAddr, formatNameAddr } from '../sip/headers.js';
import { parseUri } from '../sip/uri.js';
import { createResponse } from '../sip/response.js';
import { SipError } from '../sip/errors.js';
import type { Authenticate } from '../auth/request-authenticator.js';
import type { BindingRecord } from '../store/index.js';
import type { ServerTransaction } from '../transaction/server-transaction.js';
import type { LocalDomains } from './aor.js';
import type { LocationService } from './location-service.js';

/** Registrar settings, from `sip.registrar` in the config (all in s). */
export interface RegistrarOptions {
  domains: LocalDomains;
  location: LocationService;
  /** Establishes who sent the REGISTER (digest, client certificate...). */
  authenticate: Authenticate;
  /** Shortest accepted non-zero expiry; shorter → 423 Interval Too Brief with Min-Expires (§10.3 step 7). */
  minExpires: number;
  /** Longer requested expiries are lowered to this. */
  maxExpires: number;
  /** Expiry when neither the contact nor the request gives one. */
  defaultExpires: number;
  /** Bindings one AOR may hold; a REGISTER that would exceed it gets 403. */
  maxBindingsPerAor: number;
  /** Flow-Timer sent to Outbound UAs (RFC 5626 §4.4.1), s; default 120. */
  flowTimer?: number;
  logger: Logger;
  now?: () => number;
}

/**
 * Returns the REGISTER handler (RFC 3261 §10.3): digest authentication (401),
 * the authenticated user must own the To AOR (403), `Contact: *` with
 * `Expires: 0` removes every binding, each contact gets its expiry from its
 * `expires` parameter, the Expires header or the default, Call-ID/CSeq
 * ordering is enforced (500 for an out-of-order REGISTER, step 6), and the 200
 * lists every current binding with its remaining expiry and a Date header.
 */
export function createRegistrar(opts: RegistrarOptions): (req: SipRequest, st: ServerTransaction) => Promise<void> {
  const log = opts.logger.child({ component: 'registrar' });
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));

  return async (req, st) => {
    const reply = (status: number, reason?: string, headers: SipHeader[] = []) =>
      st.respond(createResponse(req, status, { reason, headers, toTag: status > 100 ? 'reg' + Date.now().toString(36) : undefined }));
    try {
      const ruri = parseUri(req.uri);
      if (!opts.domains.isLocal(ruri.host)) return reply(404, 'Not Found: domain not served here');
      const to = parseNameAddr(getHeader(req, 'to') ?? '');
      // §10.3 step 3 / RFC 4475 §3.3.4: the AOR in To must be a SIP or SIPS URI; anything else is a bad request.
      if (!/^sips?:/i.test(to.uri)) return reply(400, 'Bad Request: To is not a SIP or SIPS URI');
      const aor = opts.domains.aorOf(parseUri(to.uri), true);
      if (!aor) return reply(404, 'Not Found');

      const outcome = await opts.authenticate(req, 'www', st.source);
      if (!outcome.ok) return reply(outcome.status, outcome.reason, outcome.headers);
      const userOfAor = aor.slice(4, aor.lastIndexOf('@'));
      if (outcome.username !== userOfAor) {
        log.info({ user: outcome.username, aor }, 'REGISTER for an AOR the user does not own');
        return reply(403, 'Forbidden');
      }

      const callId = getHeader(req, 'call-id') ?? '';
      const cseq = parseCSeq(getHeader(req, 'cseq') ?? '').seq;
      const contacts = getHeaderValues(req, 'contact');
      const expiresHeader = getHeader(req, 'expires');
      const headerExpires = expiresHeader !== undefined ? parseExpires(expiresHeader) : undefined;
      const t = now();

      if (contacts.length === 1 && contacts[0].trim() === '*') {
        if (headerExpires !== 0) return reply(400, 'Bad Request: Contact * requires Expires: 0');
        for (const b of opts.location.lookup(aor)) {
          if (b.callId === callId && cseq <= b.cseq) return reply(500, 'Server Internal Error: out-of-order REGISTER');
        }
        const n = opts.location.removeAll(aor);
        await opts.location.committed();
        log.info({ aor, removed: n }, 'all bindings removed');
        return reply(200, 'OK', [{ name: 'Date', value: new Date(t * 1000).toUTCString() }]);
      }
      if (contacts.some((c) => c.trim() === '*')) return reply(400, 'Bad Request: Contact * mixed with other contacts');

      const existing = new Map(opts.location.lookup(aor).map((b) => [b.contactUri, b]));
      const supported = getHeaderValues(req, 'supported').map((v) => v.toLowerCase());
      // RFC 5626 §6: reg-id counts only when the UA supports outbound and gives an instance.
      const outboundUa = supported.includes('outbound');
      let outboundUsed = false;
      const changes: { contactUri: string; record?: BindingRecord }[] = [];
      for (const value of contacts) {
        const na = parseNameAddr(value);
        const contactUri = na.uri;
        parseUri(contactUri); // 400 when malformed
        let expires = na.params.expires != null ? parseExpires(na.params.expires) : headerExpires ?? opts.defaultExpires;
        if (expires !== 0 && expires < opts.minExpires) {
          return reply(423, 'Interval Too Brief', [{ name: 'Min-Expires', value: String(opts.minExpires) }]);
        }
        expires = Math.min(expires, opts.maxExpires);
        const old = existing.get(contactUri);
        if (old && old.callId === callId && cseq <= old.cseq) {
          return reply(500, 'Server Internal Error: out-of-order REGISTER');
        }
        if (expires === 0) {
          changes.push({ contactUri });
          continue;
        }
        const q = na.params.q != null ? Number(na.params.q) : null;
        const instance = na.params['+sip.instance'] ?? null;
        const regId = outboundUa && instance && na.params['reg-id'] != null ? Number(na.params['reg-id']) : null;
        if (regId !== null) {
          outboundUsed = true;
          // A new flow of the same instance and reg-id replaces the old one (RFC 5626 §6 step 3).
          for (const b of existing.values()) {
            if (b.instance === instance && b.regId === regId && b.contactUri !== contactUri) changes.push({ contactUri: b.contactUri });
          }
        }
        changes.push({
          contactUri,
          record: {
            aor,
            contact: value,
            contactUri,
            expires: t + expires,
            q: q !== null && Number.isFinite(q) ? q : null,
            callId,
            cseq,
            instance,
            regId: regId !== null && Number.isFinite(regId) ? regId : null,
            path: getHeaderValues(req, 'path'),
            source: {
              transport: st.source.transport,
              address: st.source.remoteAddress,
              port: st.source.remotePort,
              localPort: st.source.localPort,
            },
            userAgent: getHeader(req, 'user-agent') ?? null,
            updatedAt: t,
          },
        });
      }
      const after = new Set(existing.keys());
      for (const c of changes) {
        if (c.record) after.add(c.contactUri);
        else after.delete(c.contactUri);
      }
      if (after.size > opts.maxBindingsPerAor) return reply(403, 'Forbidden: too many bindings');
      for (const c of changes) {
        if (c.record) opts.location.put(c.record);
        else opts.location.remove(aor, c.contactUri);
      }
      await opts.location.committed();
      if (changes.length) log.info({ aor, contacts: changes.map((c) => c.contactUri), source: `${st.source.transport}:${st.source.remoteAddress}:${st.source.remotePort}` }, 'bindings updated');

      const headers: SipHeader[] = opts.location.lookup(aor).map((b) => {
        const na = parseNameAddr(b.contact);
        na.params.expires = String(Math.max(0, b.expires - t));
        return { name: 'Contact', value: formatNameAddr(na) };
      });
      headers.push({ name: 'Date', value: new Date(t * 1000).toUTCString() });
      const paths = getHeaderValues(req, 'path');
      if (paths.length && supported.includes('path')) for (const p of paths) headers.push({ name: 'Path', value: p });
      headers.push({ name: 'Supported', value: 'path, outbound' });
      if (outboundUsed) {
        headers.push({ name: 'Require', value: 'outbound' });
        headers.push({ name: 'Flow-Timer', value: String(opts.flowTimer ?? 120) });
      }
      reply(200, 'OK', headers);
    } catch (err) {
      if (err instanceof SipError) return reply(err.status, err.reason);
      log.error({ err }, 'REGISTER failed');
      reply(500, 'Server Internal Error');
    }
  };
}

/** delta-seconds (RFC 3261 §20.19): 1*DIGIT; larger than 2**32-1 is taken as that. Throws SipError 400 otherwise. */
function parseExpires(v: string): number {
  const s = v.trim();
  if (!/^\d{1,10}$/.test(s)) throw new SipError(400, 'Bad Request: malformed expires');
  return Math.min(Number(s), 2 ** 32 - 1);
}
