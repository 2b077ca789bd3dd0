-- release. ARGV: 3 worker id, 4 token. Returns 1 if a rewake was enqueued, the final status
-- ('cancelled' or 'failed') if it applied a pending cancel or forced-failure request, else 0.
local holder = redis.call('GET', KEYS[3])
if holder == ARGV[3] .. ':' .. ARGV[4] then
  redis.call('DEL', KEYS[3])
elseif holder or redis.call('HGET', KEYS[1], 'fence') ~= ARGV[4] then
  return 0
end
-- A cancel or forced failure requested while we ran takes effect the moment we let go.
local applied = apply_stop_request()
if applied then
  return applied
end
if hget('rewake') == '1' then
  redis.call('HDEL', KEYS[1], 'rewake')
  enqueue('rewake')
  return 1
end
return 0
