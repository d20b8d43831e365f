"""Both live streams against the simulator behind real proxies on 127.0.0.1: a slow REST fill of one
symbol never holds up the others, hostile frames never end or corrupt a stream, a failing
listener is reported and the stream goes on."""

from __future__ import annotations

import json
import logging

import pytest

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ConnectionState
from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator
from tests.adapters.live_helpers import Recorder, assert_matches_truth, running, wait_until
from tests.adapters.proxies import RestProxy, WsRelay
from tests.helpers.sim import sim_config

EXCHANGES = {
    # speed: a 5m bucket lasts 0.5 s (coinbase) / 0.25 s (binance) of real time; the first retry
    # after a drop waits longer than a bucket, so every outage leaves a gap for REST to fill
    "coinbase": {"speed": 600.0, "seed": 7, "timeframes": ["5m"], "backoff": (1.2, 1.2), "watchdog_s": 0.5,
                 "options": {"grace_ms": 120_000}},
    "binance": {"speed": 1200.0, "seed": 11, "timeframes": ["5m", "15m"], "backoff": (0.8, 0.8), "watchdog_s": 0.4,
                "options": {}},
}
YEAR_2099_MS = 4_070_908_800_000


def config(ex: str, **kw):
    spec = EXCHANGES[ex]
    return sim_config(**{"symbols": 2, "seed": spec["seed"], "speed": spec["speed"], "update_interval": 0.05, **kw})


def adapter(ex: str, sim: ExchangeSimulator, ws_url: str | None = None, rest_url: str | None = None, **options):
    spec = EXCHANGES[ex]
    row = {"id": 1, "name": ex, "ws_url": ws_url or sim.urls[ex].ws_url, "rest_url": rest_url or sim.urls[ex].rest_url,
           "is_active": True}
    options = {"clock_ms": sim.now_ms, "watchdog_s": spec["watchdog_s"], "backoff": Backoff(*spec["backoff"]),
               **spec["options"], **options}
    return build_adapter(row, {}, **options)


def live(rec: Recorder, symbol: str) -> int:
    return sum(1 for u in rec.closes if u.symbol == symbol and u.source == "websocket")


def check_truth(rec: Recorder, sim: ExchangeSimulator, ex: str, symbols: list[str]) -> None:
    for s in symbols:
        for tf in EXCHANGES[ex]["timeframes"]:
            assert_matches_truth(rec, lambda a, b: sim.truth(ex, a, b), s, tf)
    assert rec.double_closes() == []


@pytest.mark.parametrize("ex", ["coinbase", "binance"])
async def test_a_slow_backfill_of_one_symbol_never_holds_up_the_others(ex):
    async with ExchangeSimulator(config(ex)) as sim, RestProxy(sim.urls[ex].rest_url) as rest:
        a_, b_ = sim.symbols(ex)
        ad = adapter(ex, sim, rest_url=rest.url)
        try:
            rec = Recorder()
            stream = ad.live([a_, b_], EXCHANGES[ex]["timeframes"], rec)
            async with running(stream):
                await wait_until(lambda: min(live(rec, a_), live(rec, b_)) >= 2, 20, "first live closes")
                rest.hold(a_)
                await sim.inject("drop", exchange=ex)
                await wait_until(lambda: rest.waiting >= 1, 20, "the fill of the held symbol to start")
                # the 5m bars of the held symbol have a gap (the outage is longer than a bucket)
                a_5m, a_live, b_live = len(rec.closed(a_, "5m")), live(rec, a_), live(rec, b_)
                # the other symbol's live closes go on while that fill waits on REST
                await wait_until(lambda: live(rec, b_) >= b_live + 4, 20, "live closes of the other symbol")
                assert len(rec.closed(a_, "5m")) == a_5m, "the held symbol's live closes must wait for its fill"
                assert stream.stats()["gapfill_requests"] >= 1
                rest.release()
                await wait_until(lambda: live(rec, a_) >= a_live + 3, 20, "the held symbol to catch up")
            check_truth(rec, sim, ex, [a_, b_])
            # the held symbol's gap came from REST, in open-time order, before its next live close
            assert [u for u in rec.closes if u.symbol == a_ and u.source == "rest"]
        finally:
            await ad.aclose()


