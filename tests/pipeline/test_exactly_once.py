"""Exactly one close event per (exchange, symbol, timeframe, open time), whatever arrives."""

from __future__ import annotations

import json
import math

import pandas as pd

from streaming import keys
from streaming.indicators.macd_v_batch import macd_v_series
from streaming.models import Candle
from streaming.pipeline import SymbolPool
from tests.pipeline.helpers import Subscriber, frame, load_candles, make_pipeline, updates

EX = 2


def closes(sub: Subscriber, symbol: str = "ETHBTC", tf: str = "5m") -> list[int]:
    ch = keys.candle_close_channel(EX, symbol, tf)
    return [d["timestamp"] for c, d in sub.messages if c == ch]


async def test_duplicates_out_of_order_and_history_publish_once(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:40]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    n1 = await p.process(updates(cs[:20], "ETHBTC"))
    n2 = await p.process(updates(cs[:20], "ETHBTC"))  # every frame again
    # the same bar twice in one batch, an older bar late, then new bars
    n3 = await p.process(updates([cs[20], cs[20], cs[5], cs[21]], "ETHBTC"))
    # a corrected version of an already-published bar: stored, not re-published
    fixed = Candle(cs[21].timestamp, cs[21].open, cs[21].high * 1.01, cs[21].low, cs[21].close, 9.0)
    n4 = await p.process(updates([fixed], "ETHBTC"))
    stats = p.stats()
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert (n1, n2, n3, n4) == (20, 0, 2, 0)
    assert closes(sub) == [c.timestamp for c in cs[:22]]
    assert stats["duplicates"] == 22 and stats["corrections"] == 1
    stored = redis_client.zrangebyscore(keys.candles(EX, "ETHBTC", "5m"), fixed.timestamp, fixed.timestamp)
    assert json.loads(stored[0])["volume"] == 9.0
    assert redis_client.zcard(keys.candles(EX, "ETHBTC", "5m")) == 22
    assert int(redis_client.get(keys.closed_marker(EX, "ETHBTC", "5m"))) == cs[21].timestamp
    event = next(d for c, d in sub.messages if d["timestamp"] == cs[0].timestamp)
    assert event == {"exchange_id": EX, "exchange": "binance", "symbol": "ETHBTC", "timeframe": "5m",
                     "timestamp": cs[0].timestamp, "open": cs[0].open, "high": cs[0].high, "low": cs[0].low,
                     "close": cs[0].close, "volume": cs[0].volume, "source": "websocket"}


async def test_live_close_after_history_of_later_bar_is_silent(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:50]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    await p.history.install("ETHBTC", "5m", cs[:45])  # what warm-up does after its REST fetch
    n_old = await p.process(updates(cs[40:45], "ETHBTC"))  # live frames for bars the history had
    n_new = await p.process(updates(cs[45:], "ETHBTC"))
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert (n_old, n_new) == (0, 5)
    assert closes(sub) == [c.timestamp for c in cs[45:]]  # no historic events from the history


async def test_restart_neither_loses_nor_repeats_and_rebuilds_macd_v(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:700]  # alerts at bars 142 and 680
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX), "channel:alerts:*"])

    r, p1 = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    await p1.process(updates(cs[:400], "ETHBTC"))
    await r.aclose()
    # a new worker: the adapter re-sends the last bars it had (reconnect snapshot), then goes on
    r2, p2 = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    await p2.process(updates(cs[390:], "ETHBTC"))
    restarted = p2.state("ETHBTC", "5m").macd
    await r2.aclose()
    # the uninterrupted run on a fresh exchange id for comparison
    r3, p3 = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), exchange_id=77)
    await p3.process(updates(cs, "ETHBTC"))
    uninterrupted = p3.state("ETHBTC", "5m").macd
    await r3.aclose()
    sub.settle(redis_client)
    sub.close()
    assert closes(sub) == [c.timestamp for c in cs]
    for k, v in uninterrupted.to_dict().items():
        w = restarted.to_dict()[k]
        assert (v is None and w is None) or math.isclose(v, w, rel_tol=1e-12, abs_tol=1e-12), k
    # alerts of both runs agree bar for bar (ids are deterministic per exchange; compare the rest)
    a2 = [(d["timestamp"], d["label"]) for c, d in sub.messages if c == keys.alerts_channel(EX)]
    a77 = [(d["timestamp"], d["label"]) for c, d in sub.messages if c == keys.alerts_channel(77)]
    assert a2 == a77
    assert [label for _, label in a2] == ["level_-150", "level_150"]  # one before, one after the restart
    assert len(a2) == len(set(a2))
    assert redis_client.xlen(keys.ALERTS_STREAM) == len(a2) + len(a77)


