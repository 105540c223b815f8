-- cache_get: the stock the read cache holds.
-- KEYS[1]  cache key
-- Returns the cached stock as an integer, or -1 when the key is missing.
local value = redis.call('GET', KEYS[1])
if not value then
  return -1
end
return tonumber(value)
