-- partition_inject: credit stock taken from the pool to one sub-domain, once per ticket.
-- KEYS[1]  target sub-domain stock   KEYS[2]  received counter   KEYS[3]  returned counter
-- KEYS[4]  meta hash                 KEYS[5]  applied tickets (hash: ticket -> units)
-- KEYS[6]  outbox (hash: return ticket -> units sent back to the pool, kept until recovery settles it)
-- ARGV[1]  ticket id (text)
-- ARGV[2]  units the pool granted for it, an integer >= 0
-- ARGV[3]  sub-domain whose refill flag this ticket clears (0 = A, 1 = B, -1: a top-up)
-- ARGV[4]  sub-domain size: units beyond it are not credited but go back (returned)
-- Returns {status, credited, bounced}: status 1 applied, 0 ticket seen before (nothing
--   changes), -2 bad units, -3 no partition. A retired partition credits nothing: all
--   units bounce. Bounced units are counted in `returned` and recorded in the outbox under the
--   ticket 'back:' .. ARGV[1]; the app gives them back to the pool (pool_return) by that ticket.
--   A refill that brought 0 units marks the pool dry for this partition.
local units = tonumber(ARGV[2])
if units == nil or units < 0 or units ~= math.floor(units) then
  return {-2, 0, 0}
end
local act = tonumber(redis.call('HGET', KEYS[4], 'active'))
if act == nil then
  return {-3, 0, 0}
end
if redis.call('HEXISTS', KEYS[5], ARGV[1]) == 1 then
  return {0, 0, 0}
end
redis.call('HSET', KEYS[5], ARGV[1], units)
redis.call('INCRBY', KEYS[2], units)
local credit = 0
if act >= 0 then
  local room = tonumber(ARGV[4]) - tonumber(redis.call('GET', KEYS[1]))
  if room < 0 then
    room = 0
  end
  credit = math.min(units, room)
  redis.call('INCRBY', KEYS[1], credit)
end
local bounce = units - credit
if bounce > 0 then
  redis.call('INCRBY', KEYS[3], bounce)
  redis.call('HSET', KEYS[6], 'back:' .. ARGV[1], bounce)
end
local sub = tonumber(ARGV[3])
if sub >= 0 then
  redis.call('HSET', KEYS[4], 'pend' .. sub, 0)
  if units == 0 then
    redis.call('HSET', KEYS[4], 'dry', 1)
  end
end
if units > 0 then
  redis.call('HSET', KEYS[4], 'dry', 0)
end
return {1, credit, bounce}