async def test_indicator_key_matches_batch_macd_v_through_gaps(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "XRP_ETH-5m_with_gaps.csv")

    r, p = await make_pipeline(redis_url, ["XRPETH"], timeframes=("5m",))
    values = []
    for i in range(0, len(cs), 37):  # several batches, each ending somewhere else
        await p.process(updates(cs[i:i + 37], "XRPETH"))
        values.append(json.loads(await r.get(keys.indicator(EX, "XRPETH", "5m"))))
    await r.aclose()
    from streaming.gaps import fill_gaps

    filled = fill_gaps(cs, "5m")
    assert len(filled) > len(cs)  # the fixture has gaps: synthetic bars went to the indicator
    ref = macd_v_series(frame(filled))
    pos = {c.timestamp: i for i, c in enumerate(filled)}
    assert len(values) > 10
    for v in values:
        row = ref.iloc[pos[v["timestamp"]]]
        for col in ("macd_v", "signal", "histogram"):
            if pd.isna(row[col]):
                assert v[col] is None
            else:
                assert math.isclose(v[col], row[col], rel_tol=1e-9, abs_tol=1e-9), (col, v)
    last = values[-1]
    assert set(last) >= {"timestamp", "macd_v", "signal", "histogram", "fast_ema", "slow_ema", "atr", "stage",
                         "seeded", "gap_ratio"}
    assert last["timestamp"] == cs[-1].timestamp and last["seeded"] is True
    # the store holds only what the exchange sent, never the synthetic fillers
    assert redis_client.zcard(keys.candles(EX, "XRPETH", "5m")) == len(cs)


async def test_indicator_null_reason_before_seeded(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:10]

    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    await p.process(updates(cs, "ETHBTC"))
    await r.aclose()
    v = json.loads(redis_client.get(keys.indicator(EX, "ETHBTC", "5m")))
    assert v["macd_v"] is None and v["reason"] and v["seeded"] is False


async def test_user_pool_writes_user_keys_and_bad_input_is_skipped(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:5]
    bad = Candle(cs[4].timestamp + 300_000, float("nan"), 1, 1, 1, 1)
    misaligned = Candle(cs[4].timestamp + 301_000, 1, 1, 1, 1, 1)

    r, p = await make_pipeline(redis_url, {"FOOBTC": SymbolPool("user", (7, 9))}, timeframes=("5m",))
    n = await p.process(updates(cs, "FOOBTC") + updates([bad, misaligned], "FOOBTC")
                        + updates(cs, "NOPE") + updates(cs, "FOOBTC", tf="1h"))
    stats = p.stats()
    await r.aclose()
    assert n == 5
    assert stats["skipped_bad_candle"] == 1 and stats["skipped_misaligned"] == 1
    assert stats["skipped_unknown_symbol"] == 5 and stats["skipped_unknown_timeframe"] == 5
    for u in (7, 9):
        key = keys.user_candles(u, EX, "FOOBTC", "5m")
        assert redis_client.zcard(key) == 5 and redis_client.ttl(key) > 0
    assert not redis_client.exists(keys.candles(EX, "FOOBTC", "5m"))


async def test_run_loop_consumes_the_listener_and_survives_garbage(redis_url, redis_client, fixtures_dir):
    import asyncio

    from streaming.adapters.base import ConnectionState
    from streaming.models import CandleUpdate

    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:30]

    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",))
    task = asyncio.create_task(p.run())
    p.listener.on_state(ConnectionState.CONNECTED, None)
    p.listener.on_rejected(["BAD:SYM"], "keyspace")
    p.listener.on_candle("not an update")  # type: ignore[arg-type]
    for c in cs:
        p.listener.on_candle(CandleUpdate("binance", "ETHBTC", "5m", c, True))
    while p.stats().get("published", 0) < len(cs):
        await asyncio.sleep(0.01)
    await p.close()
    await asyncio.wait_for(task, 5)
    await r.aclose()
    stats = p.stats()
    assert stats["published"] == 30 and stats["listener_invalid"] == 1
    assert stats["rejected"] == {"BAD:SYM": "keyspace"}
    assert redis_client.zcard(keys.candles(EX, "ETHBTC", "5m")) == 30
