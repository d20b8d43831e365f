"""Lua scripts: each runs atomically in Redis, so a replace, a trim and an exactly-once check
can never be observed half-done, even with two workers or a crash between commands."""

from __future__ import annotations

# KEYS: candle keys. ARGV: score, member, maxlen, ttl_s (0 = none).
# Returns 1 if the stored member changed (new bar or different values), 0 if identical.
STORE = """
local score, member, maxlen, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local changed = 0
for i = 1, #KEYS do
  local k = KEYS[i]
  local old = redis.call('ZRANGEBYSCORE', k, score, score)
  if #old ~= 1 or old[1] ~= member then
    changed = 1
    redis.call('ZREMRANGEBYSCORE', k, score, score)
    redis.call('ZADD', k, score, member)
    if redis.call('ZCARD', k) > maxlen then
      redis.call('ZREMRANGEBYRANK', k, 0, -(maxlen + 1))
    end
  end
  if ttl > 0 then redis.call('EXPIRE', k, ttl) end
end
return changed
"""

# KEYS: marker. ARGV: open time. Moves the marker forward only; returns the marker after.
ADVANCE_MARKER = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return tonumber(ARGV[1])
end
return tonumber(cur)
"""

# The whole candle close in one step (requirements DATA-01/05, VIS-01):
# KEYS: 1 marker, 2 indicator, 3 alert state, 4 alerts stream, 5.. candle keys
# ARGV: 1 score, 2 member, 3 maxlen, 4 ttl_s, 5 close channel, 6 close event JSON,
#       7 indicator JSON ('' = none), 8 alert-state field count n, 9.. n field/value pairs,
#       then alerts channel, stream maxlen, alert count m, m alert JSONs.
# Writes the candle (replace), then publishes only if the open time is newer than the marker.
# Returns 1 = published, 0 = identical re-delivery, 2 = correction of an already-published bar.
CLOSE = """
local score, member, maxlen, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local changed = 0
for i = 5, #KEYS do
  local k = KEYS[i]
  local old = redis.call('ZRANGEBYSCORE', k, score, score)
  if #old ~= 1 or old[1] ~= member then
    changed = 1
    redis.call('ZREMRANGEBYSCORE', k, score, score)
    redis.call('ZADD', k, score, member)
    if redis.call('ZCARD', k) > maxlen then
      redis.call('ZREMRANGEBYRANK', k, 0, -(maxlen + 1))
    end
  end
  if ttl > 0 then redis.call('EXPIRE', k, ttl) end
end
local marker = redis.call('GET', KEYS[1])
if marker and tonumber(marker) >= tonumber(score) then
  if changed == 1 then return 2 end
  return 0
end
redis.call('SET', KEYS[1], score)
redis.call('PUBLISH', ARGV[5], ARGV[6])
if ARGV[7] ~= '' then redis.call('SET', KEYS[2], ARGV[7]) end
local n = tonumber(ARGV[8])
local i = 9
if n > 0 then
  local fields = {}
  for j = 0, 2 * n - 1 do fields[#fields + 1] = ARGV[i + j] end
  redis.call('HSET', KEYS[3], unpack(fields))
end
i = i + 2 * n
local channel, stream_max, m = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
for j = 1, m do
  local alert = ARGV[i + 2 + j]
  redis.call('PUBLISH', channel, alert)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', stream_max, '*', 'json', alert)
end
return 1
"""

# CLOSE for a whole batch in one call (fewer, larger commands: packing arguments, not Redis,
# was the cost). Same per-close semantics as CLOSE, in batch order.
# KEYS: 1 alerts stream, then per close: marker, indicator, alert state, its n candle keys.
# ARGV: 1 alerts channel, 2 stream maxlen, 3 candle maxlen, then one JSON array per close:
#   [n candle keys, score (string), member, ttl_s, close channel, close event, indicator ('' = none),
#    [alert-state field, value, ...], [alert JSON, ...]]
# Returns one code per close: 1 published, 0 identical re-delivery, 2 correction.
CLOSE_BATCH = """
local channel, stream_max, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
local k = 2
for a = 4, #ARGV do
  local s = cjson.decode(ARGV[a])
  local nck, score, member, ttl = s[1], s[2], s[3], s[4]
  local marker_key, ind_key, state_key = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local changed = 0
  for i = k + 3, k + 2 + nck do
    local key = KEYS[i]
    local old = redis.call('ZRANGEBYSCORE', key, score, score)
    if #old ~= 1 or old[1] ~= member then
      changed = 1
      redis.call('ZREMRANGEBYSCORE', key, score, score)
      redis.call('ZADD', key, score, member)
      if redis.call('ZCARD', key) > maxlen then
        redis.call('ZREMRANGEBYRANK', key, 0, -(maxlen + 1))
      end
    end
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  end
  k = k + 3 + nck
  local marker = redis.call('GET', marker_key)
  if marker and tonumber(marker) >= tonumber(score) then
    out[#out + 1] = changed * 2
  else
    redis.call('SET', marker_key, score)
    redis.call('PUBLISH', s[5], s[6])
    if s[7] ~= '' then redis.call('SET', ind_key, s[7]) end
    if #s[8] > 0 then redis.call('HSET', state_key, unpack(s[8])) end
    for _, alert in ipairs(s[9]) do
      redis.call('PUBLISH', channel, alert)
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', stream_max, '*', 'json', alert)
    end
    out[#out + 1] = 1
  end
end
return out
"""
