import { silentLogger } from '../../src/log.js';
import type { TurnServerOptions } from '../../src/turn/index.js';

/**
 * TurnServer options the tests start from: relay on 127.0.0.1, the RFC 8656
 * §3.2/§7 lifetimes (600 s default, 3600 s max), nonces valid 600 s, no logs.
 * `over` names what each test is about: realm, listeners, relay ports,
 * credentials, peers, data plane.
 */
export function turnTestOptions(
  over: Pick<TurnServerOptions, 'realm' | 'listen' | 'relayPortMin' | 'relayPortMax' | 'nonceSecret' | 'getKey'> & Partial<TurnServerOptions>,
): TurnServerOptions {
  return { relayAddress: '127.0.0.1', defaultLifetimeS: 600, maxLifetimeS: 3600, nonceTtlS: 600, logger: silentLogger, ...over };
}
