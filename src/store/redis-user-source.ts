/**
 * The {@link UserSource} over the shared Redis store: what the registrar, the
 * proxy and TURN ask for credentials when `store.type` is redis.
 */
import type { UserSource } from '../auth/user-source.js';
import { UserSourceUnavailableError } from '../auth/user-source.js';
import { StoreError } from './errors.js';
import type { RedisStore } from './redis-store.js';

/**
 * A UserSource answering from Redis. Realm = domain. A Redis that cannot be
 * reached becomes {@link UserSourceUnavailableError} (SIP 503 with
 * Retry-After = `store.redis.retry_after`); closing it leaves the store open.
 */
export function redisUserSource(store: RedisStore): UserSource {
  const guard = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (err instanceof StoreError && err.code === 'unavailable') throw new UserSourceUnavailableError(err.message, err.retryAfterS, { cause: err });
      throw err;
    }
  };
  return {
    lookupHa1: (username, realm, alg) => guard(() => store.lookupHa1(username, realm, alg)),
    userExists: (username, domain) => guard(() => store.userExists(username, domain)),
    lookupUserhash: (hash, realm) => guard(() => store.userByUserhash(hash, realm)),
    close: async () => {},
  };
}
