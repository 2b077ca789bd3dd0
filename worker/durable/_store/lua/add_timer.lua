-- add_timer. KEYS: 1 timers. ARGV: 1 member, 2 due ms.
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', TIMERS_CHANNEL, ARGV[1])
return 1
