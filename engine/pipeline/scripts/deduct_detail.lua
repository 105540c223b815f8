-- deduct_detail: deduct.lua plus the deduction's detail record, in one atomic step.
-- KEYS[1]  stock counter (integer string)
-- KEYS[2]  sold counter
-- KEYS[3]  detail hash: seq -> "qty|time|status", status p (pending) | s (sent) | a (applied)
-- KEYS[4]  pending list: seqs of records not yet sent, oldest first
-- KEYS[5]  meta hash: field "seq" numbers the records (and "batch" the batches)
--          (all five keys carry the partition's hash tag)
-- ARGV[1]  qty, an integer > 0
-- ARGV[2]  time of the deduction, decimal text in seconds (the app's clock)
-- Returns {remaining, seq, pending}: on success the remaining stock (>= 0), the new
--   record's seq and how many records of this partition are now pending;
--   {-1, 0, 0} when stock < qty, {-2, 0, 0} for a bad qty, {-3, 0, 0} without a stock counter
--   (nothing changes in those three cases).
local qty = tonumber(ARGV[1])
if qty == nil or qty <= 0 or qty ~= math.floor(qty) then
  return {-2, 0, 0}
end
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
  return {-3, 0, 0}
end
if stock < qty then
  return {-1, 0, 0}
end
redis.call('INCRBY', KEYS[2], qty)
local remaining = redis.call('DECRBY', KEYS[1], qty)
local seq = redis.call('HINCRBY', KEYS[5], 'seq', 1)
redis.call('HSET', KEYS[3], seq, string.format('%d|%s|p', qty, ARGV[2]))
local pending = redis.call('RPUSH', KEYS[4], seq)
return {remaining, seq, pending}
