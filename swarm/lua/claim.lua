-- claim: take the next slots for the queue window from the run's cursor.
-- KEYS: 1 meta  2 counters  3 pending
-- ARGV: 1 now_ms  2 window (slots queued or in flight at most)  3 refeed_after_ms
-- Returns {first_slot, count}: slots first .. first+count-1 are now this caller's to publish,
-- each with a re-feed deadline in pending (the sweep re-publishes them if never finished).
local now, window, refeed = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local m = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'total')
local cursor, total = tonumber(m[2]), tonumber(m[3])
if m[1] ~= 'running' then return {cursor or 0, 0} end
local c = redis.call('HMGET', KEYS[2], 'completed', 'failed', 'skipped')
local finished = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0)
local n = math.min(window - (cursor - finished), total - cursor)
if n <= 0 then return {cursor, 0} end
for i = cursor, cursor + n - 1 do
  redis.call('ZADD', KEYS[3], now + refeed, i)
end
redis.call('HSET', KEYS[1], 'cursor', cursor + n)
return {cursor, n}
