-- conc_enroll: put a just-created execution that has never run in its concurrency group's waiting line, by
-- creation time (see Concurrency.enroll). Extra KEYS: 14 slots, 15 waiting, 16 limits (see conc_admit).
-- ARGV: 3 group. Returns 1 if it joined the line, else 0.
local slots, waiting = KEYS[14], KEYS[15]
if redis.call('EXISTS', KEYS[1]) == 0 or FINAL[hget('status')] then
  return 0
end
if (tonumber(hget('activations')) or 0) > 0 or redis.call('ZSCORE', slots, EID) then
  return 0
end
redis.call('HSET', KEYS[1], 'conc_group', ARGV[3])
redis.call('ZADD', waiting, 'NX', tonumber(hget('created_ms')) or tonumber(NOW), EID)
return 1
