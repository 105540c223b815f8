-- cache_init: create the Redis read cache of a DB stock row, once.
-- KEYS[1]  cache key (integer string: the stock the cache believes the DB row holds)
-- ARGV[1]  stock, an integer >= 0
-- Returns 1 when created, 0 when the key already existed (nothing changes),
--   -2 when the stock is not a non-negative integer (nothing changes).
local stock = tonumber(ARGV[1])
if stock == nil or stock < 0 or stock ~= math.floor(stock) then
  return -2
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], stock)
return 1
