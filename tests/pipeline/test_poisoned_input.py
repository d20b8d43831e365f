"""Candles that cannot exist, a failed batch and a close that fails to stage, next to good streams:
nothing invalid is stored or published, and the good streams' closes, MACD-V and aggregation are
exactly those of a run that never saw the poison."""

from __future__ import annotations

import json

import pytest
from redis.exceptions import ResponseError

from streaming import keys
from streaming.candle_checks import candle_defect
from streaming.models import Candle
from streaming.store.codec import decode_candle
from tests.pipeline.helpers import Subscriber, load_candles, make_pipeline, updates

EX, REF = 5, 6  # the poisoned run and a reference run that never sees the poison
TFS = ("5m", "15m", "1h", "4h", "1d")
NATIVE = ("5m",)  # aggregated like Coinbase: the poison must not reach the aggregator either
GOOD = ("GOOD-USD", "ALSO-USD")
BAD = "BAD-USD"


def poison(c: Candle) -> list[tuple[Candle, str]]:
    """Versions of bar `c` no exchange could send, each with the defect the boundary must name."""
    t = c.timestamp
    return [
        (Candle(t, c.high * 2, c.high, c.low, c.close, c.volume), "inconsistent"),  # open above high
        (Candle(t, c.open, c.high, c.low, c.low / 2, c.volume), "inconsistent"),  # close below low
        (Candle(t, c.open, c.high, c.low, c.close, 1e308), "out_of_range"),
        (Candle(t, 1e300, 1e300, 1e300, 1e300, c.volume), "out_of_range"),
        (Candle(t, c.open, c.high, c.low, c.close, -1.0), "out_of_range"),
        (Candle(t, c.open, c.high, c.low, float("nan"), c.volume), "non_finite"),
        (Candle(t, c.open, c.high, c.low, c.close, float("inf")), "non_finite"),
    ]


def stored(client, ex: int, symbol: str, tf: str) -> list[Candle]:
    return [decode_candle(m) for m in client.zrange(keys.candles(ex, symbol, tf), 0, -1)]


def events(sub: Subscriber, ex: int, symbol: str, tf: str) -> list[dict]:
    ch = keys.candle_close_channel(ex, symbol, tf)
    return [d for c, d in sub.messages if c == ch]


def assert_same_as_reference(p, ref, client, sub, symbols) -> None:
    for sym in symbols:
        mine_agg, ref_agg = p.states.peek_aggregator(sym), ref.states.peek_aggregator(sym)
        assert mine_agg is not None and ref_agg is not None, sym
        # the same open buckets (an aggregator rebuilt from the store knows fewer closed ones)
        assert all(mine_agg.forming(tf) == ref_agg.forming(tf) for tf in TFS[1:]), sym
        for tf in TFS:
            mine, theirs = p.state(sym, tf), ref.state(sym, tf)
            assert mine is not None and theirs is not None, (sym, tf)
            assert mine.macd.to_dict() == theirs.macd.to_dict() and mine.last == theirs.last, (sym, tf)
            assert mine.alerts == theirs.alerts, (sym, tf)
            assert stored(client, EX, sym, tf) == stored(client, REF, sym, tf), (sym, tf)
            strip = [{k: v for k, v in d.items() if k != "exchange_id"} for d in events(sub, EX, sym, tf)]
            assert strip == [{k: v for k, v in d.items() if k != "exchange_id"} for d in events(sub, REF, sym, tf)]


async def test_a_poisoned_batch_leaves_good_streams_exactly_as_without_it(redis_url, redis_client, fixtures_dir):
    history = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:420]
    other = load_candles(fixtures_dir, "XRP_USDT-5m.csv")[:420]
    data = {"GOOD-USD": history, "ALSO-USD": other, BAD: history}
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX), keys.candle_close_pattern(REF)])
    r, p = await make_pipeline(redis_url, [*GOOD, BAD], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=NATIVE)
    r2, ref = await make_pipeline(redis_url, [*GOOD, BAD], exchange_id=REF, exchange="coinbase", timeframes=TFS,
                                  native_timeframes=NATIVE)
    want: dict[str, int] = {}
    try:
        for start in range(0, 420, 60):
            clean, dirty = [], []
            for i in range(start, start + 60):
                for sym, cs in data.items():
                    good = updates([cs[i]], sym, exchange="coinbase")
                    if sym == BAD and 300 <= i < 330:  # the poisoned stretch: every kind, then the true bar
                        for bad, defect in poison(cs[i]):
                            dirty += updates([bad], sym, exchange="coinbase")
                            want[defect] = want.get(defect, 0) + 1
                    dirty += good
                    clean += good
            await p.process(dirty)
            await ref.process(clean)
        stats = p.stats()
    finally:
        await r.aclose()
        await r2.aclose()
    sub.settle(redis_client)
    sub.close()
    assert stats["skipped_bad_candle"] == sum(want.values()) == 30 * 7
    assert {d: stats[f"bad_candle_{d}"] for d in want} == want
    assert stats["published"] == ref.stats()["published"] and "skipped_stage_error" not in stats
    # the poisoned stream itself ends where the clean one does: the true bars still arrived
    assert_same_as_reference(p, ref, redis_client, sub, [*GOOD, BAD])
    for sym in (*GOOD, BAD):  # never rebuilt: the aggregators are identical, closed buckets included
        assert p.states.peek_aggregator(sym) == ref.states.peek_aggregator(sym), sym
    for sym in (*GOOD, BAD):
        for tf in TFS:
            assert all(candle_defect(c) is None for c in stored(redis_client, EX, sym, tf)), (sym, tf)
    closes = [d for _, d in sub.messages]
    assert len(closes) > 3 * 420 and all(isinstance(d["volume"], float) for d in closes)


