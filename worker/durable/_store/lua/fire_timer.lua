-- fire_timer: one due wake-up timer of this execution (the caller found it due). ARGV: 3 the timer's member.
-- Only the caller whose ZREM succeeds enqueues, so a timer fires once with any number of pollers; a
-- timer moved to a later time since the caller looked is left alone. Returns 1 if it fired, else 0.
local score = redis.call('ZSCORE', KEYS[8], ARGV[3])
if not score or tonumber(score) > tonumber(NOW) then
  return 0
end
local moved = wrong_queue(hget('version'))
if moved then
  return moved
end
redis.call('ZREM', KEYS[8], ARGV[3])
enqueue('timer')
if redis.call('HGET', KEYS[1], 'timer') == ARGV[3] then
  redis.call('HSET', KEYS[1], 'timer', '')
end
return 1
