-- cancel. ARGV: 3 reason, 4 actor, 5 encoded error.
-- Returns -2 not found, -3 finished, or the status: 'running' (flagged) or 'cancelled'.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
if FINAL[hget('status')] then
  return -3
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[1], 'cancel', ARGV[3], 'cancel_status', 'cancelled', 'cancel_actor', ARGV[4],
    'cancel_error', ARGV[5], 'rewake', '1')
  audit('cancel.requested', 'cancel requested: ' .. ARGV[3], '', ARGV[4], '')
  return 'running'
end
finalize_cancelled(ARGV[3], ARGV[4], ARGV[5])
return 'cancelled'
