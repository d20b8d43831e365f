"""Coinbase streams only 5m: 15m/1h/4h/1d are built from closed 5m, reconciled over REST."""

from __future__ import annotations

import json

from streaming import keys
from streaming.adapters.factory import build_adapter
from streaming.aggregation import aggregate
from streaming.models import Candle
from tests.pipeline.helpers import Subscriber, load_candles, make_pipeline, updates
from tests.pipeline.rest_server import RestServer

EX = 1
TFS = ("5m", "15m", "1h", "4h", "1d")
COINBASE_NATIVE = ("5m",)  # Coinbase streams only 5m: the pipeline builds the rest


def stored(client, tf, sym="XRP-ETH") -> list[Candle]:
    return [Candle(**json.loads(m)) for m in client.zrange(keys.candles(EX, sym, tf), 0, -1)]


async def test_aggregated_closes_match_batch_even_with_missing_5m(redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "XRP_ETH-5m_with_gaps.csv")  # 706 bars, 6 buckets missing
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=COINBASE_NATIVE)
    for i in range(0, len(five), 50):
        await p.process(updates(five[i:i + 50], "XRP-ETH", exchange="coinbase"))
    await p.process(updates(five[-100:], "XRP-ETH", exchange="coinbase"))  # duplicates: nothing new
    # a native 1h frame is not a second source: we build 1h ourselves
    await p.process(updates(aggregate(five[:12], "1h"), "XRP-ETH", tf="1h", exchange="coinbase"))
    stats = p.stats()
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert stats["skipped_timeframe_aggregated_here"] == 1
    end = five[-1].timestamp + 300_000
    for tf in TFS[1:]:
        size = {"15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}[tf]
        # every bucket that ended by the last 5m (a later bucket started, or its last 5m closed)
        want = [b for b in aggregate(five, tf) if b.timestamp + size <= end or b.timestamp < five[-1].timestamp - (
            five[-1].timestamp % size)]
        assert stored(redis_client, tf) == want, tf
        events = [d for c, d in sub.messages if c == keys.candle_close_channel(EX, "XRP-ETH", tf)]
        assert [d["timestamp"] for d in events] == [b.timestamp for b in want]
        assert {d["source"] for d in events} == {"aggregate"}
    assert stats["aggregated"] == sum(len(stored(redis_client, tf)) for tf in TFS[1:])


async def test_restart_mid_bucket_and_late_correction_of_a_closed_bucket(redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:600]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])
    fixed = Candle(five[100].timestamp, five[100].open, five[100].high * 1.5, five[100].low, five[100].close, 1e6)

    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=COINBASE_NATIVE)
    await p.process(updates(five[:333], "XRP-ETH", exchange="coinbase"))
    await r.aclose()
    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=COINBASE_NATIVE)
    await p.process(updates(five[330:], "XRP-ETH", exchange="coinbase"))
    await p.process(updates([fixed], "XRP-ETH", exchange="coinbase"))  # exchange corrected an old 5m
    stats = p.stats()
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    truth = [*five[:100], fixed, *five[101:]]
    for tf in ("15m", "1h", "4h"):
        got = stored(redis_client, tf)
        assert got == aggregate(truth, tf)[:len(got)], tf
        events = [d["timestamp"] for c, d in sub.messages if c == keys.candle_close_channel(EX, "XRP-ETH", tf)]
        assert events == [b.timestamp for b in got]  # once each, across the restart and the correction
    assert stats["aggregate_corrections"] >= 3  # the 15m, 1h and 4h bars holding bar 100


async def test_reconciliation_replaces_a_differing_bar_without_a_second_event(redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:48]  # four hours
    end = five[-1].timestamp + 300_000

    def closed(tf: str, size: int) -> list[Candle]:
        return [b for b in aggregate(five, tf) if b.timestamp + size <= end]

    hours = closed("1h", 3_600_000)
    theirs = Candle(hours[1].timestamp, hours[1].open, hours[1].high, hours[1].low, hours[1].close * 1.001,
                    hours[1].volume + 5)
    data = {("XRP-ETH", "1h"): [hours[0], theirs, *hours[2:]], ("XRP-ETH", "15m"): aggregate(five, "15m")}
    now = five[-1].timestamp + 600_000
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

    server = RestServer(data)
    url = await server.start()
    adapter = build_adapter({"id": EX, "name": "coinbase", "ws_url": "ws://127.0.0.1:1/ws", "rest_url": url},
                            env={}, clock_ms=lambda: now)
    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase",
                               timeframes=("5m", "15m", "1h"), native_timeframes=COINBASE_NATIVE,
                               clock_ms=lambda: now)
    from streaming.pipeline import CandlePipeline, PipelineConfig

    p = CandlePipeline(r, EX, "coinbase", symbol_pools=["XRP-ETH"], timeframes=("5m", "15m", "1h"),
                       config=PipelineConfig(reconcile=True, reconcile_delay_s=0, clock_ms=lambda: now),
                       adapter=adapter, native_timeframes=COINBASE_NATIVE)
    try:
        await p.process(updates(five, "XRP-ETH", exchange="coinbase"))
        await p.reconciler.wait()
        stats = p.stats()
    finally:
        await p.close()
        await adapter.aclose()
        await server.stop()
        await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert stats["reconcile_checked"] == len(hours) + len(closed("15m", 900_000)) and stats["reconcile_corrected"] == 1
    assert stored(redis_client, "1h")[1] == theirs
    assert stored(redis_client, "15m") == closed("15m", 900_000)
    hour_events = [d["timestamp"] for c, d in sub.messages if c == keys.candle_close_channel(EX, "XRP-ETH", "1h")]
    assert hour_events == [h.timestamp for h in hours]


