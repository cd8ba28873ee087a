-- Library (for the scripts that write): TTL refresh and chunked variadic commands.
-- Refresh every key's TTL; the lease's only while ``token`` holds it.
local function refresh(ttl, token, lease_ms)
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end
  local held = redis.call('GET', KEYS[5])
  if held and string.sub(held, 1, #token + 1) == token .. ':' then
    redis.call('PEXPIRE', KEYS[5], lease_ms)
  end
end
-- ``cmd key ARGV[first..last]`` in chunks of 1,000 (unpack has a stack limit).
local function push_chunked(cmd, key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + 999, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
