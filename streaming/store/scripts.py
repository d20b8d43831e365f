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
# The alert state is written as the fields that changed; HSET counting a new field means the hash
# was incomplete (deleted meanwhile), and the whole state, sent beside them, is written instead.
# KEYS: 1 alerts stream. ARGV: 1 alerts channel, 2 stream maxlen, 3 candle maxlen, 4 one
# MessagePack array of the batch's closes (streaming.pipeline.staging), each one flat array,
# because each nested table the decoder builds costs time (cmsgpack reads strings by their length:
# half the time cjson took to unescape the JSON documents inside a JSON spec):
#   k, marker key, indicator key, alert-state key, candle key 1..k, ttl_s, close channel,
#   score (string), member, close event, indicator JSON ('' = none), n, alert-state field and
#   value x n/2, m, alert JSON x m, the whole alert state ('' = none: a JSON array of its fields
#   and values, decoded only when needed)
# (the items up to the close channel are constant per stream: the worker encodes them once)
# Returns a string with one digit per close: 1 published, 0 identical re-delivery, 2 correction
# (streaming.pipeline.close_script.CloseOutcome).
CLOSE_BATCH = _REPLACE + """
local channel, stream_max, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3])
local trim_to = -(maxlen + 1)
local specs = cmsgpack.unpack(ARGV[4])
local out = {}
for a = 1, #specs do
  local s = specs[a]
  local last_key = s[1] + 4
  local marker, ttl, score, member = s[2], s[last_key + 1], s[last_key + 3], s[last_key + 4]
  local prev = redis.call('SET', marker, score, 'GET')
  if prev and tonumber(prev) >= tonumber(score) then
    redis.call('SET', marker, prev)
    local changed = 0
    for i = 5, last_key do
      if replace(s[i], score, member, trim_to, ttl) == 1 then changed = 1 end
    end
    out[a] = changed * 2
  else
    for i = 5, last_key do
      local key = s[i]
      local cleared = redis.pcall('ZREMRANGEBYSCORE', key, score, score)
      if type(cleared) == 'table' and cleared.err then
        -- e.g. a candle key of the wrong type: no marker may run ahead of its stored bar
        if prev then redis.call('SET', marker, prev) else redis.call('DEL', marker) end
        return redis.error_reply(cleared.err)
      end
      redis.call('ZADD', key, score, member)
      redis.call('ZREMRANGEBYRANK', key, 0, trim_to)
      if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    end
    local p = last_key + 5
    redis.call('PUBLISH', s[last_key + 2], s[p])
    if s[p + 1] ~= '' then redis.call('SET', s[3], s[p + 1]) end
    local n = s[p + 2]
    if n > 0 and redis.call('HSET', s[4], unpack(s, p + 3, p + 2 + n)) > 0 and s[#s] ~= '' then
      redis.call('HSET', s[4], unpack(cjson.decode(s[#s])))
    end
    local q = p + 3 + n
    for i = q + 1, q + s[q] do
      redis.call('PUBLISH', channel, s[i])
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', stream_max, '*', 'json', s[i])
    end
    out[a] = 1
  end
end
return table.concat(out)
"""
