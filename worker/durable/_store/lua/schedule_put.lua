-- Create or overwrite one schedule's definition, keeping its counters and last run.
-- KEYS: record hash, due zset, index set, audit stream, change stream
-- ARGV: schedule id, spec, next ms ('' = none), paused ('0'|'1'), now ms, create ('0'|'1'),
--       audit maxlen, then a count n and n groups of (kind, message, step id, actor, data)
-- Returns the record (HGETALL) or false if it is missing and create is '0'.
local rec, due, index, audit, changes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local sid, nxt, paused, now = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', rec) == 0 then
  if ARGV[6] ~= '1' then
    return false
  end
  redis.call('HSET', rec, 'created', now, 'fired', 0, 'skipped', 0, 'token', 0)
end
redis.call('HSET', rec, 'spec', ARGV[2], 'paused', paused, 'next', nxt, 'updated', now)
-- A definition write voids claims in flight.
redis.call('HINCRBY', rec, 'token', 1)
if paused == '1' or nxt == '' then
  redis.call('ZREM', due, sid)
else
  redis.call('ZADD', due, nxt, sid)
end
redis.call('SADD', index, sid)
local n = tonumber(ARGV[8])
for i = 0, n - 1 do
  local b = 9 + i * 5
  redis.call('XADD', audit, 'MAXLEN', '~', ARGV[7], '*',
    't', now, 'k', ARGV[b], 'm', ARGV[b + 1], 's', ARGV[b + 2], 'a', ARGV[b + 3], 'd', ARGV[b + 4])
end
redis.call('XADD', changes, 'MAXLEN', '~', 100, '*', 's', sid)
return redis.call('HGETALL', rec)
