"""Warm-up over the real Binance adapter's REST client against a local REST server."""

from __future__ import annotations

import json
import math

from streaming import keys
from streaming.adapters.factory import build_adapter
from streaming.aggregation import aggregate
from streaming.indicators.macd_v_batch import macd_v_series
from streaming.store.alert_state import decode_alert_state
from tests.pipeline.helpers import Subscriber, frame, load_candles, make_pipeline, updates
from tests.pipeline.rest_server import RestServer

EX = 2


async def test_warm_up_backfills_builds_state_and_skips_refused_symbols(redis_url, redis_client, fixtures_dir):
    five = load_candles(fixtures_dir, "ETH_BTC-5m.csv")
    hours = aggregate(five, "1h")  # 480 bars
    cut = five[-1].timestamp + 300_000 - 10 * 3_600_000  # "now": ten hours before the data ends
    data = {("ETHBTC", "5m"): five, ("ETHBTC", "1h"): hours}
    live_5m = [c for c in five if c.timestamp >= cut - cut % 300_000][:30]
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX), keys.alerts_channel(EX)])
    progress: list[tuple[int, int]] = []

    server = RestServer(data)
    url = await server.start()
    adapter = build_adapter({"id": EX, "name": "binance", "ws_url": "ws://127.0.0.1:1/ws", "rest_url": url},
                            env={}, clock_ms=lambda: cut, check_exchange_info=False)
    r, p = await make_pipeline(redis_url, ["ETHBTC", "NOPEBTC"], timeframes=("5m", "1h"),
                               warmup_candles=300, clock_ms=lambda: cut)
    try:
        report = await p.warm_up(adapter, progress=lambda d, t: progress.append((d, t)))
        published = await p.process(updates(live_5m, "ETHBTC"))
        state = p.state("ETHBTC", "5m").macd
        requests = dict(server.requests)
    finally:
        await adapter.aclose()
        await server.stop()
        await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert set(report.refused) == {"NOPEBTC"} and "Invalid symbol" in report.refused["NOPEBTC"]
    assert report.total == 4 and report.done == 4 and not report.failed
    assert progress[-1] == (4, 4) and [d for d, _ in progress] == [1, 2, 3, 4]
    assert requests["NOPEBTC 5m"] + requests["NOPEBTC 1h"] >= 1
    end_5m = cut - cut % 300_000
    stored_5m = redis_client.zrange(keys.candles(EX, "ETHBTC", "5m"), 0, -1)
    hist = [c for c in five if c.timestamp < end_5m]
    assert len(stored_5m) == 300 + len(live_5m) - sum(c.timestamp < end_5m for c in live_5m)
    assert json.loads(stored_5m[0])["timestamp"] == hist[-300].timestamp
    assert redis_client.zcard(keys.candles(EX, "ETHBTC", "1h")) >= 300
    # no historic events: only the live bars after the backfill were published
    events = [d for c, d in sub.messages if c.startswith("channel:exchange:")]
    assert [d["timestamp"] for d in events] == [c.timestamp for c in live_5m if c.timestamp >= end_5m]
    assert published == len(events)
    # MACD-V continues from the backfill: equal to batch over (last 300 backfilled + live)
    ref = macd_v_series(frame(hist[-300:] + [c for c in live_5m if c.timestamp >= end_5m]))
    ind = json.loads(redis_client.get(keys.indicator(EX, "ETHBTC", "5m")))
    assert math.isclose(ind["macd_v"], ref["macd_v"].iloc[-1], rel_tol=1e-9)
    assert math.isclose(state.value().signal, ref["signal"].iloc[-1], rel_tol=1e-9)
    ind_1h = json.loads(redis_client.get(keys.indicator(EX, "ETHBTC", "1h")))
    assert ind_1h["seeded"] is True and ind_1h["macd_v"] is not None
    assert decode_alert_state(redis_client.hgetall(keys.alert_state(EX, "ETHBTC", "1h"))).prev_macd_v == \
        ind_1h["macd_v"]
