-- Compare-and-append to the control log. KEYS: log. ARGV: expected length, entry JSON.
-- Returns the new log, or false when the log no longer has the expected length.
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then
  return false
end
redis.call('RPUSH', KEYS[1], ARGV[2])
return redis.call('LRANGE', KEYS[1], 0, -1)
