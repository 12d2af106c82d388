-- resume: reopen a stopped run (e.g. after raising BUDGET_USD): slots it skipped are undone,
-- the cursor goes back to where feeding stopped, done slots stay done.
-- KEYS: 1 meta  2 done  3 counters  4 pending  5 skipped  6 budget
-- ARGV: 1 now_ms  2 refeed_after_ms  3 line_micro (new stop line)  4 budget_usd (new)
-- Returns {-1} when the run is running or done (nothing to resume), else the reopened fed
-- slots to publish again (possibly none).
local now, refeed = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'total', 'stop_cursor')
if m[1] == 'running' or m[1] == 'done' then return {-1} end
local total = tonumber(m[3])
local stop_cursor = tonumber(m[4] or m[2])
local out = {}
for _, s in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local slot = tonumber(s)
  if redis.call('GETBIT', KEYS[2], slot) == 1 then
    redis.call('SETBIT', KEYS[2], slot, 0)
    redis.call('HINCRBY', KEYS[3], 'skipped', -1)
    redis.call('ZADD', KEYS[4], now + refeed, slot)
    out[#out + 1] = slot
  end
end
redis.call('DEL', KEYS[5])
if stop_cursor < total then
  redis.call('HINCRBY', KEYS[3], 'skipped', stop_cursor - total)
end
redis.call('HSET', KEYS[1], 'state', 'running', 'cursor', stop_cursor, 'budget_usd', ARGV[4])
redis.call('HDEL', KEYS[1], 'finished_ms', 'stopped_ms', 'stop_cursor')
redis.call('HSET', KEYS[6], 'line', ARGV[3])
return out
