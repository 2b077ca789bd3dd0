-- create_execution. Extra KEYS: 14 idx:all, 15 idx:wf:<workflow>, 16 idx:wf:<the declared old run's
-- workflow> (any key when none is declared), 17 versions:current (workflow -> version), 18.. the declared
-- signal lists.
-- ARGV: 3 workflow id, 4 input, 5 category, 6 parent, 7 actor, 8 reason, 9 start_at_ms or '', 10 timer member,
--       11 input hash, 12 id reuse policy ('reject' | 'allow_if_finished'), 13 the old run's workflow id as
--       declared in KEYS[16] or '', 14 count n of declared signal lists, 15.. their names (KEYS[18..]),
--       then (ARGV[15 + n]) a child's on_parent_cancel policy or '', the deadline ms or '' and the
--       deadline timer's member
-- Returns {1} created, {0} the same request exists (nothing changed),
-- {-1, reason, existing workflow id} a different request exists (nothing changed),
-- {2, old workflow id, signal name, ...} replacing the old run needs these keys declared (nothing changed),
-- {3, version} the workflow's current version is not the one whose queue is declared (nothing changed).
local workflow_id = ARGV[3]
-- A new run belongs to the version current for its workflow when it is created.
local version = redis.call('HGET', KEYS[17], workflow_id) or ''
local moved = wrong_queue(version)
if moved then
  return moved
end
local run = 1
local fence = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local old = redis.call('HMGET', KEYS[1], 'workflow_id', 'input_hash', 'status', 'run', 'fence')
  local old_wf = old[1] or ''
  if ARGV[12] ~= 'allow_if_finished' or not FINAL[old[3]] then
    if old_wf ~= workflow_id then
      return { -1, 'workflow', old_wf }
    end
    if old[2] and old[2] ~= '' and old[2] ~= ARGV[11] then
      return { -1, 'input', old_wf }
    end
    return { 0 }
  end
  -- A fresh run under a finished id: drop the old run's history; the audit stream stays.
  local lists = declared_signals(14, 18)
  local missing = undeclared_signals(lists)
  if (old_wf ~= workflow_id and old_wf ~= ARGV[13]) or #missing > 0 then
    return { 2, old_wf, unpack(missing) }
  end
  run = tonumber(old[4] or '1') + 1
  fence = old[5] or '0' -- fence tokens never repeat under one id: a stale worker of the old run stays fenced out
  drop_signals(lists)
  drop_timer()
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
  redis.call('ZREM', KEYS[12], EID)
  redis.call('ZREM', KEYS[13], EID)
  if old_wf ~= workflow_id then
    redis.call('ZREM', KEYS[16], EID)
  end
  audit('replaced', 'run ' .. (run - 1) .. ' (' .. (old[3] or '?') .. ', ' .. old_wf .. ') replaced by run ' .. run,
    '', ARGV[7], '')
end
local start_at = ARGV[9]
if start_at ~= '' and tonumber(start_at) <= tonumber(NOW) then
  start_at = ''  -- already due: the queue, not a timer
end
local fields = { 'workflow_id', workflow_id, 'input', ARGV[4], 'input_hash', ARGV[11], 'run', run,
  'status', 'pending', 'attempt', '1', 'activations', '0', 'created_ms', NOW, 'updated_ms', NOW, 'fence', fence }
if ARGV[5] ~= '' then
  table.insert(fields, 'category')
  table.insert(fields, ARGV[5])
end
if version ~= '' then
  table.insert(fields, 'version')
  table.insert(fields, version)
end
if ARGV[6] ~= '' then
  table.insert(fields, 'parent')
  table.insert(fields, ARGV[6])
end
local on_parent_cancel = ARGV[15 + tonumber(ARGV[14])] or ''
if on_parent_cancel ~= '' then
  table.insert(fields, 'on_parent_cancel')
  table.insert(fields, on_parent_cancel)
end
if start_at ~= '' then
  table.insert(fields, 'wake_ms')
  table.insert(fields, start_at)
  table.insert(fields, 'timer')
  table.insert(fields, ARGV[10])
end
redis.call('HSET', KEYS[1], unpack(fields))
if start_at ~= '' then
  arm_timer(ARGV[10], start_at)
else
  enqueue(ARGV[8])
end
-- The execution's deadline (ARGV after the signal names: its ms or '', then its timer's member).
local deadline_at = 16 + tonumber(ARGV[14])
local deadline = ARGV[deadline_at] or ''
if ARGV[deadline_at + 1] then
  redis.call('ZREM', KEYS[8], ARGV[deadline_at + 1]) -- an old run's
end
if deadline ~= '' then
  redis.call('HSET', KEYS[1], 'deadline_ms', deadline)
  arm_timer(ARGV[deadline_at + 1], deadline)
end
redis.call('ZADD', KEYS[14], NOW, EID)
redis.call('ZADD', KEYS[15], NOW, EID)
redis.call('SADD', KEYS[11], EID)
status_event(workflow_id, 'pending', '')
audit('created', 'execution of ' .. workflow_id .. ' created', '', ARGV[7], '')
return { 1 }
