-- detail_applied: the consumer committed a batch to the DB; mark its records applied.
-- KEYS[1]  detail hash (seq -> "qty|time|status")
-- KEYS[2]  batches hash (batch id -> "sent_time|seq,seq,...")
-- ARGV[1]  batch id
-- Sets status a on every record of the batch and closes the batch.
-- Returns the number of records marked; 0 when the batch was already closed (a duplicate).
local batch = redis.call('HGET', KEYS[2], ARGV[1])
if not batch then
  return 0
end
local marked = 0
for seq in string.gmatch(string.match(batch, '|(.*)$'), '[^,]+') do
  local record = redis.call('HGET', KEYS[1], seq)
  redis.call('HSET', KEYS[1], seq, string.sub(record, 1, -2) .. 'a')
  marked = marked + 1
end
redis.call('HDEL', KEYS[2], ARGV[1])
return marked
