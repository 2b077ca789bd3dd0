-- compact_finished. KEYS: 1 compactable. ARGV: 1 unused, 2 now ms, 3 cutoff ms (exclusive), 4 limit.
-- Completed and cancelled executions that became final before the cutoff keep their record (status,
-- input, result or error, times, counters) and lose their history: step records, audit stream, signal
-- buffers and delivery ids. Returns how many were compacted.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local compacted = 0
for _, eid in ipairs(ids) do
  redis.call('ZREM', KEYS[1], eid)
  local exec_key = K_HEAD .. eid .. K_EXEC
  local status = redis.call('HGET', exec_key, 'status')
  if status == 'completed' or status == 'cancelled' then
    local names_key = K_HEAD .. eid .. K_SIGNAMES
    for _, name in ipairs(redis.call('SMEMBERS', names_key)) do
      redis.call('DEL', K_HEAD .. eid .. K_SIG .. name)
    end
    redis.call('DEL', K_HEAD .. eid .. K_STEPS, K_HEAD .. eid .. K_AUDIT, K_HEAD .. eid .. K_SIGIDS, names_key,
      K_HEAD .. eid .. K_LEASE)
    redis.call('HSET', exec_key, 'compacted_ms', NOW)
    compacted = compacted + 1
  end
end
return compacted
