-- Shared by every script. ARGV[1] is the key prefix with its hash tag ("{console}"), so every
-- key of a deployment lives in one cluster slot; KEYS[1] is P:queues, declared so that a
-- Cluster runs the script on the node of that slot. Keys:
--   P:job:<id>            hash: queue kind payload recipient state attempts max error enq run fin
--                         claim claimed (when the claim was made) entry failures (a JSON array
--                         of the failed attempts: {n, at, error}) held ('1' while an enqueue
--                         waits for its replicas; gone once the job is ready)
--                         (the payload only while the job has no stream entry: its entry
--                         carries it otherwise, which keeps the hash small enough for
--                         Redis's compact encoding, the cheapest to touch)
--   P:<queue>:stream      the ready jobs, consumer group "workers"; an entry carries what a
--                         worker needs of its job: id, attempts (counting the delivery the
--                         entry makes, so a reservation copies it as it is), then kind payload
--                         max enq and, when set, error (so a reservation reads no hash). Not
--                         the recipient: a stream keeps a deleted entry's bytes until its whole
--                         node goes, and the worker reads the address from the sealed payload
--   P:<queue>:delayed     zset id -> run at (ms)
--   P:<queue>:active      zset id -> lease end (ms)
--   P:<queue>:completed   zset id -> finished at (ms)
--   P:<queue>:failed      zset id -> finished at (ms)
--   P:<queue>:paused      exists while an administrator has paused the queue
--   P:<queue>:stats       hash of running totals: enqueued completed failed retried and
--                         processing_ms (claim to outcome, of the completed and failed jobs)
--   P:queues              set of the queues' names
-- Completion erases a job's payload, recipient, claim and entry in one write by setting them
-- to '': an empty field is an absent one.
local P = ARGV[1]
local GROUP = 'workers'

local function job_key(id) return P .. ':job:' .. id end

-- Redis's clock, in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ns(queue) return P .. ':' .. queue end

-- Takes entries out of a stream: acknowledged for the consumer group, then deleted.
local function unstream(stream, ...)
  redis.call('XACK', stream, GROUP, ...)
  redis.call('XDEL', stream, ...)
end

-- Deletes a job and every trace of it, wherever it is.
local function drop(id)
  local jk = job_key(id)
  local h = redis.call('HMGET', jk, 'queue', 'entry')
  if h[1] then
    local q = ns(h[1])
    if h[2] and h[2] ~= '' then unstream(q .. ':stream', h[2]) end
    for _, set in ipairs({'delayed', 'active', 'completed', 'failed'}) do
      redis.call('ZREM', q .. ':' .. set, id)
    end
  end
  redis.call('DEL', jk)
end

-- Deletes the given finished (completed or failed) jobs, members of `zset`: such a job has no
-- stream entry and is in no other set, so its hash and its zset member are all there is.
local function drop_finished(zset, ids)
  for i = 1, #ids, 500 do
    local chunk = {unpack(ids, i, math.min(i + 499, #ids))}
    local keys = {}
    for j, id in ipairs(chunk) do keys[j] = job_key(id) end
    redis.call('DEL', unpack(keys))
    redis.call('ZREM', zset, unpack(chunk))
  end
  return #ids
end

-- Deletes the members of a finished-jobs zset older than `before` and beyond the `newest`
-- most recent (newest < 0: no count bound); returns how many.
local function trim(zset, newest, before)
  local removed = 0
  if before then
    removed = removed + drop_finished(zset, redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. before))
  end
  if newest >= 0 then
    local excess = redis.call('ZCARD', zset) - newest
    if excess > 0 then
      removed = removed + drop_finished(zset, redis.call('ZRANGE', zset, 0, excess - 1))
    end
  end
  return removed
end

-- The payload a stream entry carries (nil when the entry is gone or carries none).
local function entry_payload(stream, entry)
  local found = redis.call('XRANGE', stream, entry, entry)
  if #found == 0 then return nil end
  local fields = found[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'payload' then return fields[i + 1] end
  end
  return nil
end

-- Leaves the stream and the active set, as a retry or a failure does: the payload the entry
-- carried goes back into the job's hash.
local function release(id, queue, entry)
  local q = ns(queue)
  local jk = job_key(id)
  if entry then
    local payload = entry_payload(q .. ':stream', entry)
    if payload then redis.call('HSET', jk, 'payload', payload) end
    unstream(q .. ':stream', entry)
  end
  redis.call('ZREM', q .. ':active', id)
  redis.call('HDEL', jk, 'claim', 'entry')
end

-- A job's fields as a flat list, as HGETALL answers them (empty: no such job), with the
-- payload its stream entry carries while it has one.
local function job_fields(id)
  local fields = redis.call('HGETALL', job_key(id))
  local queue, entry, payload
  for i = 1, #fields, 2 do
    local name = fields[i]
    if name == 'queue' then queue = fields[i + 1]
    elseif name == 'entry' then entry = fields[i + 1]
    elseif name == 'payload' then payload = fields[i + 1] end
  end
  if queue and entry and entry ~= '' and not payload then
    payload = entry_payload(ns(queue) .. ':stream', entry)
    if payload then
      fields[#fields + 1] = 'payload'
      fields[#fields + 1] = payload
    end
  end
  return fields
end

-- The fields a stream entry carries, in this order, as HMGET answers them.
local ENTRY_FIELDS = {'attempts', 'kind', 'payload', 'max', 'enq', 'error'}

-- Appends a job to its queue's stream with what a worker needs of it (`job`: the values of
-- ENTRY_FIELDS as stored, false or '' when absent); answers the entry's id.
local function append(id, queue, job)
  local fields = {'id', id, 'attempts', tostring(tonumber(job[1]) + 1)}
  for i = 2, #ENTRY_FIELDS do
    local name = ENTRY_FIELDS[i]
    if job[i] and job[i] ~= '' then
      fields[#fields + 1] = name
      fields[#fields + 1] = job[i]
    end
  end
  return redis.call('XADD', ns(queue) .. ':stream', '*', unpack(fields))
end

-- Makes a stored job ready to be read.
local function ready(id, queue)
  local jk = job_key(id)
  local entry = append(id, queue, redis.call('HMGET', jk, unpack(ENTRY_FIELDS)))
  redis.call('HSET', jk, 'state', 'waiting', 'entry', entry)
  redis.call('HDEL', jk, 'payload', 'held')
end
