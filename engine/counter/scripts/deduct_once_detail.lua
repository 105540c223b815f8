-- deduct_once_detail: deduct_once.lua plus the deduction's detail record (deduct_detail.lua's
-- RECORD step), in one atomic step; a replayed or refused attempt writes no record.
-- KEYS[1..4] as deduct_once.lua: stock, sold, outcomes hash, deductions hash
-- KEYS[5]  detail hash, KEYS[6] pending list, KEYS[7] meta hash (as deduct_detail.lua's 3..5)
-- ARGV[1..3] as deduct_once.lua: qty, request id, keyed ('1')
-- ARGV[4]  time of the deduction, ARGV[5] seen (as deduct_detail.lua's ARGV[2], ARGV[3])
-- Returns {reply, replayed, seq, pending}: seq and pending as deduct_detail.lua's (0, 0 when no
--   record was written).
local qty = tonumber(ARGV[1])
if qty == nil or qty <= 0 or qty ~= math.floor(qty) then
  return {-2, 0, 0, 0}
end
local keyed = ARGV[3] == '1'
if keyed then
  local first = redis.call('HGET', KEYS[3], ARGV[2])
  if first then
    return {tonumber(first), 1, 0, 0}
  end
end
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
  return {-3, 0, 0, 0}
end
if stock < qty then
  if keyed then
    redis.call('HSET', KEYS[3], ARGV[2], -1)
  end
  return {-1, 0, 0, 0}
end
redis.call('INCRBY', KEYS[2], qty)
local remaining = redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
if keyed then
  redis.call('HSET', KEYS[3], ARGV[2], remaining)
end
-- RECORD: the shared detail-record step (as in deduct_detail.lua)
local seen = tonumber(ARGV[5])
if seen == nil or seen < 0 or seen ~= math.floor(seen) then
  seen = 0
end
local epoch = redis.call('HGET', KEYS[7], 'epoch') or ''
if tonumber(redis.call('HGET', KEYS[7], 'seq') or 0) < seen then
  epoch = string.format('%sr%d', epoch, seen)
  redis.call('HSET', KEYS[7], 'epoch', epoch, 'seq', seen)
end
local seq = redis.call('HINCRBY', KEYS[7], 'seq', 1)
local id = seq
if epoch ~= '' then
  id = epoch .. '.' .. seq
end
redis.call('HSET', KEYS[5], id, string.format('%d|%s|p', qty, ARGV[4]))
local pending = redis.call('RPUSH', KEYS[6], id)
return {remaining, 0, seq, pending}
