-- A batch of claims on one drop, in order, atomically. Every claim is decided first (reads
-- only, against counters kept in this script), then every decision is written: a bad
-- argument or a missing drop stops the script before its first write.
--
-- KEYS: conf, stock, granted, per, claims, order, rids, refused, scores, holds, events, log,
--   members.
-- ARGV: drop id, n, then n times: sku, viewer, handle, rid, now_ms ('': the Redis server's
--   clock, `TIME`, which then dates the claim and sets its hold's deadline), code, refusal ('' or
--   the hub's `not_open` / `closed`: answer an earlier decision of the rid, else this
--   refusal, recording nothing), members_only ('1' during an early-access window: a viewer
--   outside the drop's segment is answered `not_open`, recording nothing), raised limit (''
--   or a number: the viewer's own per-viewer limit from a pass, used when above the SKU's).
-- The rules are dropwire-core's (`dropwire_core::claim`): each placeholder below (a dollar
--   sign and a name in braces) is replaced by the core's constant of that name when the store
--   connects (`rules.rs`).
-- Returns {'X'} when the drop does not exist, else 2n values, per claim one of
--   'G', claim JSON        granted now, or earlier to the same (viewer, rid)
--   'R', reason            refused now, or earlier to the same (viewer, rid)
--   'C', ''                the code is taken: nothing written, ask again with another code
local conf, stock, granted, per, claims, order, rids, refused, scores, holds, events, log,
  members = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9],
  KEYS[10], KEYS[11], KEYS[12], KEYS[13]
local drop, n = ARGV[1], tonumber(ARGV[2])
local SEP = '\0'
local REFUSED_PER_VIEWER = ${REFUSED_RIDS_KEPT}
local FIRST_POINTS, POINTS_PER_RANK, FEWEST_POINTS =
  ${FIRST_CLAIM_POINTS}, ${POINTS_PER_RANK}, ${FEWEST_CLAIM_POINTS}
local EVENTS_KEPT = ${EVENTS_KEPT}

local W = 9
if not n or #ARGV ~= 2 + W * n then
  return redis.error_reply('ERR claim.lua: expected 2 + 9n arguments')
end
for i = 0, n - 1 do
  local now = ARGV[3 + W * i + 4]
  if now ~= '' and not tonumber(now) then
    return redis.error_reply('ERR claim.lua: now_ms is not a number')
  end
end
local server_now
local function clock(arg)
  local now = tonumber(arg)
  if now then return now end
  if not server_now then
    local t = redis.call('TIME')
    server_now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return server_now
end
local hold_s = redis.call('HGET', conf, 'hold_s')
if not hold_s then
  return {'X'}
end
hold_s = tonumber(hold_s)
local closed = redis.call('HEXISTS', conf, 'closed') == 1

-- The claim window, checked here too once the hub nodes' bus has taken the drop live
-- (`timeline` in conf; drops used without a bus keep the window to the hub alone): live
-- means the last start/pause/resume/close in the control log is a start or a resume (other
-- entries, a cue fired or a chat setting, leave it as it was), and a SKU
-- is open once a published reveal cue opened it. So a node whose view of the log is a
-- moment behind (a pause on another node) cannot grant outside the window.
local windowed = redis.call('HEXISTS', conf, 'timeline') == 1
local live = false
if windowed then
  local entries = redis.call('LRANGE', log, 0, -1)
  for k = #entries, 1, -1 do
    local action = cjson.decode(entries[k])['action']
    if action == 'start' or action == 'resume' then
      live = true
      break
    elseif action == 'pause' or action == 'close' then
      break
    end
  end
end
local open = {}
local function window_open(sku)
  if open[sku] == nil then
    open[sku] = redis.call('HEXISTS', conf, 'open:' .. sku) == 1
  end
  return live and open[sku]
end

-- Phase 1: decide. Counters start from Redis and move as this batch grants.
local left, limit, have, ranks = {}, {}, {}, {}
local refusals = {}   -- viewer -> list of {rid, reason}, as stored (and then extended)
local decided = {}    -- viewer SEP rid -> index of the claim in this batch that decided it
local codes = {}      -- codes granted in this batch
local out = {}        -- per claim: {kind, payload, extra}
local function refused_list(viewer)
  local list = refusals[viewer]
  if not list then
    local raw = redis.call('HGET', refused, viewer)
    list = raw and cjson.decode(raw) or {}
    refusals[viewer] = list
  end
  return list
