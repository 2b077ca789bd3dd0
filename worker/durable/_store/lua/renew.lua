-- renew. ARGV: 3 worker id, 4 token, 5 ttl ms. Returns 1 if the lease is still ours, else 0.
if redis.call('GET', KEYS[3]) == ARGV[3] .. ':' .. ARGV[4] and redis.call('HGET', KEYS[1], 'fence') == ARGV[4] then
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  return 1
end
return 0
