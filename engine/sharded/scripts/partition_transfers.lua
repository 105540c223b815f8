-- partition_transfers: what recovery reads of one partition's transfers to the pool (read-only).
-- KEYS[1]  received counter   KEYS[2]  returned counter
-- KEYS[3]  outbox (hash: return ticket -> units sent back to the pool); all share the partition's tag
-- Returns {received, returned, ticket, units, ticket, units, ...}: both counters (0 when missing),
--   then every return recorded here (by partition_retire or a bounce in partition_inject) that
--   recovery has not settled yet; the pool may or may not have credited it (pool_return).
local reply = {tonumber(redis.call('GET', KEYS[1])) or 0, tonumber(redis.call('GET', KEYS[2])) or 0}
local out = redis.call('HGETALL', KEYS[3])
for i = 1, #out do
  reply[#reply + 1] = out[i]
end
return reply
