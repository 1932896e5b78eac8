-- ARGV: P, completed newest, completed max age (ms, -1: none), failed newest, failed max age,
-- then per acknowledgement: mode (complete|retry|fail), id, token, error, at (ms).
-- Returns 1 (applied) or 0 (stale) per acknowledgement.
local bounds = {
  completed = {tonumber(ARGV[2]), tonumber(ARGV[3])},
  failed = {tonumber(ARGV[4]), tonumber(ARGV[5])},
}
local touched = {}
local completed = {}
local out = {}
for i = 6, #ARGV, 5 do
  local mode, id, token, err, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'claim', 'queue', 'entry', 'recipient')
  if h[1] == 'active' and h[2] == token then
    local queue = h[3]
    local q = ns(queue)
    if mode == 'complete' then
      -- The common case, in as few calls as it takes: leave the stream, forget the lease,
      -- erase what was personal, keep the outcome.
      if h[4] then
        redis.call('XACK', q .. ':stream', GROUP, h[4])
        redis.call('XDEL', q .. ':stream', h[4])
      end
      redis.call('ZREM', q .. ':active', id)
      if h[5] then redis.call('SREM', recipient_key(h[5]), id) end
      redis.call('HDEL', jk, 'payload', 'recipient', 'claim', 'entry')
      redis.call('HSET', jk, 'state', 'completed', 'fin', at)
      redis.call('ZADD', q .. ':completed', at, id)
      completed[q] = (completed[q] or 0) + 1
      touched[q .. ':completed'] = {'completed', at}
    else
      release(id, queue, h[4])
      if mode == 'retry' then
        redis.call('HSET', jk, 'state', 'delayed', 'error', err, 'run', at)
        redis.call('ZADD', q .. ':delayed', at, id)
        redis.call('HINCRBY', q .. ':stats', 'retried', 1)
      else
        redis.call('HSET', jk, 'state', 'failed', 'error', err, 'fin', at)
        redis.call('ZADD', q .. ':failed', at, id)
        redis.call('HINCRBY', q .. ':stats', 'failed', 1)
        touched[q .. ':failed'] = {'failed', at}
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
for q, n in pairs(completed) do redis.call('HINCRBY', q .. ':stats', 'completed', n) end
-- History stays bounded by count and age without waiting for the retention job.
for zset, what in pairs(touched) do
  local bound = bounds[what[1]]
  local before = nil
  if bound[2] >= 0 then before = what[2] - bound[2] end
  trim(zset, bound[1], before)
end
return out
