-- partition_retire: take a partition offline and hand its stock back (to the pool).
-- KEYS[1]  sub-domain A stock   KEYS[2]  sub-domain B stock
-- KEYS[3]  returned counter     KEYS[4]  meta hash
-- Returns {status, units}: status 1 retired now (units = A + B moved to `returned`),
--   0 already retired (nothing changes), -3 no partition. Later deductions answer -4 and
--   later injections bounce; the app credits the units to the pool (pool_return).
local act = tonumber(redis.call('HGET', KEYS[4], 'active'))
if act == nil then
  return {-3, 0}
end
if act < 0 then
  return {0, 0}
end
local units = tonumber(redis.call('GET', KEYS[1])) + tonumber(redis.call('GET', KEYS[2]))
redis.call('SET', KEYS[1], 0)
redis.call('SET', KEYS[2], 0)
redis.call('INCRBY', KEYS[3], units)
redis.call('HSET', KEYS[4], 'active', -1)
return {1, units}
