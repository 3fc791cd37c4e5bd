-- A quest's points for one viewer, at most once per (quest, viewer), inside the window,
-- onto the drop's board in the same step.
-- KEYS: rec, conf, awards, scores, events.
-- ARGV: quest, viewer, handle, points, rid, now_ms, opens_ms, closes_ms, limit ('' for none).
-- Returns {'X'} (no such drop), {'A', points} (awarded, now or earlier to this rid),
--   {'D'} (awarded earlier to another rid), {'C'} (outside the window: nothing recorded),
--   {'F'} (the quest's limit of viewers earned it already: nothing recorded).
-- With a limit, `conf`'s field `awarded:QUEST` counts the quest's awards.
local rec, conf, awards, scores, events = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local quest, viewer, handle, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[5]
local points, now, opens, closes =
  tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if not points or not now or not opens or not closes then
  return redis.error_reply('ERR award.lua: points and times must be numbers')
end
if redis.call('EXISTS', rec) == 0 then
  return {'X'}
end
local SEP = '\0'
local field = quest .. SEP .. viewer
local prev = redis.call('HGET', awards, field)
if prev then
  prev = cjson.decode(prev)
  if prev.rid == rid then return {'A', tostring(prev.points)} end
  return {'D'}
end
if now < opens or now >= closes then
  return {'C'}
end
local limit = tonumber(ARGV[9])
if limit then
  local count = tonumber(redis.call('HGET', conf, 'awarded:' .. quest) or '0')
  if count >= limit then
    return {'F'}
  end
  redis.call('HINCRBY', conf, 'awarded:' .. quest, 1)
end
local made = redis.call('EXISTS', awards) == 0
redis.call('HSET', awards, field, cjson.encode({rid = rid, points = points}))
local score = redis.call('HGET', scores, viewer)
if score then
  score = cjson.decode(score)
  score.points = score.points + points
else
  score = {viewer_id = viewer, handle = handle, points = points, first_ms = now}
end
redis.call('HSET', scores, viewer, cjson.encode(score))
redis.call('XADD', events, 'MAXLEN', '~', ${EVENTS_KEPT}, '*', 'type', 'quest', 'quest', quest,
  'viewer', viewer, 'points', points)
if made then
  -- A retired drop keeps its keys until `expire_at`: so do these.
  local at = redis.call('HGET', conf, 'expire_at')
  if at then
    redis.call('PEXPIREAT', awards, at)
    redis.call('PEXPIREAT', scores, at)
  end
end
return {'A', tostring(points)}
