import type { SipUri } from '../sip/uri.js';

/**
 * The domains this server is responsible for (RFC 3261 §10.3 step 1, §16.4
 * "domain the proxy is responsible for"), and the mapping of URIs to AORs.
 *
 * A URI whose host is one of the server's own addresses (`sip:bob@127.0.0.1`)
 * names the same user of the default domain, the way Kamailio treats its own
 * addresses as aliases of itself.
 */
export class LocalDomains {
  readonly defaultDomain: string;
  private readonly domains: Set<string>;

  /**
   * @param domains served domains, first is the default.
   * @param isOwnAddress true when a host (without brackets) is one of this server's
   *   addresses and, when a port is given, one of its listening ports.
   */
  constructor(
    domains: string[],
    private readonly isOwnAddress: (host: string, port?: number) => boolean,
  ) {
    this.domains = new Set(domains.map((d) => d.toLowerCase()));
    this.defaultDomain = domains[0].toLowerCase();
  }

  /** True when host is a served domain or one of this server's own addresses. */
  isLocal(host: string): boolean {
    const h = host.toLowerCase();
    return this.domains.has(h) || this.isOwnAddress(unbracket(h));
  }

  /** The served domain a host stands for: itself if it is a served domain, the default domain for an own address, else undefined. */
  domainOf(host: string): string | undefined {
    const h = host.toLowerCase();
    if (this.domains.has(h)) return h;
    return this.isOwnAddress(unbracket(h)) ? this.defaultDomain : undefined;
  }

  /**
   * The canonical AOR `sip:user@domain` of a sip/sips URI with a user part in a
   * served domain; undefined for other URIs. The user part is kept as written
   * (case-sensitive, RFC 3261 §19.1.4), the domain lowercased. A URI naming
   * one of the server's addresses with a port it does not listen on is some
   * other element on that host, not an AOR of ours, unless `anyPort` (the
   * registrar reads the To of a REGISTER that way, as a port means nothing in
   * an AOR).
   */
  aorOf(uri: SipUri, anyPort = false): string | undefined {
    if ((uri.scheme !== 'sip' && uri.scheme !== 'sips') || !uri.user) return undefined;
    const domain = this.domainOf(uri.host);
    if (!domain) return undefined;
    if (!anyPort && uri.port !== undefined && !this.domains.has(uri.host.toLowerCase()) && !this.isOwnAddress(unbracket(uri.host), uri.port)) return undefined;
    return `sip:${uri.user}@${domain}`;
  }
}

/** `host` without a leading `[` and a trailing `]` (an IPv6 reference), as `/^\[|\]$/g` would remove them, without a copy for other hosts. */
function unbracket(host: string): string {
  const open = host.charCodeAt(0) === 0x5b;
  const close = host.charCodeAt(host.length - 1) === 0x5d;
  if (!open && !close) return host;
  return host.slice(open ? 1 : 0, close ? host.length - 1 : host.length);
}
