-- stop: cancel or force-fail. ARGV: 3 reason, 4 actor, 5 encoded error, 6 the final status asked for
-- ('cancelled' or 'failed'). Returns -2 not found, -3 finished, or the status: 'running' (flagged) or ARGV[6].
-- A worker holds the lease: the request is stored (fields cancel, cancel_status, ...), and every place that
-- applies a pending stop request (acquire, release; commit and suspend refuse to write) applies it.
local REQUESTED = {
  cancelled = { 'cancel.requested', 'cancel requested: ' },
  failed = { 'fail.requested', 'forced failure requested: ' },
}
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
if FINAL[hget('status')] then
  return -3
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HSET', KEYS[1], 'cancel', ARGV[3], 'cancel_status', ARGV[6], 'cancel_actor', ARGV[4],
    'cancel_error', ARGV[5], 'rewake', '1')
  local kind, message = unpack(REQUESTED[ARGV[6]])
  audit(kind, message .. ARGV[3], '', ARGV[4], '')
  return 'running'
end
if ARGV[6] == 'failed' then
  finalize_forced(ARGV[3], ARGV[4], ARGV[5])
else
  finalize_cancelled(ARGV[3], ARGV[4], ARGV[5])
end
return ARGV[6]
