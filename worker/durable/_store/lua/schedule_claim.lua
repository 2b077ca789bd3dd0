-- Claim due schedules: each due entry's score moves to now + claim time-out and its token grows,
-- so whichever poller runs this first gets the slot and the others see it as not due.
-- KEYS: due zset
-- ARGV: now ms, claim ms, limit, record key prefix (the record key is prefix .. schedule id)
-- Returns a flat list of (schedule id, token, due ms before the claim).
local due = KEYS[1]
local now, claim = tonumber(ARGV[1]), tonumber(ARGV[2])
local found = redis.call('ZRANGEBYSCORE', due, '-inf', now, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for i = 1, #found, 2 do
  local sid, score = found[i], found[i + 1]
  local rec = ARGV[4] .. sid
  if redis.call('EXISTS', rec) == 0 then
    redis.call('ZREM', due, sid)
  else
    local token = redis.call('HINCRBY', rec, 'token', 1)
    redis.call('ZADD', due, now + claim, sid)
    table.insert(out, sid)
    table.insert(out, token)
    table.insert(out, score)
  end
end
return out
