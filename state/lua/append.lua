-- append. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease
-- ARGV: 1 token, 2 base_len, 3 k, 4 ttl_ms, 5 lease_ms, 6 snapshot_every,
--       7..6+k items, then meta field/value pairs
-- ('_snap_n' is keys.SNAP_N: the meta field counting the items in snap.)
local token = ARGV[1]
local damage = bookkeeping_damage()
if damage then return {'corrupt', damage} end
if redis.call('GET', KEYS[4]) ~= token then return {'stale', 0} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', 0} end
local snap_n = tonumber(redis.call('HGET', KEYS[1], '_snap_n') or '0')
local tail = redis.call('LLEN', KEYS[2])
local n = snap_n + tail
local base = tonumber(ARGV[2])
local k = tonumber(ARGV[3])
local status = 'ok'
if n == base then
  push_chunked('RPUSH', KEYS[2], 7, 6 + k)
  push_chunked('HSET', KEYS[1], 7 + k, #ARGV)
  n = n + k
  tail = tail + k
  if tail >= tonumber(ARGV[6]) then
    local body = table.concat(redis.call('LRANGE', KEYS[2], 0, -1), ',')
    if snap_n > 0 then body = ',' .. body end
    redis.call('APPEND', KEYS[3], body)
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], '_snap_n', n)
  end
elseif k > 0 and n == base + k then
  status = 'dup'
else
  return {'mismatch', n}
end
refresh(ARGV[4], token, ARGV[5])
return {status, n}
