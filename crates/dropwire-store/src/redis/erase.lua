-- Erases one viewer in one drop: wherever the drop keeps the viewer's id it becomes the
-- tombstone, and its handle becomes the erased handle, so every count stays right and
-- nothing links back to the viewer. (The `events` stream, trimmed to its last ~10,000
-- entries, is left as it is.)
-- KEYS: rec, claims, order, per, rids, refused, scores, coupons, members, awards, draw,
--   entrants (fair start: the viewer's entries, their counts and its tickets' members).
-- ARGV: viewer, tombstone, erased handle.
-- Returns the number of claims changed, or -1 when the drop does not exist.
local rec, claims, order, per, rids, refused, scores, coupons, members, awards, draw, entrants =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10],
  KEYS[11], KEYS[12]
local old, tomb, handle = ARGV[1], ARGV[2], ARGV[3]
local SEP = '\0'
if redis.call('EXISTS', rec) == 0 then
  return -1
end

local function move(hash, from, to)
  local v = redis.call('HGET', hash, from)
  if v then
    redis.call('HDEL', hash, from)
    redis.call('HSET', hash, to, v)
  end
end

local changed = 0
for _, code in ipairs(redis.call('LRANGE', order, 0, -1)) do
  local raw = redis.call('HGET', claims, code)
  if raw then
    local c = cjson.decode(raw)
    if c.viewer_id == old then
      c.viewer_id = tomb
      c.handle = handle
      redis.call('HSET', claims, code, cjson.encode(c))
      move(rids, old .. SEP .. c.rid, tomb .. SEP .. c.rid)
      move(per, c.sku .. SEP .. old, c.sku .. SEP .. tomb)
      changed = changed + 1
    end
  end
end

move(refused, old, tomb)
local score = redis.call('HGET', scores, old)
if score then
  score = cjson.decode(score)
  score.viewer_id = tomb
  score.handle = handle
  redis.call('HDEL', scores, old)
  redis.call('HSET', scores, tomb, cjson.encode(score))
end
local suffix = SEP .. old
for _, hash in ipairs({coupons, awards}) do
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    if #field > #suffix and string.sub(field, -#suffix) == suffix then
      move(hash, field, string.sub(field, 1, #field - #suffix) .. SEP .. tomb)
    end
  end
end
if redis.call('SREM', members, old) == 1 then
  redis.call('SADD', members, tomb)
end
-- Fair start: entries ('e' SEP viewer SEP rid), entry counts ('n' SEP sku SEP at SEP viewer)
-- and tickets (sku SEP at SEP viewer SEP rid).
local entry_prefix = 'e' .. SEP .. old .. SEP
for _, field in ipairs(redis.call('HKEYS', draw)) do
  if string.sub(field, 1, #entry_prefix) == entry_prefix then
    local e = cjson.decode(redis.call('HGET', draw, field))
    e.viewer = tomb
    e.handle = handle
    redis.call('HDEL', draw, field)
    redis.call('HSET', draw, 'e' .. SEP .. tomb .. SEP .. e.rid, cjson.encode(e))
  elseif string.sub(field, 1, 1) == 'n' and #field > #suffix
    and string.sub(field, -#suffix) == suffix then
    move(draw, field, string.sub(field, 1, #field - #suffix) .. SEP .. tomb)
  end
end
local tickets = redis.call('ZRANGE', entrants, 0, -1, 'WITHSCORES')
for k = 1, #tickets, 2 do
  local m = tickets[k]
  local sku, at, viewer, rid = string.match(m, '^(.-)%z(%d+)%z(.-)%z(.*)$')
  if viewer == old then
    redis.call('ZREM', entrants, m)
    redis.call('ZADD', entrants, tickets[k + 1], sku .. SEP .. at .. SEP .. tomb .. SEP .. rid)
  end
end
return changed
