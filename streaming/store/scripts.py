"""Lua scripts: each runs atomically in Redis, so a replace, a trim and an exactly-once check
can never be observed half-done, even with two workers or a crash between commands."""

from __future__ import annotations

# One candle key's bar at `score` made `member` unless it already is: a bar of another value at
# that open time is replaced, the key trimmed to its newest -(trim_to + 1) bars, its TTL renewed
# (ttl 0 = none). Returns 1 if the stored member changed, 0 if identical. Shared by STORE and by
# CLOSE_BATCH's path for a bar that is not newer than the marker.
_REPLACE = """
local function replace(key, score, member, trim_to, ttl)
  local changed = 0
  local old = redis.call('ZRANGEBYSCORE', key, score, score)
  if #old ~= 1 or old[1] ~= member then
    changed = 1
    if #old > 0 then redis.call('ZREMRANGEBYSCORE', key, score, score) end
    redis.call('ZADD', key, score, member)
    redis.call('ZREMRANGEBYRANK', key, 0, trim_to)
  end
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  return changed
end
"""

# KEYS: candle keys. ARGV: score, member, maxlen, ttl_s (0 = none).
# Returns 1 if the stored member changed (new bar or different values), 0 if identical.
STORE = _REPLACE + """
local score, member, trim_to, ttl = ARGV[1], ARGV[2], -(tonumber(ARGV[3]) + 1), tonumber(ARGV[4])
local changed = 0
for i = 1, #KEYS do
  if replace(KEYS[i], score, member, trim_to, ttl) == 1 then changed = 1 end
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

# The whole candle close, for a batch of closes in one call: store, exactly-once close event,
# indicator value and alerts.
# Per close: the stream's marker is swapped for the close's open time first (SET ... GET: one
# command for the common case, a bar newer than the marker). A newer bar replaces whatever is
# stored at its open time, is published with its indicator value and alerts, and the candle key is
# trimmed (a candle key that cannot take it fails the call with the marker put back, as if this
# close had not begun); an equal or older bar puts the marker back and is only stored, and only if it differs
# from the stored one (a correction; identical = a re-delivery). Every command saved here is paid
# once per close: inside a script a command costs ~1 us of call overhead besides its own work.
# One call per batch: packing many small commands, not Redis, was the cost. The keys of each close travel
# inside its spec: a batch spans many streams, so it needs one Redis (or one shard per worker),
# never a cluster slot per key anyway.
# KEYS: 1 alerts stream. ARGV: 1 alerts channel, 2 stream maxlen, 3 candle maxlen, 4 one
# MessagePack array of the batch's closes, each an array (cmsgpack reads strings by their length:
# half the time cjson took to unescape the JSON documents inside a JSON spec):
#   [[marker, indicator, alert state, candle key...], ttl_s, close channel, score (string), member,
#    close event, indicator JSON ('' = none), [alert-state field, value, ...], [alert JSON, ...]]
# (the first three are constant per stream: the worker encodes them once)
# Returns a string with one digit per close: 1 published, 0 identical re-delivery, 2 correction
# (streaming.pipeline.close_script.CloseOutcome).
CLOSE_BATCH = _REPLACE + """
local channel, stream_max, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local trim_to = -(maxlen + 1)
local specs = cmsgpack.unpack(ARGV[4])
local out = {}
for a = 1, #specs do
  local s = specs[a]
  local ks, ttl, score, member = s[1], s[2], s[4], s[5]
  local prev = redis.call('SET', ks[1], score, 'GET')
  if prev and tonumber(prev) >= tonumber(score) then
    redis.call('SET', ks[1], prev)
    local changed = 0
    for i = 4, #ks do
      if replace(ks[i], score, member, trim_to, ttl) == 1 then changed = 1 end
    end
    out[a] = changed * 2
  else
    for i = 4, #ks do
      local key = ks[i]
      local cleared = redis.pcall('ZREMRANGEBYSCORE', key, score, score)
      if type(cleared) == 'table' and cleared.err then
        -- e.g. a candle key of the wrong type: no marker may run ahead of its stored bar
        if prev then redis.call('SET', ks[1], prev) else redis.call('DEL', ks[1]) end
        return redis.error_reply(cleared.err)
      end
      redis.call('ZADD', key, score, member)
      redis.call('ZREMRANGEBYRANK', key, 0, trim_to)
      if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    end
    redis.call('PUBLISH', s[3], s[6])
    if s[7] ~= '' then redis.call('SET', ks[2], s[7]) end
    if #s[8] > 0 then redis.call('HSET', ks[3], unpack(s[8])) end
    for _, alert in ipairs(s[9]) do
      redis.call('PUBLISH', channel, alert)
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', stream_max, '*', 'json', alert)
    end
    out[a] = 1
  end
end
return table.concat(out)
"""
