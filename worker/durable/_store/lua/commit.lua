-- commit. ARGV: 3 token, 4.. packed checkpoint. Returns -1 lease lost, 1 cancel (or forced failure)
-- requested, 0 written.
if not fence_ok(ARGV[3]) then
  return -1
end
if hget('cancel') ~= '' then
  return 1
end
write_checkpoint(4)
return 0
