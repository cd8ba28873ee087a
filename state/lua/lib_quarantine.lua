-- Library (after lib_bookkeeping.lua). KEYS 6-8: q:meta, q:items, q:snap (same hash tag, same slot).
-- Rename meta, items and snap to their quarantine names (KEYS 6-8), replacing an earlier
-- quarantined copy only when there is something to move (a repeated call keeps the evidence),
-- and delete a damaged fence or lease: they hold no call data, and left in place they would
-- make every later claim of this id fail. Returns the number of keys moved.
local function quarantine(ttl)
  local present = {}
  local moved = 0
  for i = 1, 3 do
    present[i] = redis.call('EXISTS', KEYS[i]) == 1
    if present[i] then moved = moved + 1 end
  end
  if moved > 0 then
    for i = 1, 3 do
      if present[i] then
        redis.call('RENAME', KEYS[i], KEYS[i + 5])
        redis.call('PEXPIRE', KEYS[i + 5], ttl)
      else
        redis.call('DEL', KEYS[i + 5])
      end
    end
  end
  if fence_damage() then redis.call('DEL', KEYS[4]) end
  if lease_damage() then redis.call('DEL', KEYS[5]) end
  return moved
end
