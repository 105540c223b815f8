-- partition_retire: take a partition offline and hand its stock back (to the pool).
-- KEYS[1]  sub-domain A stock   KEYS[2]  sub-domain B stock
-- KEYS[3]  returned counter     KEYS[4]  meta hash
-- KEYS[5]  outbox (hash: return ticket -> units sent back to the pool, kept until recovery settles it)
-- ARGV[1]  the return ticket (text) under which the units go back to the pool
-- Returns {status, units}: status 1 retired now (units = A + B moved to `returned` and, when
--   there are any, recorded in the outbox under ARGV[1]),
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
if units > 0 then
  redis.call('HSET', KEYS[5], ARGV[1], units)
end
redis.call('HSET', KEYS[4], 'active', -1)
return {1, units}
