-- quarantine. KEYS: 1 meta, 2 items, 3 snap, 4 fence, 5 lease, 6 q:meta, 7 q:items, 8 q:snap
-- ARGV: ttl_ms. Returns the number of keys moved.
return quarantine(ARGV[1])
