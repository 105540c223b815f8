-- detail_summary: totals over every detail record of a partition (reconciliation; O(records)).
-- KEYS[1]  detail hash (seq -> "qty|time|status")
-- KEYS[2]  the partition's sold counter (same hash tag)
-- Returns {records, qty, pending, sent, applied, applied_qty, sold}: one atomic snapshot.
local records, qty, pending, sent, applied, applied_qty = 0, 0, 0, 0, 0, 0
for _, record in ipairs(redis.call('HVALS', KEYS[1])) do
  local n = tonumber(string.match(record, '^(%d+)|'))
  local status = string.sub(record, -1)
  records = records + 1
  qty = qty + n
  if status == 'p' then
    pending = pending + 1
  elseif status == 's' then
    sent = sent + 1
  else
    applied = applied + 1
    applied_qty = applied_qty + n
  end
end
return {records, qty, pending, sent, applied, applied_qty, tonumber(redis.call('GET', KEYS[2]) or 0)}
