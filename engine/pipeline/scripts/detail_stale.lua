-- detail_stale: batches sent long ago and still not applied are due to be sent again.
-- KEYS[1]  detail hash (seq -> "qty|time|status")
-- KEYS[2]  batches hash (batch id -> "sent_time|seq,seq,...")
-- ARGV[1]  now, decimal text in seconds
-- ARGV[2]  age in seconds: a batch sent at or before now - age is due
-- Each due batch gets sent time = now (one more attempt). Returns
--   {{batch_id, {seq, record, ...}}, ...} in batch-id order ({} when none is due).
local cutoff = tonumber(ARGV[1]) - tonumber(ARGV[2])
local flat = redis.call('HGETALL', KEYS[2])
local due = {}
for i = 1, #flat, 2 do
  local sent, seqs = string.match(flat[i + 1], '^([^|]*)|(.*)$')
  if tonumber(sent) <= cutoff then
    due[#due + 1] = {tonumber(flat[i]), seqs}
  end
end
table.sort(due, function(a, b) return a[1] < b[1] end)
local out = {}
for _, batch in ipairs(due) do
  redis.call('HSET', KEYS[2], batch[1], ARGV[1] .. '|' .. batch[2])
  local records = {}
  for seq in string.gmatch(batch[2], '[^,]+') do
    records[#records + 1] = seq
    records[#records + 1] = redis.call('HGET', KEYS[1], seq)
  end
  out[#out + 1] = {batch[1], records}
end
return out
