-- conc_admit: a concurrency slot for this execution's run (see Concurrency.admit). Extra KEYS: 14 the group's
-- slots (sorted set: holder → ms admitted), 15 its waiting line (sorted set: execution → ms created),
-- 16 the limits (hash: group → limit). ARGV: 3 token, 4 group, 5 limit, 6 'park' to park when full (else
-- answer 'full'), 7 recheck due ms, 8 recheck timer member, 9 waiting_for text, 10 queue entry to ack or ''.
-- Returns 'lost' | 'cancelled' | 'admitted' | 'full' | 'parked'.
local slots, waiting, limits = KEYS[14], KEYS[15], KEYS[16]
if not fence_ok(ARGV[3]) then
  return 'lost'
end
if hget('cancel') ~= '' then
  return 'cancelled'
end
redis.call('HSET', limits, ARGV[4], ARGV[5])
redis.call('HSET', KEYS[1], 'conc_group', ARGV[4])
if redis.call('ZSCORE', slots, EID) then
  return 'admitted'
end
if not redis.call('ZSCORE', waiting, EID) then
  redis.call('ZADD', waiting, tonumber(hget('created_ms')) or tonumber(NOW), EID)
end
local free = tonumber(ARGV[5]) - redis.call('ZCARD', slots)
if free > 0 then
  for _, first in ipairs(redis.call('ZRANGE', waiting, 0, free - 1)) do
    if first == EID then
      redis.call('ZREM', waiting, EID)
      redis.call('ZADD', slots, NOW, EID)
      return 'admitted'
    end
  end
end
if ARGV[6] ~= 'park' then
  return 'full'
end
-- Parked: pending, not leased, its queue entry done; the release of a slot enqueues it, and the recheck
-- timer is the safety net for a holder whose worker died between its final write and that release.
drop_timer()
arm_timer(ARGV[8], ARGV[7])
redis.call('HSET', KEYS[1], 'timer', ARGV[8])
redis.call('HSET', KEYS[1], 'status', 'pending', 'waiting_for', ARGV[9], 'wake_ms', '', 'updated_ms', NOW)
redis.call('HDEL', KEYS[1], 'rewake')
redis.call('DEL', KEYS[3])
local f = redis.call('HMGET', KEYS[1], 'workflow_id', 'current_step')
status_event(f[1], 'pending', f[2] or '')
ack_entry(ARGV[10])
return 'parked'
