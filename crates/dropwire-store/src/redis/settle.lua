-- Redeems or expires claims of one drop. KEYS: claims, holds, stock, per, events, conf, scores.
-- An expired hold's points leave its viewer's score (`dropwire_core::claim`: the board
-- counts items held or bought).
-- The time is ARGV's `now` (ms) when it is a number, else ('') the Redis server's clock
-- (`TIME`): deadlines are then judged by one clock, whatever the clocks of the hub nodes.
-- ARGV[1] = 'redeem': ARGV[2] code, ARGV[3] now → {'OK', claim, holds left} | {'S', state}
--   | {'N'}. (A hold past its deadline is expired on the spot and answers {'S', 'expired'}.)
-- ARGV[1] = 'expire': ARGV[2] now, ARGV[3] at most this many → {next, closed, claim...}:
--   the earliest deadline still held ('' if none), '1' if the drop is closed ('' if not),
--   then every claim it expired, as JSON. Each hold leaves the deadline set in the same step
--   that expires it, so two sweepers running at once never expire one claim twice.
local claims, holds, stock, per, events, conf, scores =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local SEP = '\0'
local EVENTS_KEPT = ${EVENTS_KEPT}

local function clock(arg)
  local now = tonumber(arg)
  if now then return now end
  if arg ~= '' then return nil end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function event(kind, c)
  redis.call('XADD', events, 'MAXLEN', '~', EVENTS_KEPT, '*', 'type', kind, 'code', c.code,
    'sku', c.sku, 'viewer', c.viewer_id)
end

local function expire(code, now)
  local raw = redis.call('HGET', claims, code)
  redis.call('ZREM', holds, code)
  if not raw then return nil end
  local c = cjson.decode(raw)
  if c.state ~= 'held' then return nil end
  c.state = 'expired'
  c.expired_ms = now
  redis.call('HINCRBY', stock, c.sku, 1)
  redis.call('HINCRBY', per, c.sku .. SEP .. c.viewer_id, -1)
  local score = redis.call('HGET', scores, c.viewer_id)
  if score then
    score = cjson.decode(score)
    score.points = math.max(0, score.points - (c.points or 0))
    redis.call('HSET', scores, c.viewer_id, cjson.encode(score))
  end
  local out = cjson.encode(c)
  redis.call('HSET', claims, code, out)
  event('expired', c)
  return out
end

if ARGV[1] == 'expire' then
  local now, most = clock(ARGV[2]), tonumber(ARGV[3])
  if not now or not most then
    return redis.error_reply('ERR settle.lua: expire wants now_ms (or \'\') and a count')
  end
  local out = {'', ''}
  for _, code in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, most)) do
    local c = expire(code, now)
    if c then table.insert(out, c) end
  end
  local next = redis.call('ZRANGE', holds, 0, 0, 'WITHSCORES')
  if next[2] then out[1] = next[2] end
  if redis.call('HEXISTS', conf, 'closed') == 1 then out[2] = '1' end
  return out
end

local code, now = ARGV[2], clock(ARGV[3] or 'x')
if ARGV[1] ~= 'redeem' or not code or not now then
  return redis.error_reply('ERR settle.lua: redeem wants a code and now_ms (or \'\')')
end
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
event('redeemed', c)
return {'OK', out, tostring(redis.call('ZCARD', holds))}
