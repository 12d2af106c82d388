-- stop: end a running run with a final state; slots never fed are counted as skipped.
-- KEYS: 1 meta  2 counters
-- ARGV: 1 now_ms  2 state ("stopped" | "budget_exhausted" | "quota_exhausted")
-- Returns 1 when this call stopped the run, 0 when it was not running.
local m = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'total')
if m[1] ~= 'running' then return 0 end
local cursor, total = tonumber(m[2]), tonumber(m[3])
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'cursor', total, 'stopped_ms', ARGV[1],
  'stop_cursor', cursor)
if total > cursor then redis.call('HINCRBY', KEYS[2], 'skipped', total - cursor) end
return 1
