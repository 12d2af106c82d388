-- retry: reopen failed slots so they can be fed again (`swarm retry-failed`).
-- KEYS: 1 meta  2 done  3 counters  4 pending
-- ARGV: 1 now_ms  2 refeed_after_ms  then triples: slot, outcome ("failed"|"skipped"), category
-- A slot is reopened only if it is finished and not already reopened. The run goes back to
-- "running" when any slot was reopened.
-- Returns the reopened slots, each followed by its category: {slot, category, ...}
local now, refeed = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 3 do
  local slot, outcome, cat = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  if redis.call('GETBIT', KEYS[2], slot) == 1 then
    redis.call('SETBIT', KEYS[2], slot, 0)
    redis.call('HINCRBY', KEYS[3], outcome, -1)
    redis.call('HINCRBY', KEYS[3], 'c:' .. cat .. ':' .. outcome, -1)
    redis.call('ZADD', KEYS[4], now + refeed, slot)
    out[#out + 1] = slot
    out[#out + 1] = cat
  end
end
if #out > 0 then
  redis.call('HSET', KEYS[1], 'state', 'running')
  redis.call('HDEL', KEYS[1], 'finished_ms', 'stopped_ms')
end
return out
