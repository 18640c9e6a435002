/**
 * Users as the `rtcedge user` commands manage them, whichever store holds
 * them: the SQLite file (synchronous, wrapped) or the shared Redis store.
 */
import type { Config } from '../config/schema.js';
import { StoreError } from './errors.js';
import { openStore } from './index.js';
import { RedisStore } from './redis-store.js';
import type { SqliteStore } from './sqlite-store.js';
import type { UserRecord } from './types.js';

/** One user to add: HA1s per algorithm (see credentialsFor) and telephone numbers. */
export interface NewUser {
  username: string;
  domain: string;
  ha1: UserRecord['ha1'];
  phones: readonly string[];
}

/** Users of a store, asynchronous whichever it is. Errors are StoreError ('exists', 'not_found', 'invalid', 'unavailable'). */
export interface UserStore {
  /** Add a user with their numbers, all or nothing. */
  addUser(user: NewUser): Promise<void>;
  /**
   * Add many users, each all or nothing (SQLite: in one transaction); returns,
   * per user in order, undefined when added or the StoreError that refused it.
   */
  addUsers(users: readonly NewUser[]): Promise<(StoreError | undefined)[]>;
  /** Replace a user's HA1 set. */
  setUserHa1(username: string, domain: string, ha1: UserRecord['ha1']): Promise<void>;
  /** True when there was such a user. */
  deleteUser(username: string, domain: string): Promise<boolean>;
  getUser(username: string, domain: string): Promise<UserRecord | undefined>;
  /** Of one domain, or all, ordered by domain then username. */
  listUsers(domain?: string): Promise<UserRecord[]>;
  close(): Promise<void>;
}

function sqliteAdd(s: SqliteStore, u: NewUser): void {
  s.addUser(u.username, u.domain, u.ha1);
  if (u.phones.length === 0) return;
  try {
    s.setPhones(u.username, u.domain, u.phones);
  } catch (err) {
    s.deleteUser(u.username, u.domain);
    throw err;
  }
}

function sqliteUsers(s: SqliteStore): UserStore {
  return {
    addUser: async (u) => s.inTransaction(() => sqliteAdd(s, u)),
    addUsers: async (users) => {
      const out: (StoreError | undefined)[] = [];
      s.inTransaction(() => {
        for (const u of users) {
          try {
            sqliteAdd(s, u);
            out.push(undefined);
          } catch (err) {
            if (!(err instanceof StoreError)) throw err;
            out.push(err);
          }
        }
      });
      return out;
    },
    setUserHa1: async (u, d, ha1) => s.setUserHa1(u, d, ha1),
    deleteUser: async (u, d) => s.deleteUser(u, d),
    getUser: async (u, d) => s.getUser(u, d),
    listUsers: async (d) => s.listUsers(d),
    close: async () => s.close(),
  };
}

function redisUsers(s: RedisStore): UserStore {
  const add = (u: NewUser) => s.addUser(u.username, u.domain, u.ha1, u.phones);
  return {
    addUser: add,
    addUsers: async (users) => {
      const out: (StoreError | undefined)[] = [];
      for (const u of users) {
        try {
          await add(u);
          out.push(undefined);
        } catch (err) {
          if (!(err instanceof StoreError) || err.code === 'unavailable') throw err;
          out.push(err);
        }
      }
      return out;
    },
    setUserHa1: (u, d, ha1) => s.setUserHa1(u, d, ha1),
    deleteUser: (u, d) => s.deleteUser(u, d),
    getUser: (u, d) => s.getUser(u, d),
    listUsers: (d) => s.listUsers(d),
    close: () => s.close(),
  };
}

/**
 * The users of `config`'s store (`store.type`): `data_dir/rtcedge.db`, or Redis.
 * @throws StoreError as openStore, or 'unavailable' when Redis cannot be reached.
 */
export async function openUserStore(config: Pick<Config, 'data_dir' | 'store'>): Promise<UserStore> {
  if (config.store.type === 'redis') return redisUsers(await new RedisStore(config.store.redis).connect());
  return sqliteUsers(openStore(config));
}
