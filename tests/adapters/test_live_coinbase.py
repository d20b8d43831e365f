"""Coinbase adapter against the local exchange simulator: clean stream, every fault, REST, auth."""

from __future__ import annotations

import pytest

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AuthError, Credentials, UnknownSymbolError
from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator, SimConfig
from tests.adapters.live_helpers import Recorder, assert_matches_truth, running, wait_until
from tests.helpers.sim import sim_config as pinned_sim_config

EX = "coinbase"
SPEED = 600.0  # a 5-minute bucket lasts half a real second
M5 = 300_000


def adapter_for(sim: ExchangeSimulator, **options):
    row = {"id": 1, "name": EX, "ws_url": sim.urls[EX].ws_url, "rest_url": sim.urls[EX].rest_url,
           "is_active": True}
    options.setdefault("clock_ms", sim.now_ms)
    # updates come every 30 simulated seconds here: the clock must not close before the next one
    options.setdefault("grace_ms", 120_000)
    return build_adapter(row, {}, **options)


def sim_config(**kw) -> SimConfig:
    return pinned_sim_config(**{"symbols": 2, "seed": 7, "speed": SPEED, "update_interval": 0.05, **kw})


async def inject(sim: ExchangeSimulator, fault: str, params: dict) -> None:
    if "kind" in params:
        # sim.inject(kind, exchange, **params) cannot take the malformed fault's own `kind` parameter
        from streaming.sim.faults import validate

        sim.hubs[EX].apply(fault, validate(fault, EX, params))
    else:
        await sim.inject(fault, exchange=EX, **params)


def live_closes(rec: Recorder, symbol: str) -> int:
    return sum(1 for u in rec.closes if u.symbol == symbol and u.source == "websocket")


async def test_stream_matches_truth_and_reports_rejected_symbols():
    # quiet buckets (no trades, no candle) leave the last bar to be closed by the clock
    async with ExchangeSimulator(sim_config(gap_probability=0.3)) as sim:
        adapter = adapter_for(sim)
        try:
            rec = Recorder()
            syms = sim.symbols(EX)
            stream = adapter.live([*syms, "NOPE-USD", "BAD:SYM"], ["5m"], rec)
            async with running(stream):
                # with the pinned clock SIM2-USD has a quiet bucket four buckets after the start
                await wait_until(lambda: all(live_closes(rec, s) >= 103 for s in syms)
                                 and stream.stats().get("clock_closes", 0) >= 1, 20, "live and clock closes")
                await stream.unsubscribe([syms[1]])
                frozen = len(rec.closed(syms[1], "5m"))
                await stream.subscribe([syms[1]])
                await wait_until(lambda: len(rec.closed(syms[1], "5m")) > frozen, 10, "resubscribed symbol")
            for s in syms:
                # snapshot history (99 closed) + live closes, equal to what the simulator served
                assert assert_matches_truth(rec, lambda a, b: sim.truth(EX, a, b), s, "5m") >= 103
            assert rec.double_closes() == []
            assert sorted(x for syms_, _ in rec.rejected for x in syms_) == ["BAD:SYM", "NOPE-USD"]
            assert stream.symbols == frozenset(syms)
            stats = stream.stats()
            assert stats["skipped_total"] == 0 and stats.get("reconnects", 0) == 0
            assert stats.get("clock_closes", 0) >= 1
            assert rec.count(rec.states[0][0]) >= 1
        finally:
            await adapter.aclose()


@pytest.mark.parametrize("fault,params", [
    ("drop", {}),
    ("stall", {"seconds": 1.5}),
    ("malformed", {"kind": "all", "count": 8}),
    ("duplicate", {"count": 3}),
    ("out_of_order", {"count": 3}),
    ("sequence_gap", {"count": 2}),
])
async def test_fault_recovery_leaves_no_missing_or_double_close(fault, params):
    async with ExchangeSimulator(sim_config()) as sim:
        # the first retry waits 0.6-1.2 s (> one bucket): the outage always leaves a gap for REST
        adapter = adapter_for(sim, watchdog_s=0.5, backoff=Backoff(1.2, 1.2))
        try:
            rec = Recorder()
            syms = sim.symbols(EX)
            stream = adapter.live(syms, ["5m"], rec)
            async with running(stream):
                await wait_until(lambda: all(live_closes(rec, s) >= 101 for s in syms), 20, "first closes")
                before = {s: len(rec.closed(s, "5m")) for s in syms}
                await inject(sim, fault, params)
                await wait_until(lambda: all(len(rec.closed(s, "5m")) >= before[s] + 3 for s in syms), 30,
                                 "closes after recovery")
            stats = stream.stats()
            for s in syms:
                assert_matches_truth(rec, lambda a, b: sim.truth(EX, a, b), s, "5m")
            assert rec.double_closes() == []
            if fault in ("drop", "stall"):
                assert stats["reconnects"] >= 1
                assert stats["watchdog_timeouts" if fault == "stall" else "reconnects"] >= 1
                rest = [u for u in rec.closes if u.source == "rest"]
                assert rest and stats["gap_filled"] == len(rest)
                for s in syms:  # backfilled candles come in open-time order before the live ones
                    ts = [u.candle.timestamp for u in rec.closes if u.symbol == s]
                    assert ts == sorted(ts)
            if fault == "malformed":
                assert stats["skipped"] == {"invalid_json": 1, "schema": 2, "non_finite": 1, "bad_price": 1,
                                            "high_below_low": 1, "bad_timestamp": 1, "oversized": 1}
                assert stats.get("reconnects", 0) == 0
            if fault in ("duplicate", "out_of_order"):
                assert stats["corrections"] >= params["count"]
            if fault == "sequence_gap":
                assert stats["sequence_gaps"] >= 1 and stats["resubscribes"] >= 1
                assert stats["lost_frames"] >= 2
        finally:
            await adapter.aclose()


