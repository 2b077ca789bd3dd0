-- fire_due_timers. KEYS: 1 timers, 2 queue. ARGV: 1 unused, 2 now ms, 3 limit.
-- Only the caller whose ZREM succeeds enqueues, so a timer fires once with any number of pollers.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', NOW, 'LIMIT', 0, tonumber(ARGV[3]))
local fired = 0
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local eid = string.match(member, '^(.*)|[^|]*$') or member
    redis.call('XADD', KEYS[2], '*', 'e', eid, 'r', 'timer')
    local exec_key = K_HEAD .. eid .. K_EXEC
    if redis.call('HGET', exec_key, 'timer') == member then
      redis.call('HSET', exec_key, 'timer', '')
    end
    fired = fired + 1
  end
end
return fired