async def test_reconciliation_is_on_by_default_when_the_pipeline_has_the_adapter(redis_url):
    import redis.asyncio as aioredis

    from streaming.db.seed import EXCHANGES
    from streaming.pipeline import CandlePipeline, PipelineConfig

    client = aioredis.Redis.from_url(redis_url)
    coinbase = build_adapter(EXCHANGES[0])
    binance = build_adapter(EXCHANGES[1])
    try:
        with_adapter = CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"], adapter=coinbase,
                                      native_timeframes=COINBASE_NATIVE)
        without = CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"],
                                 native_timeframes=COINBASE_NATIVE)
        forced_off = CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"], adapter=coinbase,
                                    native_timeframes=COINBASE_NATIVE, config=PipelineConfig(reconcile=False))
        native = CandlePipeline(client, 2, "binance", symbol_pools=["BTCUSDT"], adapter=binance)
        assert with_adapter.reconciler is not None
        assert without.reconciler is None and forced_off.reconciler is None
        assert native.reconciler is None  # Binance streams every timeframe natively: nothing to reconcile
        for p in (with_adapter, without, forced_off, native):
            await p.close()
    finally:
        await coinbase.aclose()
        await binance.aclose()
        await client.aclose()


async def test_a_stored_bar_is_never_replaced_by_one_built_from_part_of_its_5m(redis_url, redis_client,
                                                                             fixtures_dir):
    five = [c for c in load_candles(fixtures_dir, "XRP_ETH-5m_with_gaps.csv")]
    hours = aggregate(five, "1h")
    hour = next(h for h in hours[1:] if sum(1 for c in five if h.timestamp <= c.timestamp < h.timestamp + 3_600_000)
                == 12)
    inside = [c for c in five if hour.timestamp <= c.timestamp < hour.timestamp + 3_600_000]
    after = [c for c in five if c.timestamp >= hour.timestamp + 3_600_000][:2]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])
    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase", timeframes=("5m", "1h"),
                               native_timeframes=COINBASE_NATIVE)
    # the warm-up stored the exchange's own 1h bar and the 5m bars before the second half of it
    await p.history.install("XRP-ETH", "1h", [h for h in hours if h.timestamp <= hour.timestamp])
    # the live stream then delivers only the second half of that hour (the first half was lost)
    published = await p.process(updates(inside[6:] + after, "XRP-ETH", exchange="coinbase"))
    stats = p.stats()
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert published == len(inside[6:] + after)  # the 5m closes; no 1h close event for the stored hour
    assert [d["timeframe"] for _, d in sub.messages] == ["5m"] * len(inside[6:] + after)
    kept = [c for c in stored(redis_client, "1h") if c.timestamp == hour.timestamp]
    assert kept == [hour]  # the exchange's complete bar, not one built from six of its twelve 5m
    assert stats["aggregate_already_stored"] == 1


async def test_a_bucket_is_not_closed_by_the_clock_while_its_symbol_waits_for_a_rest_fill(redis_url, redis_client,
                                                                                         fixtures_dir):
    five = load_candles(fixtures_dir, "XRP_ETH-5m_with_gaps.csv")
    hours = aggregate(five, "1h")
    hour = next(h for h in hours[1:] if sum(1 for c in five if h.timestamp <= c.timestamp < h.timestamp + 3_600_000)
                == 12)
    inside = [c for c in five if hour.timestamp <= c.timestamp < hour.timestamp + 3_600_000]
    r, p = await make_pipeline(redis_url, ["XRP-ETH"], exchange_id=EX, exchange="coinbase", timeframes=("5m", "1h"),
                               native_timeframes=COINBASE_NATIVE)
    held = {"XRP-ETH"}
    p.waiting = lambda symbol: symbol in held
    try:
        await p.process(updates(inside[:11], "XRP-ETH", exchange="coinbase"))  # the last 5m is behind a fill
        late = hour.timestamp + 3_600_000 + 600_000
        while_held = await p.flush_aggregates(late)
        held.clear()  # the fill is done: the last 5m closes the hour with every one of its bars
        await p.process(updates(inside[11:], "XRP-ETH", exchange="coinbase"))
        after = await p.flush_aggregates(late)
    finally:
        await r.aclose()
    assert while_held == 0 and after == 0
    assert [c for c in stored(redis_client, "1h") if c.timestamp == hour.timestamp] == [hour]
