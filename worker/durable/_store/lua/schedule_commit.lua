-- Settle a claimed slot, if the claim is still the newest.
-- KEYS: record hash, due zset, audit stream
-- ARGV: schedule id, token, next ms ('' = none), now ms, fired delta, skipped delta,
--       last ms ('' = keep), last execution id ('' = keep), audit maxlen,
--       then a count n and n groups of (kind, message, step id, actor, data)
-- Returns 1, or 0 (nothing written) if the token is stale or the schedule is gone.
local rec, due, audit = KEYS[1], KEYS[2], KEYS[3]
local sid, nxt, now = ARGV[1], ARGV[3], ARGV[4]
local token = redis.call('HGET', rec, 'token')
if not token or token ~= ARGV[2] then
  return 0
end
redis.call('HSET', rec, 'next', nxt)
redis.call('HINCRBY', rec, 'fired', tonumber(ARGV[5]))
redis.call('HINCRBY', rec, 'skipped', tonumber(ARGV[6]))
if ARGV[7] ~= '' then
  redis.call('HSET', rec, 'last', ARGV[7])
end
if ARGV[8] ~= '' then
  redis.call('HSET', rec, 'leid', ARGV[8])
end
if redis.call('HGET', rec, 'paused') == '1' or nxt == '' then
  redis.call('ZREM', due, sid)
else
  redis.call('ZADD', due, nxt, sid)
end
local n = tonumber(ARGV[10])
for i = 0, n - 1 do
  local b = 11 + i * 5
  redis.call('XADD', audit, 'MAXLEN', '~', ARGV[9], '*',
    't', now, 'k', ARGV[b], 'm', ARGV[b + 1], 's', ARGV[b + 2], 'a', ARGV[b + 3], 'd', ARGV[b + 4])
end
return 1
