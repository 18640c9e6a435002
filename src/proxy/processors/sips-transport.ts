import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * `sips:` means TLS on every hop (RFC 5630 §3.1.3, RFC 3261 §26.2.2): a
 * request whose Request-URI is `sips:` that arrived over UDP, TCP or WS is
 * refused with 480 and a reason naming the check, so it is never delivered
 * further (the next hop's transport is checked at forwarding, proxy-core.ts).
 * REGISTER is the registrar's business and goes on.
 */
export const sipsTransport: RequestProcessor = {
  name: 'sips-transport',
  process(ctx: RequestContext) {
    if (ctx.req.method === 'REGISTER' || !/^sips:/i.test(ctx.req.uri)) return CONTINUE;
    const t = ctx.source.transport;
    if (t === 'tls' || t === 'wss') return CONTINUE;
    return reply(480, `Temporarily Unavailable: sips: request over ${t.toUpperCase()} (RFC 5630: TLS on every hop)`);
  },
};
