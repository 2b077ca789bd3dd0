-- migrate: move a non-final execution to another worker version. KEYS[7] is the new version's queue.
-- ARGV: 3 actor. Returns -2 not found, -3 finished, {1, old version} moved, {0, old version} already there.
-- The fence moves on, so a worker of the old version still running it loses its lease at its next write;
-- a run that may be due is enqueued on the new version's queue. A sleeper's armed timer and a signal waiter
-- not yet woken are left as they are: whatever wakes them enqueues on the new queue.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -2
end
local f = redis.call('HMGET', KEYS[1], 'status', 'version', 'rewake', 'waiting_for', 'timer')
if FINAL[f[1]] then
  return -3
end
local old = f[2] or ''
if old == QUEUE_VERSION then
  return { 0, old }
end
if QUEUE_VERSION == '' then
  redis.call('HDEL', KEYS[1], 'version')
else
  redis.call('HSET', KEYS[1], 'version', QUEUE_VERSION)
end
redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], 'updated_ms', NOW)
redis.call('HDEL', KEYS[1], 'rewake')
-- Idle: a sleeper whose timer is still armed, or a waiter no signal has woken yet. Anything else may
-- have a run queued on the old version's queue (which no worker of the new version reads): queue one here.
local idle = (f[1] == 'sleeping' and f[5] and f[5] ~= '' and redis.call('ZSCORE', KEYS[8], f[5]))
  or (f[1] == 'waiting' and f[4] and f[4] ~= '')
if not idle or f[3] == '1' then
  enqueue('migrated')
end
local function shown(v)
  if v == '' then
    return '(unversioned)'
  end
  return v
end
audit('migrated', 'moved from worker version ' .. shown(old) .. ' to ' .. shown(QUEUE_VERSION), '', ARGV[3], '')
return { 1, old }
