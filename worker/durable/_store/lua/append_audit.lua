-- append_audit. ARGV: 3 count, then kind, message, step id, actor, data per entry. Returns 0 if missing.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  audit(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  i = i + 5
end
return 1
