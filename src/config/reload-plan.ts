/**
 * What a reload of the configuration file may change in a running server
 * (SIGHUP, `rtcedge reload`): `log.level` and `sip.tls` (certificate, key and
 * client CAs, read again for new handshakes on SIP TLS/WSS, TURN TLS and
 * TURN DTLS listeners). Every other key is bound into
 * listeners, sockets and tables at start: a change to it is named so the log
 * can say that it takes effect at the next start.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Config } from './schema.js';

/** Keys a reload applies. */
export const RELOADABLE_KEYS = ['log.level', 'sip.tls'] as const;

/** Outcome of comparing the running configuration with the file read again. */
export interface ReloadPlan {
  /** Reloadable keys whose value changed. */
  changed: (typeof RELOADABLE_KEYS)[number][];
  /** Other changed keys (dotted paths, two levels deep, e.g. `sip.listen`), sorted: need a restart. */
  needRestart: string[];
}

function get(config: Config, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
}

/** Compare two parsed configurations (see ReloadPlan). */
export function planReload(running: Config, next: Config): ReloadPlan {
  const changed = RELOADABLE_KEYS.filter((k) => !isDeepStrictEqual(get(running, k), get(next, k)));
  const needRestart: string[] = [];
  for (const top of new Set([...Object.keys(running), ...Object.keys(next)]) as Set<keyof Config>) {
    const a = running[top] as unknown;
    const b = next[top] as unknown;
    if (isDeepStrictEqual(a, b)) continue;
    const objects = a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b);
    if (!objects) {
      needRestart.push(top);
      continue;
    }
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const sub of new Set([...Object.keys(ra), ...Object.keys(rb)])) {
      const path = `${top}.${sub}`;
      if (!isDeepStrictEqual(ra[sub], rb[sub]) && !(RELOADABLE_KEYS as readonly string[]).includes(path)) needRestart.push(path);
    }
  }
  return { changed, needRestart: needRestart.sort() };
}
