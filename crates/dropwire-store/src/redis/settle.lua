-- Redeems or expires claims. KEYS: claims, holds, stock, per.
-- ARGV[1] = 'redeem': ARGV[2] code, ARGV[3] now → {'OK', claim} | {'S', state} | {'N'}.
--   (A hold past its deadline is expired on the spot and answers {'S', 'expired'}.)
-- ARGV[1] = 'expire': ARGV[2] now → every claim it expired, as JSON.
local claims, holds, stock, per = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local function expire(code, now)
  local raw = redis.call('HGET', claims, code)
  redis.call('ZREM', holds, code)
  if not raw then return nil end
  local c = cjson.decode(raw)
  if c.state ~= 'held' then return nil end
  c.state = 'expired'
  c.expired_ms = now
  redis.call('HINCRBY', stock, c.sku, 1)
  redis.call('HINCRBY', per, c.sku .. '|' .. c.viewer_id, -1)
  local out = cjson.encode(c)
  redis.call('HSET', claims, code, out)
  return out
end

if ARGV[1] == 'expire' then
  local now = tonumber(ARGV[2])
  local out = {}
  for _, code in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', now)) do
    local c = expire(code, now)
    if c then table.insert(out, c) end
  end
  return out
end

local code, now = ARGV[2], tonumber(ARGV[3])
local raw = redis.call('HGET', claims, code)
if not raw then return {'N'} end
local c = cjson.decode(raw)
if c.state ~= 'held' then return {'S', c.state} end
if c.hold_until_ms <= now then
  expire(code, now)
  return {'S', 'expired'}
end
c.state = 'redeemed'
c.redeemed_ms = now
redis.call('ZREM', holds, code)
local out = cjson.encode(c)
redis.call('HSET', claims, code, out)
return {'OK', out}
