-- A personal code of a unique coupon. KEYS: rec, coupons. ARGV: coupon, viewer, limit, code.
-- Returns {'X'} (no such drop), {'S'} (all codes given out) or {'G', the viewer's code}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {'X'}
end
local SEP = '\0'
local mine = redis.call('HGET', KEYS[2], ARGV[1] .. SEP .. ARGV[2])
if mine then return {'G', mine} end
local count_field = '#' .. SEP .. ARGV[1]
if tonumber(redis.call('HGET', KEYS[2], count_field) or '0') >= tonumber(ARGV[3]) then
  return {'S'}
end
redis.call('HSET', KEYS[2], ARGV[1] .. SEP .. ARGV[2], ARGV[4])
redis.call('HINCRBY', KEYS[2], count_field, 1)
return {'G', ARGV[4]}
