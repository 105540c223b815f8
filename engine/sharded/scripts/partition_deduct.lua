-- partition_deduct: check-and-decrement a partition's active sub-domain, atomically;
-- switch sub-domains below the threshold and ask for a refill of the idle one.
-- KEYS[1]  sub-domain A stock   KEYS[2]  sub-domain B stock
-- KEYS[3]  sold counter         KEYS[4]  meta hash (see partition_init.lua)
-- ARGV[1]  qty, an integer > 0
-- ARGV[2]  threshold, an integer >= 1
-- Returns {status, remaining, active, switched, ticket}:
--   status 0 sold (remaining = A + B after), -1 A + B < qty (nothing changes),
--   -2 bad qty, -3 no partition, -4 partition retired;
--   active: the sub-domain now active (0 = A, 1 = B); switched: 1 when this call switched;
--   ticket: > 0 when this call issued a refill ticket (epoch) for the idle sub-domain 1 - active;
--   with status -1, the epoch of a refill ticket still out for this partition (0: none), so the
--   app knows stock may still arrive.
-- Deduction takes from the active sub-domain and, if it holds less than qty, the rest from
-- the other one (so a partition refuses only when A + B < qty). It switches when the active
-- one is below the threshold and the other is not (or the active one is empty). A refill
-- ticket goes out when the idle sub-domain is below the threshold, none is out for it and
-- the pool has not answered empty.
local qty = tonumber(ARGV[1])
if qty == nil or qty <= 0 or qty ~= math.floor(qty) then
  return {-2, 0, 0, 0, 0}
end
local threshold = tonumber(ARGV[2])
local act = tonumber(redis.call('HGET', KEYS[4], 'active'))
if act == nil then
  return {-3, 0, 0, 0, 0}
end
if act < 0 then
  return {-4, 0, act, 0, 0}
end
local here = KEYS[act + 1]
local there = KEYS[2 - act]
local x = tonumber(redis.call('GET', here))
local y = tonumber(redis.call('GET', there))
if x + y < qty then
  local out = math.max(tonumber(redis.call('HGET', KEYS[4], 'pend0')), tonumber(redis.call('HGET', KEYS[4], 'pend1')))
  return {-1, x + y, act, 0, out}
end
if x >= qty then
  x = x - qty
  redis.call('SET', here, x)
else
  y = y - (qty - x)
  x = 0
  redis.call('SET', here, 0)
  redis.call('SET', there, y)
end
redis.call('INCRBY', KEYS[3], qty)
local switched = 0
if (x < threshold and y >= threshold) or (x == 0 and y > 0) then
  act = 1 - act
  redis.call('HSET', KEYS[4], 'active', act)
  switched = 1
  x, y = y, x
end
local ticket = 0
local pend = 'pend' .. (1 - act)
if y < threshold and redis.call('HGET', KEYS[4], 'dry') == '0'
    and redis.call('HGET', KEYS[4], pend) == '0' then
  ticket = redis.call('HINCRBY', KEYS[4], 'epoch', 1)
  redis.call('HSET', KEYS[4], pend, ticket)
end
return {0, x + y, act, switched, ticket}
