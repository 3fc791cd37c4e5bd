-- Reserves broadcast sequence numbers. KEYS: rec, seq. ARGV: how many.
-- Returns the last number reserved, or false when the drop does not exist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
return redis.call('INCRBY', KEYS[2], ARGV[1])
