import { readFileSync } from 'node:fs';

/** Bytes of a protocol test vector under test/vectors (copied from the RFCs; see test/vectors/README.md). */
export function fixture(path: string): Buffer {
  return readFileSync(new URL(`../vectors/${path}`, import.meta.url));
}

/** An RFC 5118 archive message (LF line ends) converted to CRLF line ends. */
export function fixtureCrlf(path: string): Buffer {
  return Buffer.from(fixture(path).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Join lines with CRLF and end with CRLF (the blank line is the caller's). */
export function crlf(...lines: string[]): Buffer {
  return Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
}
