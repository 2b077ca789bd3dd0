-- purge one finished execution. Extra KEYS: 14 idx:all, 15 idx:wf:<the workflow declared in ARGV[4]>
-- (any key if none), 16.. the declared signal lists.
-- ARGV: 3 cutoff ms (exclusive), 4 its workflow id as declared or '', 5 count n of declared signal
-- lists, 6.. their names (KEYS[16..]).
-- Returns 1 if purged, 0 if not (not finished before the cutoff; a stale index entry is dropped), or
-- {2, workflow id, signal name, ...}: declare these keys and call again (nothing changed).
local score = redis.call('ZSCORE', KEYS[12], EID)
if not score or tonumber(score) >= tonumber(ARGV[3]) then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'status', 'workflow_id')
if f[1] and not FINAL[f[1]] then
  redis.call('ZREM', KEYS[12], EID)
  return 0
end
local lists = declared_signals(5, 16)
local missing = undeclared_signals(lists)
if (f[2] and f[2] ~= ARGV[4]) or #missing > 0 then
  return { 2, f[2] or '', unpack(missing) }
end
drop_signals(lists)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[14], EID)
if f[2] then
  redis.call('ZREM', KEYS[15], EID)
end
redis.call('ZREM', KEYS[12], EID)
redis.call('ZREM', KEYS[13], EID)
redis.call('SREM', KEYS[11], EID)
return 1
