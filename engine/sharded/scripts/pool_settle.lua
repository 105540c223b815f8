-- pool_settle: forget grants in a partition's outbox that the partition has applied (recovery).
-- KEYS[1]  issued counter of the partition   KEYS[2]  its outbox; both share the pool's hash tag
-- ARGV[1]  the partition's received counter, as recovery read it before this call
-- ARGV[2], ARGV[3], ...  tickets recovery saw applied (partition_inject answered 1 or 0)
-- Returns the number of outbox entries removed. When issued <= ARGV[1], every grant recorded
--   here has been received (received only grows and never passes issued), so the whole outbox
--   goes; otherwise only the tickets named.
local received = tonumber(ARGV[1])
if received ~= nil and (tonumber(redis.call('GET', KEYS[1])) or 0) <= received then
  local n = redis.call('HLEN', KEYS[2])
  redis.call('DEL', KEYS[2])
  return n
end
local n = 0
for i = 2, #ARGV do
  n = n + redis.call('HDEL', KEYS[2], ARGV[i])
end
return n
