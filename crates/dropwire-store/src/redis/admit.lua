-- Adds a viewer to a drop's early-access segment. KEYS: rec, members. ARGV: viewer.
-- Returns 0 when the drop does not exist, else 1.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
