-- cache_deduct: follow a committed DB deduction in the read cache.
-- KEYS[1]  cache key
-- ARGV[1]  qty the DB deducted (integer > 0)
-- Returns the new cached stock, or -1 when the key is missing (nothing is created).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
return redis.call('DECRBY', KEYS[1], ARGV[1])
