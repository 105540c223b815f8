-- deduct_once: deduct.lua, at most once per request id (the idempotency key of a client retry).
-- KEYS[1]  stock counter (integer string)
-- KEYS[2]  sold counter, same hash tag
-- KEYS[3]  outcomes hash: request id -> the first reply for it (remaining >= 0, or -1: sold out)
-- KEYS[4]  deductions hash: request id -> deductions applied for it (the audit: 1 at most when keyed)
-- ARGV[1]  qty, an integer > 0
-- ARGV[2]  request id (the same on every attempt of one buyer's request)
-- ARGV[3]  '1': keyed (a request id seen before gets its first reply back, nothing changes);
--          anything else: unkeyed, every attempt deducts (what a retry without a key does)
-- Returns {reply, replayed}: reply as deduct.lua's (-2 bad qty, -3 no stock counter: neither is
--   remembered), replayed 1 when the reply is the remembered first one, else 0.
local qty = tonumber(ARGV[1])
if qty == nil or qty <= 0 or qty ~= math.floor(qty) then
  return {-2, 0}
end
local keyed = ARGV[3] == '1'
if keyed then
  local first = redis.call('HGET', KEYS[3], ARGV[2])
  if first then
    return {tonumber(first), 1}
  end
end
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
  return {-3, 0}
end
local reply = -1
if stock >= qty then
  redis.call('INCRBY', KEYS[2], qty)
  reply = redis.call('DECRBY', KEYS[1], qty)
  redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
end
if keyed then
  redis.call('HSET', KEYS[3], ARGV[2], reply)
end
return {reply, 0}
