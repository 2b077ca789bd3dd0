-- send_signal. Extra KEYS: 14 the signal's list. ARGV: 3 name, 4 payload, 5 delivery id, 6 actor,
-- 7 what the sender checked the payload against ('*' the model, a schema's sha1, '' nothing).
-- Returns -2 not found, -3 finished, 0 duplicate delivery, 1 accepted,
-- {-5, schema} the execution's wait for this signal recorded a schema the sender did not check.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
-- A delivery already accepted is a duplicate whatever happened since (a retried send whose answer
-- was lost may find the execution finished by the very signal it sent).
if redis.call('SISMEMBER', KEYS[5], ARGV[5]) == 1 then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'status', 'waiting_for', 'wait_signal', 'wait_schema')
if FINAL[f[1]] then
  return -3
end
if ARGV[7] ~= '*' and f[3] == ARGV[3] and f[4] and f[4] ~= '' and redis.sha1hex(f[4]) ~= ARGV[7] then
  return { -5, f[4] }
end
local wakes = f[1] == 'waiting' and f[2] == ARGV[3]
if wakes then
  local moved = wrong_queue(hget('version'))
  if moved then
    return moved
  end
end
if redis.call('SADD', KEYS[5], ARGV[5]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[14], ARGV[4])
redis.call('SADD', KEYS[6], ARGV[3])
audit('signal.received', 'signal ' .. ARGV[3] .. ' received', '', ARGV[6], ARGV[4])
if wakes then
  redis.call('HSET', KEYS[1], 'waiting_for', '')
  enqueue('signal')
end
return 1