end
for i = 0, n - 1 do
  local b = 3 + W * i
  local sku, viewer, handle, rid, now, code, hub_refusal, members_only =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], clock(ARGV[b + 4]), ARGV[b + 5],
    ARGV[b + 6], ARGV[b + 7] == '1'
  local raised = tonumber(ARGV[b + 8])
  local rid_key = viewer .. SEP .. rid
  local d
  if decided[rid_key] then
    d = {'same', decided[rid_key]}
  else
    local prev = redis.call('HGET', rids, rid_key)
    if prev then
      d = {'G', redis.call('HGET', claims, prev)}
    else
      for _, pair in ipairs(refused_list(viewer)) do
        if pair[1] == rid then d = {'R', pair[2]} end
      end
    end
  end
  if not d and hub_refusal ~= '' then
    -- The hub's timeline refused it and the rid was not decided before: not remembered.
    d = {'R', hub_refusal}
  end
  if not d and members_only and redis.call('SISMEMBER', members, viewer) == 0 then
    -- Early access, and the viewer is not in the segment: not remembered.
    d = {'R', 'not_open'}
  end
  if not d and not closed and windowed and not window_open(sku) then
    -- Not remembered (like the hub's own `not_open`): a retry once the window opens may succeed.
    d = {'R', 'not_open'}
  end
  if not d then
    local pv = sku .. SEP .. viewer
    if limit[sku] == nil then
      limit[sku] = tonumber(redis.call('HGET', conf, 'limit:' .. sku)) or false
      left[sku] = tonumber(redis.call('HGET', stock, sku) or '0')
      ranks[sku] = tonumber(redis.call('HGET', granted, sku) or '0')
    end
    if have[pv] == nil then
      have[pv] = tonumber(redis.call('HGET', per, pv) or '0')
    end
    local reason
    if closed then
      reason = 'closed'
    elseif not limit[sku] then
      reason = 'not_open'
    elseif have[pv] >= math.max(limit[sku], raised or 0) then
      reason = 'limit_reached'
    elseif left[sku] <= 0 then
      reason = 'sold_out'
    end
    if reason then
      local list = refused_list(viewer)
      table.insert(list, {rid, reason})
      while #list > REFUSED_PER_VIEWER do table.remove(list, 1) end
      d = {'R', reason, 'new'}
      decided[rid_key] = i
    elseif codes[code] or redis.call('HEXISTS', claims, code) == 1 then
      d = {'C', ''}
    else
      local rank = ranks[sku]
      ranks[sku] = rank + 1
      left[sku] = left[sku] - 1
      have[pv] = have[pv] + 1
      codes[code] = true
      local claim = {
        code = code, drop_id = drop, sku = sku, viewer_id = viewer, handle = handle, rid = rid,
        state = 'held', created_ms = now, hold_until_ms = now + hold_s * 1000, rank = rank,
        points = math.max(FEWEST_POINTS, FIRST_POINTS - POINTS_PER_RANK * rank),
      }
      d = {'G', claim, 'new'}
      decided[rid_key] = i
    end
  end
  out[i] = d
end

-- Phase 2: write what was decided.
local reply = {}
local touched = {}
for i = 0, n - 1 do
  local d = out[i]
  if d[1] == 'same' then d = out[d[2]] end
  if d[3] == 'new' and d[1] == 'G' and not d.written then
    local c = d[2]
    local json = cjson.encode(c)
    redis.call('HINCRBY', granted, c.sku, 1)
    redis.call('HINCRBY', stock, c.sku, -1)
    redis.call('HINCRBY', per, c.sku .. SEP .. c.viewer_id, 1)
    redis.call('HSET', claims, c.code, json)
    redis.call('RPUSH', order, c.code)
    redis.call('HSET', rids, c.viewer_id .. SEP .. c.rid, c.code)
    redis.call('ZADD', holds, c.hold_until_ms, c.code)
    local score = redis.call('HGET', scores, c.viewer_id)
    if score then
      score = cjson.decode(score)
      score.points = score.points + c.points
    else
      score = {viewer_id = c.viewer_id, handle = c.handle, points = c.points, first_ms = c.created_ms}
    end
    redis.call('HSET', scores, c.viewer_id, cjson.encode(score))
    redis.call('XADD', events, 'MAXLEN', '~', EVENTS_KEPT, '*', 'type', 'claimed', 'code', c.code,
      'sku', c.sku, 'viewer', c.viewer_id, 'rank', c.rank)
    d[2] = json
    d.written = true
  elseif d[3] == 'new' and d[1] == 'R' then
    touched[ARGV[3 + W * i + 1]] = true
  end
  table.insert(reply, d[1])
  table.insert(reply, d[2])
end
local made_refused = redis.call('EXISTS', refused) == 0
for viewer in pairs(touched) do
  redis.call('HSET', refused, viewer, cjson.encode(refusals[viewer]))
end
if made_refused and next(touched) then
  -- A retired drop (closed, holds settled) keeps its keys until `expire_at`: so does this one.
  local at = redis.call('HGET', conf, 'expire_at')
  if at then redis.call('PEXPIREAT', refused, at) end
end
return reply
