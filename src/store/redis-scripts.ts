/**
 * Lua scripts the Redis store runs server-side, so that each multi-key change
 * is atomic (Redis runs a script alone) and costs one round trip. Every change
 * to users bumps `users:generation` (the credential caches of the nodes watch it). Every
 * script gets the key prefix as ARGV[1] and builds key names from it (the
 * layout is in redis-store.ts); they do not run on Redis Cluster, only on one
 * primary (with or without Sentinel).
 */

/** Key layout shared by every script (Lua helpers). */
const KEYS_LUA = `
local p = ARGV[1]
local function userKey(d, u) return p .. 'user:' .. d .. ':' .. u end
local function bindingKey(aor, c) return p .. 'binding:' .. aor .. '\\n' .. c end
local function aorKey(aor) return p .. 'aor:' .. aor end
local function contactKey(c) return p .. 'contact:' .. c end
local function versionKey(aor) return p .. 'aor-version:' .. aor end
local function bindingsOf(aor, known)
  local list = {}
  for _, u in ipairs(redis.call('ZRANGE', aorKey(aor), 0, -1)) do
    local v = known and known[u] or redis.call('GET', bindingKey(aor, u))
    if v then list[#list + 1] = v end
  end
  return list
end
local function usersChanged() redis.call('INCR', p .. 'users:generation') end
`;

/**
 * Binding changes in order (BindingStore.commitBindings). ARGV[2]: '1' to
 * return each changed AOR's records after the commit, '' for nothing;
 * ARGV[3..]: five per change, `op` (put | delete | deleteAll), AOR, contact
 * URI, expiry (unix s) and the record (JSON), '' where the op has none (flat
 * arguments: nothing to decode here, no JSON inside JSON on the wire). A put
 * stores the record under its own key with EXAT = its expiry (Redis drops it
 * then: no sweeper needed for the records), adds the contact to the AOR's
 * index (a sorted set scored by the time it was first added, ms, for the
 * first-added order) and points the contact's key at the AOR with the same
 * expiry; an expiry already past deletes. A removal deletes the contact's key
 * only while it still points at this AOR.
 *
 * The records returned with ARGV[2] = '1' are read after the changes, so a
 * node with client-side caching on (CLIENT TRACKING ... NOLOOP, see
 * redis-tracking.ts) tracks those keys again: its own writes removed them from
 * Redis's tracking table, and it is told when another client changes them.
 * Every changed AOR's `aor-version:<aor>` is bumped (INCR; expiring with the
 * AOR's latest binding, EXAT only ever later) or deleted with its last
 * binding: the one key a node tracks per cached AOR. A put of a contact the
 * AOR already has (a refresh) adds nothing to the AOR set and checks no key's
 * existence: 7 commands, with the TIME and the ZRANGE that reads the records back (those
 * this commit wrote are answered from its arguments, not read again).
 * Returns `{ changes applied, { AOR, ... }, { version, ... }, { { record, ... }, ... } }`
 * (a version nil where the AOR has no binding left).
 */
