-- ARGV: P, queue, id, kind, payload, recipient ('' for none), max attempts, run at (ms), held
-- ('1': delayed until its replicas confirm it, REDIS_WAIT_REPLICAS; then released or withdrawn)
local queue, id, kind, payload, recipient, max, run = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6],
  ARGV[7], ARGV[8]
-- A command sent again (the client resends what was in flight when a connection dropped) finds
-- its job there already: one job, never two.
if redis.call('EXISTS', job_key(id)) == 1 then
  return 0
end
local now = now_ms()
local fields = {'id', id, 'queue', queue, 'kind', kind, 'attempts', 0, 'max', max, 'enq', run,
  'run', run}
if recipient ~= '' then
  fields[#fields + 1] = 'recipient'
  fields[#fields + 1] = recipient
end
if ARGV[9] == '1' then
  fields[#fields + 1] = 'held'
  fields[#fields + 1] = '1'
end
if tonumber(run) > now then
  fields[#fields + 1] = 'state'
  fields[#fields + 1] = 'delayed'
  fields[#fields + 1] = 'payload'
  fields[#fields + 1] = payload
  redis.call('ZADD', ns(queue) .. ':delayed', run, id)
else
  fields[#fields + 1] = 'state'
  fields[#fields + 1] = 'waiting'
  fields[#fields + 1] = 'entry'
  fields[#fields + 1] = append(id, queue, {0, kind, payload, max, run, false})
end
redis.call('HSET', job_key(id), unpack(fields))
redis.call('HINCRBY', ns(queue) .. ':stats', 'enqueued', 1)
redis.call('SADD', P .. ':queues', queue)
return 1
