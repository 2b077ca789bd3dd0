-- skip_step. ARGV: 3 step id, 4 record, 5 actor. Returns -2 not found, -3 finished, 1 done.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
local status = hget('status')
if FINAL[status] then
  return -3
end
local moved = wrong_queue(hget('version'))
if moved then
  return moved
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[1], 'updated_ms', NOW)
audit('step.skipped', 'step ' .. ARGV[3] .. ' skipped', ARGV[3], ARGV[5], '')
if redis.call('EXISTS', KEYS[3]) == 0 then
  drop_timer()
end
enqueue('skip')
return 1
