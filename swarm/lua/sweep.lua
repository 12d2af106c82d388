-- sweep: recover what dead workers left behind.
-- KEYS: 1 meta  2 done  3 leases  4 budget  5 resv  6 counters  7 pending
-- ARGV: 1 now_ms  2 refeed_after_ms  3 max_slots (per call)
-- A reservation whose lease has expired becomes spend at the reserved amount (the call may
-- have been billed). A fed slot past its re-feed deadline, neither finished nor leased, is
-- returned for re-publishing and gets a new deadline.
-- Returns {slots_to_refeed...}
local now, refeed, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local resv = redis.call('HGETALL', KEYS[5])
for i = 1, #resv, 2 do
  local slot, amount = resv[i], tonumber(resv[i + 1])
  if not redis.call('ZSCORE', KEYS[3], slot) then
    redis.call('HDEL', KEYS[5], slot)
    redis.call('HINCRBY', KEYS[4], 'reserved', -amount)
    redis.call('HINCRBY', KEYS[4], 'spent', amount)
    redis.call('HINCRBY', KEYS[6], 'cost_kimi_micro', amount)
    redis.call('HINCRBY', KEYS[6], 'lost_reservations', 1)
  end
end
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, limit)
for _, slot in ipairs(due) do
  if redis.call('GETBIT', KEYS[2], tonumber(slot)) == 1 then
    redis.call('ZREM', KEYS[7], slot)
  else
    redis.call('ZADD', KEYS[7], now + refeed, slot)
    if not redis.call('ZSCORE', KEYS[3], slot) then
      out[#out + 1] = slot
    end
  end
end
if #out > 0 then redis.call('HINCRBY', KEYS[6], 'refed', #out) end
return out
