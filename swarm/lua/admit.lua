-- admit: may this task call the provider now?  One atomic step per attempt.
-- KEYS: 1 meta  2 done  3 leases  4 rate  5 budget  6 resv  7 counters  8 pending  9 skipped
-- ARGV: 1 now_ms  2 slot  3 est_tokens (prompt estimate + max_tokens)
--       4 reserve_micro (worst-case cost, micro-USD)  5 rpm  6 tpm  7 max_concurrent
--       8 lease_ttl_ms  9 mode ("new": first attempt; "retry": lease held, and the
--         reservation too unless an unanswered attempt was charged with it: then it is
--         taken again, under the same budget checks as a first attempt; "rebook": as
--         "retry", for a caller whose booked slot a cooldown voided while it slept to it:
--         its request was counted with that slot, so it is not counted again)
--       10 ahead_ms (how far ahead a request slot may be booked)
--       11 max_wait_ms (the longest a caller waits before it asks again)
-- Returns {verdict, wait_ms, reason}:
--   go    call after wait_ms: the next RPM/TPM slot is booked for this caller (no other
--         caller can take it, so nobody polls for it); on "new" a lease and a reservation too
--   wait  try again after wait_ms (reason: cooldown, concurrency, rpm, tpm, budget)
--   stop  the budget's stop line is reached: the caller stops the run, then admits again
--   skip  the run is not running: the slot is now counted as skipped (no call)
--   done  the slot already finished: no call (a redelivered message)
--   busy  another live lease holds this slot: no call, drop the message
--   gone  no such run
local now = tonumber(ARGV[1])
local slot = tonumber(ARGV[2])
local est_tokens = tonumber(ARGV[3])
local reserve = tonumber(ARGV[4])
local rpm, tpm = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_conc = tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
local fresh = ARGV[9] == 'new'
local counted = ARGV[9] ~= 'rebook'

local function wait(ms, reason)
  redis.call('HINCRBY', KEYS[7], 'wait:' .. reason, 1)
  return {'wait', ms, reason}
end
local ahead = tonumber(ARGV[10])

local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'gone', 0, 'no such run'} end
if fresh and redis.call('GETBIT', KEYS[2], slot) == 1 then return {'done', 0, 'finished'} end
if fresh then
  local lease = tonumber(redis.call('ZSCORE', KEYS[3], slot))
  if lease and lease > now then return {'busy', 0, 'leased'} end
end

if state ~= 'running' then
  if fresh then
    redis.call('SETBIT', KEYS[2], slot, 1)
    redis.call('HINCRBY', KEYS[7], 'skipped', 1)
    redis.call('ZREM', KEYS[8], slot)
    redis.call('SADD', KEYS[9], slot)
    redis.call('HDEL', KEYS[6], slot)
  end
  return {'skip', 0, state}
end

-- Leases past their TTL belong to dead workers: their reservations become spend (the call
-- may have been billed), so neither concurrency nor budget waits on them.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)
for _, s in ipairs(expired) do
  local held = tonumber(redis.call('HGET', KEYS[6], s))
  if held then
    redis.call('HDEL', KEYS[6], s)
    redis.call('HINCRBY', KEYS[5], 'reserved', -held)
    redis.call('HINCRBY', KEYS[5], 'spent', held)
    redis.call('HINCRBY', KEYS[7], 'cost_kimi_micro', held)
    redis.call('HINCRBY', KEYS[7], 'lost_reservations', 1)
  end
  redis.call('ZREM', KEYS[3], s)
end

-- After the reclaim: a retry whose own lease had expired lost its reservation there too.
local reserving = fresh or redis.call('HEXISTS', KEYS[6], slot) == 0
local reserved = tonumber(redis.call('HGET', KEYS[5], 'reserved') or '0')
local spent = tonumber(redis.call('HGET', KEYS[5], 'spent') or '0')
local line = tonumber(redis.call('HGET', KEYS[5], 'line') or '0')
if reserving and spent + reserve > line then return {'stop', 0, 'budget_exhausted'} end

local cooldown = tonumber(redis.call('HGET', KEYS[4], 'cooldown_until') or '0')
if cooldown > now then return wait(cooldown - now, 'cooldown') end

if fresh and redis.call('ZCARD', KEYS[3]) >= max_conc then
  return wait(50, 'concurrency')
end

-- GCRA with no burst: requests spaced 60000/rpm ms apart, tokens 60000/tpm ms per token.
-- The caller books the earliest slot both allow, if it is at most ahead_ms away.
local rpm_tat = tonumber(redis.call('HGET', KEYS[4], 'rpm_tat') or '0')
local tpm_tat = tonumber(redis.call('HGET', KEYS[4], 'tpm_tat') or '0')
local start = math.max(now, rpm_tat, tpm_tat)
if start - now > ahead then
  -- A queue in time: each caller told to wait comes back at a time of its own, one request
  -- spacing after the caller before it, instead of all of them polling for the next slot.
  -- Past max_wait_ms the queue cannot reach: those callers come back then and queue again.
  local edge = start - ahead
  local due = math.max(edge, tonumber(redis.call('HGET', KEYS[4], 'wait_tat') or '0'))
  due = math.min(due, edge + tonumber(ARGV[11]))
  redis.call('HSET', KEYS[4], 'wait_tat', due + math.max(60000 / rpm, est_tokens * 60000 / tpm))
  return wait(math.ceil(due - now), rpm_tat >= tpm_tat and 'rpm' or 'tpm')
end

if reserving and spent + reserved + reserve > line then return wait(100, 'budget') end

redis.call('HSET', KEYS[4], 'rpm_tat', start + 60000 / rpm,
  'tpm_tat', start + est_tokens * 60000 / tpm)
redis.call('ZADD', KEYS[3], start + ttl, slot)
if reserving then
  redis.call('HINCRBY', KEYS[5], 'reserved', reserve)
  redis.call('HSET', KEYS[6], slot, reserve)
end
if counted then redis.call('HINCRBY', KEYS[7], 'requests', 1) end
return {'go', math.ceil(start - now), ''}
