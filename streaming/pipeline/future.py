"""A stream's close marker or stored bars from the future, found when the stream is loaded.

Before exchange timestamps were bounded, one bar dated 2099 could move `closed:{id}:{symbol}:{tf}`
to 2099: every later real close then counts as older and is never published, also after a
restart. A closed bar opened before now by the trusted clock (the platform clock, simulated in
offline mode); a marker beyond that is moved back to the newest stored bar that is not in the
future (or removed), and stored bars from the future are dropped. Both are counted and logged.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from streaming import keys
from streaming.redis_text import as_str
from streaming.store.candles import candle_keys

log = logging.getLogger(__name__)


class FutureRepair(NamedTuple):
    marker: bool  # the marker was in the future and was moved back
    bars: int  # stored bars from the future that were dropped


def marker_in_future(raw: Any, now_ms: int) -> bool:
    """Whether a marker value read from Redis names a bar that has not even opened yet."""
    if raw is None:
        return False
    text = as_str(raw)
    return text.isdigit() and int(text) > now_ms


async def repair_future(redis: Any, exchange_id: int, symbol: str, tf: str, user_ids: Any,
                        now_ms: int) -> FutureRepair:
    """Drop the stream's stored bars opening after `now_ms` and move a marker beyond it back to the
    newest stored bar left (none: the marker goes)."""
    marker_key = keys.closed_marker(exchange_id, symbol, tf)
    ks = candle_keys(exchange_id, symbol, tf, user_ids)
    pipe = redis.pipeline(transaction=False)
    pipe.get(marker_key)
    for k in ks:
        pipe.zremrangebyscore(k, f"({now_ms}", "+inf")
    pipe.zrange(ks[0], -1, -1, withscores=True)
    res = await pipe.execute()
    marker_raw, removed, newest = res[0], sum(int(n) for n in res[1:-1]), res[-1]
    moved = marker_in_future(marker_raw, now_ms)
    if moved:
        if newest:
            await redis.set(marker_key, str(int(newest[0][1])))
        else:
            await redis.delete(marker_key)
    if moved or removed:
        log.warning("%s %s (exchange %d): %s%s from the future repaired (now %d ms by the trusted clock)",
                    symbol, tf, exchange_id, f"close marker at {as_str(marker_raw)[:20]} ms" if moved else "",
                    f"{' and ' if moved else ''}{removed} stored bar(s)" if removed else "", now_ms)
    return FutureRepair(moved, int(removed))
