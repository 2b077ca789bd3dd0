-- retry_execution. ARGV: 3 actor, 4 step id of a consumed signal to discard, or ''.
-- Returns -2 not found, -4 not failed, -5 no consumed signal at that step, 1 done.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
if hget('status') ~= 'failed' then
  return -4
end
local moved = wrong_queue(hget('version'))
if moved then
  return moved
end
local discard = ARGV[4] or ''
if discard ~= '' then
  local raw = redis.call('HGET', KEYS[2], discard)
  local ok, rec = false, nil
  if raw then
    ok, rec = pcall(cjson.decode, raw)
  end
  if not (ok and type(rec) == 'table' and rec['kind'] == 'signal' and rec['status'] == 'completed'
      and type(rec['result']) == 'table' and rec['result']['kind'] == 'signal') then
    return -5
  end
  local name = ''
  if type(rec['meta']) == 'table' and type(rec['meta']['signal']) == 'string' then
    name = rec['meta']['signal']
  end
  redis.call('HDEL', KEYS[2], discard)
  audit('signal.discarded', 'consumed signal ' .. name .. ' discarded at step ' .. discard, discard, ARGV[3], raw)
end
local steps = redis.call('HGETALL', KEYS[2])
for i = 1, #steps, 2 do
  local ok, rec = pcall(cjson.decode, steps[i + 1])
  if ok and type(rec) == 'table' and rec['status'] == 'failed' then
    redis.call('HDEL', KEYS[2], steps[i])
  end
end
redis.call('HINCRBY', KEYS[1], 'attempt', 1)
redis.call('HSET', KEYS[1], 'status', 'pending', 'updated_ms', NOW)
redis.call('HDEL', KEYS[1], 'error', 'result', 'finished_ms', 'cancel', 'cancel_status', 'cancel_actor',
  'cancel_error', 'rewake')
redis.call('SADD', KEYS[11], EID)
redis.call('ZREM', KEYS[12], EID)
enqueue('retry')
audit('retry', 'execution retried', '', ARGV[3], '')
local f = redis.call('HMGET', KEYS[1], 'workflow_id', 'current_step')
status_event(f[1], 'pending', f[2] or '')
return 1
