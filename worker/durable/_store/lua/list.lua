-- list_executions, one slice. KEYS: 1 the index (idx:all or idx:wf:<workflow>).
-- ARGV: 1 max score, 2 min score, 3 cursor score or '', 4 cursor member, 5 limit, 6 scan budget,
-- 7 status count, 8.. statuses.
-- Newest first; an entry (score, member) comes after the cursor if score < cursor score, or the same
-- score and member < cursor member (ZREVRANGEBYSCORE order).
-- Returns {state, score, member, {id, fields}, ...}: state 'end' (nothing more matches), 'more' (page
-- full, more match; cursor = last returned) or 'budget' (scan budget spent; cursor = last examined).
local limit = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local want = nil
if tonumber(ARGV[7]) > 0 then
  want = {}
  for i = 8, 7 + tonumber(ARGV[7]) do
    want[ARGV[i]] = true
  end
end
local cursor_score = nil
if ARGV[3] ~= '' then
  cursor_score = tonumber(ARGV[3])
end
local cursor_member = ARGV[4]
local out = { 'end', '', '' }
local count = 0
local scanned = 0
local offset = 0
local last_score, last_member = '', ''
while true do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', offset, 200)
  if #batch == 0 then
    out[1] = 'end'
    break
  end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local member, score = batch[i], batch[i + 1]
    local after_cursor = true
    if cursor_score and tonumber(score) == cursor_score and member >= cursor_member then
      after_cursor = false
    end
    if after_cursor then
      scanned = scanned + 1
      local exec_key = K_HEAD .. member .. K_EXEC
      local ok = true
      if want then
        local st = redis.call('HGET', exec_key, 'status')
        ok = st and want[st] or false
      end
      if ok then
        if count >= limit then
          out[1] = 'more'
          return out
        end
        local fields = redis.call('HGETALL', exec_key)
        if #fields > 0 then
          table.insert(out, { member, fields })
          count = count + 1
          out[2], out[3] = score, member
        end
      end
      if count < limit then
        last_score, last_member = score, member
      end
      if scanned >= budget then
        if count >= limit then
          out[1] = 'more'
        else
          out[1], out[2], out[3] = 'budget', last_score, last_member
        end
        return out
      end
    end
  end
end
return out
