-- fire_timer: one due wake-up timer of this execution (the caller found it due). ARGV: 3 the timer's member.
-- Only the caller whose ZREM succeeds enqueues, so a timer fires once with any number of pollers; a
-- timer moved to a later time since the caller looked is left alone. Returns 1 if it fired, else 0.
local refused = take_due_timer(ARGV[3])
if refused then
  return refused
end
enqueue('timer')
if redis.call('HGET', KEYS[1], 'timer') == ARGV[3] then
  redis.call('HSET', KEYS[1], 'timer', '')
end
return 1
