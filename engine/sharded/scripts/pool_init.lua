-- pool_init: create the pre-allocation pool, never overwriting.
-- KEYS[1]  pool stock (the pool's own hash tag)
-- ARGV[1]  units, an integer >= 0
-- Returns 1 when created, 0 when it existed (nothing changes), -2 bad units.
local units = tonumber(ARGV[1])
if units == nil or units < 0 or units ~= math.floor(units) then
  return -2
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], units)
return 1
