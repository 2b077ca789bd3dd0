-- ack. KEYS: 1 queue. ARGV: 1 consumer group, 2.. entry ids. Acks and deletes (the stream stays small).
local ids = { unpack(ARGV, 2) }
redis.pcall('XACK', KEYS[1], ARGV[1], unpack(ids)) -- no group (a flushed server): nothing to ack
return redis.call('XDEL', KEYS[1], unpack(ids))
