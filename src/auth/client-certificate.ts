/**
 * Client certificates as SIP identities (RFC 5922 §7.1 names the SAN URI entry
 * for SIP domains; the same convention is used here for users): a device
 * certificate, issued by a CA listed in `sip.tls.ca` and verified during the
 * TLS handshake, whose subjectAltName holds `URI:sip:alice@example.test` (or,
 * when configured, the rfc822Name `email:alice@example.test`) authenticates
 * the AOR `sip:alice@example.test` without a digest challenge.
 *
 * The transport extracts the identities with {@link certificateIdentities}
 * only when the chain verified, and passes them up in `Source.tlsIdentities`.
 */
import { parseUri } from '../sip/uri.js';

/** SubjectAltName entry kinds that can name a SIP identity. */
export type IdentityKind = 'uri' | 'email';

/** One subjectAltName entry: `type` as OpenSSL names it (`URI`, `email`, `DNS`, `IP Address`...). */
export interface SanEntry {
  type: string;
  value: string;
}

/**
 * Split Node's `subjectaltname` string (`URI:sip:a@b, email:a@b, DNS:x`) into
 * entries. Values containing a comma or a quote come JSON-quoted (Node ≥ 17):
 * `URI:"sip:a@b;x=1,2"`. Malformed quoting ends the parse (the rest is ignored).
 */
export function parseSubjectAltName(san: string | undefined): SanEntry[] {
  const out: SanEntry[] = [];
  if (!san) return out;
  let i = 0;
  const n = san.length;
  while (i < n) {
    while (i < n && (san[i] === ' ' || san[i] === ',')) i++;
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    i = colon + 1;
    let value: string;
    if (san[i] === '"') {
      let j = i + 1;
      while (j < n && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      if (j >= n) break;
      try {
        value = JSON.parse(san.slice(i, j + 1)) as string;
      } catch {
        break;
      }
      i = j + 1;
    } else {
      const comma = san.indexOf(', ', i);
      const end = comma < 0 ? n : comma;
      value = san.slice(i, end);
      i = end;
    }
    out.push({ type, value });
  }
  return out;
}

/**
 * The SIP identities a verified certificate names, as `sip:user@host` with the
 * host lowercased (a `sips:` URI counts as the `sip:` AOR, RFC 3261 §19.1.4);
 * `email:user@host` entries when `kinds` includes 'email'. Entries without a
 * user part, other schemes and malformed URIs are skipped.
 *
 * @param cert the peer certificate (only `subjectaltname` is read).
 */
export function certificateIdentities(cert: { subjectaltname?: string }, kinds: readonly IdentityKind[]): string[] {
  const out: string[] = [];
  for (const e of parseSubjectAltName(cert.subjectaltname)) {
    let id: string | undefined;
    if (e.type === 'URI' && kinds.includes('uri')) id = sipIdentity(e.value);
    else if (e.type === 'email' && kinds.includes('email')) id = sipIdentity(`sip:${e.value}`);
    if (id && !out.includes(id)) out.push(id);
  }
  return out;
}

/** `sip:user@host` for a sip/sips URI with a user part, else undefined. */
function sipIdentity(uri: string): string | undefined {
  try {
    const u = parseUri(uri);
    if ((u.scheme !== 'sip' && u.scheme !== 'sips') || !u.user) return undefined;
    return `sip:${u.user}@${u.host.toLowerCase()}`;
  } catch {
    return undefined;
  }
}
