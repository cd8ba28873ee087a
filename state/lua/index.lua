-- index. KEYS: 1 a caller index; ARGV: 1 session id, 2 score (created_at), 3 entries kept, 4 ttl_ms
-- A key of another type there is deleted first (its type is returned, for the log): the index
-- only holds ids derivable from the sessions' meta, and a broken one must not stop indexing.
local kind = redis.call('TYPE', KEYS[1])['ok']
local replaced = false
if kind ~= 'none' and kind ~= 'zset' then
  redis.call('DEL', KEYS[1])
  replaced = kind
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return replaced
