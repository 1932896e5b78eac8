-- ARGV: P, queue, now (ms), lease end (ms), consumer, token 1 .. token max (one per job at most)
-- Returns, for each job handed out in the order of the tokens, the job's fields as a flat list
-- (its stream entry's, or its hash's when taken over).
local queue, now, lease_end, consumer = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local max = #ARGV - 5
local q = ns(queue)
local stream = q .. ':stream'
-- A paused queue hands nothing out.
if redis.call('EXISTS', q .. ':paused') == 1 then return {} end
local out = {}
local given = 0
-- Lease ends, added to the lease set in one call at the end.
local leased = {}

-- Records a new claim on the job's hash: its token, and how many of the five fields written
-- the hash lacked.
local function claim(id, attempts)
  given = given + 1
  local token = ARGV[5 + given]
  return token, redis.call('HSET', job_key(id), 'state', 'active', 'run', lease_end,
    'claim', token, 'attempts', attempts, 'claimed', now)
end

local function hand_out(id, fields)
  leased[#leased + 1] = lease_end
  leased[#leased + 1] = id
  out[#out + 1] = fields
end

-- Delayed jobs now due join the stream, in the order they fall due.
local due = redis.call('ZRANGEBYSCORE', q .. ':delayed', '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('ZREM', q .. ':delayed', unpack(due))
  for _, id in ipairs(due) do ready(id, queue) end
end

-- Hands out a job as its hash has it, and a new claim on it.
local function from_hash(id, attempts)
  claim(id, attempts)
  hand_out(id, job_fields(id))
end

-- Jobs whose lease ran out (their worker died or stalled) are claimed again, here.
local expired = redis.call('ZRANGEBYSCORE', q .. ':active', '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(expired) do
  local h = redis.call('HMGET', job_key(id), 'entry', 'attempts')
  if h[1] then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, h[1], 'JUSTID')
    from_hash(id, tonumber(h[2]) + 1)
  else
    redis.call('ZREM', q .. ':active', id)
  end
end

-- Then new entries, through the consumer group (created on first use, from the start).
if given < max then
  local read = {'XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', max - given, 'STREAMS', stream, '>'}
  local ok, reply = pcall(redis.call, unpack(read))
  if not ok then
    redis.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM')
    reply = redis.call(unpack(read))
  end
  if reply then
    for _, message in ipairs(reply[1][2]) do
      local entry, fields = message[1], message[2]
      local id = fields[2]
      if fields[3] == 'attempts' then
        -- Fields 3-4: 'attempts', counting this delivery.
        local _, created = claim(id, fields[4])
        if created == 5 then
          -- All five fields new: the job's hash was gone. Its token goes to the next job, so
          -- that the tokens stay in the order of the jobs handed out.
          redis.call('DEL', job_key(id))
          unstream(stream, entry)
          given = given - 1
        else
          hand_out(id, fields)
        end
      else
        -- An entry written by an earlier version, which carried only the job's id.
        local h = redis.call('HMGET', job_key(id), 'entry', 'attempts')
        if h[1] == entry then from_hash(id, tonumber(h[2]) + 1) else unstream(stream, entry) end
      end
    end
  end
end
redis.call('SADD', P .. ':queues', queue)
if #leased > 0 then redis.call('ZADD', q .. ':active', unpack(leased)) end
return out
