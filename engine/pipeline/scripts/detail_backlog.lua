-- detail_backlog: how much of a partition's sync work is outstanding (cheap: two lengths).
-- KEYS[1]  pending list
-- KEYS[2]  batches hash (sent, not yet applied)
-- Returns {pending records, open batches}.
return {redis.call('LLEN', KEYS[1]), redis.call('HLEN', KEYS[2])}
