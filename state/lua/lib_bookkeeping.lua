-- Library (prepended to the scripts that check a fencing token).
-- KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease.
-- Why the fence or lease key cannot be trusted, or false. This store only ever writes a
-- positive decimal integer below 2^63 (so INCR works) to the fence, and a string to the lease.
local function fence_damage()
  local kind = redis.call('TYPE', KEYS[4])['ok']
  if kind == 'none' then return false end
  if kind ~= 'string' then return 'its fence key is a ' .. kind .. ', not a string' end
  local value = redis.call('GET', KEYS[4])
  if #value > 18 or not string.match(value, '^[1-9]%d*$') then
    return 'its fence key is not a positive integer'
  end
  return false
end
local function lease_damage()
  local kind = redis.call('TYPE', KEYS[5])['ok']
  if kind == 'none' or kind == 'string' then return false end
  return 'its lease key is a ' .. kind .. ', not a string'
end
local function bookkeeping_damage()
  return fence_damage() or lease_damage()
end
