-- charge: an attempt was sent and got no answer. The provider may have billed it, so the
-- slot's reservation becomes spend now; the retry reserves afresh (admit), so no attempt is
-- ever sent without a worst case reserved for it.
-- KEYS: 1 budget  2 resv  3 counters
-- ARGV: 1 slot  2 category
-- Returns the micro-USD charged (0 when the slot held no reservation: already reclaimed).
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if not held then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'reserved', -held)
redis.call('HINCRBY', KEYS[1], 'spent', held)
redis.call('HINCRBY', KEYS[3], 'cost_kimi_micro', held)
redis.call('HINCRBY', KEYS[3], 'c:' .. ARGV[2] .. ':cost_micro', held)
redis.call('HINCRBY', KEYS[3], 'lost_attempts', 1)
return held
