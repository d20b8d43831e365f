"""Every WebSocket fault is observable by a plain client."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request

import pytest
import websockets

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
