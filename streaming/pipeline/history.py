"""Installing one stream's REST history (warm-up, warmup.py) as stored, already published
history: the candles are written, the marker moves to the newest (so none of them is ever
published), MACD-V is rebuilt from the store and its newest value becomes the alert baseline."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, cast

import redis.asyncio as aioredis

from streaming import keys
from streaming.alerts.rules import AlertState
from streaming.models import Candle
from streaming.pipeline.config import SymbolPool
from streaming.pipeline.events import indicator_json
from streaming.pipeline.state import StreamState, rebuild
from streaming.store.alert_state import alert_state_fields, decode_alert_state
from streaming.store.candles import CandleStore


async def install_history(redis: aioredis.Redis, store: CandleStore, exchange_id: int, symbol: str, tf: str,
                           candles: list[Candle], pool: SymbolPool, max_candles: int) -> tuple[int, StreamState]:
    """Write `candles` (oldest first, closed) of one stream; returns how many changed the store
    and the stream's state rebuilt from what is stored."""
    ex = exchange_id
    written = await store.write_many(ex, symbol, tf, candles, pool.user_ids)
    await store.advance_marker(ex, symbol, tf, candles[-1].timestamp)
    stored = await store.read(ex, symbol, tf, max_candles, pool.user_ids)
    try:
        raw_state = redis.hgetall(keys.alert_state(ex, symbol, tf))
        old = decode_alert_state(await cast("Awaitable[dict[Any, Any]]", raw_state))
    except ValueError:
        old = AlertState()
    state = rebuild(stored, tf)
    value = state.macd.value()
    # the newest value becomes the baseline: the next live close compares against it
    state.alerts = AlertState(value.macd_v, old.cooldowns, old.oversold_latched, old.overbought_latched)
    pipe = redis.pipeline(transaction=False)
    if state.last is not None:
        pipe.set(keys.indicator(ex, symbol, tf), indicator_json(state.last.timestamp, value))
    fields: dict[Any, Any] = alert_state_fields(state.alerts)
    pipe.hset(keys.alert_state(ex, symbol, tf), mapping=fields)
    await pipe.execute()
    return written, state
