-- One hit on a fixed-window counter. KEYS[1]: the counter; ARGV[1]: the window in ms.
-- Answers {hits in this window, ms the window has left}. The first hit starts the window;
-- a counter left without expiry (by hand) is given one, so no key outlives its window.
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {hits, left}
