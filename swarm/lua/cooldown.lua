-- cooldown: after a 429, pause every worker of the run until now + wait.
-- KEYS: 1 rate
-- ARGV: 1 now_ms  2 wait_ms
-- Counts every 429 (r429) and the time the run spent paused (cooldown_ms).
-- Returns the cooldown's end (ms): max(current end, now + wait).
local now = tonumber(ARGV[1])
local until_ms = now + tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], 'cooldown_until') or '0')
redis.call('HINCRBY', KEYS[1], 'r429', 1)
if until_ms > current then
  redis.call('HSET', KEYS[1], 'cooldown_until', until_ms)
  redis.call('HINCRBY', KEYS[1], 'cooldowns', 1)
  redis.call('HINCRBY', KEYS[1], 'cooldown_ms', until_ms - math.max(current, now))
  return until_ms
end
return current
