-- partition_init: create one empty partition (two sub-domains), never overwriting.
-- KEYS[1]  sub-domain A stock       KEYS[2]  sub-domain B stock
-- KEYS[3]  sold counter             KEYS[4]  received counter (units injected so far)
-- KEYS[5]  returned counter (units sent back to the pool so far)
-- KEYS[6]  meta hash: active (0 = A, 1 = B, -1 = retired), pend0/pend1 (the epoch of the
--          refill ticket out for A/B, 0: none), dry (the pool answered empty), epoch (refill tickets issued)
-- All keys share the partition's hash tag.
-- Returns 1 when created, 0 when any key already existed (nothing changes).
for i = 1, 6 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
for i = 1, 5 do
  redis.call('SET', KEYS[i], 0)
end
redis.call('HSET', KEYS[6], 'active', 0, 'pend0', 0, 'pend1', 0, 'dry', 0, 'epoch', 0)
return 1
