-- renew. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease; ARGV: token, owner, lease_ms
local damage = bookkeeping_damage()
if damage then return {'corrupt', damage} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {'stale', ''} end
redis.call('SET', KEYS[5], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return {'ok', ''}