async def test_rest_rate_limit_is_retried_after_retry_after():
    async with ExchangeSimulator(sim_config()) as sim:
        adapter = adapter_for(sim)
        try:
            await sim.inject("rate_limit", exchange=EX, count=2, retry_after=1)
            now = sim.now_ms()
            end = now - now % M5
            candles = await adapter.fetch_candles(sim.symbols(EX)[0], "5m", end - 20 * M5, end + M5)
            truth = [c for c in sim.truth(EX, sim.symbols(EX)[0], "5m") if end - 20 * M5 <= c.timestamp < end]
            assert candles == truth[: len(candles)] and len(candles) >= 19
            assert adapter.rest.public.counts["throttled"] == 2
        finally:
            await adapter.aclose()


async def test_rest_products_candles_and_errors():
    async with ExchangeSimulator(sim_config()) as sim:
        adapter = adapter_for(sim)
        try:
            products = {p.symbol: p for p in await adapter.fetch_products()}
            for s in sim.symbols(EX):
                assert products[s].price > 0 and products[s].tradable
            sym = sim.symbols(EX)[0]
            now = sim.now_ms()
            start = now - now % 3_600_000 - 400 * 3_600_000  # two pages of 1h candles
            got = await adapter.fetch_candles(sym, "1h", start, now + 3_600_000)
            want = [c for c in sim.truth(EX, sym, "1h") if c.timestamp >= start]
            assert len(got) == 400 and got == want[: len(got)]
            assert got[-1].timestamp + 3_600_000 <= sim.now_ms()  # only closed bars
            with pytest.raises(UnknownSymbolError):
                await adapter.fetch_candles("NOPE-USD", "5m", start, now)
            with pytest.raises(UnknownSymbolError):
                await adapter.fetch_candles("BAD:SYM", "5m", start, now)
        finally:
            await adapter.aclose()


async def test_balances_with_good_and_bad_credentials():
    async with ExchangeSimulator(sim_config()) as sim:
        adapter = adapter_for(sim)
        try:
            name, pem = sim.credentials(EX)
            balances = await adapter.fetch_balances(Credentials(name, pem))
            assert len(balances) > 49  # synthetic wallets + the recorded pages: pagination followed
            assert len({b.asset for b in balances[:3]}) == 3 and balances[0].free == 1.5
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption()).decode()
            with pytest.raises(AuthError) as exc:
                await adapter.fetch_balances(Credentials(name, other))
            assert "PRIVATE KEY" not in str(exc.value)
            with pytest.raises(AuthError):
                await adapter.fetch_balances(Credentials(name, "garbage"))
        finally:
            await adapter.aclose()


async def test_at_speed_60_closes_are_the_true_final_candles():
    # the platform's documented offline speed: a 5m bucket lasts 5 s, the simulator updates every
    # 0.5 s of real time; 5 s of exchange time (83 ms real) of grace used to close buckets before
    # their final update arrived, so the close carried partial values and the final one came late
    async with ExchangeSimulator(pinned_sim_config(symbols=2, seed=7, speed=60.0, update_interval=0.5,
                                                   gap_probability=0.3)) as sim:
        row = {"id": 1, "name": EX, "ws_url": sim.urls[EX].ws_url, "rest_url": sim.urls[EX].rest_url}
        adapter = build_adapter(row, {}, clock_ms=sim.now_ms)  # the default grace, as the worker uses it
        try:
            rec = Recorder()
            syms = sim.symbols(EX)
            now = sim.now_ms()
            since = now - now % M5  # the bucket forming at the start: closed live, not from the snapshot

            def live_since(s: str) -> int:
                return sum(1 for c in rec.closed(s, "5m") if c.timestamp >= since)

            stream = adapter.live(syms, ["5m"], rec)
            async with running(stream):
                await wait_until(lambda: all(live_since(s) >= 4 for s in syms), 60, "four live closes")
                stats = stream.stats()
            for s in syms:
                assert assert_matches_truth(rec, lambda a, b: sim.truth(EX, a, b), s, "5m", since=since) >= 4
            assert rec.double_closes() == []
            assert stats.get("corrections", 0) == 0  # no final values after the close
        finally:
            await adapter.aclose()
