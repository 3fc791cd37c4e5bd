-- One claim, atomically: the rid, the per-viewer limit, stock; then the hold, the claim,
-- the leaderboard score. KEYS: conf, stock, granted, per, claims, order, rids, scores, holds.
-- ARGV: drop id, sku, viewer, handle, rid, now_ms, code.
-- Returns {'G', claim JSON} | {'R', reason} | {'X'} (no such drop).
local conf, stock, granted, per, claims, order, rids, scores, holds =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local drop, sku, viewer, handle, rid, now, code =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local hold_s = redis.call('HGET', conf, 'hold_s')
if not hold_s then
  return {'X'}
end
local rid_key = viewer .. '|' .. rid
local prev = redis.call('HGET', rids, rid_key)
if prev then
  if string.sub(prev, 1, 2) == 'G:' then
    return {'G', redis.call('HGET', claims, string.sub(prev, 3))}
  end
  return {'R', string.sub(prev, 3)}
end
local limit = redis.call('HGET', conf, 'limit:' .. sku)
local reason = nil
if not limit then
  reason = 'not_open'
else
  local have = tonumber(redis.call('HGET', per, sku .. '|' .. viewer) or '0')
  local left = tonumber(redis.call('HGET', stock, sku) or '0')
  if have >= tonumber(limit) then
    reason = 'limit_reached'
  elseif left <= 0 then
    reason = 'sold_out'
  end
end
if reason then
  redis.call('HSET', rids, rid_key, 'R:' .. reason)
  return {'R', reason}
end
local rank = redis.call('HINCRBY', granted, sku, 1) - 1
redis.call('HINCRBY', stock, sku, -1)
redis.call('HINCRBY', per, sku .. '|' .. viewer, 1)
local points = math.max(10, 100 - 5 * rank)
local until_ms = now + tonumber(hold_s) * 1000
local claim = cjson.encode({
  code = code, drop_id = drop, sku = sku, viewer_id = viewer, handle = handle, rid = rid,
  state = 'held', created_ms = now, hold_until_ms = until_ms, rank = rank, points = points,
})
redis.call('HSET', claims, code, claim)
redis.call('RPUSH', order, code)
redis.call('HSET', rids, rid_key, 'G:' .. code)
redis.call('ZADD', holds, until_ms, code)
local score = redis.call('HGET', scores, viewer)
if score then
  score = cjson.decode(score)
  score.points = score.points + points
else
  score = {viewer_id = viewer, handle = handle, points = points, first_ms = now}
end
redis.call('HSET', scores, viewer, cjson.encode(score))
return {'G', claim}
