-- Creates a drop. KEYS: rec, conf, stock.
-- ARGV: record JSON, hold_s, then (sku, stock, per-viewer limit) per SKU.
-- Returns 1, or 0 when a drop with this id exists.
if (#ARGV - 2) % 3 ~= 0 or not tonumber(ARGV[2]) then
  return redis.error_reply('ERR create.lua: expected record, hold_s, then triples')
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'hold_s', ARGV[2])
for i = 3, #ARGV, 3 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], 'limit:' .. ARGV[i], ARGV[i + 2])
end
return 1
