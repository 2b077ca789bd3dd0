-- recover one execution. Extra KEYS: 14 the list of the signal declared in ARGV[4] (any key if none).
-- ARGV: 3 '1' if the execution already has a queue entry, 4 the signal it waits for as declared, or ''.
-- Enqueues a non-final execution that nothing else will wake, or re-arms a sleeper's lost timer.
-- Returns 1 if it enqueued, 0 otherwise (a re-armed timer is not counted), or {2, '', signal name} when the
-- execution waits for a signal whose list is not declared (nothing changed).
local f = redis.call('HMGET', KEYS[1], 'status', 'waiting_for', 'wake_ms', 'timer')
local status = f[1]
if not status or FINAL[status] then
  redis.call('SREM', KEYS[11], EID)
  return 0
end
if ARGV[3] == '1' or redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
local timer = f[4] or ''
local wake = f[3] or ''
local armed = timer ~= '' and redis.call('ZSCORE', KEYS[8], timer)
local action = nil
if status == 'pending' or status == 'running' then
  if not armed then
    action = 'enqueue'
  end
elseif status == 'sleeping' then
  if not armed then
    action = 'rearm'
  end
elseif status == 'waiting' then
  local name = f[2] or ''
  if name ~= '' and name ~= ARGV[4] then
    return { 2, '', name }
  end
  if name == '' or redis.call('LLEN', KEYS[14]) > 0 then
    action = 'enqueue'
  elseif wake ~= '' and not armed then
    action = 'rearm'
  end
end
if action == 'rearm' and wake == '' then
  action = 'enqueue'
end
if action == 'enqueue' then
  local moved = wrong_queue(hget('version'))
  if moved then
    return moved
  end
  enqueue('recover')
  return 1
end
if action == 'rearm' then
  if timer == '' then
    timer = EID .. '|recover'
    redis.call('HSET', KEYS[1], 'timer', timer)
  end
  arm_timer(timer, wake)
end
return 0
