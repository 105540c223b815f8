-- deduct: check-and-decrement one stock counter by qty, atomically.
-- KEYS[1]  stock counter (integer string)
-- KEYS[2]  sold counter, same hash tag (created at 0 if missing)
-- ARGV[1]  qty, an integer > 0
-- Returns the remaining stock (>= 0) on success,
--   -1 when stock < qty (sold out for this qty; nothing changes),
--   -2 when qty is not a positive integer,
--   -3 when the stock counter does not exist.
local qty = tonumber(ARGV[1])
if qty == nil or qty <= 0 or qty ~= math.floor(qty) then
  return -2
end
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
  return -3
end
if stock < qty then
  return -1
end
redis.call('INCRBY', KEYS[2], qty)
return redis.call('DECRBY', KEYS[1], qty)
