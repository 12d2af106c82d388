-- ledger: reserve and settle spend that belongs to no slot (Claude's reviews).
-- KEYS: 1 budget  2 counters
-- ARGV: 1 op ("reserve" | "settle")  2 amount_micro (reserve: worst case; settle: the amount
--       reserved)  3 actual_micro (settle only)  4 line name in counters (e.g. "cost_claude_micro")
-- reserve returns 1 when spent + reserved + amount <= line (then reserved), else 0.
-- settle returns the new spent total.
local amount = tonumber(ARGV[2])
if ARGV[1] == 'reserve' then
  local b = redis.call('HMGET', KEYS[1], 'spent', 'reserved', 'line')
  local spent, reserved, line = tonumber(b[1] or '0'), tonumber(b[2] or '0'), tonumber(b[3] or '0')
  if spent + reserved + amount > line then return 0 end
  redis.call('HINCRBY', KEYS[1], 'reserved', amount)
  return 1
end
local actual = tonumber(ARGV[3])
redis.call('HINCRBY', KEYS[1], 'reserved', -amount)
redis.call('HINCRBY', KEYS[2], ARGV[4], actual)
return redis.call('HINCRBY', KEYS[1], 'spent', actual)
