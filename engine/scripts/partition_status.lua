-- partition_status: what the registry refresh reads of one partition (read-only).
-- KEYS[1]  sub-domain A stock   KEYS[2]  sub-domain B stock   KEYS[3]  meta hash
-- Returns {A, B, active} (active -1: retired), or {-3, -3, -3} when there is no partition.
local act = tonumber(redis.call('HGET', KEYS[3], 'active'))
if act == nil then
  return {-3, -3, -3}
end
return {tonumber(redis.call('GET', KEYS[1])), tonumber(redis.call('GET', KEYS[2])), act}
