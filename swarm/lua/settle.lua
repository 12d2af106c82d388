-- settle: record a call's outcome; the actual cost replaces the reservation.
-- KEYS: 1 meta  2 done  3 leases  4 rate  5 budget  6 resv  7 counters  8 pending
--       9 buckets  10 samples  11 skipped  12 freed
-- ARGV: 1 now_ms  2 slot  3 outcome ("completed" | "failed" | "skipped": abandoned, no call)  4 cost_micro (actual, micro-USD)
--       5 prompt_tokens  6 completion_tokens  7 unused_tokens (estimate - actual, >= 0)
--       8 tpm  9 category  10 parsed (0|1)  11 revenue_cents  12 sample (text, may be "")
--       13 call_ms (the answered call's own latency, for the capacity estimate)
-- Returns {state, finished, cursor, total, duplicate (0|1)}
local now, slot = tonumber(ARGV[1]), tonumber(ARGV[2])
local outcome, cost = ARGV[3], tonumber(ARGV[4])
local ptok, ctok = tonumber(ARGV[5]), tonumber(ARGV[6])
local unused, tpm = tonumber(ARGV[7]), tonumber(ARGV[8])
local cat, parsed, revenue = ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])

-- A released lease leaves a token for one caller blocked on `freed` (BLPOP): callers that
-- wait for a lease sleep in Redis instead of polling. At most 64 tokens wait unused.
if redis.call('ZREM', KEYS[3], slot) == 1 then
  redis.call('LPUSH', KEYS[12], 1)
  redis.call('LTRIM', KEYS[12], 0, 63)
end
local held = tonumber(redis.call('HGET', KEYS[6], slot))
if held then
  redis.call('HDEL', KEYS[6], slot)
  redis.call('HINCRBY', KEYS[5], 'reserved', -held)
end
redis.call('HINCRBY', KEYS[5], 'spent', cost)
redis.call('HINCRBY', KEYS[7], 'cost_kimi_micro', cost)
redis.call('HINCRBY', KEYS[7], 'prompt_tokens', ptok)
redis.call('HINCRBY', KEYS[7], 'completion_tokens', ctok)
if unused > 0 then
  local tat = tonumber(redis.call('HGET', KEYS[4], 'tpm_tat') or '0')
  redis.call('HSET', KEYS[4], 'tpm_tat', math.max(now, tat - unused * 60000 / tpm))
end

local duplicate = 0
if redis.call('GETBIT', KEYS[2], slot) == 1 then
  duplicate = 1
  redis.call('HINCRBY', KEYS[7], 'duplicates', 1)
else
  redis.call('SETBIT', KEYS[2], slot, 1)
  redis.call('HINCRBY', KEYS[7], outcome, 1)
  if outcome == 'completed' then redis.call('HINCRBY', KEYS[7], 'call_ms', ARGV[13]) end
  if outcome == 'skipped' then redis.call('SADD', KEYS[11], slot) end
  redis.call('HINCRBY', KEYS[7], 'c:' .. cat .. ':' .. outcome, 1)
  redis.call('HINCRBY', KEYS[7], 'c:' .. cat .. ':tokens', ptok + ctok)
  redis.call('HINCRBY', KEYS[7], 'c:' .. cat .. ':cost_micro', cost)
  if parsed == 1 then
    redis.call('HINCRBY', KEYS[7], 'parsed', 1)
    redis.call('HINCRBY', KEYS[7], 'c:' .. cat .. ':parsed', 1)
    redis.call('HINCRBY', KEYS[7], 'revenue_cents', revenue)
    redis.call('HINCRBY', KEYS[7], 'c:' .. cat .. ':revenue_cents', revenue)
  end
  local bucket = math.floor(now / 10000)
  redis.call('HINCRBY', KEYS[9], bucket, 1)
  redis.call('HDEL', KEYS[9], bucket - 13)
end
redis.call('ZREM', KEYS[8], slot)
if ARGV[12] ~= '' then
  redis.call('LPUSH', KEYS[10], ARGV[12])
  redis.call('LTRIM', KEYS[10], 0, 49)
end

local c = redis.call('HMGET', KEYS[7], 'completed', 'failed', 'skipped')
local finished = (tonumber(c[1]) or 0) + (tonumber(c[2]) or 0) + (tonumber(c[3]) or 0)
local m = redis.call('HMGET', KEYS[1], 'state', 'cursor', 'total')
local state, total = m[1], tonumber(m[3])
if finished >= total and not redis.call('HGET', KEYS[1], 'finished_ms') then
  redis.call('HSET', KEYS[1], 'finished_ms', now)
  if state == 'running' then
    state = 'done'
    redis.call('HSET', KEYS[1], 'state', state)
  end
end
return {state, finished, tonumber(m[2]), total, duplicate}
