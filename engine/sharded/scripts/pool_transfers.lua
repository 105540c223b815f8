-- pool_transfers: what recovery reads of the pool's transfers to one partition (read-only).
-- KEYS[1]  issued counter of the partition   KEYS[2]  back counter of the partition
-- KEYS[3]  the partition's outbox (ticket -> "grant|sub|flag"); all share the pool's hash tag
-- Returns {issued, back, ticket, record, ticket, record, ...}: both counters (0 when missing), then
--   every grant pool_take recorded for this partition that recovery has not settled yet; the
--   partition may or may not have applied it (partition_inject).
local reply = {tonumber(redis.call('GET', KEYS[1])) or 0, tonumber(redis.call('GET', KEYS[2])) or 0}
local out = redis.call('HGETALL', KEYS[3])
for i = 1, #out do
  reply[#reply + 1] = out[i]
end
return reply