async def test_a_failed_batch_invalidates_only_its_own_streams(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:300]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX), keys.candle_close_pattern(REF)])
    symbols = [*GOOD, BAD]
    r, p = await make_pipeline(redis_url, symbols, exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=NATIVE)
    r2, ref = await make_pipeline(redis_url, symbols, exchange_id=REF, exchange="coinbase", timeframes=TFS,
                                  native_timeframes=NATIVE)
    try:
        for pipe in (p, ref):
            await pipe.process([u for c in cs[:250] for s in symbols for u in updates([c], s, exchange="coinbase")])
        untouched = p.states.peek_aggregator("ALSO-USD"), [p.state("ALSO-USD", tf) for tf in TFS]
        # BAD's candle key holds a value of the wrong type: the script fails inside Redis after
        # it already stored GOOD's close of the same batch
        key = keys.candles(EX, BAD, "5m")
        kept = redis_client.zrange(key, 0, -1, withscores=True)
        redis_client.delete(key)
        redis_client.set(key, "not a sorted set")
        failing = updates([cs[250]], "GOOD-USD", exchange="coinbase") + updates([cs[250]], BAD, exchange="coinbase")
        with pytest.raises(ResponseError):
            await p.process(failing)
        assert p.states.peek_aggregator("ALSO-USD") is untouched[0]
        assert [p.state("ALSO-USD", tf) for tf in TFS] == untouched[1]
        assert all(x is not None for x in untouched[1])
        assert p.state("GOOD-USD", "5m") is None and p.state(BAD, "5m") is None
        assert p.states.peek_aggregator("GOOD-USD") is None and p.states.peek_aggregator(BAD) is None
        redis_client.delete(key)
        redis_client.zadd(key, {m: s for m, s in kept})
        # the adapter delivers the batch again, then the streams go on
        rest = [u for c in cs[250:] for s in symbols for u in updates([c], s, exchange="coinbase")]
        await p.process(failing)
        await p.process(rest)
        await ref.process(rest)
        stats = p.stats()
    finally:
        await r.aclose()
        await r2.aclose()
    sub.settle(redis_client)
    sub.close()
    assert stats["duplicates"] >= 1  # GOOD's close had reached Redis before the script failed
    assert_same_as_reference(p, ref, redis_client, sub, symbols)


async def test_a_close_that_fails_to_stage_is_dropped_alone(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:200]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX), keys.candle_close_pattern(REF)])
    r, p = await make_pipeline(redis_url, [*GOOD, BAD], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=NATIVE)
    r2, ref = await make_pipeline(redis_url, [*GOOD, BAD], exchange_id=REF, exchange="coinbase", timeframes=TFS,
                                  native_timeframes=NATIVE)
    try:
        batches = [[u for c in cs[i:i + 50] for s in (*GOOD, BAD) for u in updates([c], s, exchange="coinbase")]
                   for i in range(0, 200, 50)]
        await p.process(batches[0])
        await ref.process(batches[0])
        # a bug corrupts BAD's in-memory state: its next close cannot be staged
        p.state(BAD, "5m").alerts = None
        for batch in batches[1:]:
            await p.process(batch)
            await ref.process(batch)
        stats = p.stats()
    finally:
        await r.aclose()
        await r2.aclose()
    sub.settle(redis_client)
    sub.close()
    assert stats["skipped_stage_error"] == 1
    assert_same_as_reference(p, ref, redis_client, sub, GOOD)
    bad_events = [d["timestamp"] for d in events(sub, EX, BAD, "5m")]
    assert bad_events == [c.timestamp for c in cs if c.timestamp != cs[50].timestamp]  # only that one close
    assert p.state(BAD, "5m").last == cs[-1]
    assert json.loads(redis_client.get(keys.indicator(EX, BAD, "5m")))["timestamp"] == cs[-1].timestamp


async def test_the_run_loop_skips_poison_and_a_failing_close_and_keeps_going(redis_url, redis_client, fixtures_dir):
    import asyncio

    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:120]
    r, p = await make_pipeline(redis_url, [*GOOD, BAD], exchange_id=EX, exchange="coinbase", timeframes=TFS,
                               native_timeframes=NATIVE, batch_max=16, pipeline_depth=2)
    runner = asyncio.create_task(p.run())
    try:
        for i, c in enumerate(cs):
            if i == 60:
                while p.counters["published"] < 3 * 60:  # the first half is out: corrupt BAD's memory
                    await asyncio.sleep(0.01)
                p.state(BAD, "5m").alerts = None
            for sym in (*GOOD, BAD):
                if sym == BAD and i % 10 == 0:
                    for bad, _ in poison(c):
                        p.listener.on_candle(updates([bad], sym, exchange="coinbase")[0])
                p.listener.on_candle(updates([c], sym, exchange="coinbase")[0])
        deadline = asyncio.get_running_loop().time() + 30
        while p.counters["closes_received"] < 3 * len(cs) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await p.close()
        await asyncio.wait_for(runner, 10)
        stats = p.stats()
    finally:
        await r.aclose()
    assert stats["skipped_bad_candle"] == 12 * 7 and stats["skipped_stage_error"] == 1
    assert "batch_errors" not in stats and not stats["queued"]
    for sym in GOOD:
        assert [c.timestamp for c in stored(redis_client, EX, sym, "5m")] == [c.timestamp for c in cs]
    assert len(stored(redis_client, EX, BAD, "5m")) == len(cs) - 1
    assert all(candle_defect(c) is None for c in stored(redis_client, EX, BAD, "5m"))
