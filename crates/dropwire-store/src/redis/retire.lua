-- Retires a drop that is closed and has no hold left: every key it has gets the same
-- deadline, `expire_at` (kept in conf, so keys made later get it too). KEYS: rec, conf,
-- holds, then every other key of the drop.
-- ARGV: retention in ms (0: keep the keys for ever), '1' to mark the drop closed first (its
--   timeline has ended though no node said so), now in ms ('': the Redis server's clock).
-- Returns {'gone'} (no such drop), {'open'}, {'held'} (holds left), or {'retired', expire_at}
--   (0 when kept for ever).
local rec, conf, holds = KEYS[1], KEYS[2], KEYS[3]
local keep = tonumber(ARGV[1])
if not keep then
  return redis.error_reply('ERR retire.lua: retention is not a number')
end
if redis.call('EXISTS', rec) == 0 then
  return {'gone'}
end
if ARGV[2] == '1' then
  redis.call('HSET', conf, 'closed', '1')
end
if redis.call('HEXISTS', conf, 'closed') == 0 then
  return {'open'}
end
if redis.call('ZCARD', holds) > 0 then
  return {'held'}
end
if keep <= 0 then
  return {'retired', '0'}
end
local at = redis.call('HGET', conf, 'expire_at')
if not at then
  local now = tonumber(ARGV[3])
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  at = string.format('%d', now + keep)
  redis.call('HSET', conf, 'expire_at', at)
end
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) == -1 then
    redis.call('PEXPIREAT', k, at)
  end
end
return {'retired', at}
