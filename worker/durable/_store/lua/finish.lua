-- finish. ARGV: 3 token, 4 status, 5 has result '1'/'0', 6 result, 7 has error, 8 error, 9.. checkpoint,
-- then the queue entry to acknowledge or ''.
-- Returns -1 lease lost, 0 done. A requested cancel does not stop a final write.
if not fence_ok(ARGV[3]) then
  return -1
end
local after = write_checkpoint(9)
local result = nil
local err = nil
if ARGV[5] == '1' then
  result = ARGV[6]
end
if ARGV[7] == '1' then
  err = ARGV[8]
end
finalize(ARGV[4], result, err, ARGV[4], 'execution ' .. ARGV[4], '')
ack_entry(ARGV[after])
return 0
