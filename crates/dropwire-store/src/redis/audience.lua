-- One node reports how many viewers of a drop it holds; publishes the total when it changed.
-- KEYS: rec, seq, bus, marks, nodes (hash: node -> "count:deadline_ms"), uniq (HyperLogLog),
--   conf (a retired drop's `expire_at`: keys made here afterwards get the same deadline).
-- ARGV: node, count, now_ms, deadline_ms (0: the node leaves), ts, publish command,
--       anonymous joins since the last report, then the ids of viewers who joined since.
-- Returns {total, peak, unique, seq published or 0}.
local rec, seqk, bus, marks, nodes, uniq, conf =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local KEPT = ${BUS_KEPT}
if redis.call('EXISTS', rec) == 0 then
  return {0, 0, 0, 0}
end
local now = tonumber(ARGV[3])
if tonumber(ARGV[4]) == 0 then
  redis.call('HDEL', nodes, ARGV[1])
else
  redis.call('HSET', nodes, ARGV[1], ARGV[2] .. ':' .. ARGV[4])
end
local total = 0
local all = redis.call('HGETALL', nodes)
for i = 1, #all, 2 do
  local count, deadline = string.match(all[i + 1], '^(%d+):(%d+)$')
  if count and tonumber(deadline) >= now then
    total = total + tonumber(count)
  else
    redis.call('HDEL', nodes, all[i])
  end
end
local peak = tonumber(redis.call('HGET', marks, 'viewers:peak') or '0')
if total > peak then
  peak = total
  redis.call('HSET', marks, 'viewers:peak', peak)
end
local anon = redis.call('HINCRBY', marks, 'viewers:anonymous', tonumber(ARGV[7]))
if #ARGV > 7 then
  redis.call('PFADD', uniq, unpack(ARGV, 8))
end
local unique = redis.call('PFCOUNT', uniq) + anon
local seq = 0
if tonumber(redis.call('HGET', marks, 'viewers') or '-1') ~= total then
  redis.call('HSET', marks, 'viewers', total)
  seq = redis.call('INCR', seqk)
  -- The frame's text is dropwire-core's (`protocol::VIEWERS_FRAME`), rendered in at start.
  local body = ${VIEWERS_FRAME_0} .. seq .. ${VIEWERS_FRAME_1} .. ARGV[5] .. ${VIEWERS_FRAME_2}
    .. total .. ${VIEWERS_FRAME_3}
  redis.call('XADD', bus, 'MAXLEN', '~', KEPT, seq .. '-1', 'b', body)
  redis.call(ARGV[6], bus, body)
end
local at = redis.call('HGET', conf, 'expire_at')
if at then
  for _, k in ipairs({seqk, bus, marks, nodes, uniq}) do
    if redis.call('PTTL', k) == -1 then redis.call('PEXPIREAT', k, at) end
  end
end
return {total, peak, unique, seq}
