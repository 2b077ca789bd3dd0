-- continue_as_new. ARGV: 3 token, 4 the next run's input, 5.. packed checkpoint, then the queue entry to
-- acknowledge or ''. Returns -1 lease lost, 1 cancel (or forced failure) requested, {3, version} the
-- declared queue is not the execution's version's (nothing written), 0 done.
if not fence_ok(ARGV[3]) then
  return -1
end
if hget('cancel') ~= '' then
  return 1
end
local moved = wrong_queue(hget('version'))
if moved then
  return moved
end
local after = write_checkpoint(5)
-- The step records (the buffered ones too) belong to the finished run; buffered signals (their lists
-- and name set) and delivery ids stay for the next run.
redis.call('DEL', KEYS[2])
local run = (tonumber(hget('run')) or 1) + 1
redis.call('HSET', KEYS[1], 'input', ARGV[4], 'run', run, 'attempt', 1, 'status', 'pending', 'current_step', '',
  'waiting_for', '', 'wake_ms', '', 'updated_ms', NOW)
redis.call('HDEL', KEYS[1], 'rewake')
drop_timer()
redis.call('DEL', KEYS[3])
enqueue('continued')
ack_entry(ARGV[after])
audit('continued_as_new', 'continued as new: run ' .. run, '', '', cjson.encode({ run = run }))
status_event(hget('workflow_id'), 'pending', '')
return 0
