-- ARGV: P, queue, id, kind, payload, recipient ('' for none), max attempts, run at (ms)
local queue, id, recipient, run = ARGV[2], ARGV[3], ARGV[6], tonumber(ARGV[8])
local jk = job_key(id)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', jk, 'id', id, 'queue', queue, 'kind', ARGV[4], 'payload', ARGV[5], 'attempts', 0,
  'max', ARGV[7], 'enq', run, 'run', run)
if recipient ~= '' then
  redis.call('HSET', jk, 'recipient', recipient)
  redis.call('SADD', recipient_key(recipient), id)
end
if run > now then
  redis.call('HSET', jk, 'state', 'delayed')
  redis.call('ZADD', ns(queue) .. ':delayed', run, id)
else
  ready(id, queue)
end
redis.call('HINCRBY', ns(queue) .. ':stats', 'enqueued', 1)
return 1
