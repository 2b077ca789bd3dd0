-- release. ARGV: 3 worker id, 4 token. Returns 1 if a rewake was enqueued.
-- Applies a pending cancel request at once.
local holder = redis.call('GET', KEYS[3])
if holder == ARGV[3] .. ':' .. ARGV[4] then
  redis.call('DEL', KEYS[3])
elseif holder or redis.call('HGET', KEYS[1], 'fence') ~= ARGV[4] then
  return 0
end
-- A cancel requested while we ran takes effect the moment we let go.
local reason = hget('cancel')
if reason and reason ~= '' then
  finalize_cancelled(reason, hget('cancel_actor'), hget('cancel_error'))
  return 0
end
if hget('rewake') == '1' then
  redis.call('HDEL', KEYS[1], 'rewake')
  enqueue('rewake')
  return 1
end
return 0
