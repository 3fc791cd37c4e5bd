-- A batch of claims on one drop, in order, atomically. Every claim is decided first (reads
-- only, against counters kept in this script), then every decision is written: a bad
-- argument or a missing drop stops the script before its first write.
--
-- KEYS: conf, stock, granted, per, claims, order, rids, refused, scores, holds, events, log,
--   members, draw, draws, entrants.
-- ARGV: drop id, n, then n times: sku, viewer, handle, rid, now_ms ('': the Redis server's
--   clock, `TIME`, which then dates the claim and sets its hold's deadline), code, refusal ('' or
--   the hub's `not_open` / `closed`: answer an earlier decision of the rid, else this
--   refusal, recording nothing), members_only ('1' during an early-access window: a viewer
--   outside the drop's segment is answered `not_open`, recording nothing), draw_at ('' or
--   the time of the SKU's fair-start draw this claim belongs to), ticket (the entry's random
--   ticket, decimal, below 2^52), hub_now (the hub's time, which alone is compared with
--   draw times), raised limit ('' or a number: the viewer's own per-viewer limit from a
--   pass, used when above the SKU's; an entry keeps it for its draw).
-- Fair start: `draw` holds each entry ('e' SEP viewer SEP rid → JSON with the claim code it
--   gets if it wins, and once drawn its `reason` or `granted`), the entries per viewer
--   ('n' SEP sku SEP at SEP viewer) and the draws held ('d' SEP sku SEP at); `draws` the
--   draws not yet held (member sku SEP at, score at); `entrants` their entries (member
--   sku SEP at SEP viewer SEP rid, score the ticket: ZRANGE gives the draw's order, by
--   ticket then viewer then rid). Before phase 1, every draw of the batch's SKUs that is
--   due at the batch's latest hub_now is held: its entries in that order are granted as
--   ordinary claims (dated at the draw's time) until stock or the limit refuses them.
-- The rules are dropwire-core's (`dropwire_core::claim`): each placeholder below (a dollar
--   sign and a name in braces) is replaced by the core's constant of that name when the store
--   connects (`rules.rs`).
-- Returns {'X'} when the drop does not exist, else 2n values, per claim one of
--   'G', claim JSON        granted now, or earlier to the same (viewer, rid)
--   'R', reason            refused now, or earlier to the same (viewer, rid)
--   'C', ''                the code is taken: nothing written, ask again with another code
--   'E', draw_at           entered in the draw at draw_at (now, or earlier to the same rid)
-- followed by code, hold_until_ms for each claim a draw held in this call granted (for the
-- code index and the index of due holds).
local conf, stock, granted, per, claims, order, rids, refused, scores, holds, events, log,
  members, draw, draws, entrants = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
  KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14], KEYS[15],
  KEYS[16]
local drop, n = ARGV[1], tonumber(ARGV[2])
local SEP = '\0'
local REFUSED_PER_VIEWER = ${REFUSED_RIDS_KEPT}
local FIRST_POINTS, POINTS_PER_RANK, FEWEST_POINTS =
  ${FIRST_CLAIM_POINTS}, ${POINTS_PER_RANK}, ${FEWEST_CLAIM_POINTS}
local EVENTS_KEPT = ${EVENTS_KEPT}

local W = 12
if not n or #ARGV ~= 2 + W * n then
  return redis.error_reply('ERR claim.lua: expected 2 + 12n arguments')
end
for i = 0, n - 1 do
  local now = ARGV[3 + W * i + 4]
  if now ~= '' and not tonumber(now) then
    return redis.error_reply('ERR claim.lua: now_ms is not a number')
  end
  local at, ticket, hub_now = ARGV[3 + W * i + 8], ARGV[3 + W * i + 9], ARGV[3 + W * i + 10]
  if (at ~= '' and not tonumber(at)) or (ticket ~= '' and not string.match(ticket, '^%d+$'))
    or not tonumber(hub_now) then
    return redis.error_reply('ERR claim.lua: draw_at, ticket or hub_now is not a number')
  end
  local raised = ARGV[3 + W * i + 11]
  if raised ~= '' and not tonumber(raised) then
    return redis.error_reply('ERR claim.lua: the raised limit is not a number')
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

-- Writes a granted claim (a table) and returns its JSON.
local function write_grant(c)
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
  return json
end

