"""A stream whose warm-up failed, fetched again in the background (HistoryRetry), over the real
Binance adapter's REST client against a local REST server and a real Redis."""

from __future__ import annotations

import asyncio
import json
import math

from streaming import keys
from streaming.adapters.backoff import Backoff
from streaming.adapters.factory import build_adapter
from streaming.indicators.macd_v_batch import macd_v_series
from streaming.store.alert_state import decode_alert_state
from tests.pipeline.helpers import Subscriber, frame, load_candles, make_pipeline, updates
from tests.pipeline.rest_server import RestServer

EX = 2
M5 = 300_000


async def _until(predicate, timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_history_arriving_late_stops_before_the_live_bars_and_every_live_close_is_published_once(
        redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "ETH_BTC-5m.csv")
    cut = five[-1].timestamp + M5 - 10 * 3_600_000
    start = cut - cut % M5  # the bar forming when the live stream opened: the first live close
    live = [c for c in five if c.timestamp >= start][:8]
    server = RestServer({("ETHBTC", "5m"): five})
    server.fail["ETHBTC 5m"] = 429  # past the REST client's retries
    url = await server.start()
    now = {"ms": cut}
    adapter = build_adapter({"id": EX, "name": "binance", "ws_url": "ws://127.0.0.1:1/ws", "rest_url": url},
                            env={}, clock_ms=lambda: now["ms"], check_exchange_info=False)
    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), warmup_candles=300,
                               clock_ms=lambda: now["ms"])
    p.history.retry_backoff = Backoff(0.05, 0.2)
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])
    try:
        report = await p.warm_up(adapter, until_ms=cut)
        assert list(report.failed) == ["ETHBTC 5m"] and "RateLimitedError" in report.failed["ETHBTC 5m"]
        assert p.history.retry is not None and set(p.history.retry.missing) == {("ETHBTC", "5m")}
        assert p.stats()["history_missing"] == 1
        # live without history: the first three closes publish
        assert await p.process(updates(live[:3], "ETHBTC")) == 3
        await _until(lambda: p.counters["history_failures"] >= 2)
        assert p.history.retry.count == 1  # still failing: still missing
        # the exchange recovers while five more bars have closed that the live side has not
        # handed over yet: the history fetched reaches them, and must not swallow their closes
        now["ms"] = live[-1].timestamp + M5 + 1
        server.fail.clear()
        await _until(lambda: p.history.retry.count == 0)
        assert p.counters["history_filled"] == 1 and p.stats()["history_missing"] == 0
        assert p.counters["history_overlap_skipped"] >= 3
        assert await p.process(updates(live[3:], "ETHBTC")) == 5
        state = p.state("ETHBTC", "5m").macd
    finally:
        await p.close()
        await adapter.aclose()
        await server.stop()
        await r.aclose()
    sub.settle(redis_client)
    sub.close()
    events = [d for c, d in sub.messages if c.startswith("channel:exchange:")]
    # one close event per live bar, none for the history
    assert [d["timestamp"] for d in events] == [c.timestamp for c in live]
    stored = [json.loads(m) for m in redis_client.zrange(keys.candles(EX, "ETHBTC", "5m"), 0, -1)]
    hist = [c for c in five if c.timestamp < start]
    assert [d["timestamp"] for d in stored] == [c.timestamp for c in hist[-len(stored) + len(live):] + live]
    assert len(stored) == 308  # as deep as a warm-up: 300 bars before the first live bar, then the 8 live ones
    # MACD-V rebuilt from the store when the history came, then carried on by the live closes
    ref = macd_v_series(frame(hist[-(len(stored) - len(live)):] + live))
    ind = json.loads(redis_client.get(keys.indicator(EX, "ETHBTC", "5m")))
    assert ind["timestamp"] == live[-1].timestamp
    assert math.isclose(ind["macd_v"], ref["macd_v"].iloc[-1], rel_tol=1e-9)
    assert math.isclose(state.value().signal, ref["signal"].iloc[-1], rel_tol=1e-9)
    assert decode_alert_state(redis_client.hgetall(keys.alert_state(EX, "ETHBTC", "5m"))).prev_macd_v == \
        ind["macd_v"]


async def test_a_cause_retrying_cannot_fix_is_reported_and_not_retried(redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "ETH_BTC-5m.csv")
    cut = five[-1].timestamp + M5 - 10 * 3_600_000
    server = RestServer({("ETHBTC", "5m"): five})
    server.fail["ETHBTC 5m"] = 451
    url = await server.start()
    adapter = build_adapter({"id": EX, "name": "binance", "ws_url": "ws://127.0.0.1:1/ws", "rest_url": url},
                            env={}, clock_ms=lambda: cut, check_exchange_info=False)
    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), warmup_candles=300, clock_ms=lambda: cut)
    p.history.retry_backoff = Backoff(0.05, 0.2)
    try:
        report = await p.warm_up(adapter, until_ms=cut)
        requests = server.requests["ETHBTC 5m"]
        await asyncio.sleep(0.5)  # several backoff delays: no retry may go out
        assert report.failed and p.history.retry is not None
        missing = p.history.retry.missing[("ETHBTC", "5m")]
        assert not missing.retrying and "451" in missing.error
        assert p.stats()["history_missing"] == 1 and p.counters["history_not_retried"] == 1
        assert p.counters["history_retries"] == 0 and server.requests["ETHBTC 5m"] == requests == 1
        p.set_pools([])  # the symbol leaves the universe: nothing is missing any more
        assert p.stats()["history_missing"] == 0
    finally:
        await p.close()
        await adapter.aclose()
        await server.stop()
        await r.aclose()
