-- pool_status: units left in the pre-allocation pool (read-only).
-- KEYS[1]  pool stock
-- Returns the units, or -3 when there is no pool.
local pool = tonumber(redis.call('GET', KEYS[1]))
if pool == nil then
  return -3
end
return pool
