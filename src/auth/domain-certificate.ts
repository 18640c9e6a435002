/**
 * SIP domain identities in a peer certificate and their comparison with the
 * domain we meant to reach or that a request claims to come from (RFC 5922
 * §7.1 finding identities, §7.2 comparing them):
 * - each subjectAltName URI with scheme `sip` and no user part names the
 *   domain of its host part (`URI:sip:beta.test`); other schemes and URIs with
 *   a user part (`sip:bob@beta.test`) name no domain;
 * - each subjectAltName dNSName names that domain;
 * - the subject CN is used only when the certificate has no subjectAltName;
 * - comparison is of whole DNS names, case-insensitive, with no suffix match;
 *   a `*.` wildcard matches nothing unless the `wildcards` option allows it
 *   (then it matches exactly one leftmost label, RFC 6125 §6.4.3).
 * Pure functions: the chain must have been verified (TLS `authorized`) first.
 */
import type { PeerCertificate } from 'node:tls';
import type { X509Certificate } from 'node:crypto';
import { parseUri } from '../sip/uri.js';
import { parseSubjectAltName } from './client-certificate.js';

/** A certificate as node gives it: `tls.TLSSocket#getPeerCertificate()` or a `crypto.X509Certificate`. */
export type PeerCertificateLike = Pick<PeerCertificate, 'subject' | 'subjectaltname'> | X509Certificate;

/** The identities of {@link sipDomainIdentities}, each lowercase without trailing dot. */
export interface SipDomainIdentities {
  /** From subjectAltName URIs `sip:domain`. */
  sipUris: string[];
  /** From subjectAltName dNSNames (may start with `*.`). */
  dnsNames: string[];
  /** From the subject CN, only when there is no subjectAltName. */
  commonNames: string[];
}

/** Options of {@link certificateMatchesSipDomain}. */
export interface DomainMatchOptions {
  /** Accept `*.example.test` for `sip.example.test` (one label). Default false (RFC 5922 §7.2). */
  wildcards?: boolean;
}

function normalize(name: string): string {
  const n = name.trim().toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

/** Subject CN values of either certificate shape. */
function commonNamesOf(cert: PeerCertificateLike): string[] {
  const subject = cert.subject as unknown;
  if (typeof subject === 'string') {
    // X509Certificate#subject: "CN=beta.test\nO=..." (one attribute per line).
    return subject
      .split('\n')
      .filter((l) => l.startsWith('CN='))
      .map((l) => l.slice(3));
  }
  const cn = (subject as { CN?: string | string[] } | undefined)?.CN;
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
}

/** The SIP domain identities a certificate carries (RFC 5922 §7.1). */
export function sipDomainIdentities(cert: PeerCertificateLike): SipDomainIdentities {
  const san = 'subjectAltName' in cert ? cert.subjectAltName : (cert as Pick<PeerCertificate, 'subjectaltname'>).subjectaltname;
  const ids: SipDomainIdentities = { sipUris: [], dnsNames: [], commonNames: [] };
  if (san === undefined || san === '') {
    ids.commonNames = commonNamesOf(cert).map(normalize).filter((n) => n !== '');
    return ids;
  }
  for (const { type, value } of parseSubjectAltName(san)) {
    if (type === 'DNS') {
      ids.dnsNames.push(normalize(value));
    } else if (type === 'URI') {
      try {
        const uri = parseUri(value);
        if (uri.scheme === 'sip' && uri.user === undefined) ids.sipUris.push(normalize(uri.host));
      } catch {
        // not a SIP URI: names no SIP domain
      }
    }
  }
  return ids;
}

/** Whole-name, case-insensitive comparison; `*.` only with `wildcards` and for exactly one label. */
function dnsNameMatches(pattern: string, domain: string, wildcards: boolean): boolean {
  if (pattern === domain) return true;
  if (!wildcards || !pattern.startsWith('*.')) return false;
  const dot = domain.indexOf('.');
  return dot > 0 && domain.slice(dot + 1) === pattern.slice(2) && pattern.slice(2).includes('.');
}

/**
 * True when the certificate names `domain` as a SIP domain (RFC 5922 §7.2):
 * a `sip:` subjectAltName URI or a dNSName equal to it, or with no
 * subjectAltName at all the CN. `domain` is compared lowercase without a
 * trailing dot.
 */
export function certificateMatchesSipDomain(cert: PeerCertificateLike, domain: string, opts: DomainMatchOptions = {}): boolean {
  const want = normalize(domain);
  if (want === '') return false;
  const ids = sipDomainIdentities(cert);
  const wildcards = opts.wildcards ?? false;
  if (ids.sipUris.includes(want)) return true;
  return [...ids.dnsNames, ...ids.commonNames].some((n) => dnsNameMatches(n, want, wildcards));
}
