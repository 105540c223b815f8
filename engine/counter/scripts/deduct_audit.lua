-- deduct_audit: how many request ids deducted, and how many deductions they made in all.
-- KEYS[1]  deductions hash of deduct_once.lua: request id -> deductions applied
-- Returns {ids, deductions}: deductions - ids is the number of duplicate deductions.
local counts = redis.call('HVALS', KEYS[1])
local total = 0
for _, count in ipairs(counts) do
  total = total + tonumber(count)
end
return {#counts, total}
