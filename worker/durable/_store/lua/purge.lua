-- purge_finished. KEYS: 1 finished, 2 idx:all, 3 active. ARGV: 1 unused, 2 cutoff ms (exclusive), 3 limit.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local purged = 0
for _, eid in ipairs(ids) do
  local exec_key = K_HEAD .. eid .. K_EXEC
  local f = redis.call('HMGET', exec_key, 'status', 'workflow_id')
  if f[1] and not FINAL[f[1]] then
    redis.call('ZREM', KEYS[1], eid)
  else
    local names_key = K_HEAD .. eid .. K_SIGNAMES
    for _, name in ipairs(redis.call('SMEMBERS', names_key)) do
      redis.call('DEL', K_HEAD .. eid .. K_SIG .. name)
    end
    redis.call('DEL', exec_key, K_HEAD .. eid .. K_STEPS, K_HEAD .. eid .. K_LEASE, K_HEAD .. eid .. K_AUDIT,
      K_HEAD .. eid .. K_SIGIDS, names_key)
    redis.call('ZREM', KEYS[2], eid)
    if f[2] then
      redis.call('ZREM', K_IDX_WF .. f[2], eid)
    end
    redis.call('ZREM', KEYS[1], eid)
    redis.call('ZREM', K_COMPACTABLE, eid)
    redis.call('SREM', KEYS[3], eid)
    purged = purged + 1
  end
end
return purged
