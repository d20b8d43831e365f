"""Every WebSocket fault is observable by a plain client."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from streaming.sim import FaultError, SimConfig
from streaming.sim.testing import running_simulator
from tests.helpers.sim import TEST_START_MS
from tests.sim.clients import connect, recv_json, recv_until, run

SUB = {"type": "subscribe", "channel": "candles"}


async def subscribed(sim, product="SIM1-USD"):
    ws = await connect(sim.urls["coinbase"].ws_url)
    await ws.send(json.dumps({**SUB, "product_ids": [product]}))
    await recv_json(ws)  # snapshot
    await recv_json(ws)  # ack
    return ws


def inject(sim, fault, **kw):
    return asyncio.to_thread(sim.inject, fault, **kw)


def test_drop_closes_abruptly(sim):
    async def go():
        ws = await subscribed(sim)
        record = await inject(sim, "drop", exchange="coinbase")
        assert record.connections >= 1
        try:
            with pytest.raises(websockets.ConnectionClosed) as exc:
                for _ in range(10_000):
                    await recv_json(ws)
            assert exc.value.rcvd is None  # no close frame: the TCP connection just went away
        finally:
            await ws.close()
    run(go())


def test_stall_holds_frames_then_resumes(sim):
    async def go():
        ws = await subscribed(sim)
        await inject(sim, "stall", exchange="coinbase", seconds=0.6)
        await asyncio.sleep(0.05)
        while True:  # drain whatever was already in flight
            try:
                await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                break
        frame = await recv_json(ws, timeout=10)  # frames come back after the stall
        assert frame["channel"] == "candles"
        await ws.close()
    run(go())


@pytest.mark.parametrize("kind", ["invalid_json", "missing_fields", "nan", "negative_price", "high_below_low",
                                  "absurd_timestamp", "wrong_types", "oversized"])
def test_malformed(sim, kind):
    async def go():
        ws = await subscribed(sim)
        await inject(sim, "malformed", exchange="coinbase", kind=kind, count=1)

        def bad(f):
            if "_raw" in f:
                return True
            if f.get("padding"):
                return True
            try:
                c = f["events"][0]["candles"][0]
                vals = [float(c[k]) for k in ("open", "high", "low", "close")]
                return (int(c["start"]) > 10**12 or min(vals) < 0 or vals[1] < vals[2]
                        or any(v != v or v in (float("inf"),) for v in vals))
            except (KeyError, TypeError, ValueError, IndexError):
                return True

        try:
            frames = await recv_until(ws, bad)
            assert bad(frames[-1])
        finally:
            await ws.close()
    run(go())


def test_sequence_gap_duplicate_out_of_order(sim):
    async def go():
        ws = await subscribed(sim, "SIM2-USD")
        await recv_until(ws, lambda f: f["channel"] == "candles")
        await inject(sim, "sequence_gap", exchange="coinbase", count=3)
        frames = await recv_until(ws, lambda f: True, limit=1)
        frames += await recv_until(ws, lambda f: True, limit=1)
        seqs = [f["sequence_num"] for f in frames]
        assert seqs[1] - seqs[0] == 4
        await inject(sim, "duplicate", exchange="coinbase")
        frames = [await recv_json(ws) for _ in range(6)]
        candles = [json.dumps(f["events"][0]["candles"][0], sort_keys=True) for f in frames
                   if f["channel"] == "candles"]
        assert any(a == b for a, b in itertools.pairwise(candles))
        await inject(sim, "out_of_order", exchange="coinbase")
        frames = [await recv_json(ws) for _ in range(8)]
        starts = [int(f["events"][0]["candles"][0]["start"]) for f in frames if f["channel"] == "candles"]
        assert any(b < a for a, b in itertools.pairwise(starts))
        await ws.close()
    run(go())


def test_control_endpoint_and_log(sim):
    url = sim.urls["coinbase"].rest_url
    req = urllib.request.Request(url + "/_sim/fault", method="POST",
                                 data=json.dumps({"kind": "rate_limit", "count": 1, "retry_after": 3}).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        body = json.loads(r.read())
    assert body["ok"] and body["fault"]["exchange"] == "coinbase"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url + "/api/v3/brokerage/market/products", timeout=5)
    assert exc.value.code == 429 and exc.value.headers["Retry-After"] == "3"
    assert json.loads(exc.value.read())["error"] == "RATE_LIMIT_EXCEEDED"
    with urllib.request.urlopen(url + "/_sim/faults", timeout=5) as r:
        log = json.loads(r.read())
    assert log[-1]["kind"] == "rate_limit" and log[-1]["params"] == {"count": 1, "retry_after": 3}
    with urllib.request.urlopen(url + "/_sim/truth?symbol=SIM1-USD&timeframe=1h&limit=5", timeout=5) as r:
        rows = json.loads(r.read())
    assert len(rows) == 5 and all(len(r) == 6 for r in rows)


def _product(frame):
    try:
        return frame["events"][0]["candles"][0]["product_id"]
    except (KeyError, IndexError, TypeError):
        return None


def _post_fault(sim, body):
    request = urllib.request.Request(sim.urls["coinbase"].rest_url + "/_sim/fault", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_stall_symbol_silences_one_product_on_every_connection_then_sends_its_latest_state(recordings_dir):
    # a simulator of its own without quiet buckets: every product sends an update every tick
    cfg = SimConfig(symbols=3, seed=7, speed=600.0, update_interval=0.05, gap_probability=0.0,
                    start_ms=TEST_START_MS, recordings=recordings_dir)
    with running_simulator(cfg) as sim:
        async def go():
            ws = await connect(sim.urls["coinbase"].ws_url)
            await ws.send(json.dumps({**SUB, "product_ids": ["SIM1-USD", "SIM2-USD"]}))
            before = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(6)]
            status, answer = await asyncio.to_thread(
                _post_fault, sim, {"fault": "stall_symbol", "symbol": "SIM1-USD", "seconds": 3})
            assert status == 200 and answer["fault"]["params"] == {"symbol": "SIM1-USD", "seconds": 3}
            # opened while it stalls: no snapshot of SIM1. Its frames are left unread below: without flow
            # control the client keeps reading them, so that close() completes its handshake at once
            # instead of waiting out the 10 s close_timeout behind a full receive queue
            late = await connect(sim.urls["coinbase"].ws_url, max_queue=None)
            await late.send(json.dumps({**SUB, "product_ids": ["SIM1-USD"]}))
            loop = asyncio.get_running_loop()
            start = loop.time()
            seen: list[tuple[float, dict]] = []
            while loop.time() - start < 4.5:
                seen.append((loop.time() - start, await recv_json(ws)))
            earlier = before + [f for t, f in seen if t < 0.2]
            last_start = max(int(c["start"]) for f in earlier if _product(f) == "SIM1-USD"
                             for c in f["events"][0]["candles"])
            during = {_product(f) for t, f in seen if 0.3 < t < 2.5}
            after = [f for t, f in seen if t > 3.3 and _product(f) == "SIM1-USD"]
            assert "SIM2-USD" in during and "SIM1-USD" not in during  # the other product keeps streaming
            # then its latest state: the bars it missed (several at speed 600) are not replayed
            assert after and int(after[0]["events"][0]["candles"][0]["start"]) >= last_start + 2 * 300
            first = None
            while first is None or first.get("channel") != "candles":
                first = json.loads(await asyncio.wait_for(late.recv(), 5))
            assert first["events"][0]["type"] == "update"  # no snapshot: it came after the stall
            await ws.close()
            await late.close()
        run(go())


def test_stall_symbol_refuses_unknown_symbols_and_bad_parameters(sim):
    for body, text in (({"fault": "stall_symbol", "symbol": "NOPE-USD", "seconds": 1}, "no symbol"),
                       ({"fault": "stall_symbol", "seconds": 1}, "needs a symbol"),
                       ({"fault": "stall_symbol", "symbol": "SIM1-USD", "seconds": -1}, "seconds"),
                       ({"fault": "stall_symbol", "symbol": "SIM1-USD", "count": 1}, "takes")):
        status, answer = _post_fault(sim, body)
        assert status == 400 and text in answer["error"], answer
def test_slow_rest_delays_every_answer_until_reset(sim):
    url = sim.urls["binance"].rest_url + "/api/v3/time"
    sim.inject("slow_rest", exchange="binance", seconds=0.3)
    try:
        t = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200
        assert time.monotonic() - t >= 0.3  # a lower bound: asyncio.sleep never wakes early
    finally:
        sim.inject("slow_rest", exchange="binance", seconds=0)
    assert sim.sim.hubs["binance"].rest_delay == 0
    with pytest.raises(FaultError, match="seconds must be in"):
        sim.inject("slow_rest", exchange="binance", seconds=-1)


def test_lose_closes_withholds_one_close_per_stream_of_those_symbols(sim):
    step = 300_000

    async def go():
        url = sim.urls["binance"].ws_url + "/stream?streams=sim1usdt@kline_5m/sim2usdt@kline_5m"
        async with connect(url) as ws:
            closes: dict[str, list[int]] = {"SIM1USDT": [], "SIM2USDT": []}

            def closed(f):
                k = f["data"]["k"]
                if k["x"]:
                    closes[k["s"]].append(k["t"])
                return k["x"]

            await recv_until(ws, closed)  # live: a bucket closed (the other stream's close may follow)
            before = sim.stats("binance")["closes_withheld"]
            await inject(sim, "lose_closes", exchange="binance", symbols=["sim1usdt"])
            await recv_until(ws, lambda f: closed(f) and len(closes["SIM1USDT"]) >= 3
                             and len(closes["SIM2USDT"]) >= 4)
            # both streams' closes of a bucket go out in the same tick, so the one bucket SIM2
            # closed and SIM1 did not is the withheld close; everything else arrives
            sim1, sim2 = closes["SIM1USDT"], closes["SIM2USDT"]
            lost = {t for t in sim2 if sim1[0] <= t <= sim1[-1]} - set(sim1)
            assert len(lost) == 1
            assert all(b - a == step for a, b in itertools.pairwise(sim2))
            assert all(b - a == step for a, b in itertools.pairwise(sorted({*sim1, *lost})))
            assert sim.stats("binance")["closes_withheld"] == before + 1
            truth = {c.timestamp for c in sim.truth("binance", "SIM1USDT", "5m")}
            assert lost <= truth
    run(go())
    with pytest.raises(FaultError, match="binance and binance_us only"):
        sim.inject("lose_closes", exchange="coinbase", symbols=["SIM1-USD"])
    with pytest.raises(FaultError, match="non-empty list"):
        sim.inject("lose_closes", exchange="binance", symbols=[])
