-- put_running_step: a running step attempt's record and its time-out timer, fenced (Runs.put_running_step).
-- ARGV: 3 token, 4 step id, 5 the encoded record, 6 the timer's member, 7 its due time in ms.
-- Returns 1, or -1 (nothing written) if the lease is no longer the caller's.
if not fence_ok(ARGV[3]) then
  return -1
end
redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
arm_timer(ARGV[6], ARGV[7])
return 1
