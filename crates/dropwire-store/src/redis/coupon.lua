-- A personal code of a unique coupon. KEYS: coupons. ARGV: coupon, viewer, limit, code.
-- Returns the viewer's code, or false when all are given out.
local mine = redis.call('HGET', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
if mine then return mine end
if tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. '#') or '0') >= tonumber(ARGV[3]) then
  return false
end
redis.call('HSET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], ARGV[1] .. '#', 1)
return ARGV[4]
