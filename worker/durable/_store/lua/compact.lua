-- compact one finished execution. Extra KEYS: 14.. the declared signal lists.
-- ARGV: 3 cutoff ms (exclusive), 4 count n of declared signal lists, 5.. their names (KEYS[14..]).
-- A completed or cancelled execution that became final before the cutoff keeps its record (status,
-- input, result or error, times, counters) and loses its history: step records, audit stream, signal
-- buffers and delivery ids. Returns 1 if compacted, 0 if not (it leaves the compactable index unless
-- it is not yet due), or {2, '', signal name, ...}: declare these lists and call again (nothing changed).
local score = redis.call('ZSCORE', KEYS[13], EID)
if not score or tonumber(score) >= tonumber(ARGV[3]) then
  return 0
end
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'completed' and status ~= 'cancelled' then
  redis.call('ZREM', KEYS[13], EID)
  return 0
end
local lists = declared_signals(4, 14)
local missing = undeclared_signals(lists)
if #missing > 0 then
  return { 2, '', unpack(missing) }
end
redis.call('ZREM', KEYS[13], EID)
drop_signals(lists)
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5], KEYS[3])
redis.call('HSET', KEYS[1], 'compacted_ms', NOW)
return 1
