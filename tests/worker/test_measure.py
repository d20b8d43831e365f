"""ExchangeMeasure reads real parts: a Coinbase live stream's frame and skip counters (malformed
vs skipped), the REST client's requests by endpoint (no product id in it) against the simulator,
and keeps the counts of parts that are replaced or stopped."""

from __future__ import annotations

from types import SimpleNamespace

from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator
from streaming.worker.measure import ExchangeMeasure, adapter_counts, stream_counts
from tests.adapters.live_helpers import Recorder
from tests.helpers.sim import sim_config

CANDLES = "/api/v3/brokerage/market/products/{product_id}/candles"


async def test_counts_of_real_parts_and_what_is_kept_when_they_go():
    async with ExchangeSimulator(sim_config(symbols=2, seed=3)) as sim:
        row = {"id": 1, "name": "coinbase", "ws_url": sim.urls["coinbase"].ws_url,
               "rest_url": sim.urls["coinbase"].rest_url}
        adapter = build_adapter(row, {}, clock_ms=sim.now_ms)
        try:
            a, b = sim.symbols("coinbase")
            now = sim.now_ms()
            await adapter.fetch_candles(a, "5m", now - 3_600_000, now)
            await adapter.fetch_candles(b, "1h", now - 7_200_000, now)
            counts = adapter_counts(adapter)
            assert counts[("rest_requests", CANDLES)] == 2 and not [k for k in counts if a in k[1] or b in k[1]]

            stream = adapter.live([a], ["5m"], Recorder())
            stream._accept([a])
            stream._on_frame(b"{not json")
            stream._on_frame(b'{"channel":"candles","timestamp":"2026-08-09T21:05:51Z","events":[{"type":"update",'
                             b'"candles":[{"start":"1786309500","open":"1","high":"2","low":"1","close":"1",'
                             b'"volume":"1","product_id":"NOT-SUBSCRIBED"}]}]}')
            live = stream_counts(stream)
            assert live[("malformed", "invalid_json")] == 1 and live[("skipped", "unknown_symbol")] == 1

            measure = ExchangeMeasure("coinbase", 1)
            session = SimpleNamespace(stream=stream, adapter=adapter, pipeline=None, pools={a: (), b: ()},
                                      refused={b: "no"})
            measure.session = session
            reading = measure.read()
            assert reading.streams == 5 and reading.total("malformed") == 1 and reading.total("rest_requests") == 2
            measure.retire(stream=stream)  # the stream is replaced by a fresh one: its counts stay
            session.stream = adapter.live([a], ["5m"], Recorder())
            assert measure.read().total("malformed") == 1
            measure.retire(stream=session.stream, adapter=adapter, pipeline=None, session=session)  # stopped
            after = measure.read()
            assert after.total("malformed") == 1 and after.total("rest_requests") == 2
            assert after.streams == 0 and measure.session is None
        finally:
            await adapter.aclose()


def test_the_skip_kinds_counted_as_skipped_are_those_of_the_adapters():
    from streaming.adapters import skips
    from streaming.worker.measure import SKIPPED_KINDS

    assert {skips.UNKNOWN_SYMBOL, skips.UNKNOWN_INTERVAL, skips.BAD_TIMESTAMP, skips.EXCHANGE_ERROR} == SKIPPED_KINDS
    assert set(skips.KINDS) > SKIPPED_KINDS
