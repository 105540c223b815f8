-- detail_collect: take the oldest pending detail records of a partition as one new batch.
-- KEYS[1]  detail hash (seq -> "qty|time|status")
-- KEYS[2]  pending list (seqs, oldest first)
-- KEYS[3]  batches hash: batch id -> "sent_time|seq,seq,..." for batches sent, not yet applied
-- KEYS[4]  meta hash (field "batch" numbers the batches)
-- ARGV[1]  now, decimal text in seconds
-- ARGV[2]  most records to take, an integer >= 1
-- Marks the taken records sent (status s) and files the batch, so a record goes out once
-- per attempt and a lost batch can be sent again (detail_stale).
-- Returns {batch_id, {seq, record, seq, record, ...}}, or {} when nothing is pending.
local seqs = redis.call('LPOP', KEYS[2], tonumber(ARGV[2]))
if not seqs then
  return {}
end
local batch = redis.call('HINCRBY', KEYS[4], 'batch', 1)
local out = {}
for _, seq in ipairs(seqs) do
  local record = string.sub(redis.call('HGET', KEYS[1], seq), 1, -2) .. 's'
  redis.call('HSET', KEYS[1], seq, record)
  out[#out + 1] = seq
  out[#out + 1] = record
end
redis.call('HSET', KEYS[3], batch, ARGV[1] .. '|' .. table.concat(seqs, ','))
return {batch, out}
