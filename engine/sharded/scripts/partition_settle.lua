-- partition_settle: forget returns in a partition's outbox that the pool has credited (recovery).
-- KEYS[1]  returned counter   KEYS[2]  outbox; both share the partition's hash tag
-- ARGV[1]  the pool's back counter of this partition, as recovery read it before this call
-- ARGV[2], ARGV[3], ...  tickets recovery saw credited (pool_return answered 1 or 0)
-- Returns the number of outbox entries removed. When returned <= ARGV[1], every return recorded
--   here has been credited (back only grows and never passes returned), so the whole outbox
--   goes; otherwise only the tickets named.
local back = tonumber(ARGV[1])
if back ~= nil and (tonumber(redis.call('GET', KEYS[1])) or 0) <= back then
  local n = redis.call('HLEN', KEYS[2])
  redis.call('DEL', KEYS[2])
  return n
end
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('HDEL', KEYS[2], ARGV[i])
end
return n
