-- partition_status: what the registry refresh reads of one partition (read-only).
-- KEYS[1]  sub-domain A stock   KEYS[2]  sub-domain B stock   KEYS[3]  meta hash
-- KEYS[4]  sold counter
-- Returns {A, B, active, pend0, pend1, sold} (active -1: retired; pendN: epoch of the refill
--   ticket out for that sub-domain, 0: none; sold: units this partition has sold so far, which
--   only grows, so the app can bound what remains unsold anywhere), or six -3 when there is no
--   partition.
local act = tonumber(redis.call('HGET', KEYS[3], 'active'))
if act == nil then
  return {-3, -3, -3, -3, -3, -3}
end
local meta = redis.call('HMGET', KEYS[3], 'pend0', 'pend1')
return {tonumber(redis.call('GET', KEYS[1])), tonumber(redis.call('GET', KEYS[2])), act,
        tonumber(meta[1]), tonumber(meta[2]), tonumber(redis.call('GET', KEYS[4]))}
