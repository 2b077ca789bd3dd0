-- suspend. Extra KEYS: 14 the wait's signal list (any key when there is no wait).
-- ARGV: 3 token, 4 status, 5 wake_at ms or '', 6 timer member or '', 7 has wait '1'/'0', 8 signal name,
-- 9 step id, 10 record prefix, 11 record suffix, 12 deadline ms or '', 13 timeout record,
-- 14 the signal's JSON Schema or '', 15.. checkpoint, then the queue entry to acknowledge if the
-- execution suspends, or ''.
-- Returns {'lost'} | {'cancelled'} | {'signal', payload} | {'timeout'} | {'suspended'}.
if not fence_ok(ARGV[3]) then
  return { 'lost' }
end
if hget('cancel') ~= '' then
  return { 'cancelled' }
end
local after = write_checkpoint(15)
local has_wait = ARGV[7] == '1'
if has_wait then
  -- For senders without the signal's model (Store.signal_schema); kept until the next wait or the end.
  redis.call('HSET', KEYS[1], 'wait_signal', ARGV[8], 'wait_schema', ARGV[14])
  local payload = redis.call('LPOP', KEYS[14])
  if payload then
    redis.call('HSET', KEYS[2], ARGV[9], ARGV[10] .. payload .. ARGV[11])
    audit('signal.consumed', 'signal ' .. ARGV[8] .. ' consumed', ARGV[9], '', payload)
    return { 'signal', payload }
  end
  if ARGV[12] ~= '' and tonumber(NOW) >= tonumber(ARGV[12]) then
    redis.call('HSET', KEYS[2], ARGV[9], ARGV[13])
    return { 'timeout' }
  end
end
local status = ARGV[4]
local waiting_for = ''
if has_wait then
  waiting_for = ARGV[8]
end
drop_timer()
redis.call('HSET', KEYS[1], 'status', status, 'waiting_for', waiting_for, 'wake_ms', ARGV[5], 'updated_ms', NOW)
local queued = false
if ARGV[5] ~= '' then
  if tonumber(ARGV[5]) <= tonumber(NOW) then
    -- Already due (a 0 s sleep, a passed retry time): straight to the queue, no timer round trip.
    enqueue('timer')
    queued = true
  else
    arm_timer(ARGV[6], ARGV[5])
    redis.call('HSET', KEYS[1], 'timer', ARGV[6])
  end
end
redis.call('DEL', KEYS[3])
local f = redis.call('HMGET', KEYS[1], 'workflow_id', 'current_step', 'rewake')
status_event(f[1], status, f[2] or '')
if f[3] == '1' then
  redis.call('HDEL', KEYS[1], 'rewake')
  if not queued then
    enqueue('rewake')
  end
end
ack_entry(ARGV[after])
return { 'suspended' }
