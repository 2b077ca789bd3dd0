-- acquire. ARGV: 3 worker id, 4 ttl ms, 5 '1' if a lease held under this worker id is an orphan the caller
-- may take over (its own acquire whose answer was lost: the caller runs nothing of this execution now).
-- Returns {'missing'} | {'finished'} | {'moved', version} | {'busy', pttl} | {'ok', token, exec fields, step records}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return { 'missing' }
end
local f = redis.call('HMGET', KEYS[1], 'status', 'cancel', 'workflow_id', 'current_step', 'started_ms', 'version')
local status = f[1]
if FINAL[status] then
  return { 'finished' }
end
-- Queued for another version (the execution was migrated since): not ours to run.
if (f[6] or '') ~= QUEUE_VERSION then
  return { 'moved', f[6] or '' }
end
local pttl = redis.call('PTTL', KEYS[3])
if pttl ~= -2 and ARGV[5] == '1' and string.match(redis.call('GET', KEYS[3]) or '', '^(.*):%d+$') == ARGV[3] then
  pttl = -2
end
if pttl ~= -2 then
  redis.call('HSET', KEYS[1], 'rewake', '1')
  if pttl < 1 then
    pttl = 1
  end
  return { 'busy', pttl }
end
if apply_stop_request() then
  return { 'finished' }
end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[3], ARGV[3] .. ':' .. token, 'PX', ARGV[4])
drop_timer()
redis.call('HINCRBY', KEYS[1], 'activations', 1)
redis.call('HSET', KEYS[1], 'status', 'running', 'updated_ms', NOW)
redis.call('HDEL', KEYS[1], 'rewake')
if not f[5] or f[5] == '' then
  redis.call('HSET', KEYS[1], 'started_ms', NOW)
end
if status ~= 'running' then
  redis.call('HSET', KEYS[1], 'waiting_for', '', 'wake_ms', '')
  status_event(f[3], 'running', f[4] or '')
end
return { 'ok', token, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]) }
