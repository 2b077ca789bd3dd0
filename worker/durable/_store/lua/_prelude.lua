-- Prepended to every script. The at-sign placeholders are filled from Keys.lua_constants().
--
-- Every key a script touches is in its KEYS (tests/stores/test_lua_keys.py checks each call): no
-- script builds a key name. Per-execution scripts receive this fixed KEYS layout
-- (Keys.execution_keys), plus extras:
--   1 exec  2 steps  3 lease  4 audit  5 sigids  6 signames
--   7 queue  8 timers  9 status  10 events  11 active  12 finished  13 compactable
-- and ARGV[1] = execution id, ARGV[2] = now in ms; script arguments start at ARGV[3].
-- A script that finds it needs a key its caller could not know (a buffered signal's list, the
-- index of a replaced run's workflow) writes nothing and answers {2, workflow id or '', signal
-- name, ...}; the caller calls again with those keys declared (RedisConnection.script_declaring).
-- KEYS[7] is the queue of one worker version: `<prefix>:{q0}:queue` (unversioned) or `...:queue@<version>`.
-- A script about to enqueue an execution whose version's queue is not the declared one writes nothing and
-- answers {3, version}; the caller calls again with that version's queue declared.
local DONE_CHANNEL = '@DONE_CHANNEL@'
local DONE_RECORD_MAX = 8192
local QUEUE_GROUP = '@QUEUE_GROUP@'
local TIMERS_CHANNEL = '@TIMERS_CHANNEL@'
local AUDIT_MAXLEN = @AUDIT_MAXLEN@
local STATUS_MAXLEN = @STATUS_MAXLEN@
local EVENTS_MAXLEN = @EVENTS_MAXLEN@

local FINAL = { completed = true, failed = true, cancelled = true }

local EID = ARGV[1]
local NOW = ARGV[2]

-- The worker version whose queue the caller declared as KEYS[7] (scripts of shared keys only have none).
local QUEUE_VERSION = ''
if KEYS[7] then
  QUEUE_VERSION = string.match(KEYS[7], '@([^@]*)$') or ''
end

local function hget(field)
  local v = redis.call('HGET', KEYS[1], field)
  if not v then
    return ''
  end
  return v
end

local function audit(kind, message, step_id, actor, data)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', AUDIT_MAXLEN, '*',
    'k', kind, 'm', message, 's', step_id or '', 'a', actor or '', 'd', data or '', 't', NOW)
end

local function status_event(workflow_id, status, step)
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', STATUS_MAXLEN, '*',
    'e', EID, 'w', workflow_id, 's', status, 'c', step, 't', NOW)
end

-- {3, version} if runs of an execution of `version` belong on another queue than the declared one.
local function wrong_queue(version)
  if version ~= QUEUE_VERSION then
    return { 3, version }
  end
  return nil
end

local function enqueue(reason)
  redis.call('XADD', KEYS[7], '*', 'e', EID, 'r', reason)
end

-- Acknowledge (and delete) the queue entry that started this run, if the caller passed one.
local function ack_entry(entry_id)
  if entry_id and entry_id ~= '' then
    redis.pcall('XACK', KEYS[7], QUEUE_GROUP, entry_id) -- no group (a flushed server): nothing to ack
    redis.call('XDEL', KEYS[7], entry_id)
  end
end

-- Set a wake-up timer (KEYS[8]) and tell the pollers only if it is due before every timer already set
-- (or the set was empty): a poller sleeps until the earliest due time it read, and without such a
-- message the earliest can only have moved later since, so no poller needs waking for a later timer.
local function arm_timer(member, due)
  local first = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  redis.call('ZADD', KEYS[8], due, member)
  if not first[2] or tonumber(due) < tonumber(first[2]) then
    redis.call('PUBLISH', TIMERS_CHANNEL, member)
  end
end

-- Take one of this execution's timers that the caller found due: only the caller whose ZREM succeeds
-- goes on, so a timer fires once with any number of pollers. Returns nil to that caller; otherwise what
-- the script answers: 0 (gone, or moved to a later time since the caller looked) or the wrong-queue answer.
local function take_due_timer(member)
  local score = redis.call('ZSCORE', KEYS[8], member)
  if not score or tonumber(score) > tonumber(NOW) then
    return 0
  end
  local moved = wrong_queue(hget('version'))
  if moved then
    return moved
  end
  redis.call('ZREM', KEYS[8], member)
  return nil
end

-- Drop the execution's registered wake-up timer, if any.
local function drop_timer()
  local member = hget('timer')
  if member ~= '' then
    redis.call('ZREM', KEYS[8], member)
    redis.call('HSET', KEYS[1], 'timer', '')
  end
end

