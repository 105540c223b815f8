-- deduct_detail: deduct.lua plus the deduction's detail record, in one atomic step.
-- KEYS[1]  stock counter (integer string)
-- KEYS[2]  sold counter
-- KEYS[3]  detail hash: record id -> "qty|time|status", status p (pending) | s (sent) | a (applied)
-- KEYS[4]  pending list: ids of records not yet sent, oldest first
-- KEYS[5]  meta hash: field "seq" numbers the records (and "batch" the batches); field "epoch"
--          (absent at first) names the numbering since the last rollback of this partition
--          (all five keys carry the partition's hash tag)
-- ARGV[1]  qty, an integer > 0
-- ARGV[2]  time of the deduction, decimal text in seconds (the app's clock)
-- ARGV[3]  seen: the highest seq the caller was ever given for this partition (0: none; junk,
--          fractions and negatives count as 0)
-- A record's id is its seq, or "<epoch>.<seq>" once the partition has an epoch. A seq counter
-- below seen was rolled back (a failover lost the last writes): ids handed out since may come
-- again, so the epoch becomes "<epoch>r<seen>" and the counter resumes after seen; no later id
-- can equal one given out before the rollback (docs/pipeline.md: "Detail ids after a failover").
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
-- RECORD: the shared detail-record step (also in partition_deduct_detail)
local seen = tonumber(ARGV[3])
if seen == nil or seen < 0 or seen ~= math.floor(seen) then
  seen = 0
end
local epoch = redis.call('HGET', KEYS[5], 'epoch') or ''
if tonumber(redis.call('HGET', KEYS[5], 'seq') or 0) < seen then
  epoch = string.format('%sr%d', epoch, seen)
  redis.call('HSET', KEYS[5], 'epoch', epoch, 'seq', seen)
end
local seq = redis.call('HINCRBY', KEYS[5], 'seq', 1)
local id = seq
if epoch ~= '' then
  id = epoch .. '.' .. seq
end
redis.call('HSET', KEYS[3], id, string.format('%d|%s|p', qty, ARGV[2]))
local pending = redis.call('RPUSH', KEYS[4], id)
return {remaining, seq, pending}
