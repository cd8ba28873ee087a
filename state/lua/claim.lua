-- claim. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease, 6 q:meta, 7 q:items, 8 q:snap
-- ARGV: owner, lease_ms, ttl_ms
-- Returns {'ok', token, previous lease or nil} or {'corrupt', why, keys moved to quarantine}.
local damage = bookkeeping_damage()
if damage then
  local moved = quarantine(ARGV[3])
  return {'corrupt', damage, moved}
end
local token
if redis.call('EXISTS', KEYS[4]) == 1 then
  token = redis.call('INCR', KEYS[4])
else
  local now = redis.call('TIME')
  token = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('SET', KEYS[4], string.format('%d', token))
end
local previous = redis.call('GET', KEYS[5])
redis.call('SET', KEYS[5], string.format('%d', token) .. ':' .. ARGV[1], 'PX', ARGV[2])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return {'ok', token, previous}
