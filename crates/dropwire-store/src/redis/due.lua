-- The drops with a hold due, from the index of drops with holds. KEYS: the index (sorted
-- set: drop id by the earliest deadline of its holds, or earlier).
-- ARGV: now in ms ('': the Redis server's clock, `TIME`), at most this many drops.
-- Returns the ids whose score is at or before now.
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]) or 100)
