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
local function usersChanged() redis.call('INCR', p .. 'users:generation') end
`;

/**
 * Binding changes in order (BindingStore.commitBindings). ARGV[2]: the
 * committing node's id, or '' for none; ARGV[3]: that node's commit number;
 * ARGV[4..]: five per change, `op` (put | delete | deleteAll), AOR, contact
 * URI, expiry (unix s) and the record (JSON), '' where the op has none (flat
 * arguments: nothing to decode here, no JSON inside JSON on the wire). A put
 * stores the record under its own key with EXAT = its expiry (Redis drops it
 * then: no sweeper needed for the records) and adds the contact to the AOR's
 * index (a sorted set scored by the time it was first added, ms, for the
 * first-added order); an expiry already past deletes.
 *
 * With a node id, the script then announces the commit to the other live
 * nodes, in the same atomic step (so every node sees commits in commit
 * order): the nodes listed in `<prefix>nodes` (id → end of its heartbeat,
 * unix ms, see {@link NODE_HEARTBEAT}; entries past their end are removed
 * here) whose channel `<prefix>bindings:<id>` has a subscriber now. Each gets
 * on its channel `<node> <commit number>\n` and a JSON object mapping each
 * changed AOR to the array of its records after the commit (the records are
 * joined as stored, not decoded and encoded again). Nothing is published on
 * a channel only other clients listen to, and a node alone publishes nothing.
 * Returns `{ changes applied, { ids of the nodes announced to } }`.
 */
export const COMMIT_BINDINGS = `${KEYS_LUA}
local node, commitNo = ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1])
local nowMs = now * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen, aors = {}, {}
for i = 4, #ARGV, 5 do
  local op, aor, contact = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local idx = aorKey(aor)
  if op == 'put' then
    local key = bindingKey(aor, contact)
    local expires = tonumber(ARGV[i + 3])
    if expires <= now then
      redis.call('DEL', key)
      redis.call('ZREM', idx, contact)
    else
      redis.call('SET', key, ARGV[i + 4], 'EXAT', string.format('%d', expires))
      redis.call('ZADD', idx, 'NX', nowMs, contact)
      redis.call('SADD', p .. 'aors', aor)
    end
  elseif op == 'delete' then
    redis.call('DEL', bindingKey(aor, contact))
    redis.call('ZREM', idx, contact)
  else
    for _, u in ipairs(redis.call('ZRANGE', idx, 0, -1)) do redis.call('DEL', bindingKey(aor, u)) end
    redis.call('DEL', idx)
  end
  if redis.call('EXISTS', idx) == 0 then redis.call('SREM', p .. 'aors', aor) end
  if not seen[aor] then
    seen[aor] = true
    aors[#aors + 1] = aor
  end
end
-- The other live nodes: a heartbeat not yet past and a subscriber on their channel.
local targets = {}
if node ~= '' then
  local nodes = redis.call('HGETALL', p .. 'nodes')
  local live, channels = {}, {}
  for i = 1, #nodes, 2 do
    local id, untilMs = nodes[i], tonumber(nodes[i + 1])
    if not untilMs or untilMs <= nowMs then
      redis.call('HDEL', p .. 'nodes', id)
    elseif id ~= node then
      live[#live + 1] = id
      channels[#channels + 1] = p .. 'bindings:' .. id
    end
  end
  if #live > 0 then
    local subs = redis.call('PUBSUB', 'NUMSUB', unpack(channels))
    for i, id in ipairs(live) do
      if subs[2 * i] > 0 then targets[#targets + 1] = id end
    end
  end
end
if #targets > 0 then
  local parts = {}
  for _, aor in ipairs(aors) do
    local list = {}
    for _, u in ipairs(redis.call('ZRANGE', aorKey(aor), 0, -1)) do
      local v = redis.call('GET', bindingKey(aor, u))
      if v then list[#list + 1] = v end
    end
    parts[#parts + 1] = cjson.encode(aor) .. ':[' .. table.concat(list, ',') .. ']'
  end
  local text = node .. ' ' .. commitNo .. '\\n{' .. table.concat(parts, ',') .. '}'
  for _, id in ipairs(targets) do redis.call('PUBLISH', p .. 'bindings:' .. id, text) end
end
return { (#ARGV - 3) / 5, targets }
`;

/**
 * A node's heartbeat in `<prefix>nodes` (the live nodes COMMIT_BINDINGS
 * announces to). ARGV[2]: the node id; ARGV[3]: how long the entry counts
 * after this heartbeat, ms (Redis's clock). Returns 1 when the entry was
 * there and not past its end (the node has been announced every commit since
 * its previous heartbeat), 0 when it was missing or past (announcements may
 * have been skipped: the node must read every binding again).
 */
export const NODE_HEARTBEAT = `${KEYS_LUA}
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local before = tonumber(redis.call('HGET', p .. 'nodes', ARGV[2]))
redis.call('HSET', p .. 'nodes', ARGV[2], nowMs + tonumber(ARGV[3]))
if before and before > nowMs then return 1 end
return 0
`;

/**
 * Bindings of AORs. ARGV[2..]: AORs. Returns, per AOR, the list of its binding
 * records (JSON) in first-added order; index entries whose record Redis already
 * expired are skipped (and left for {@link SWEEP_AORS}).
 */
export const LIST_BINDINGS = `${KEYS_LUA}
local out = {}
for i = 2, #ARGV do
  local aor = ARGV[i]
  local list = {}
  for _, u in ipairs(redis.call('ZRANGE', aorKey(aor), 0, -1)) do
    local v = redis.call('GET', bindingKey(aor, u))
    if v then list[#list + 1] = v end
  end
  out[#out + 1] = list
end
return out
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
  if redis.call('EXISTS', idx) == 0 then redis.call('SREM', p .. 'aors', aor) end
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

/**
 * Admit a call of a user against limits counted across nodes (call-limits.ts
 * semantics). ARGV[2] user, [3] Call-ID, [4] max concurrent (0: off), [5] max
 * attempts per minute (0: off), [6] ms after which an active call whose end
 * was not seen is forgotten. Returns `{'ok'}`, `{'busy'}` or `{'rate', ms until
 * the oldest attempt leaves the minute}`.
 */
export const ADMIT_CALL = `
local p, user, callId = ARGV[1], ARGV[2], ARGV[3]
local maxConcurrent, maxPerMinute, maxCallMs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local calls, attempts = p .. 'calls:' .. user, p .. 'attempts:' .. user
redis.call('ZREMRANGEBYSCORE', calls, '-inf', now - maxCallMs)
if redis.call('ZSCORE', calls, callId) then return {'ok'} end
if maxPerMinute > 0 then
  redis.call('ZREMRANGEBYSCORE', attempts, '-inf', now - 60000)
  if redis.call('ZCARD', attempts) >= maxPerMinute then
    local oldest = redis.call('ZRANGE', attempts, 0, 0, 'WITHSCORES')
    return {'rate', tostring(tonumber(oldest[2]) + 60000 - now)}
  end
end
if maxConcurrent > 0 and redis.call('ZCARD', calls) >= maxConcurrent then return {'busy'} end
if maxPerMinute > 0 then
  redis.call('ZADD', attempts, now, callId .. ' ' .. now)
  redis.call('PEXPIRE', attempts, 60000)
end
redis.call('ZADD', calls, now, callId)
redis.call('PEXPIRE', calls, maxCallMs)
return {'ok'}
`;
