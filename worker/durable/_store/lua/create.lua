-- create_execution. Extra KEYS: 13 idx:all, 14 idx:wf:<workflow>.
-- ARGV: 3 workflow id, 4 input, 5 category, 6 parent, 7 actor, 8 reason, 9 start_at_ms or '', 10 timer member
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local workflow_id = ARGV[3]
local start_at = ARGV[9]
if start_at ~= '' and tonumber(start_at) <= tonumber(NOW) then
  start_at = ''  -- already due: the queue, not a timer
end
local fields = { 'workflow_id', workflow_id, 'input', ARGV[4], 'status', 'pending', 'attempt', '1',
  'activations', '0', 'created_ms', NOW, 'updated_ms', NOW, 'fence', '0' }
if ARGV[5] ~= '' then
  table.insert(fields, 'category')
  table.insert(fields, ARGV[5])
end
if ARGV[6] ~= '' then
  table.insert(fields, 'parent')
  table.insert(fields, ARGV[6])
end
if start_at ~= '' then
  table.insert(fields, 'wake_ms')
  table.insert(fields, start_at)
  table.insert(fields, 'timer')
  table.insert(fields, ARGV[10])
end
redis.call('HSET', KEYS[1], unpack(fields))
if start_at ~= '' then
  redis.call('ZADD', KEYS[8], start_at, ARGV[10])
  redis.call('PUBLISH', TIMERS_CHANNEL, ARGV[10])
else
  enqueue(ARGV[8])
end
redis.call('ZADD', KEYS[13], NOW, EID)
redis.call('ZADD', KEYS[14], NOW, EID)
redis.call('SADD', KEYS[11], EID)
status_event(workflow_id, 'pending', '')
audit('created', 'execution of ' .. workflow_id .. ' created', '', ARGV[7], '')
return 1
