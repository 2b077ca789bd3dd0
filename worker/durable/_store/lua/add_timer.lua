-- add_timer. KEYS: 1 timers. ARGV: 1 member, 2 due ms.
-- Tell the pollers only if it is due before every timer already set (see arm_timer in the prelude).
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if not first[2] or tonumber(ARGV[2]) < tonumber(first[2]) then
  redis.call('PUBLISH', TIMERS_CHANNEL, ARGV[1])
end
return 1
