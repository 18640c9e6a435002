/** Scanner User-Agents (security/scanner-filter.ts). */
import { describe, expect, it } from 'vitest';
import { ScannerFilter } from '../../src/security/scanner-filter.js';

describe('ScannerFilter', () => {
  it('matches User-Agent substrings case-insensitively; sipsak passes; an empty list matches nothing', () => {
    const f = new ScannerFilter();
    expect(f.matchesUserAgent('friendly-scanner')).toBe(true);
    expect(f.matchesUserAgent('VaxSIPUserAgent/3.1')).toBe(true);
    expect(f.matchesUserAgent('sipcli/v1.8')).toBe(true);
    expect(f.matchesUserAgent('sipsak 0.9.8.1')).toBe(false);
    expect(f.matchesUserAgent('baresip v1.0.0 (x86_64/linux)')).toBe(false);
    expect(f.matchesUserAgent(undefined)).toBe(false);
    expect(new ScannerFilter([]).matchesUserAgent('friendly-scanner')).toBe(false);
    expect(new ScannerFilter(['MyBot']).matchesUserAgent('xx mybot yy')).toBe(true);
  });
});
