-- fire_step_timer: a running step's time-out timer is due (Runs.put_running_step). ARGV: 3 the timer's
-- member, 4 the step id. Only the caller whose ZREM succeeds acts. If the step's record is still a running
-- attempt (its worker stopped heartbeating, or ran past the step's time-out) and the execution is not final,
-- the lease is revoked (the next acquire gets a new fence token; the stuck worker's writes fail), the
-- time-out is audited and a run is enqueued. Returns 1 if it fired, else 0.
local refused = take_due_timer(ARGV[3])
if refused then
  return refused
end
local status = hget('status')
if status == '' or FINAL[status] then
  return 1
end
local raw = redis.call('HGET', KEYS[2], ARGV[4])
if not raw then
  return 1
end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec['status'] ~= 'running' then
  return 1
end
local kind = 'step.timeout'
if type(rec['meta']) == 'table' and rec['meta']['due_kind'] == 'heartbeat' then
  kind = 'heartbeat.timeout'
end
redis.call('DEL', KEYS[3])
audit(kind, 'step ' .. ARGV[4] .. ' timed out (' .. kind .. '); lease revoked', ARGV[4], '', '')
enqueue('step-timeout')
return 1
