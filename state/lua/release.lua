-- release. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease; ARGV: token
-- A lease that is not a string is not this token's: left for the next load or claim to handle.
if redis.call('TYPE', KEYS[5])['ok'] ~= 'string' then return 0 end
local held = redis.call('GET', KEYS[5])
if string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then
  redis.call('DEL', KEYS[5])
  return 1
end
return 0