export const COMMIT_BINDINGS = `${KEYS_LUA}
local t = redis.call('TIME')
local now = tonumber(t[1])
local nowMs = now * 1000 + math.floor(tonumber(t[2]) / 1000)
local function dropContact(aor, contact)
  if redis.call('GET', contactKey(contact)) == aor then redis.call('DEL', contactKey(contact)) end
end
local seen, aors, untilS, alive, written = {}, {}, {}, {}, {}
for i = 3, #ARGV, 5 do
  local op, aor, contact = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local idx = aorKey(aor)
  alive[aor] = nil
  if not written[aor] or op == 'deleteAll' then written[aor] = {} end
  written[aor][contact] = nil
  if op == 'put' then
    local key = bindingKey(aor, contact)
    local expires = tonumber(ARGV[i + 3])
    if expires <= now then
      redis.call('DEL', key)
      redis.call('ZREM', idx, contact)
      dropContact(aor, contact)
    else
      local at = string.format('%d', expires)
      if not untilS[aor] or expires > untilS[aor] then untilS[aor] = expires end
      redis.call('SET', key, ARGV[i + 4], 'EXAT', at)
      -- A new index entry may be a new index: the AOR set lists every AOR with one (kept so by every script).
      if redis.call('ZADD', idx, 'NX', nowMs, contact) == 1 then redis.call('SADD', p .. 'aors', aor) end
      redis.call('SET', contactKey(contact), aor, 'EXAT', at)
      alive[aor] = true
      written[aor][contact] = ARGV[i + 4]
    end
  elseif op == 'delete' then
    redis.call('DEL', bindingKey(aor, contact))
    redis.call('ZREM', idx, contact)
    dropContact(aor, contact)
  else
    for _, u in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
      redis.call('DEL', bindingKey(aor, u))
      dropContact(aor, u)
    end
    redis.call('DEL', idx)
  end
  if not alive[aor] and redis.call('EXISTS', idx) == 0 then redis.call('SREM', p .. 'aors', aor) end
  if not seen[aor] then
    seen[aor] = true
    aors[#aors + 1] = aor
  end
end
local versions = {}
for i, aor in ipairs(aors) do
  local ver = versionKey(aor)
  if not alive[aor] and redis.call('EXISTS', aorKey(aor)) == 0 then
    redis.call('DEL', ver)
  else
    versions[i] = redis.call('INCR', ver)
    if untilS[aor] then
      -- INCR keeps a TTL and makes a new key without one (GT never sets one on a key without: a
      -- version key made by a removal alone, which no put made first, stays until SWEEP_AORS).
      local at = string.format('%d', untilS[aor])
      if versions[i] == 1 then redis.call('EXPIREAT', ver, at) else redis.call('EXPIREAT', ver, at, 'GT') end
    end
  end
end
local lists = {}
if ARGV[2] == '1' then
  for i, aor in ipairs(aors) do
    versions[i] = versions[i] and string.format('%d', versions[i]) or false
    lists[i] = bindingsOf(aor, written[aor])
  end
else
  aors, versions = {}, {}
end
return { (#ARGV - 2) / 5, aors, versions, lists }
`;

/**
 * Bindings of AORs. ARGV[2..]: AORs. Returns, per AOR, the list of its binding
 * records (JSON) in first-added order; index entries whose record Redis already
 * expired are skipped (and left for {@link SWEEP_AORS}).
 */
export const LIST_BINDINGS = `${KEYS_LUA}
local out = {}
for i = 2, #ARGV do out[#out + 1] = bindingsOf(ARGV[i]) end
return out
`;

/**
 * One AOR's version and records, read together (RedisStore.readTracked
 * compares the version with the one its tracked GET saw). ARGV[2]: the AOR.
 * Returns `{ version or nil, { record, ... } }` (records as {@link LIST_BINDINGS}).
 */
export const READ_AOR = `${KEYS_LUA}
return { redis.call('GET', versionKey(ARGV[2])), bindingsOf(ARGV[2]) }
`;

/**
 * Index clean-up after Redis expired binding records. ARGV[2..]: AORs. Removes
 * index entries without a record, and AORs without entries from the AOR set.
 * Safe with several nodes running it at once: it only removes what is gone.
 * Returns the number of entries removed.
 */
export const SWEEP_AORS = `${KEYS_LUA}
local removed = 0
for i = 2, #ARGV do
  local aor = ARGV[i]
  local idx = aorKey(aor)
  for _, u in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if redis.call('EXISTS', bindingKey(aor, u)) == 0 then
      redis.call('ZREM', idx, u)
      removed = removed + 1
    end
  end
  if redis.call('EXISTS', idx) == 0 then
    redis.call('SREM', p .. 'aors', aor)
    redis.call('DEL', versionKey(aor))
  end
end
return removed
`;

/**
 * Phone numbers of a user, checked and replaced (Lua helper). Returns nil when
 * done, else an error text (`exists phone number N belongs to user@domain`). A number maps to `user@domain`.
 */
