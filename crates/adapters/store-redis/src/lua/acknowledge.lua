-- ARGV: P, completed newest, completed max age (ms, -1: none), failed newest, failed max age,
-- mode (complete|retry|fail), error, at (ms), then per acknowledgement: id, token.
-- Returns 1 (applied) or 0 (stale) per acknowledgement.
local bounds = {
  completed = {tonumber(ARGV[2]), tonumber(ARGV[3])},
  failed = {tonumber(ARGV[4]), tonumber(ARGV[5])},
}
local mode, err, at = ARGV[6], ARGV[7], ARGV[8]
local touched = {}

-- The job's failure log (a JSON array of {n, at, error}, oldest first) with this attempt
-- added at Redis's time, the oldest dropped past FAILURES_KEPT (10).
local function failures_with(stored, attempt, error)
  local log = {}
  if stored and stored ~= '' then log = cjson.decode(stored) end
  log[#log + 1] = {n = attempt, at = now_ms(), error = error}
  while #log > 10 do table.remove(log, 1) end
  return cjson.encode(log)
end
local completing = {}
local out = {}
for i = 9, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'state', 'claim', 'queue', 'entry', 'payload', 'claimed',
    'attempts', 'failures')
  if h[1] == 'active' and h[2] == token then
    local queue = h[3]
    local q = ns(queue)
    -- Processing time, for an outcome: from the claim to now.
    local held = 0
    if h[6] then held = math.max(0, tonumber(at) - tonumber(h[6])) end
    if mode == 'complete' then
      -- The common case, in as few calls as it takes: per job, erase what was personal and
      -- keep the outcome; leaving the stream and the lease set, and joining the history, are
      -- done for the whole batch below.
      local batch = completing[q]
      if not batch then
        batch = {entries = {}, ids = {}, scored = {}, held = 0}
        completing[q] = batch
        touched[q .. ':completed'] = {'completed', at}
      end
      if h[4] then batch.entries[#batch.entries + 1] = h[4] end
      batch.ids[#batch.ids + 1] = id
      batch.held = batch.held + held
      batch.scored[#batch.scored + 1] = at
      batch.scored[#batch.scored + 1] = id
      -- The payload went with the entry; a hash holds one only from an earlier version.
      if h[5] then redis.call('HDEL', jk, 'payload') end
      redis.call('HSET', jk, 'state', 'completed', 'fin', at, 'recipient', '', 'claim', '',
        'entry', '')
    else
      release(id, queue, h[4])
      redis.call('HSET', jk, 'failures', failures_with(h[8], tonumber(h[7]) or 0, err))
      if mode == 'retry' then
        redis.call('HSET', jk, 'state', 'delayed', 'error', err, 'run', at)
        redis.call('ZADD', q .. ':delayed', at, id)
        redis.call('HINCRBY', q .. ':stats', 'retried', 1)
      else
        redis.call('HSET', jk, 'state', 'failed', 'error', err, 'fin', at)
        redis.call('ZADD', q .. ':failed', at, id)
        redis.call('HINCRBY', q .. ':stats', 'failed', 1)
        redis.call('HINCRBY', q .. ':stats', 'processing_ms', held)
        touched[q .. ':failed'] = {'failed', at}
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
for q, batch in pairs(completing) do
  if #batch.entries > 0 then unstream(q .. ':stream', unpack(batch.entries)) end
  redis.call('ZREM', q .. ':active', unpack(batch.ids))
  redis.call('ZADD', q .. ':completed', unpack(batch.scored))
  redis.call('HINCRBY', q .. ':stats', 'completed', #batch.ids)
  redis.call('HINCRBY', q .. ':stats', 'processing_ms', batch.held)
end
-- History stays bounded by count and age without waiting for the retention job.
for zset, what in pairs(touched) do
  local bound = bounds[what[1]]
  local before = nil
  if bound[2] >= 0 then before = tonumber(what[2]) - bound[2] end
  trim(zset, bound[1], before)
end
return out
