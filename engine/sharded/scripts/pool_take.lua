-- pool_take: grant stock from the pool against a ticket, once per ticket.
-- KEYS[1]  pool stock   KEYS[2]  issued counter of the target partition
-- KEYS[3]  tickets hash (ticket -> units granted); all three share the pool's hash tag
-- ARGV[1]  ticket id (text)   ARGV[2]  units wanted, an integer >= 0
-- Returns the units granted (0..wanted; fewer when the pool runs low), the same number again
--   for a ticket seen before (nothing changes), -2 bad units, -3 no pool.
-- Until partition_inject applies the ticket, the units are in flight: issued - received.
local want = tonumber(ARGV[2])
if want == nil or want < 0 or want ~= math.floor(want) then
  return -2
end
local pool = tonumber(redis.call('GET', KEYS[1]))
if pool == nil then
  return -3
end
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen then
  return tonumber(seen)
end
local grant = math.min(want, pool)
redis.call('DECRBY', KEYS[1], grant)
redis.call('INCRBY', KEYS[2], grant)
redis.call('HSET', KEYS[3], ARGV[1], grant)
return grant
