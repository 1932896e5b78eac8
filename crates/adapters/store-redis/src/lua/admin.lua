-- ARGV: P, operation, then the operation's arguments.
--   counts queue                         -> waiting delayed active completed failed
--   find id                              -> the job's fields (HGETALL's shape; empty: none)
--   list queue state offset limit        -> total, then the fields of each job
--   retry_failed queue id now            -> 'done' | 'missing' | the job's state
--   remove queue id now                  -> 'done' | 'missing' | 'active' (a worker holds it, in
--                                           its lease, or its enqueue waits for replicas)
--   promote queue id now                 -> 'done' | 'missing' | the job's state ('active' while
--                                           its enqueue waits for replicas)
--   pause queue 1|0                      -> pauses (1) or resumes (0) the queue
--   paused queue                         -> 1 when the queue is paused
--   clean queue state newest since(-1)   -> how many were deleted
--   forget recipient now                 -> how many were deleted
--   stats queue                          -> HGETALL of the running totals
--   release id run                       -> 1 when a held job was made due at `run` (ms)
--   withdraw id                          -> 1 when a held job was deleted
-- (A held job: one enqueued as delayed until its replicas confirm it, REDIS_WAIT_REPLICAS.)
local op = ARGV[2]

local function counts(queue)
  local q = ns(queue)
  local active = redis.call('ZCARD', q .. ':active')
  return {
    redis.call('XLEN', q .. ':stream') - active,
    redis.call('ZCARD', q .. ':delayed'),
    active,
    redis.call('ZCARD', q .. ':completed'),
    redis.call('ZCARD', q .. ':failed'),
  }
end

local function waiting_ids(queue, offset, limit)
  local stream = ns(queue) .. ':stream'
  local from = '-'
  local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
  if ok then
    for _, group in ipairs(groups) do
      for j = 1, #group, 2 do
        if group[j] == 'name' and group[j + 1] ~= GROUP then break end
        if group[j] == 'last-delivered-id' then from = '(' .. group[j + 1] end
      end
    end
  end
  local entries = redis.call('XRANGE', stream, from, '+', 'COUNT', offset + limit)
  local ids = {}
  for i = offset + 1, #entries do ids[#ids + 1] = entries[i][2][2] end
  return ids
end

if op == 'find' then
  return job_fields(ARGV[3])
elseif op == 'counts' then
  return counts(ARGV[3])
elseif op == 'list' then
  local queue, state, offset, limit = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  local c = counts(queue)
  local index = {waiting = 1, delayed = 2, active = 3, completed = 4, failed = 5}
  local ids
  local zset = ns(queue) .. ':' .. state
  if state == 'waiting' then
    ids = waiting_ids(queue, offset, limit)
  elseif state == 'completed' or state == 'failed' then
    ids = redis.call('ZREVRANGE', zset, offset, offset + limit - 1)
  else
    ids = redis.call('ZRANGE', zset, offset, offset + limit - 1)
  end
  local out = {c[index[state]]}
  for _, id in ipairs(ids) do out[#out + 1] = job_fields(id) end
  return out
elseif op == 'retry_failed' then
  local queue, id, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'queue', 'state')
  if h[1] ~= queue then return 'missing' end
  if h[2] ~= 'failed' then return h[2] end
  redis.call('ZREM', ns(queue) .. ':failed', id)
  redis.call('HSET', jk, 'attempts', 0, 'run', now)
  redis.call('HDEL', jk, 'fin', 'claim')
  ready(id, queue)
  return 'done'
elseif op == 'remove' then
  local queue, id, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local h = redis.call('HMGET', job_key(id), 'queue', 'state', 'run', 'held')
  if h[1] ~= queue then return 'missing' end
  -- A held job is still being enqueued: in flight, like one a worker holds.
  if h[4] == '1' or (h[2] == 'active' and tonumber(h[3]) > now) then return 'active' end
  drop(id)
  return 'done'
elseif op == 'promote' then
  local queue, id, now = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'queue', 'state', 'held')
  if h[1] ~= queue then return 'missing' end
  -- A held job is still being enqueued: its request may yet be refused and the job withdrawn.
  if h[3] == '1' then return 'active' end
  if h[2] ~= 'delayed' then return h[2] end
  redis.call('ZREM', ns(queue) .. ':delayed', id)
  redis.call('HSET', jk, 'run', now)
  ready(id, queue)
  return 'done'
elseif op == 'pause' then
  if ARGV[4] == '1' then
    redis.call('SET', ns(ARGV[3]) .. ':paused', '1')
  else
    redis.call('DEL', ns(ARGV[3]) .. ':paused')
  end
  return 1
elseif op == 'paused' then
  return redis.call('EXISTS', ns(ARGV[3]) .. ':paused')
elseif op == 'clean' then
  local queue, state, newest, since = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
  if state ~= 'completed' and state ~= 'failed' then return 0 end
  local before = nil
  if since >= 0 then before = since end
  return trim(ns(queue) .. ':' .. state, newest, before)
elseif op == 'forget' then
  -- Unfinished jobs are few next to the history, and a completed job keeps no recipient: so
  -- the jobs about an address are found among the unfinished ones, and no index by address
  -- has to be kept up to date on the way of every job.
  local address, now = ARGV[3], tonumber(ARGV[4])
  local removed = 0
  local function forget(id)
    local h = redis.call('HMGET', job_key(id), 'recipient', 'state', 'run')
    if h[1] == address and not (h[2] == 'active' and tonumber(h[3]) > now) then
      drop(id)
      removed = removed + 1
    end
  end
  for _, queue in ipairs(redis.call('SMEMBERS', P .. ':queues')) do
    local q = ns(queue)
    local from = '-'
    repeat
      local entries = redis.call('XRANGE', q .. ':stream', from, '+', 'COUNT', 1000)
      for _, message in ipairs(entries) do
        forget(message[2][2])
        from = '(' .. message[1]
      end
    until #entries < 1000
    for _, set in ipairs({'delayed', 'failed'}) do
      for _, id in ipairs(redis.call('ZRANGE', q .. ':' .. set, 0, -1)) do forget(id) end
    end
  end
  -- The index by address an earlier version kept.
  redis.call('DEL', P .. ':recipient:' .. redis.sha1hex(address))
  return removed
elseif op == 'stats' then
  return redis.call('HGETALL', ns(ARGV[3]) .. ':stats')
elseif op == 'release' then
  local id, run = ARGV[3], tonumber(ARGV[4])
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'queue', 'state')
  if h[2] ~= 'delayed' then return 0 end
  local now = now_ms()
  redis.call('HSET', jk, 'run', run, 'enq', run)
  if run > now then
    redis.call('ZADD', ns(h[1]) .. ':delayed', run, id)
  else
    redis.call('ZREM', ns(h[1]) .. ':delayed', id)
    ready(id, h[1])
  end
  return 1
elseif op == 'withdraw' then
  local id = ARGV[3]
  local h = redis.call('HMGET', job_key(id), 'queue', 'state')
  if h[2] ~= 'delayed' then return 0 end
  drop(id)
  redis.call('HINCRBY', ns(h[1]) .. ':stats', 'enqueued', -1)
  return 1
end
return redis.error_reply('unknown operation ' .. tostring(op))
