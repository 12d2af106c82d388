-- cooldown: after a 429, pause every worker of the run until now + wait.
-- KEYS: 1 rate
-- ARGV: 1 now_ms  2 wait_ms
-- Returns the cooldown's end (ms): max(current end, now + wait).
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
if until_ms > current then
  redis.call('HSET', KEYS[1], 'cooldown_until', until_ms)
  redis.call('HINCRBY', KEYS[1], 'cooldowns', 1)
  return until_ms
end
return current
