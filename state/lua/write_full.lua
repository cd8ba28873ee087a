-- write_full (create, rewrite). KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease
-- ARGV: 1 token, 2 ttl_ms, 3 lease_ms, 4 item count, 5 snap body, 6.. meta field/value pairs
-- ('_snap_n' is keys.SNAP_N: the meta field counting the items in snap.)
local damage = bookkeeping_damage()
if damage then return {'corrupt', damage} end
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return {'stale', ''} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[3], ARGV[5]) end
redis.call('HSET', KEYS[1], '_snap_n', ARGV[4])
push_chunked('HSET', KEYS[1], 6, #ARGV)
refresh(ARGV[2], ARGV[1], ARGV[3])
return {'ok', ''}
