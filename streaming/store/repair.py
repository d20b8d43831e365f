"""Repairing stored candles with the exchange's own bars (the integrity audit's writer).

A repair rewrites history the worker has already published: it replaces ZSET members and
nothing else. It never goes through the close script, so it publishes no close event, no
indicator value and no alert, and it leaves the stream's closed marker where it is; the worker's
next close of a newer bar is published exactly once as always.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import redis.asyncio as aioredis

from streaming import keys
from streaming.models import Candle
from streaming.store.codec import check_candle, encode_candle

# KEYS: every key that may hold the stream's candles. ARGV: score, member.
# Only keys that exist are written: a user-scoped key that expired (nobody holds the symbol any
# more) stays gone. Its TTL survives the rewrite (the ZSET may be empty for an instant, and an
# emptied key loses its TTL). No trim: a repair adds at most the holes it fills, and the worker's
# next close trims the ZSET to its own limit.
# Returns 1 if any key changed.
REPAIR = """
local score, member = ARGV[1], ARGV[2]
local changed = 0
for i = 1, #KEYS do
  local k = KEYS[i]
  if redis.call('EXISTS', k) == 1 then
    local old = redis.call('ZRANGEBYSCORE', k, score, score)
    if #old ~= 1 or old[1] ~= member then
      local ttl = redis.call('PTTL', k)
      redis.call('ZREMRANGEBYSCORE', k, score, score)
      redis.call('ZADD', k, score, member)
      if ttl > 0 then redis.call('PEXPIRE', k, ttl) end
      changed = 1
    end
  end
end
return changed
"""


class RepairRefused(ValueError):
    """A bar the store must not take (synthetic: the store keeps only what the exchange said)."""


def stream_keys(exchange_id: int, symbol: str, timeframe: str, user_ids: Iterable[int] = ()) -> list[str]:
    """Every key that may hold one stream's candles: the shared one, then each user's."""
    return [keys.candles(exchange_id, symbol, timeframe)] + [
        keys.user_candles(u, exchange_id, symbol, timeframe) for u in user_ids]


async def repair_candles(redis: aioredis.Redis, exchange_id: int, symbol: str, timeframe: str,
                         candles: Sequence[Candle], user_ids: Iterable[int] = ()) -> list[int]:
    """Store the exchange's `candles` over the stream's stored bars of the same open times, in every
    existing key of the stream (shared and the users'). Returns the open times that changed a key."""
    for c in candles:
        check_candle(c)
        if c.synthetic:
            raise RepairRefused(f"{symbol} {timeframe} {c.timestamp}: a synthetic bar is no exchange data")
    if not candles:
        return []
    ks = stream_keys(exchange_id, symbol, timeframe, user_ids)
    script = redis.register_script(REPAIR)
    pipe = redis.pipeline(transaction=False)
    for c in candles:
        await script(keys=ks, args=[c.timestamp, encode_candle(c)], client=pipe)
    return [c.timestamp for c, changed in zip(candles, await pipe.execute(), strict=True) if int(changed)]
