"""Alerts end to end: crafted trends cross the levels; a subscriber and the stream get exactly them."""

from __future__ import annotations

import json

import pandas as pd

from streaming import keys
from streaming.alerts.rules import AlertState, evaluate
from streaming.indicators.macd_v import MacdV
from streaming.models import Candle
from streaming.store.alert_state import alert_state_fields, decode_alert_state
from tests.pipeline.helpers import Subscriber, make_pipeline, trend_candles, updates

EX = 3


def up_then_down() -> list[Candle]:
    # a calm start gives the indicator a baseline below the levels, then the docs' trends
    calm = [Candle(c.timestamp, p, p * 1.01, p * 0.99, p, 1.0)
            for c, p in zip(trend_candles(1.0, 40), [100.0 + (i % 2) * 0.3 for i in range(40)], strict=True)]
    up = trend_candles(1.005, 60, start_price=100.0, start_ms=calm[-1].timestamp + 300_000)
    down = trend_candles(0.995, 80, start_price=up[-1].close, start_ms=up[-1].timestamp + 300_000)
    return calm + up + down


def expected_alerts(cs: list[Candle], tf_ms: int = 300_000) -> list[tuple[int, str]]:
    """The oracle: the pure rules over the incremental indicator, bar by bar."""
    m, st, out = MacdV(), AlertState(), []
    for c in cs:
        v = m.update(c.high, c.low, c.close)
        st, sigs = evaluate(st, v, c.timestamp + tf_ms)
        out += [(c.timestamp, s.label) for s in sigs]
    return out


async def test_trend_alerts_reach_subscriber_and_stream_exactly(redis_url, redis_client):
    cs = up_then_down()
    want = expected_alerts(cs)
    labels = [label for _, label in want]
    assert "level_150" in labels and "reversal_overbought" in labels and "level_-150" in labels
    sub = Subscriber(redis_url, [keys.alerts_channel(EX)])

    r, p = await make_pipeline(redis_url, ["SOLUSDT"], exchange_id=EX, exchange="binance_us",
                               timeframes=("5m",))
    for i in range(0, len(cs), 7):
        await p.process(updates(cs[i:i + 7], "SOLUSDT", exchange="binance_us"))
    await p.process(updates(cs, "SOLUSDT", exchange="binance_us"))  # replay: nothing fires again
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    got = [d for _, d in sub.messages]
    assert [(d["timestamp"], d["label"]) for d in got] == want
    first = got[0]
    bar = next(c for c in cs if c.timestamp == first["timestamp"])
    assert first["id"] == f"{EX}:SOLUSDT:5m:{first['timestamp']}:{first['label']}"
    assert first["source_exchange_id"] == EX and first["source_exchange"] == "binance_us"
    assert first["symbol"] == "SOLUSDT" and first["timeframe"] == "5m" and first["price"] == bar.close
    assert first["type"] in ("level", "reversal") and first["triggered_at"].endswith("+00:00")
    assert first["macd_v"] > 150 and first["signal"] is not None
    stream = redis_client.xrange(keys.ALERTS_STREAM)
    assert [json.loads(f["json"]) for _, f in stream] == got
    state = redis_client.hgetall(keys.alert_state(EX, "SOLUSDT", "5m"))
    assert decode_alert_state(state).prev_macd_v is not None


async def test_the_stored_alert_state_is_whole_after_every_close_even_if_deleted_meanwhile(redis_url, redis_client):
    cs = up_then_down()
    m, st, states = MacdV(), AlertState(), []
    for c in cs:
        st, _ = evaluate(st, m.update(c.high, c.low, c.close), c.timestamp + 300_000)
        states.append(st)
    # deleted once without MACD-V yet (the state stays fresh: nothing is written), once while a
    # cooldown runs (the next close writes it whole, not only what it changed)
    cooling = next(i for i, st in enumerate(states) if st.cooldowns) + 1
    deleted_before = {5, cooling}
    key = keys.alert_state(EX, "SOLUSDT", "5m")
    r, p = await make_pipeline(redis_url, ["SOLUSDT"], exchange_id=EX, timeframes=("5m",))
    for i, u in enumerate(updates(cs, "SOLUSDT")):
        if i in deleted_before:
            redis_client.delete(key)
        await p.process([u])
        stored = redis_client.hgetall(key)
        # absent only while nothing changed since it was deleted (absent reads as the fresh state)
        assert decode_alert_state(stored) == states[i], i
        assert stored in ({}, alert_state_fields(states[i])), i
        if i == cooling:
            assert stored == alert_state_fields(states[i])
    await r.aclose()


async def test_cooldown_and_latches_survive_a_restart(redis_url, redis_client):
    cs = up_then_down()
    want = expected_alerts(cs)
    cut = 70  # after the overbought excursion began: state must come back from Redis
    sub = Subscriber(redis_url, [keys.alerts_channel(EX)])

    r, p = await make_pipeline(redis_url, ["SOLUSDT"], exchange_id=EX, timeframes=("5m",))
    await p.process(updates(cs[:cut], "SOLUSDT"))
    await r.aclose()
    r, p = await make_pipeline(redis_url, ["SOLUSDT"], exchange_id=EX, timeframes=("5m",))
    await p.process(updates(cs[cut - 3:], "SOLUSDT"))
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert [(d["timestamp"], d["label"]) for _, d in sub.messages] == want


async def test_alerts_fire_once_per_close_not_on_forming_candles(redis_url, redis_client):
    cs = up_then_down()

    from streaming.models import CandleUpdate

    r, p = await make_pipeline(redis_url, ["SOLUSDT"], exchange_id=EX, timeframes=("5m",))
    for c in cs:
        p.listener.on_candle(CandleUpdate("binance", "SOLUSDT", "5m", c, False))  # forming: ignored
    await p.drain()
    forming_only = redis_client.xlen(keys.ALERTS_STREAM)
    for u in updates(cs, "SOLUSDT"):
        p.listener.on_candle(u)
    await p.drain()
    await r.aclose()
    forming_only, stats = forming_only, p.stats()
    assert forming_only == 0 and stats["forming_seen"] == len(cs)
    assert redis_client.xlen(keys.ALERTS_STREAM) == len(expected_alerts(cs))


async def test_ohlcv_fixture_alerts_match_oracle(redis_url, redis_client, fixtures_dir):
    df = pd.read_csv(fixtures_dir / "ohlcv" / "XRP_USDT-5m.csv")
    cs = [Candle(int(t), o, h, lo, c, v) for t, o, h, lo, c, v in
          zip(df.timestamp_ms, df.open, df.high, df.low, df.close, df.volume, strict=True)]
    want = expected_alerts(cs)
    assert want  # real data does reach the levels

    r, p = await make_pipeline(redis_url, ["XRPUSDT"], exchange_id=EX, timeframes=("5m",))
    await p.process(updates(cs, "XRPUSDT"))
    await r.aclose()
    got = [json.loads(f["json"]) for _, f in redis_client.xrange(keys.ALERTS_STREAM)]
    assert [(d["timestamp"], d["label"]) for d in got] == want
