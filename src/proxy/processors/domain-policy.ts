import { isIP } from 'node:net';
import { certificateMatchesSipDomain } from '../../auth/domain-certificate.js';
import { CONTINUE, reply, type RequestContext, type RequestProcessor } from '../request-context.js';

/**
 * Domain policy for requests from other domains (RFC 5922 §7):
 * when the From domain is not one of ours, the domain must not be in
 * `federation.deny_domains` and, when `federation.allow_domains` is not
 * empty, must be in it; under `federation.require_tls` the request must have
 * come over TLS whose client certificate verified (federation CAs) and names
 * the From domain (mutual TLS, RFC 5922 §7.2). Each refusal is 403 with a
 * reason naming the check. Requests from our own domains, and those whose
 * From host is an IP address (it names no domain), are left alone,
 * and so are in-dialog requests that come back along a route this proxy
 * recorded (To tag, own Route entry removed): the dialog passed this policy
 * when it was created, and inside it From is whatever the first request's To
 * was (a callee's BYE carries the caller's domain, RFC 3261 §12.2.1.1).
 * Without federation settings (no `ProxyEnv.federation`) it does nothing.
 */
export const domainPolicy: RequestProcessor = {
  name: 'domain-policy',
  process(ctx: RequestContext) {
    const fed = ctx.env.federation;
    if (!fed || ctx.fromLocal || (ctx.toTag && ctx.removedRoutes > 0)) return CONTINUE;
    const domain = ctx.fromUri?.host.toLowerCase();
    if (!domain) return reply(403, 'Forbidden: no From domain');
    // An address claims no domain (RFC 5922 identities are domain names): nothing to verify.
    if (isIP(domain.replace(/^\[|\]$/g, '')) !== 0) return CONTINUE;
    if (fed.denyDomains.includes(domain)) return reply(403, `Forbidden: domain ${domain} is in federation.deny_domains`);
    if (fed.allowDomains.length > 0 && !fed.allowDomains.includes(domain)) {
      return reply(403, `Forbidden: domain ${domain} is not in federation.allow_domains`);
    }
    if (!fed.requireTls) return CONTINUE;
    if (ctx.source.transport !== 'tls') {
      return reply(403, `Forbidden: requests from ${domain} must come over mutual TLS (federation.require_tls)`);
    }
    const cert = ctx.source.tlsPeerCertificate;
    if (!cert) return reply(403, `Forbidden: no verified client certificate from ${domain} (RFC 5922 mutual TLS)`);
    if (!certificateMatchesSipDomain(cert, domain, { wildcards: fed.wildcards })) {
      return reply(403, `Forbidden: the client certificate does not name ${domain} (RFC 5922 §7)`);
    }
    return CONTINUE;
  },
};
