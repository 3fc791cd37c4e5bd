-- Compare-and-append to a drop's control log. KEYS: rec, log, conf.
-- ARGV: expected length, entry JSON, '1' when the entry closes the drop.
-- Returns {'X'} (no such drop), {'C'} (the log no longer has the expected length), or
-- {'OK', entry JSON...} (the new log). A close also sets the drop's `closed` flag, in the
-- same step, so no claim is granted after it.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'X'}
end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[1]) then
  return {'C'}
end
redis.call('RPUSH', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[3], 'closed', '1')
end
local out = redis.call('LRANGE', KEYS[2], 0, -1)
table.insert(out, 1, 'OK')
return out
