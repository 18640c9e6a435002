import { getHeader, getHeaderValues } from '../../sip/message.js';
import { parseNameAddr } from '../../sip/headers.js';
import { parseUri } from '../../sip/uri.js';
import type { BindingRecord } from '../../store/index.js';
import type { BindingChange, RegisterContext, RegisterReply } from './register-context.js';
import { parseExpiresS } from './expires.js';

const OUT_OF_ORDER: RegisterReply = { status: 500, reason: 'Server Internal Error: out-of-order REGISTER' };

/**
 * §10.3 steps 6 and 7, per contact: its expiry from its `expires` parameter,
 * else the Expires header, else the default (423 with Min-Expires below the
 * minimum unless 0; lowered to the maximum); a contact already bound with the
 * same Call-ID and a CSeq not lower is out of order (500). Expiry 0 removes
 * the binding; else the binding is added or refreshed, with q, Path (led by
 * this node's own entry when `nodePath` gives one), the
 * source it came from and, for an Outbound UA (RFC 5626 §6: `Supported:
 * outbound`, `+sip.instance` and `reg-id`), a new flow of the same instance
 * and reg-id replacing the old one. Nothing is stored yet: the changes are
 * kept in the context.
 */
export function contactBindings(ctx: RegisterContext): RegisterReply | undefined {
  const { req, st, opts, aor, callId, cseq, nowS } = ctx;
  const existing = new Map(ctx.existing.map((b) => [b.contactUri, b]));
  const outboundUa = ctx.supported.includes('outbound');
  // Several nodes on one store: a binding over a connection of this node is reached through this node (RFC 3327 Path).
  const own = opts.nodePath?.(st.source);
  const path = own ? [own, ...getHeaderValues(req, 'path')] : getHeaderValues(req, 'path');
  const userAgent = getHeader(req, 'user-agent') ?? null;
  const changes: BindingChange[] = [];
  for (const value of ctx.contacts) {
    const na = parseNameAddr(value);
    const contactUri = na.uri;
    parseUri(contactUri); // 400 when malformed
    let expiresS = na.params.expires != null ? parseExpiresS(na.params.expires) : ctx.headerExpiresS ?? opts.defaultExpiresS;
    if (expiresS !== 0 && expiresS < opts.minExpiresS) {
      return { status: 423, reason: 'Interval Too Brief', headers: [{ name: 'Min-Expires', value: String(opts.minExpiresS) }] };
    }
    expiresS = Math.min(expiresS, opts.maxExpiresS);
    const old = existing.get(contactUri);
    if (old && old.callId === callId && cseq <= old.cseq) return OUT_OF_ORDER;
    if (expiresS === 0) {
      changes.push({ contactUri });
      continue;
    }
    const q = na.params.q != null ? Number(na.params.q) : null;
    const instance = na.params['+sip.instance'] ?? null;
    const regId = outboundUa && instance && na.params['reg-id'] != null ? Number(na.params['reg-id']) : null;
    if (regId !== null) {
      ctx.outboundUsed = true;
      // A new flow of the same instance and reg-id replaces the old one (RFC 5626 §6 step 3).
      for (const b of existing.values()) {
        if (b.instance === instance && b.regId === regId && b.contactUri !== contactUri) changes.push({ contactUri: b.contactUri });
      }
    }
    const record: BindingRecord = {
      aor,
      contact: value,
      contactUri,
      expires: nowS + expiresS,
      q: q !== null && Number.isFinite(q) ? q : null,
      callId,
      cseq,
      instance,
      regId: regId !== null && Number.isFinite(regId) ? regId : null,
      path,
      source: { transport: st.source.transport, address: st.source.remoteAddress, port: st.source.remotePort, localPort: st.source.localPort },
      userAgent,
      updatedAt: nowS,
    };
    changes.push({ contactUri, record });
  }
  ctx.changes = changes;
  return undefined;
}
