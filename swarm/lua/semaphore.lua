-- semaphore: at most `limit` holders at once; a holder expires after ttl_ms, so the place
-- of one that died comes back.
-- KEYS: 1 holders (zset: holder id -> expiry ms)
-- ARGV: 1 now_ms  2 ttl_ms  3 limit  4 holder id
-- Returns 1 when the caller now holds a place, else 0. Release with ZREM.
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[4])
return 1
