import { getHeaderValues, type SipHeader } from '../../sip/message.js';
import { formatNameAddr, parseNameAddr } from '../../sip/headers.js';
import type { RegisterContext, RegisterReply } from './register-context.js';
import { SUPPORTED_EXTENSIONS } from './require-extensions.js';
import { publicGruu, tempGruu } from '../gruu.js';
import type { BindingRecord } from '../../store/index.js';

/** Flow-Timer for Outbound UAs when not configured, s (RFC 5626 §4.4.1). */
const DEFAULT_FLOW_TIMER_S = 120;

/** The last Date value formatted and the second it is for: the 200s of one second share it. */
let lastDate = { nowS: Number.NaN, value: '' };

/** A Date header (RFC 3261 §20.17) for unix time `nowS`, s; formatted once per second. */
export function dateHeader(nowS: number): SipHeader {
  if (lastDate.nowS !== nowS) lastDate = { nowS, value: new Date(nowS * 1000).toUTCString() };
  return { name: 'Date', value: lastDate.value };
}

/** The Supported value of every 200 (RFC 3261 §20.37). */
const SUPPORTED_VALUE = SUPPORTED_EXTENSIONS.join(', ');

/**
 * §10.3 step 8: 200 OK listing every current binding of the AOR with its
 * remaining expiry (s) in `expires`, a Date header, the Path of the request
 * (RFC 3327 §5.3; path-support refused a Path the UA does not support), Supported, and for Outbound
 * (RFC 5626 §6) Require: outbound with the Flow-Timer. A UA that sent
 * `Supported: gruu` gets, on each Contact with a `+sip.instance`, its
 * `pub-gruu` and a new `temp-gruu` (RFC 5627 §5).
 */
export function bindingsResponse(ctx: RegisterContext): RegisterReply | Promise<RegisterReply> {
  const got = ctx.opts.location.read(ctx.aor);
  return got instanceof Promise ? got.then((bindings) => okWith(ctx, bindings)) : okWith(ctx, got);
}

function okWith(ctx: RegisterContext, bindings: readonly BindingRecord[]): RegisterReply {
  const { nowS } = ctx;
  const gruuKey = ctx.supported.includes('gruu') ? ctx.opts.tempGruuKey : undefined;
  const domain = ctx.aor.slice(ctx.aor.lastIndexOf('@') + 1);
  const headers: SipHeader[] = bindings.map((b) => {
    const na = parseNameAddr(b.contact);
    na.params.expires = String(Math.max(0, b.expires - nowS));
    if (gruuKey && b.instance) {
      na.params['pub-gruu'] = `"${publicGruu(ctx.aor, b.instance)}"`;
      na.params['temp-gruu'] = `"${tempGruu(gruuKey, ctx.aor, b.instance, b.callId, b.cseq, domain)}"`;
    }
    return { name: 'Contact', value: formatNameAddr(na) };
  });
  headers.push(dateHeader(nowS));
  const paths = getHeaderValues(ctx.req, 'path');
  if (paths.length && ctx.supported.includes('path')) for (const p of paths) headers.push({ name: 'Path', value: p });
  headers.push({ name: 'Supported', value: SUPPORTED_VALUE });
  if (ctx.outboundUsed) {
    headers.push({ name: 'Require', value: 'outbound' });
    headers.push({ name: 'Flow-Timer', value: String(ctx.opts.flowTimerS ?? DEFAULT_FLOW_TIMER_S) });
  }
  return { status: 200, reason: 'OK', headers };
}
