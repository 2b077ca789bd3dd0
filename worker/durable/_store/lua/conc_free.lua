-- conc_free: give back the concurrency slot (or place in line) of a final or purged execution and enqueue
-- the oldest waiters that now fit. Extra KEYS: 14 slots, 15 waiting, 16 limits (see conc_admit).
-- ARGV: 3 group. Returns the number of waiters enqueued, or -1 if the execution is not final (nothing done).
local slots, waiting, limits = KEYS[14], KEYS[15], KEYS[16]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if not FINAL[hget('status')] then
    return -1
  end
  -- Waiters are enqueued on the queue of this execution's version (the same workflow's, as a rule).
  local moved = wrong_queue(hget('version'))
  if moved then
    return moved
  end
end
redis.call('ZREM', slots, EID)
redis.call('ZREM', waiting, EID)
local free = (tonumber(redis.call('HGET', limits, ARGV[3])) or 0) - redis.call('ZCARD', slots)
local woken = 0
if free > 0 then
  for _, next_id in ipairs(redis.call('ZRANGE', waiting, 0, free - 1)) do
    redis.call('XADD', KEYS[7], '*', 'e', next_id, 'r', 'concurrency')
    woken = woken + 1
  end
end
return woken