def future_frames(ex: str, symbol: str, now_ms: int) -> list[str | bytes]:
    """Frames from the future, hostile nesting, invalid UTF-8 and error replies without an id."""
    deep = "[" * 1000 + "]" * 1000
    step = 300_000
    # ten buckets ahead: still far ahead when the frame arrives, at any simulator speed here
    nxt = now_ms - now_ms % step + 10 * step
    if ex == "coinbase":
        def update(start_ms: int) -> str:
            c = {"start": str(start_ms // 1000), "open": "10", "high": "11", "low": "9", "close": "10",
                 "volume": "1", "product_id": symbol}
            return json.dumps({"channel": "candles", "timestamp": "2026-08-09T21:05:51Z",
                               "events": [{"type": "update", "candles": [c]}]})

        heartbeat = json.dumps({"channel": "heartbeats", "timestamp": "9999-12-31T23:59:59Z",
                                "events": [{"heartbeat_counter": 1, "current_time": "9999-12-31"}]})
        return [deep, b'{"channel":"candles\xff"}', update(YEAR_2099_MS), update(nxt), heartbeat]

    def kline(open_ms: int, closed: bool) -> str:
        k = {"t": open_ms, "T": open_ms + step - 1, "s": symbol, "i": "5m", "o": "10", "c": "10", "h": "11",
             "l": "9", "v": "1", "x": closed}
        return json.dumps({"stream": f"{symbol.lower()}@kline_5m", "data": {"e": "kline", "E": 1, "s": symbol,
                                                                             "k": k}})

    errors = [json.dumps({"code": 0, "msg": "Unknown property"})] * 30 + \
        [json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": 10**9 + i}) for i in range(30)]
    return [deep, b'{"e":"kline\xff"}', kline(YEAR_2099_MS, True), kline(nxt, False),
            kline(nxt, True), *errors]


@pytest.mark.parametrize("ex", ["coinbase", "binance"])
async def test_hostile_frames_are_skipped_and_the_stream_goes_on(ex, caplog):
    async with ExchangeSimulator(config(ex)) as sim, WsRelay(sim.urls[ex].ws_url) as relay:
        a_, b_ = sim.symbols(ex)
        ad = adapter(ex, sim, ws_url=relay.url)
        try:
            rec = Recorder()
            stream = ad.live([a_, b_], EXCHANGES[ex]["timeframes"], rec)
            async with running(stream):
                await wait_until(lambda: min(live(rec, a_), live(rec, b_)) >= 2, 20, "first live closes")
                before = {s: live(rec, s) for s in (a_, b_)}
                with caplog.at_level(logging.WARNING):
                    await relay.inject(*future_frames(ex, a_, sim.now_ms()))
                    await wait_until(lambda: all(live(rec, s) >= before[s] + 3 for s in (a_, b_)), 20,
                                     "closes after the hostile frames")
                stats = stream.stats()
                if ex == "coinbase":  # the exchange clock did not move to 9999
                    assert abs(stream.clock.now_ms() - sim.now_ms()) < 3_600_000
            skipped = stats["skipped"]
            assert skipped["too_deep"] == 1 and skipped["invalid_json"] == 1
            assert skipped["bad_timestamp"] >= 3
            assert stats.get("reconnects", 0) == 0 and stats.get("loop_errors", 0) == 0
            assert all(s != ConnectionState.ERROR for s, _ in rec.states)
            if ex == "binance":
                assert skipped["exchange_error"] == 60
                assert sum("exchange_error" in r.getMessage() for r in caplog.records) <= 1  # no flood
            now = sim.now_ms()
            assert all(u.candle.timestamp < now for u in rec.closes), "a close from the future left the adapter"
            assert all(u.candle.timestamp <= now for u in rec.updates)
            check_truth(rec, sim, ex, [a_, b_])
        finally:
            await ad.aclose()


class FailsOnce(Recorder):
    """A listener with a bug: its third close raises."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def on_candle(self, update):
        if update.closed and len(self.closes) == 2 and not self.failed:
            self.failed = True
            raise RuntimeError("listener bug")
        super().on_candle(update)


@pytest.mark.parametrize("ex", ["coinbase", "binance"])
async def test_a_failing_loop_is_reported_restarted_and_streams_on(ex, caplog):
    async with ExchangeSimulator(config(ex, symbols=1)) as sim:
        (a_,) = sim.symbols(ex)
        ad = adapter(ex, sim)
        try:
            rec = FailsOnce()
            stream = ad.live([a_], EXCHANGES[ex]["timeframes"][:1], rec)
            with caplog.at_level(logging.ERROR):
                async with running(stream):
                    await wait_until(lambda: rec.failed and live(rec, a_) >= 4, 30, "closes after the failure")
            # whichever loop met the bug (the receive loop, or Coinbase's clock ticker) says so
            errors = [d for s, d in rec.states if s == ConnectionState.ERROR]
            assert len(errors) == 1 and "RuntimeError: listener bug" in (errors[0] or "")
            assert stream.stats()["loop_errors"] == 1
            assert any(r.exc_info and "listener bug" in str(r.exc_info[1]) for r in caplog.records)
            assert rec.double_closes() == []
        finally:
            await ad.aclose()

