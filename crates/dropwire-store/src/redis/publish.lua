-- Publishes one broadcast of a drop to every hub node, under the drop's next sequence number.
-- KEYS: rec, seq, bus (a stream; its name is also the pub/sub channel), marks, log, conf.
-- ARGV: prefix, suffix, mode, field, a, b, publish command (SPUBLISH or PUBLISH), then the
--   conf flags a publication sets (`timeline` once the drop is live, `open:SKU` with a
--   reveal, `closed` with the close: the claim script checks the window by them).
--   The body is prefix .. seq .. suffix (the hub serialized it with the seq left out).
--   mode 'always': no condition.
--   mode 'once': `a` is the length of the control log the node computed the message from,
--     `b` the time the message is about. Publishes only if no entry beyond the first `a` is
--     earlier than `b` (else 'stale': the node must re-read the log) and nothing was
--     published under `field` before (else 'dup'). Cues and state changes: one per drop.
--   mode 'newer': `a` is "version:revealed" (claims and their changes so far, products
--     revealed so far); publishes only if both are at least the last seen under `field`,
--     one of them above, and the content `b` differs from the last published ('dup'
--     otherwise). Stock and leaderboard: no node can publish an older figure after a newer.
-- Returns {'ok', seq}, {'dup'}, {'stale'} or {'gone'} (no such drop).
local rec, seqk, bus, marks, log, conf = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local KEPT = ${BUS_KEPT}
if redis.call('EXISTS', rec) == 0 then
  return {'gone'}
end
-- A retired drop (closed, holds settled) keeps its keys until `expire_at` in conf: a key
-- this script makes afterwards gets the same deadline.
local function retained()
  local at = redis.call('HGET', conf, 'expire_at')
  if at then
    for _, k in ipairs({seqk, bus, marks}) do
      if redis.call('PTTL', k) == -1 then redis.call('PEXPIREAT', k, at) end
    end
  end
end
local mode, field = ARGV[3], ARGV[4]
if mode == 'once' then
  -- Entries the node has not seen may only be later than the message (an entry at time t
  -- cannot change what happened before t); an earlier one means it computed from too little.
  local seen, at = tonumber(ARGV[5]), tonumber(ARGV[6])
  if redis.call('LLEN', log) < seen then
    return {'stale'}
  end
  for _, raw in ipairs(redis.call('LRANGE', log, seen, -1)) do
    if tonumber(cjson.decode(raw)['at_ms']) < at then
      return {'stale'}
    end
  end
  if redis.call('HSETNX', marks, field, '1') == 0 then
    return {'dup'}
  end
elseif mode == 'newer' then
  local version, revealed = string.match(ARGV[5], '^(%d+):(%d+)$')
  if not version then
    return redis.error_reply('ERR publish.lua: newer wants version:revealed')
  end
  version, revealed = tonumber(version), tonumber(revealed)
  local last_v, last_r = string.match(redis.call('HGET', marks, field .. ':v') or '', '^(%d+):(%d+)$')
  last_v, last_r = tonumber(last_v or '-1'), tonumber(last_r or '-1')
  if version < last_v or revealed < last_r or (version == last_v and revealed == last_r) then
    return {'dup'}
  end
  redis.call('HSET', marks, field .. ':v', ARGV[5])
  if redis.call('HGET', marks, field) == ARGV[6] then
    retained()
    return {'dup'}
  end
  redis.call('HSET', marks, field, ARGV[6])
end
local seq = redis.call('INCR', seqk)
local body = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', bus, 'MAXLEN', '~', KEPT, seq .. '-1', 'b', body)
redis.call(ARGV[7], bus, body)
for i = 8, #ARGV do
  redis.call('HSET', conf, ARGV[i], '1')
end
retained()
return {'ok', tostring(seq)}
