-- send_signal. Extra KEYS: 13 the signal's list. ARGV: 3 name, 4 payload, 5 delivery id, 6 actor.
-- Returns -2 not found, -3 finished, 0 duplicate delivery, 1 accepted.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
local f = redis.call('HMGET', KEYS[1], 'status', 'waiting_for')
if FINAL[f[1]] then
  return -3
end
if redis.call('SADD', KEYS[5], ARGV[5]) == 0 then
  return 0
end
redis.call('RPUSH', KEYS[13], ARGV[4])
redis.call('SADD', KEYS[6], ARGV[3])
audit('signal.received', 'signal ' .. ARGV[3] .. ' received', '', ARGV[6], ARGV[4])
if f[1] == 'waiting' and f[2] == ARGV[3] then
  redis.call('HSET', KEYS[1], 'waiting_for', '')
  enqueue('signal')
end
return 1
