-- append. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease
-- ARGV: 1 token, 2 base_len, 3 k, 4 ttl_ms, 5 lease_ms, 6 snapshot_every,
--       7 the caller's belief of _snap_n (-1: unknown), 8..7+k items, then meta field/value pairs
-- Returns {status, item count, _snap_n}.
-- ('_snap_n' is keys.SNAP_N: the meta field counting the items in snap.)
--
-- Seven Redis commands on the common path (eight when a snapshot exists): MGET of fence and
-- lease (both checked here, TYPE only on the rare path where MGET cannot tell absent from
-- damaged), PEXPIRE meta (its 0 is the "missing" check), RPUSH (its reply is the list length:
-- no LLEN; undone on a count mismatch or a duplicate, before anything else is written), HSET,
-- PEXPIRE of items, fence, snap (if any) and the lease (if ours). _snap_n is read (HGET) only
-- when the caller does not know it or its belief does not add up.
local token = ARGV[1]
local seen = redis.call('MGET', KEYS[4], KEYS[5])
local fence, lease = seen[1], seen[2]
if fence then
  if #fence > 18 or not string.match(fence, '^[1-9]%d*$') then
    return {'corrupt', 'its fence key is not a positive integer', 0}
  end
else
  local damage = fence_damage()
  if damage then return {'corrupt', damage, 0} end
end
if not lease then
  local damage = lease_damage()
  if damage then return {'corrupt', damage, 0} end
end
if fence ~= token then return {'stale', 0, 0} end
local ttl = ARGV[4]
if redis.call('PEXPIRE', KEYS[1], ttl) == 0 then return {'missing', 0, 0} end
local base = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local belief = tonumber(ARGV[7])
local snap_n
if belief >= 0 then
  snap_n = belief
else
  snap_n = tonumber(redis.call('HGET', KEYS[1], '_snap_n') or '0')
end
local first = 8
local tail
if k > 0 then
  local i = first
  while i <= first + k - 1 do
    local j = math.min(i + 999, first + k - 1)
    tail = redis.call('RPUSH', KEYS[2], unpack(ARGV, i, j))
    i = j + 1
  end
else
  tail = redis.call('LLEN', KEYS[2])
end
local before = snap_n + tail - k
if before ~= base and belief >= 0 then
  -- the caller's belief may be out of date: read the real count before deciding
  snap_n = tonumber(redis.call('HGET', KEYS[1], '_snap_n') or '0')
  before = snap_n + tail - k
end
local status = 'ok'
local n = before + k
if before ~= base then
  if k > 0 then
    if tail == k then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], 0, tail - k - 1) end
  end
  tail = tail - k
  if k > 0 and before == base + k then
    status = 'dup'
    n = before
  else
    return {'mismatch', before, snap_n}
  end
else
  local i = first + k
  while i <= #ARGV do
    local j = math.min(i + 999, #ARGV)
    local reply = redis.pcall('HSET', KEYS[1], unpack(ARGV, i, j))
    if type(reply) == 'table' and reply.err then
      -- (meta is not a hash: undo the push, then fail as a plain HSET would have)
      if k > 0 then
        if tail == k then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], 0, tail - k - 1) end
      end
      return reply
    end
    i = j + 1
  end
  if tail >= tonumber(ARGV[6]) then
    local body = table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ',')
    if snap_n > 0 then body = ',' .. body end
    redis.call('APPEND', KEYS[3], body)
    redis.call('DEL', KEYS[2])
    snap_n = n
    tail = 0
    redis.call('HSET', KEYS[1], '_snap_n', n)
  end
end
if tail > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('PEXPIRE', KEYS[4], ttl)
if snap_n > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
if lease and string.sub(lease, 1, #token + 1) == token .. ':' then
  redis.call('PEXPIRE', KEYS[5], ARGV[5])
end
return {status, n, snap_n}
