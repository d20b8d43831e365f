"""Binance / Binance.US adapters against the local exchange simulator."""

from __future__ import annotations

import pytest

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AuthError, Credentials, UnknownSymbolError
from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator, SimConfig
from tests.adapters.live_helpers import Recorder, assert_matches_truth, running, wait_until
from tests.helpers.sim import sim_config as pinned_sim_config

SPEED = 1200.0  # 5m = 0.25 s, 15m = 0.75 s of real time
TFS = ["5m", "15m"]


def adapter_for(sim: ExchangeSimulator, ex: str = "binance", limits: dict | None = None, **options):
    row = {"id": 2, "name": ex, "ws_url": sim.urls[ex].ws_url, "rest_url": sim.urls[ex].rest_url,
           "api_limits": limits or {}, "is_active": True}
    options.setdefault("clock_ms", sim.now_ms)
    return build_adapter(row, {}, **options)


def sim_config(**kw) -> SimConfig:
    return pinned_sim_config(**{"symbols": 2, "seed": 11, "speed": SPEED, "update_interval": 0.05, **kw})


def truth_of(sim, ex="binance"):
    return lambda symbol, tf: sim.truth(ex, symbol, tf)


def n_closed(rec: Recorder, symbols, tf="5m") -> int:
    return min(len(rec.closed(s, tf)) for s in symbols)


async def test_stream_subscribe_unsubscribe_and_pings():
    async with ExchangeSimulator(sim_config(symbols=3)) as sim:
        adapter = adapter_for(sim)
        try:
            rec = Recorder()
            a, b, c = sim.symbols("binance")
            stream = adapter.live([a, b, "NOPEUSDT", "BAD SYM"], TFS, rec)
            async with running(stream):
                await wait_until(lambda: n_closed(rec, [a, b], "15m") >= 2, 20, "15m closes")
                await stream.subscribe([c])
                await stream.unsubscribe([b])
                frozen = len(rec.closed(b, "5m"))
                await wait_until(lambda: len(rec.closed(c, "15m")) >= 2, 20, "closes of the added symbol")
                assert len(rec.closed(b, "5m")) <= frozen + 1  # at most one in flight
                stats = stream.stats()
                conn = next(iter(sim.hubs["binance"].connections))
                assert conn.pings >= 2 and conn.pongs == conn.pings  # websockets answers every ping
            assert stats["connections_opened"] == 1 and stats.get("reconnects", 0) == 0
            assert stats["streams"] == 4 and stream.symbols == frozenset({a, c})
            for s in (a, c):
                for tf in TFS:
                    assert_matches_truth(rec, truth_of(sim), s, tf)
            assert rec.double_closes() == []
            assert sorted(x for syms, _ in rec.rejected for x in syms) == ["BAD SYM", "NOPEUSDT"]
        finally:
            await adapter.aclose()


async def test_subscribe_refused_by_the_exchange_is_reported():
    async with ExchangeSimulator(sim_config()) as sim:
        adapter = adapter_for(sim, check_exchange_info=False)
        try:
            rec = Recorder()
            a, _ = sim.symbols("binance")
            stream = adapter.live([a], ["5m"], rec)
            async with running(stream):
                await wait_until(lambda: len(rec.closed(a, "5m")) >= 1, 20, "a close")
                await stream.subscribe(["NOPEUSDT"])
                await wait_until(lambda: rec.rejected, 10, "the refusal")
            assert rec.rejected[0][0] == ["NOPEUSDT"] and "refused" in rec.rejected[0][1]
            assert stream.symbols == frozenset({a}) and stream.stats()["subscribe_errors"] == 1
            assert stream.stats()["streams"] == 1  # the refused stream is not kept for a reconnect
        finally:
            await adapter.aclose()


async def test_every_timeframe_closes_equal_truth():
    # 1d lasts 4.3 s here; bars arrive in catch-up batches, which must close in order too
    async with ExchangeSimulator(sim_config(symbols=1, speed=20_000.0)) as sim:
        adapter = adapter_for(sim)
        try:
            rec = Recorder()
            (a,) = sim.symbols("binance")
            tfs = ["5m", "15m", "1h", "4h", "1d"]
            stream = adapter.live([a], tfs, rec)
            async with running(stream):
                await wait_until(lambda: len(rec.closed(a, "1d")) >= 1, 30, "a daily close")
            for tf in tfs:
                assert_matches_truth(rec, truth_of(sim), a, tf)
            assert rec.double_closes() == []
        finally:
            await adapter.aclose()


async def inject(sim, ex, fault, params):
    if "kind" in params:
        # sim.inject(kind, exchange, **params) cannot take the malformed fault's own `kind` parameter
        from streaming.sim.faults import validate

        sim.hubs[ex].apply(fault, validate(fault, ex, params))
    else:
        await sim.inject(fault, exchange=ex, **params)


