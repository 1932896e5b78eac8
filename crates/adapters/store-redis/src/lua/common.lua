-- Shared by every script. ARGV[1] is the key prefix with its hash tag ("{console}"), so every
-- key of a deployment lives in one cluster slot. Keys:
--   P:job:<id>            hash: queue kind payload recipient state attempts max error enq run fin claim entry
--   P:<queue>:stream      the ready jobs (field "id"), consumer group "workers"
--   P:<queue>:delayed     zset id -> run at (ms)
--   P:<queue>:active      zset id -> lease end (ms)
--   P:<queue>:completed   zset id -> finished at (ms)
--   P:<queue>:failed      zset id -> finished at (ms)
--   P:<queue>:stats       hash of running totals: enqueued completed failed retried
--   P:recipient:<sha1>    set of the ids of jobs about one address
local P = ARGV[1]
local GROUP = 'workers'

local function job_key(id) return P .. ':job:' .. id end
local function ns(queue) return P .. ':' .. queue end
local function recipient_key(address) return P .. ':recipient:' .. redis.sha1hex(address) end

-- Deletes a job and every trace of it, wherever it is.
local function drop(id)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'queue', 'entry', 'recipient')
  if h[1] then
    local q = ns(h[1])
    if h[2] then
      redis.call('XACK', q .. ':stream', GROUP, h[2])
      redis.call('XDEL', q .. ':stream', h[2])
    end
    for _, set in ipairs({'delayed', 'active', 'completed', 'failed'}) do
      redis.call('ZREM', q .. ':' .. set, id)
    end
  end
  if h[3] then redis.call('SREM', recipient_key(h[3]), id) end
  redis.call('DEL', jk)
end

-- Deletes the members of a finished-jobs zset older than `before` and beyond the `newest`
-- most recent (newest < 0: no count bound); returns how many.
local function trim(zset, newest, before)
  local removed = 0
  if before then
    local old = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. before)
    for _, id in ipairs(old) do drop(id) end
    removed = removed + #old
  end
  if newest >= 0 then
    local excess = redis.call('ZCARD', zset) - newest
    if excess > 0 then
      local oldest = redis.call('ZRANGE', zset, 0, excess - 1)
      for _, id in ipairs(oldest) do drop(id) end
      removed = removed + #oldest
    end
  end
  return removed
end

-- Leaves the stream and the active set, as every acknowledgement does.
local function release(id, queue, entry)
  local q = ns(queue)
  if entry then
    redis.call('XACK', q .. ':stream', GROUP, entry)
    redis.call('XDEL', q .. ':stream', entry)
  end
  redis.call('ZREM', q .. ':active', id)
  redis.call('HDEL', job_key(id), 'claim', 'entry')
end

-- Appends a job to its queue's stream, ready to be read.
local function ready(id, queue)
  local entry = redis.call('XADD', ns(queue) .. ':stream', '*', 'id', id)
  redis.call('HSET', job_key(id), 'state', 'waiting', 'entry', entry)
end