-- Fair start: hold the draws of the batch's SKUs that are due at its latest hub time.
local drawn_codes = {}
local function hold_draw(sku, at)
  local prefix = sku .. SEP .. at .. SEP
  local lim = tonumber(redis.call('HGET', conf, 'limit:' .. sku) or '0')
  local left = tonumber(redis.call('HGET', stock, sku) or '0')
  local rank = tonumber(redis.call('HGET', granted, sku) or '0')
  for _, m in ipairs(redis.call('ZRANGE', entrants, 0, -1)) do
    if string.sub(m, 1, #prefix) == prefix then
      local field = 'e' .. SEP .. string.sub(m, #prefix + 1)
      local raw = redis.call('HGET', draw, field)
      if raw then
        local e = cjson.decode(raw)
        local have = tonumber(redis.call('HGET', per, sku .. SEP .. e.viewer) or '0')
        if have >= math.max(lim, e.lim or 0) then
          e.reason = 'limit_reached'
        elseif left <= 0 then
          e.reason = 'sold_out'
        else
          local claim = {
            code = e.code, drop_id = drop, sku = sku, viewer_id = e.viewer, handle = e.handle,
            rid = e.rid, state = 'held', created_ms = at, hold_until_ms = at + hold_s * 1000,
            rank = rank, points = math.max(FEWEST_POINTS, FIRST_POINTS - POINTS_PER_RANK * rank),
          }
          write_grant(claim)
          table.insert(drawn_codes, claim.code)
          table.insert(drawn_codes, tostring(claim.hold_until_ms))
          left = left - 1
          rank = rank + 1
          e.granted = true
        end
        redis.call('HSET', draw, field, cjson.encode(e))
      end
      redis.call('ZREM', entrants, m)
    end
  end
  redis.call('HSET', draw, 'd' .. SEP .. sku .. SEP .. at, '1')
  redis.call('ZREM', draws, sku .. SEP .. at)
end
local latest = {}
for i = 0, n - 1 do
  local sku, hub_now = ARGV[3 + W * i], tonumber(ARGV[3 + W * i + 10])
  if not latest[sku] or hub_now > latest[sku] then latest[sku] = hub_now end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', draws, '-inf', '+inf')) do
  local sku, at = string.match(m, '^(.*)%z(%d+)$')
  if sku and latest[sku] and tonumber(at) <= latest[sku] then
    hold_draw(sku, tonumber(at))
  end
end
local function is_drawn(sku, at)
  return redis.call('HEXISTS', draw, 'd' .. SEP .. sku .. SEP .. at) == 1
end

-- Phase 1: decide. Counters start from Redis and move as this batch grants.
local left, limit, have, ranks = {}, {}, {}, {}
local refusals = {}   -- viewer -> list of {rid, reason}, as stored (and then extended)
local decided = {}    -- viewer SEP rid -> index of the claim in this batch that decided it
local codes = {}      -- codes granted in this batch
local out = {}        -- per claim: {kind, payload, extra}
local entries = {}    -- sku SEP at SEP viewer -> entries so far
-- The SKU's per-viewer limit for a viewer whose passes raise it to `raised` (never lower).
local function limit_of(sku, raised)
  if limit[sku] == nil then
    limit[sku] = tonumber(redis.call('HGET', conf, 'limit:' .. sku)) or false
    left[sku] = tonumber(redis.call('HGET', stock, sku) or '0')
    ranks[sku] = tonumber(redis.call('HGET', granted, sku) or '0')
  end
  if not limit[sku] then return false end
  return math.max(limit[sku], raised or 0)
end
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
  local draw_at, ticket, hub_now = tonumber(ARGV[b + 8]), ARGV[b + 9], tonumber(ARGV[b + 10])
  local raised = tonumber(ARGV[b + 11])
  local own_limit = limit_of(sku, raised)
  local rid_key = viewer .. SEP .. rid
  local d
  if decided[rid_key] then
    d = {'same', decided[rid_key]}
  else
    local prev = redis.call('HGET', rids, rid_key)
    local entered = not prev and redis.call('HGET', draw, 'e' .. SEP .. rid_key)
    if prev then
      d = {'G', redis.call('HGET', claims, prev)}
    elseif entered then
      -- Entered in a draw: its answer once held (a due draw was held above).
      local e = cjson.decode(entered)
      if e.reason then
        d = {'R', e.reason}
      else
        d = {'E', tostring(e.at)}
      end
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
    if have[pv] == nil then
      have[pv] = tonumber(redis.call('HGET', per, pv) or '0')
    end
    local reason
    local enter = draw_at and hub_now < draw_at and not is_drawn(sku, draw_at)
    local nk = enter and (sku .. SEP .. draw_at .. SEP .. viewer)
    if enter and entries[nk] == nil then
      entries[nk] = tonumber(redis.call('HGET', draw, 'n' .. SEP .. nk) or '0')
    end
    if closed then
      reason = 'closed'
    elseif not limit[sku] then
      reason = 'not_open'
    elseif have[pv] + (enter and entries[nk] or 0) >= own_limit then
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
    elseif enter then
      entries[nk] = entries[nk] + 1
      codes[code] = true
      local e = {sku = sku, at = draw_at, viewer = viewer, handle = handle, rid = rid,
        code = code, ticket = ticket, lim = own_limit}
      d = {'E', tostring(draw_at), 'new', entry = e, member = sku .. SEP .. draw_at .. SEP .. rid_key,
        nk = nk}
      decided[rid_key] = i
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
    d[2] = write_grant(d[2])
    d.written = true
  elseif d[3] == 'new' and d[1] == 'E' and not d.written then
    local e = d.entry
    redis.call('HSET', draw, 'e' .. SEP .. e.viewer .. SEP .. e.rid, cjson.encode(e))
    redis.call('HINCRBY', draw, 'n' .. SEP .. d.nk, 1)
    redis.call('ZADD', entrants, e.ticket, d.member)
    redis.call('ZADD', draws, e.at, e.sku .. SEP .. e.at)
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
for _, v in ipairs(drawn_codes) do table.insert(reply, v) end
return reply
