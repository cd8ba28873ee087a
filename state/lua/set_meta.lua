-- set_meta (mark_ended). KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease
-- ARGV: 1 token, 2 ttl_ms, 3 lease_ms, 4.. field/value pairs
local damage = bookkeeping_damage()
if damage then return {'corrupt', damage} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {'stale', ''} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
push_chunked('HSET', KEYS[1], 4, #ARGV)
refresh(ARGV[2], ARGV[1], ARGV[3])
return {'ok', ''}
