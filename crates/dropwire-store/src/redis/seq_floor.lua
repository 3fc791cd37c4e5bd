-- Raises a drop's broadcast sequence to at least ARGV[1] (after Redis came back from an older
-- state than the hub nodes had seen, so numbers are never given out twice). KEYS: seq.
-- Returns the sequence as it was.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return current
