-- Claim one due schedule (the caller found it due): its score moves to now + claim time-out and its
-- token grows, so whichever poller runs this first gets the slot and the others see it as not due.
-- KEYS: due zset, the schedule's record hash
-- ARGV: schedule id, now ms, claim ms
-- Returns {token, due ms before the claim}, or false if it is no longer due (or gone: then unindexed).
local due, rec = KEYS[1], KEYS[2]
local sid, now = ARGV[1], tonumber(ARGV[2])
local score = redis.call('ZSCORE', due, sid)
if not score or tonumber(score) > now then
  return false
end
if redis.call('EXISTS', rec) == 0 then
  redis.call('ZREM', due, sid)
  return false
end
local token = redis.call('HINCRBY', rec, 'token', 1)
redis.call('ZADD', due, now + tonumber(ARGV[3]), sid)
return { token, score }
