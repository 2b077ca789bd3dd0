-- recover, one batch. KEYS: 1 queue, 2 timers, 3 active.
-- ARGV: 1 unused, 2 now ms, 3.. pairs of (execution id, '1' if it already has a queue entry).
-- Enqueues each non-final execution that nothing else will wake (or re-arms a sleeper's lost timer).
-- Returns how many it enqueued; re-armed timers are not counted.
local recovered = 0
for i = 3, #ARGV, 2 do
  local eid = ARGV[i]
  local exec_key = K_HEAD .. eid .. K_EXEC
  local f = redis.call('HMGET', exec_key, 'status', 'waiting_for', 'wake_ms', 'timer')
  local status = f[1]
  if not status or FINAL[status] then
    redis.call('SREM', KEYS[3], eid)
  elseif ARGV[i + 1] ~= '1' and redis.call('EXISTS', K_HEAD .. eid .. K_LEASE) == 0 then
    local timer = f[4] or ''
    local wake = f[3] or ''
    local armed = timer ~= '' and redis.call('ZSCORE', KEYS[2], timer)
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
      if name == '' or redis.call('LLEN', K_HEAD .. eid .. K_SIG .. name) > 0 then
        action = 'enqueue'
      elseif wake ~= '' and not armed then
        action = 'rearm'
      end
    end
    if action == 'rearm' and wake == '' then
      action = 'enqueue'
    end
    if action == 'enqueue' then
      redis.call('XADD', KEYS[1], '*', 'e', eid, 'r', 'recover')
      recovered = recovered + 1
    elseif action == 'rearm' then
      if timer == '' then
        timer = eid .. '|recover'
        redis.call('HSET', exec_key, 'timer', timer)
      end
      redis.call('ZADD', KEYS[2], wake, timer)
      redis.call('PUBLISH', TIMERS_CHANNEL, timer)
    end
  end
end
return recovered
