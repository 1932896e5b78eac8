-- ARGV: P, queue, now (ms), lease (ms), consumer, token 1 .. token max (one per job at most)
-- Returns a flat list: id, token, job fields (HGETALL), for each job handed out.
local queue, now, lease, consumer = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local max = #ARGV - 5
local q = ns(queue)
local stream = q .. ':stream'
local out = {}
local given = 0
-- Lease ends, added to the lease set in one call at the end.
local leased = {}

local function hand_out(id)
  local jk = job_key(id)
  given = given + 1
  local token = ARGV[5 + given]
  redis.call('HINCRBY', jk, 'attempts', 1)
  redis.call('HSET', jk, 'state', 'active', 'run', now + lease, 'claim', token)
  leased[#leased + 1] = now + lease
  leased[#leased + 1] = id
  out[#out + 1] = id
  out[#out + 1] = token
  out[#out + 1] = redis.call('HGETALL', jk)
end

-- Delayed jobs now due join the stream, in the order they fall due.
local due = redis.call('ZRANGEBYSCORE', q .. ':delayed', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', q .. ':delayed', id)
  ready(id, queue)
end

-- Jobs whose lease ran out (their worker died or stalled) are claimed again, here.
local expired = redis.call('ZRANGEBYSCORE', q .. ':active', '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(expired) do
  local entry = redis.call('HGET', job_key(id), 'entry')
  if entry then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, entry, 'JUSTID')
    hand_out(id)
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
      if redis.call('HGET', job_key(id), 'entry') == entry then
        hand_out(id)
      else
        -- A job deleted (or moved) after its entry was written.
        redis.call('XACK', stream, GROUP, entry)
        redis.call('XDEL', stream, entry)
      end
    end
  end
end
if #leased > 0 then redis.call('ZADD', q .. ':active', unpack(leased)) end
return out
