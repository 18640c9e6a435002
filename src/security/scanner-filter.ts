/**
 * Recognising SIP scanners by their User-Agent header (RFC 3261 §20.41).
 * Scanners such as SIPVicious announce themselves ("friendly-scanner"); their
 * requests are dropped without a response so the scan learns nothing, not
 * even that a SIP server listens.
 */
import { getHeader, type SipRequest } from '../sip/message.js';

/**
 * The default list: case-insensitive substrings of User-Agent values sent by
 * common scanning tools. `sipsak` and SIPp are deliberately absent (operators
 * use them for monitoring and load tests).
 */
export const DEFAULT_SCANNER_USER_AGENTS: readonly string[] = [
  'friendly-scanner',
  'sipvicious',
  'sipcli',
  'vaxsipuseragent',
  'sip-scan',
  'sipscan',
  'iwar',
  'sundayddr',
  'siparmyknife',
  'sivus',
  'pplsip',
  'voipbuster-scanner',
];

/** Matches User-Agent values against a list of case-insensitive substrings. */
export class ScannerFilter {
  private readonly needles: string[];

  /** @param userAgents substrings; empty strings are ignored, an empty list matches nothing. */
  constructor(userAgents: readonly string[] = DEFAULT_SCANNER_USER_AGENTS) {
    this.needles = userAgents.map((u) => u.toLowerCase()).filter((u) => u.length > 0);
  }

  /** True when the list is empty (the filter is off). */
  get empty(): boolean {
    return this.needles.length === 0;
  }

  /** True when `userAgent` contains one of the substrings (case-insensitive). */
  matchesUserAgent(userAgent: string | undefined): boolean {
    if (!userAgent || this.needles.length === 0) return false;
    const ua = userAgent.toLowerCase();
    for (const n of this.needles) if (ua.includes(n)) return true;
    return false;
  }

  /** True when the request's User-Agent header names a scanner. */
  matches(req: SipRequest): boolean {
    if (this.needles.length === 0) return false;
    return this.matchesUserAgent(getHeader(req, 'user-agent'));
  }
}