-- True if `token` is the newest fence and the lease still holds it.
local function fence_ok(token)
  if redis.call('HGET', KEYS[1], 'fence') ~= token then
    return false
  end
  local holder = redis.call('GET', KEYS[3])
  if not holder then
    return false
  end
  return string.match(holder, ':(%d+)$') == token
end

-- Write the checkpoint packed from ARGV[i] on (see _redis._pack_checkpoint); return the next index.
local function write_checkpoint(i)
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    audit(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
    i = i + 5
  end
  n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    redis.call('XADD', KEYS[10], 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'e', EID, 'n', ARGV[i], 'p', ARGV[i + 1], 't', NOW)
    i = i + 2
  end
  local has_step = ARGV[i]
  local step = ARGV[i + 1]
  i = i + 2
  local fields = redis.call('HMGET', KEYS[1], 'workflow_id', 'status', 'current_step')
  if has_step == '1' and step ~= fields[3] then
    redis.call('HSET', KEYS[1], 'current_step', step, 'updated_ms', NOW)
    status_event(fields[1], fields[2], step)
  else
    redis.call('HSET', KEYS[1], 'updated_ms', NOW)
  end
  return i
end

-- Make the execution final: status, result or error, timers, indexes, event, audit, done message.
local function finalize(status, result, err, audit_kind, message, actor)
  local fields = redis.call('HMGET', KEYS[1], 'workflow_id', 'current_step')
  redis.call('HSET', KEYS[1], 'status', status, 'finished_ms', NOW, 'updated_ms', NOW, 'waiting_for', '', 'wake_ms', '')
  if result then
    redis.call('HSET', KEYS[1], 'result', result)
  end
  if err then
    redis.call('HSET', KEYS[1], 'error', err)
  end
  redis.call('HDEL', KEYS[1], 'cancel', 'cancel_status', 'cancel_actor', 'cancel_error', 'rewake', 'wait_signal',
    'wait_schema')
  redis.call('DEL', KEYS[3])
  drop_timer()
  redis.call('SREM', KEYS[11], EID)
  redis.call('ZADD', KEYS[12], NOW, EID)
  if status ~= 'failed' then
    redis.call('ZADD', KEYS[13], NOW, EID)
  end
  status_event(fields[1], status, fields[2] or '')
  audit(audit_kind, message, '', actor, '')
  -- The final record rides along when it is small, so that a waiting client needs no extra read.
  local record = redis.call('HGETALL', KEYS[1])
  local size = 0
  for _, v in ipairs(record) do
    size = size + #v
  end
  if size <= DONE_RECORD_MAX then
    redis.call('PUBLISH', DONE_CHANNEL, EID .. '\n' .. cjson.encode(record))
  else
    redis.call('PUBLISH', DONE_CHANNEL, EID)
  end
end

-- The declared signal lists: ARGV[first] holds their count n, ARGV[first + 1 ..] their names, and
-- KEYS[key_first ..] the lists in the same order. Returns name -> KEYS index and the next ARGV index.
local function declared_signals(first, key_first)
  local lists = {}
  local n = tonumber(ARGV[first])
  for j = 1, n do
    lists[ARGV[first + j]] = key_first + j - 1
  end
  return lists, first + n + 1
end

-- Names in the execution's signal-name set whose lists are not declared (empty if all are).
local function undeclared_signals(lists)
  local missing = {}
  for _, name in ipairs(redis.call('SMEMBERS', KEYS[6])) do
    if not lists[name] then
      table.insert(missing, name)
    end
  end
  return missing
end

-- Delete the buffered signal lists (all declared) and the name set.
local function drop_signals(lists)
  for _, index in pairs(lists) do
    redis.call('DEL', KEYS[index])
  end
  redis.call('DEL', KEYS[6])
end

local function finalize_cancelled(reason, actor, err)
  finalize('cancelled', nil, err, 'cancelled', 'cancelled: ' .. reason, actor)
end

-- A forced failure (Store.force_fail) ends like any failure; only its error and audit say who and why.
local function finalize_forced(reason, actor, err)
  finalize('failed', nil, err, 'failed.forced', 'failed (forced): ' .. reason, actor)
end

-- Apply the pending stop request (fields cancel = reason, cancel_status = the final status it asks
-- for, cancel_actor, cancel_error), if any; returns the final status, or nil if none was pending.
-- A request stored before cancel_status existed is a cancel.
local function apply_stop_request()
  local f = redis.call('HMGET', KEYS[1], 'cancel', 'cancel_status', 'cancel_actor', 'cancel_error')
  if not f[1] or f[1] == '' then
    return nil
  end
  local actor = f[3] or ''
  local err = f[4] or nil
  if f[2] == 'failed' then
    finalize_forced(f[1], actor, err)
    return 'failed'
  end
  finalize_cancelled(f[1], actor, err)
  return 'cancelled'
end
-- ---------------------------------------------------------------- end of prelude
