/**
 * FNV-1a, 32 bits (Fowler/Noll/Vo, draft-eastlake-fnv): a cheap, stable hash
 * for spreading keys over workers and for short tags. Not a MAC: never use it
 * where an attacker must not be able to choose collisions.
 */

/** FNV-1a offset basis (32 bits). */
export const FNV_OFFSET = 0x811c9dc5;
/** FNV-1a prime (32 bits). */
export const FNV_PRIME = 0x01000193;

/** One step: the hash `h` with one more octet (or UTF-16 code unit) `c`. */
export function fnvStep(h: number, c: number): number {
  return Math.imul(h ^ c, FNV_PRIME);
}

/** FNV-1a of a string's UTF-16 code units, as an unsigned 32-bit integer. */
export function fnv1a(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = fnvStep(h, s.charCodeAt(i));
  return h >>> 0;
}
