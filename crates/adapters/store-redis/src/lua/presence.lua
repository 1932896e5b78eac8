-- Open chat sockets per user, counted per instance so that an instance that dies without
-- counting its sockets out stops counting once its heartbeats stop.
-- ARGV: op (arrive | depart | beat), instance, time to live (ms), user, B (the keys' base,
-- "{prefix}:chat:presence", whose hash tag puts every key below in one cluster slot).
-- KEYS: B:instances   zset instance -> its last call (ms, Redis's clock);
--       B:<instance>  hash user -> sockets open on that instance, expiring a time to live
--                     after the instance's last call.
-- The other live instances' hashes are read by name, in the same slot.
-- Answers the user's open sockets across the live instances (0 for a heartbeat).
local op, instance, ttl, user, B = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local INSTANCES, own = KEYS[1], KEYS[2]
local function counts(name) return B .. ':' .. name end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', INSTANCES, now, instance)
redis.call('ZREMRANGEBYSCORE', INSTANCES, '-inf', now - ttl)
if op == 'arrive' then
  redis.call('HINCRBY', own, user, 1)
elseif op == 'depart' then
  if redis.call('HINCRBY', own, user, -1) <= 0 then redis.call('HDEL', own, user) end
end
redis.call('PEXPIRE', own, ttl)
if op == 'beat' then return 0 end
local total = 0
for _, live in ipairs(redis.call('ZRANGE', INSTANCES, 0, -1)) do
  total = total + (tonumber(redis.call('HGET', counts(live), user)) or 0)
end
return total
