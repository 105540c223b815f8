-- pool_return: credit units a partition sent back (retired, or beyond its size), once per ticket.
-- KEYS[1]  pool stock   KEYS[2]  back counter of the source partition
-- KEYS[3]  tickets hash; all three share the pool's hash tag
-- ARGV[1]  ticket id (text, distinct from pool_take tickets)   ARGV[2]  units, an integer >= 0
-- Returns 1 credited, 0 ticket seen before (nothing changes), -2 bad units, -3 no pool.
-- Until this runs, the units are in flight: returned - back.
local units = tonumber(ARGV[2])
if units == nil or units < 0 or units ~= math.floor(units) then
  return -2
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -3
end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[3], ARGV[1], units)
redis.call('INCRBY', KEYS[1], units)
redis.call('INCRBY', KEYS[2], units)
return 1
