-- pool_take: grant stock from the pool against a ticket, once per ticket.
-- KEYS[1]  pool stock   KEYS[2]  issued counter of the target partition
-- KEYS[3]  tickets hash (ticket -> units granted)
-- KEYS[4]  outbox of the target partition (ticket -> "grant|sub|flag": what partition_inject
--          must be asked, kept until recovery settles it); all four share the pool's hash tag
-- ARGV[1]  ticket id (text)   ARGV[2]  units wanted, an integer >= 0
-- ARGV[3]  target sub-domain (0 = A, 1 = B)   ARGV[4]  refill flag it clears (-1: none); integers
-- Returns the units granted (0..wanted; fewer when the pool runs low), the same number again
--   for a ticket seen before (nothing changes), -2 bad units, sub-domain or flag, -3 no pool.
-- Until partition_inject applies the ticket, the units are in flight: issued - received.
local want = tonumber(ARGV[2])
if want == nil or want < 0 or want ~= math.floor(want) then
  return -2
end
local sub = tonumber(ARGV[3])
local flag = tonumber(ARGV[4])
if sub == nil or flag == nil or sub ~= math.floor(sub) or flag ~= math.floor(flag) then
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
redis.call('HSET', KEYS[4], ARGV[1], string.format('%d|%d|%d', grant, sub, flag))
return grant
