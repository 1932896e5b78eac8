-- ARGV: P, queue, id, kind, payload, recipient ('' for none), max attempts, run at (ms)
local queue, id, recipient, run = ARGV[2], ARGV[3], ARGV[6], tonumber(ARGV[8])
local jk = job_key(id)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fields = {'id', id, 'queue', queue, 'kind', ARGV[4], 'payload', ARGV[5], 'attempts', 0,
  'max', ARGV[7], 'enq', run, 'run', run}
if recipient ~= '' then
  fields[#fields + 1] = 'recipient'
  fields[#fields + 1] = recipient
  redis.call('SADD', recipient_key(recipient), id)
end
if run > now then
  fields[#fields + 1] = 'state'
  fields[#fields + 1] = 'delayed'
  redis.call('ZADD', ns(queue) .. ':delayed', run, id)
else
  fields[#fields + 1] = 'state'
  fields[#fields + 1] = 'waiting'
  fields[#fields + 1] = 'entry'
  fields[#fields + 1] = redis.call('XADD', ns(queue) .. ':stream', '*', 'id', id)
end
redis.call('HSET', jk, unpack(fields))
redis.call('HINCRBY', ns(queue) .. ':stats', 'enqueued', 1)
return 1
