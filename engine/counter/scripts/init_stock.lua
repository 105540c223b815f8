-- init_stock: create a stock counter and its sold counter, never overwriting.
-- KEYS[1]  stock counter
-- KEYS[2]  sold counter, same hash tag
-- ARGV[1]  initial stock, an integer >= 0
-- Returns 1 when both were created, 0 when either already existed (nothing changes),
--   -2 when the initial stock is not a non-negative integer.
local stock = tonumber(ARGV[1])
if stock == nil or stock < 0 or stock ~= math.floor(stock) then
  return -2
end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], stock)
redis.call('SET', KEYS[2], 0)
return 1