const SET_PHONES_LUA = `
local function setPhones(d, u, numbers)
  local owner = u .. '@' .. d
  for _, n in ipairs(numbers) do
    local o = redis.call('GET', p .. 'phone:' .. n)
    if o and o ~= owner then return 'exists phone number ' .. n .. ' belongs to ' .. o end
  end
  local mine = p .. 'phones:' .. d .. ':' .. u
  for _, n in ipairs(redis.call('SMEMBERS', mine)) do redis.call('DEL', p .. 'phone:' .. n) end
  redis.call('DEL', mine)
  for _, n in ipairs(numbers) do
    redis.call('SET', p .. 'phone:' .. n, owner)
    redis.call('SADD', mine, n)
  end
  return nil
end
`;

/**
 * Add a user with their phone numbers, all or nothing. ARGV[2] domain, [3]
 * username, [4] JSON of the user hash's fields, [5] JSON list of numbers.
 * Returns 'ok' or an error text starting with the StoreError code.
 */
export const ADD_USER = `${KEYS_LUA}${SET_PHONES_LUA}
local d, u = ARGV[2], ARGV[3]
local key = userKey(d, u)
if redis.call('EXISTS', key) == 1 then return 'exists user ' .. u .. '@' .. d .. ' already exists' end
local numbers = cjson.decode(ARGV[5])
for _, n in ipairs(numbers) do
  local o = redis.call('GET', p .. 'phone:' .. n)
  if o then return 'exists phone number ' .. n .. ' belongs to ' .. o end
end
local fields = cjson.decode(ARGV[4])
for k, v in pairs(fields) do redis.call('HSET', key, k, v) end
redis.call('SET', p .. 'userhash:' .. d .. ':' .. fields.userhash, u)
redis.call('SADD', p .. 'users:' .. d, u)
redis.call('SADD', p .. 'domains', d)
setPhones(d, u, numbers)
usersChanged()
return 'ok'
`;

/** Replace a user's phone numbers. ARGV[2] domain, [3] username, [4] JSON list. Returns 'ok' or an error text. */
export const SET_PHONES = `${KEYS_LUA}${SET_PHONES_LUA}
local d, u = ARGV[2], ARGV[3]
if redis.call('EXISTS', userKey(d, u)) == 0 then return 'not_found no user ' .. u .. '@' .. d end
local err = setPhones(d, u, cjson.decode(ARGV[4]))
if err then return err end
usersChanged()
return 'ok'
`;

/**
 * Replace a user's HA1 set. ARGV[2] domain, [3] username, [4] JSON of the hash's
 * credential fields (absent algorithms removed). Returns 'ok' or an error text.
 */
export const SET_HA1 = `${KEYS_LUA}
local d, u = ARGV[2], ARGV[3]
local key = userKey(d, u)
if redis.call('EXISTS', key) == 0 then return 'not_found no user ' .. u .. '@' .. d end
redis.call('HDEL', key, 'ha1_md5', 'ha1_sha256', 'ha1_sha512_256')
for k, v in pairs(cjson.decode(ARGV[4])) do redis.call('HSET', key, k, v) end
usersChanged()
return 'ok'
`;

/** Delete a user, their USERHASH entry and phone numbers. ARGV[2] domain, [3] username. Returns 1 or 0. */
export const DELETE_USER = `${KEYS_LUA}${SET_PHONES_LUA}
local d, u = ARGV[2], ARGV[3]
local key = userKey(d, u)
if redis.call('EXISTS', key) == 0 then return 0 end
local h = redis.call('HGET', key, 'userhash')
if h then redis.call('DEL', p .. 'userhash:' .. d .. ':' .. h) end
setPhones(d, u, {})
redis.call('DEL', key)
redis.call('SREM', p .. 'users:' .. d, u)
if redis.call('SCARD', p .. 'users:' .. d) == 0 then redis.call('SREM', p .. 'domains', d) end
usersChanged()
return 1
`;

