-- Drop one schedule: record, due entry, index entry, audit; announce the change.
-- KEYS: record hash, due zset, index set, audit stream, change stream
-- ARGV: schedule id
-- Returns 1 if the schedule existed, else 0.
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
if existed == 1 then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100, '*', 's', ARGV[1])
end
return existed