@pytest.mark.parametrize("fault,params", [
    ("drop", {}),
    ("stall", {"seconds": 1.0}),
    ("malformed", {"kind": "all", "count": 8}),
    ("duplicate", {"count": 3}),
    ("out_of_order", {"count": 3}),
    ("server_shutdown", {}),
    ("rate_limit", {"count": 2, "retry_after": 1}),
])
async def test_fault_recovery_leaves_no_missing_or_double_close(fault, params):
    async with ExchangeSimulator(sim_config()) as sim:
        # the first retry waits 0.4-0.8 s (> one 5m bucket): an outage always leaves a gap for REST
        adapter = adapter_for(sim, watchdog_s=0.4, backoff=Backoff(0.8, 0.8))
        try:
            rec = Recorder()
            syms = sim.symbols("binance")
            stream = adapter.live(syms, TFS, rec)
            async with running(stream):
                await wait_until(lambda: n_closed(rec, syms) >= 2, 20, "first closes")
                before = n_closed(rec, syms)
                await inject(sim, "binance", fault, params)
                if fault == "rate_limit":  # the 429s meet the backfill after an outage
                    await sim.inject("drop", exchange="binance")
                await wait_until(lambda: n_closed(rec, syms) >= before + 4, 30, "closes after recovery")
            stats = stream.stats()
            for s in syms:
                for tf in TFS:
                    assert_matches_truth(rec, truth_of(sim), s, tf)
            assert rec.double_closes() == []
            if fault in ("drop", "stall", "rate_limit"):
                assert stats["reconnects"] >= 1
                rest = [u for u in rec.closes if u.source == "rest"]
                assert rest and stats["gap_filled"] == len(rest)
            if fault == "stall":
                assert stats["watchdog_timeouts"] >= 1
            if fault == "rate_limit":
                assert adapter.rest.http.counts["throttled"] == 2 and stats.get("gapfill_failures", 0) == 0
            if fault == "malformed":
                assert stats["skipped"] == {"invalid_json": 1, "schema": 2, "non_finite": 1, "bad_price": 1,
                                            "high_below_low": 1, "bad_timestamp": 1, "oversized": 1}
                assert stats.get("reconnects", 0) == 0
            if fault in ("duplicate", "out_of_order"):
                assert stats["duplicate_closes"] >= params["count"]
            if fault == "server_shutdown":
                assert stats["server_shutdowns"] == 1 and stats["connections_opened"] == 2
                assert stats.get("reconnects", 0) == 0  # replaced before the old one closed
                assert stats.get("gap_filled", 0) == 0  # no gap at all
        finally:
            await adapter.aclose()


async def test_lifetime_rotation_and_many_connections():
    async with ExchangeSimulator(sim_config(symbols=3)) as sim:
        # two streams per connection: three symbols x two timeframes need three connections
        adapter = adapter_for(sim, limits={"ws_streams_per_connection": 2}, lifetime_s=0.5)
        try:
            rec = Recorder()
            syms = sim.symbols("binance")
            stream = adapter.live(syms, TFS, rec)
            async with running(stream):
                await wait_until(lambda: n_closed(rec, syms, "15m") >= 2
                                 and stream.stats().get("lifetime_rotations", 0) >= 3, 30, "rotations")
                stats = stream.stats()
            assert stats["connections"] == 3 and stats["lifetime_rotations"] >= 3
            assert stats.get("reconnects", 0) == 0
            for s in syms:
                for tf in TFS:
                    assert_matches_truth(rec, truth_of(sim), s, tf)
            assert rec.double_closes() == []
        finally:
            await adapter.aclose()


@pytest.mark.parametrize("ex", ["binance", "binance_us"])
async def test_rest_products_candles_balances(ex):
    async with ExchangeSimulator(sim_config()) as sim:
        adapter = adapter_for(sim, ex)
        try:
            products = {p.symbol: p for p in await adapter.fetch_products()}
            for s in sim.symbols(ex):
                assert products[s].tradable and products[s].price > 0
            sym = sim.symbols(ex)[0]
            now = sim.now_ms()
            start = now - now % 300_000 - 1500 * 300_000  # two pages of 1000
            got = await adapter.fetch_candles(sym, "5m", start, now + 300_000)
            want = [c for c in sim.truth(ex, sym, "5m") if c.timestamp >= start]
            assert len(got) >= 1500 and got == want[: len(got)]
            with pytest.raises(UnknownSymbolError):
                await adapter.fetch_candles("NOPEUSDT", "5m", start, now)
            key, secret = sim.credentials(ex)
            balances = await adapter.fetch_balances(Credentials(key, secret))
            assert balances and all(b.free >= 0 for b in balances)
            with pytest.raises(AuthError):
                await adapter.fetch_balances(Credentials(key, "wrong-secret"))
            with pytest.raises(AuthError):
                await adapter.fetch_balances(Credentials("wrong-key", secret))
        finally:
            await adapter.aclose()
